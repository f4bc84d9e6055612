"""Chord vocabulary, names, and chord recognition.

Vocabulary (DESIGN.md): root (12) x quality + bass, plus `N` (no chord).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from structdiff.data.song import DURATION, PITCH, PITCH_CLASS_NAMES, START, Chord, Key, Song

# Intervals above the root of each quality.
QUALITY_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus": (0, 5, 7),
    "dom7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "hdim7": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
}
QUALITIES = tuple(QUALITY_INTERVALS) + ("N",)

_SUFFIX = {
    "maj": "", "min": "m", "dim": "dim", "aug": "aug", "sus": "sus4",
    "dom7": "7", "maj7": "maj7", "min7": "m7", "hdim7": "m7b5", "dim7": "dim7",
}
# Accepted spellings of each quality when parsing a chord symbol.
_ALIASES = {
    "": "maj", "M": "maj", "maj": "maj", "major": "maj",
    "m": "min", "min": "min", "-": "min", "minor": "min",
    "dim": "dim", "o": "dim", "°": "dim",
    "aug": "aug", "+": "aug",
    "sus": "sus", "sus4": "sus", "sus2": "sus",
    "7": "dom7", "dom7": "dom7",
    "maj7": "maj7", "M7": "maj7", "Δ": "maj7", "Δ7": "maj7",
    "m7": "min7", "min7": "min7", "-7": "min7",
    "m7b5": "hdim7", "ø": "hdim7", "ø7": "hdim7", "hdim7": "hdim7",
    "dim7": "dim7", "o7": "dim7", "°7": "dim7",
}
_NOTE = r"([A-Ga-g])([#b]*)"
_CHORD_RE = re.compile(rf"^{_NOTE}([^/]*)(?:/{_NOTE})?$")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")


def spelling_for(key: Key | None) -> tuple[str, ...]:
    """Pitch names for chords in `key`: sharps in sharp keys, flats in flat keys."""
    if key is None:
        return PITCH_CLASS_NAMES
    major = key.tonic if key.mode == "major" else (key.tonic + 3) % 12
    fifths = (major * 7) % 12  # sharps in the signature, 7..11 meaning 5..1 flats
    if fifths == 0:
        return PITCH_CLASS_NAMES
    return _SHARP_NAMES if fifths <= 6 else _FLAT_NAMES


def chord_name(root: int, quality: str, bass: int | None = None, key: Key | None = None) -> str:
    """`C`, `Am`, `G7/B`, `Bm7b5`; `N` for no chord. `key` picks sharps or flats."""
    if quality == "N":
        return "N"
    if quality not in _SUFFIX:
        raise ValueError(f"unknown chord quality {quality!r} (known: {', '.join(QUALITIES)})")
    names = spelling_for(key)
    name = names[root % 12] + _SUFFIX[quality]
    if bass is not None and bass % 12 != root % 12:
        name += "/" + names[bass % 12]
    return name


def _pitch_class(letter: str, accidentals: str) -> int:
    return (_LETTER_PC[letter.upper()] + accidentals.count("#") - accidentals.count("b")) % 12


def parse_chord_name(text: str) -> tuple[int, str, int]:
    """`(root, quality, bass)` of a chord symbol such as `F#m7/A`; `N` is `(0, "N", 0)`.

    Raises `ValueError` naming the symbol when it is not in the vocabulary.
    """
    text = text.strip()
    if text in ("N", "N.C.", "NC"):
        return 0, "N", 0
    m = _CHORD_RE.match(text)
    if not m or m.group(3) not in _ALIASES:
        raise ValueError(f"unknown chord symbol {text!r} (e.g. C, Am, G7, Bdim, Fmaj7/A, N)")
    root = _pitch_class(m.group(1), m.group(2))
    bass = _pitch_class(m.group(4), m.group(5)) if m.group(4) else root
    return root, _ALIASES[m.group(3)], bass


def chord_pitch_classes(root: int, quality: str) -> set[int]:
    if quality == "N":
        return set()
    return {(root + i) % 12 for i in QUALITY_INTERVALS[quality]}


def _chord_tone_table() -> np.ndarray:
    """`[Q, 12, 12]` bool: is pitch class p (last axis) a tone of the chord (quality, root)?
    All False for `N`."""
    table = np.zeros((len(QUALITIES), 12, 12), dtype=bool)
    for q, quality in enumerate(QUALITIES):
        for root in range(12):
            table[q, root, sorted(chord_pitch_classes(root, quality))] = True
    return table


CHORD_TONES = _chord_tone_table()  # [quality index, root, pitch class] -> is a chord tone


# --- chord recognition -------------------------------------------------------------------------
# Weights below were set on the 20 Bach chorale analyses shipped with music21
# (evaluation/chord_accuracy.py); halves tuned on one half scored within 0.01 on the other.

# Recognized qualities (the vocabulary without N); emission column `q * 12 + root`, N last.
_RECOGNIZED = tuple(q for q in QUALITIES if q != "N")
_N_STATE = len(_RECOGNIZED) * 12
# Log-prior of each quality, in units of a beat's pitch-class mass: triads unless the seventh
# is really there (about a tenth of the beat for dom7, a fifth for the others).
_QUALITY_PRIOR = {
    "maj": 0.0, "min": 0.0, "dim": -0.15, "aug": -0.5, "sus": -0.5,
    "dom7": -0.3, "maj7": -0.6, "min7": -0.6, "hdim7": -0.6, "dim7": -0.6,
}
_PRIOR = np.repeat([_QUALITY_PRIOR[q] for q in _RECOGNIZED], 12)  # per emission column
_ROOTS = np.tile(np.arange(12), len(_RECOGNIZED))  # the root of each emission column
# Intervals of each recognized quality, padded to 4 (`_N_TONES` used), for the compiled loop.
_TONES = np.array([(QUALITY_INTERVALS[q] + (0, 0))[:4] for q in _RECOGNIZED], dtype=np.int64)
_N_TONES = np.array([len(QUALITY_INTERVALS[q]) for q in _RECOGNIZED], dtype=np.int64)
_NON_CHORD_TONE = -3.0  # template weight of a pitch class outside the chord (chord tones: 1)
_ROOT_IN_BASS = 0.2  # bonus when the bass is the root (root position is the common case)
_CHANGE_PENALTY = 0.15  # cost of a chord change, in units of one beat's emission
# A melodic line over an accompaniment weighs this much against 1 for the other notes: a pop
# song's melody carries passing and neighbour tones while the accompaniment spells the chord.
# A line is a track that sounds one note at a time for at least `LINE_MONO_SHARE` of its
# sounding steps, lies above the lowest track (a bass line counts fully) and plays beside an
# accompaniment (a track below that share). Tuned on POP909's training split (root+triad 0.859
# -> 0.891; weights 0.1 to 0.35 and shares 0.6 to 0.95 were tried); textures of lines only (a
# chorale, a quartet) have no accompaniment and keep every note at 1.
LINE_WEIGHT = 0.1
LINE_MONO_SHARE = 0.6


@functools.cache
def chord_templates() -> np.ndarray:
    """Template weights `[Q * 12, 12]` of every recognized chord over the 12 pitch classes.

    Row `q * 12 + root` (q indexes the vocabulary without N): 1 on chord tones,
    `_NON_CHORD_TONE` elsewhere.
    """
    rows = np.full((len(_RECOGNIZED), 12, 12), _NON_CHORD_TONE)
    for q, quality in enumerate(_RECOGNIZED):
        for root in range(12):
            rows[q, root, [(root + i) % 12 for i in QUALITY_INTERVALS[quality]]] = 1.0
    rows = rows.reshape(-1, 12)
    rows.flags.writeable = False  # cached: shared by every call
    return rows


def segment_bounds(song: Song, per_beat: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Candidate chord segments: boundaries `[S + 1]` in steps and nominal lengths `[S]` in steps.

    One segment per beat (`per_beat`: a 4/4 bar gives 4, 3/4 three, 6/8 two) or per half bar
    (whole beats; the first half takes the odd one). A pickup bar is divided from its end, so
    that its segments fall on the beats of the meter.
    """
    starts, ends = song.bars.astype(np.int64), song.bar_ends.astype(np.int64)
    beat, full = song.bar_meters()
    unit = beat if per_beat else beat * np.maximum(1, (full // beat + 1) // 2)
    count = np.where(ends > starts, -(-(ends - starts) // unit), 0)  # edges per bar
    pickup = len(starts) and ends[0] > starts[0] and ends[0] - starts[0] < full[0]
    if pickup:  # a pickup bar: its edges counted back from its end
        count[0] = 0
    owner = np.repeat(np.arange(len(starts)), count)  # the bar of each edge
    first = np.cumsum(count) - count  # the index of each bar's first edge
    edges = starts[owner] + (np.arange(len(owner)) - first[owner]) * unit[owner]
    units = unit[owner]
    if pickup:
        start, end, u = int(starts[0]), int(ends[0]), int(unit[0])
        head = np.array([start, *range(end - u, start, -u)[::-1]], dtype=np.int64)
        edges = np.concatenate([head, edges])
        units = np.concatenate([np.full(len(head), u), units])
    return (np.append(edges, int(song.end)).astype(np.int64), units.astype(np.float64))


def line_weights(song: Song) -> list[float]:
    """The weight of each track's notes in chord recognition: `LINE_WEIGHT` for a melodic line
    over an accompaniment, else 1 (drums 0). See `LINE_MONO_SHARE`. Refuses notes the compiled
    loops would index out of bounds with (pitches outside 0..127, negative starts)."""
    return _line_weights(song)[0]


def _line_weights(song: Song) -> tuple[list[float], list[int], np.ndarray]:
    """`line_weights`, the indices of the pitched tracks with notes, and their notes `[N, 4]`
    (int64, in track order), which `pitch_class_segments` reuses."""
    from structdiff.analysis import kernels

    pitched = [i for i, t in enumerate(song.tracks) if not t.is_drum and t.n_notes]
    notes = (np.concatenate([song.tracks[i].notes for i in pitched]).astype(np.int64)
             if pitched else np.zeros((0, 4), np.int64))
    offsets = np.cumsum([0] + [song.tracks[i].n_notes for i in pitched])
    if len(notes) and (notes[:, PITCH].min() < 0 or notes[:, PITCH].max() > 127
                       or notes[:, START].min() < 0 or notes[:, DURATION].min() < 0):
        raise ValueError("notes must have pitches 0..127 and non-negative starts and durations")
    share, median = kernels.track_profiles(notes[:, START].copy(), notes[:, DURATION].copy(),
                                           notes[:, PITCH].copy(), offsets)
    shares = dict(zip(pitched, share.tolist()))
    heights = dict(zip(pitched, median.tolist()))
    accompanied = any(shares[i] < LINE_MONO_SHARE for i in pitched)
    lowest = min(heights.values(), default=0.0)
    weights = [0.0] * len(song.tracks)
    for i in pitched:
        line = accompanied and shares[i] >= LINE_MONO_SHARE and heights[i] > lowest
        weights[i] = LINE_WEIGHT if line else 1.0
    return weights, pitched, notes


def pitch_class_segments(song: Song, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Duration-weighted pitch classes `[S, 12]` and lowest pitch classes `[S, 12]` per segment.

    `bounds` `[S + 1]` are increasing steps. Each note counts the steps it sounds in a segment
    (doubled notes count twice) times its track's `line_weights` (a melody over an
    accompaniment counts less); the bass histogram counts, for every step, the pitch class of
    the lowest note sounding then, whatever its weight. Drums are left out.
    """
    from structdiff.analysis import kernels

    # _line_weights refuses pitches outside 0..127 and negative starts or durations, which the
    # compiled loop would index with; every pitched track it weighs gets a weight above 0
    weights, pitched, notes = _line_weights(song)
    if pitched:
        weight = np.repeat([weights[i] for i in pitched],
                           [song.tracks[i].n_notes for i in pitched]).astype(np.float64)
    else:  # no pitched notes: nothing sounds (drum notes, if any, weigh nothing)
        notes, weight = np.zeros((0, 4), np.int64), np.zeros(0)
    n_steps = int(bounds[-1])
    pitches = notes[:, PITCH]
    starts = np.minimum(notes[:, START], n_steps)
    ends = np.minimum(notes[:, START] + notes[:, DURATION], n_steps)
    bounds = np.asarray(bounds, dtype=np.int64)
    if len(bounds) < 1 or bounds.min() < 0 or bounds.max() > n_steps:
        raise ValueError("bounds must lie in 0..bounds[-1]")
    return kernels.pitch_class_segments(starts, ends, pitches.copy(), weight, bounds)


def chord_emissions(pcs: np.ndarray, bass: np.ndarray,
                    scale: np.ndarray | None = None) -> np.ndarray:
    """Template scores `[S, Q * 12 + 1]` of every chord (and N, last) for each segment.

    `pcs` and `bass` are `[S, 12]` from `pitch_class_segments`. Scores are per unit of a
    segment's duration (times `scale` `[S]` when given); a segment without notes can only be
    N, and one with notes never is.
    """
    from structdiff.analysis import kernels

    pcs = np.ascontiguousarray(pcs, dtype=np.float64)
    x, weight = kernels.normalized_rows(pcs)
    b, _ = kernels.normalized_rows(np.ascontiguousarray(bass, dtype=np.float64))
    fit = x @ chord_templates().T  # [S, C]
    scale = np.ones(len(pcs)) if scale is None else np.asarray(scale, dtype=np.float64)
    return kernels.chord_scores(fit, b, weight, _PRIOR, _ROOTS, _ROOT_IN_BASS, scale)


def viterbi(emissions: np.ndarray, change_penalty: float) -> np.ndarray:
    """Best state path `[S]` through log scores `emissions` `[S, C]` when every change of state
    costs `change_penalty`."""
    from structdiff.analysis import kernels

    return kernels.viterbi(np.ascontiguousarray(emissions, dtype=np.float64), float(change_penalty))


def recognize_chords(song: Song, per_beat: bool = True) -> list[Chord]:
    """The chords of `song` (drums left out), covering it from step 0 to `song.end`.

    Candidates are one segment per beat (or per half bar without `per_beat`). Each segment's
    duration-weighted pitch classes are scored against every root x quality template (chord
    tones count, other tones cost three times as much, sevenths need to be really there, root
    position is preferred), then Viterbi with a cost per change picks the sequence, so that
    passing tones do not make chords. The bass of a segment is its chord tone that sounds lowest
    longest (the lowest note if no chord tone is lowest); consecutive segments with the same
    root, quality and bass are merged. Segments without notes are `N` (root and bass 0).
    """
    from structdiff.analysis import kernels

    bounds, units = segment_bounds(song, per_beat)
    pcs, bass = pitch_class_segments(song, bounds)
    emissions = chord_emissions(pcs, bass, np.diff(bounds) / units)
    path = viterbi(emissions, _CHANGE_PENALTY)
    found = kernels.chord_labels(path, bounds, bass, _TONES, _N_TONES, _N_STATE)
    return [Chord(onset, length, 0, "N", 0) if q < 0
            else Chord(onset, length, root, _RECOGNIZED[q], low)
            for onset, length, root, q, low in found.tolist()]
