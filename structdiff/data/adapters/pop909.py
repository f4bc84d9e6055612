"""POP909 read with its human annotation (form, chords, key) as the plan.

A song folder ``NNN/`` of POP909 holds ``NNN.mid`` (tracks MELODY, BRIDGE, PIANO, performed
against the audio's beats, so its own tick grid is off the music) and ``beat_midi.txt`` (one
beat per line: time in seconds, a flag every 2 beats, a flag every 4 beats; in triple meter
every 3 and every 6). The hierarchical-structure release adds per song ``human_label1.txt`` and
``human_label2.txt`` (forms such as ``i4A4B8A4b4o3``), ``finalized_chord.txt`` (Harte chords
with lengths in beats), ``melody.txt`` (the melody on a 16th grid) — both from the form's
first bar —, ``analyzed_key.txt`` and ``tempo.txt``.

How a song becomes a `Song` (`read_pop909`):

1. Grid: every note's onset and offset in seconds is mapped onto beat positions by piecewise-
   linear interpolation between the beat times (extrapolated at both ends with the neighbouring
   beat's length), then onto ``steps_per_quarter`` steps per beat (rounded; durations >= 1).
2. Form start: ``melody.txt`` is matched against the MELODY track on the 16th grid; the offset
   that puts the most notes on a MIDI note of the same onset and pitch is where the form's first
   bar lies (`align_form`). It must match `MIN_MATCH` of the notes (onsets within a 16th) over
   the song and `MIN_WINDOW` in every 8 bars, and be a whole beat. It need not be a bar line of
   ``beat_midi.txt``: the structure release moved the MIDI's wrong downbeats to the right bar
   lines in its own files, so ``melody.txt`` decides (`Pop909Song.on_downbeat` says which).
3. The song starts at the form's first bar and ends with its last (``song.end`` = the form's
   bars): notes of an unlabelled lead-in before it and of a tail after it are dropped, notes
   sounding past the end are cut there. Meter 4/4, or 3/4 where ``beat_midi.txt`` counts bars of
   3 beats (its flags every 3 and 6 beats); the chord lengths must not fill the form's bars in
   the other meter (`_chord_meter`).
4. Tracks: MELODY -> ``melody``, BRIDGE (secondary melody) -> ``strings``, PIANO -> ``keys``,
   with the band role map's programs for those roles (80 lead, 48 strings, 0 piano).
5. Plan: key from ``analyzed_key.txt`` (its first key when it lists a modulation), chords from
   ``finalized_chord.txt`` laid end to end from step 0 (`harte_chord`; cut at the song's end,
   equal neighbours merged, bars past the chords' end left without a chord), sections from
   ``human_label1.txt`` (`parse_form`; ``read_forms`` gives both annotators' forms), a phrase
   end on each section's last bar.

A song whose annotation does not fit its music raises `Pop909Error` (a ValueError) with a
one-line reason that starts with its kind, and prepare reports it: ``meter`` (the chords and
the beat file disagree on the bar length), ``alignment`` (no offset matches ``melody.txt``
throughout: in most such songs the MIDI has 2-beat bars the annotation's 4/4 timeline lacks),
``off the beat``, ``chords`` (they cover under `MIN_CHORD_COVER` of the form, or under
`MIN_CHORD_FIT` of the accompaniment's notes are their chord tones), ``too long`` (the form
outlasts the music by a bar or more), or a file's name (missing or unreadable). Nothing is
shifted silently. ``datasets/pop909/README.md`` has the counts.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from structdiff.data.song import (
    PITCH,
    START,
    Chord,
    Key,
    MusicFileError,
    Plan,
    Section,
    Song,
    Tempo,
    TimeSignature,
    Track,
    bar_grid,
    sort_notes,
)

if TYPE_CHECKING:
    from structdiff.data.prepare import CorpusEntry

DESCRIPTION = "POP909 pop songs with their human forms, chords and keys as the plan"
ROLE_MAP = "band"
STYLE = "pop"
SPLIT_DIR = Path(__file__).resolve().parents[3] / "datasets" / "pop909"

TRACK_ROLES = {"MELODY": "melody", "BRIDGE": "strings", "PIANO": "keys"}
MELODY_GRID = 4  # melody.txt is written in 16ths: 4 per beat
MIN_MATCH = 0.9  # least share of melody.txt notes the MIDI melody must match at the form start
MIN_WINDOW = 0.8  # ... and in every window of WINDOW_BARS bars with MIN_WINDOW_NOTES notes
WINDOW_BARS = 8
MIN_WINDOW_NOTES = 8
MAX_METER_ERROR = 0.05  # chord lengths this close to the form in another meter: a skip
MIN_CHORD_COVER = 0.9  # least share of the form the chord lengths must cover
MIN_CHORD_FIT = 0.6  # least share of accompaniment onsets on chord tones (song; window runs)
MAX_LOW_FIT_WINDOWS = 3  # consecutive 8-bar windows below MIN_CHORD_FIT that skip a song
MIN_FIT_NOTES = 20  # accompaniment notes a window needs to be judged

_SONG_DIR = re.compile(r"^\d{3}$")
_FORM_TOKEN = re.compile(r"([A-Za-z])(\d+)")
_NOTE = r"([A-G])([#b]*)"
_HARTE = re.compile(rf"^{_NOTE}(?::([a-z0-9]*))?(?:\(([^)/]*)\)?)?(?:/(\S*))?$")
_CHORD_LINE = re.compile(r"^(\S+(?: [^\[\s]+)*) \[([\d,\s]*)\]((?:\s+\d+)*)\s*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Harte shorthand -> structdiff quality. Sixths and added notes keep their triad; 9ths, 11ths
# and 13ths keep their seventh; minor-major sevenths are minor (no quality has that seventh).
_SHORTHAND = {
    "": "maj", "maj": "maj", "min": "min", "dim": "dim", "aug": "aug",
    "sus2": "sus", "sus4": "sus",
    "7": "dom7", "9": "dom7", "11": "dom7", "13": "dom7",
    "maj7": "maj7", "maj9": "maj7", "maj11": "maj7", "maj13": "maj7",
    "min7": "min7", "min9": "min7", "min11": "min7", "min13": "min7",
    "hdim7": "hdim7", "dim7": "dim7",
    "maj6": "maj", "min6": "min", "minmaj7": "min",
}
# An added seventh in the extension list turns a triad (or sixth) into a seventh chord.
_ADDED_B7 = {"maj": "dom7", "min": "min7", "aug": "dom7", "dim": "hdim7"}
_ADDED_7 = {"maj": "maj7"}
# Harte scale degrees (of a bass or an extension) -> semitones above the root.
_DEGREE = {"1": 0, "2": 2, "3": 4, "4": 5, "5": 7, "6": 9, "7": 11, "9": 2, "11": 5, "13": 9}


class Pop909Error(ValueError):
    """A POP909 song whose annotation does not fit its music (prepare skips and reports it)."""


# --- annotation files ----------------------------------------------------------------------


def parse_form(text: str) -> list[Section]:
    """Sections of a POP909 human form such as ``i4A4B8A4b4o3`` (whitespace allowed).

    Each token is one letter and a bar count: ``i``/``o`` intro and outro, upper case a melodic
    phrase, lower case a non-melodic span (kept as its own label: ``b`` is not ``B``). Labels
    are letters, so they round-trip through `Plan.form` and
    `structdiff.data.plan_constraints.parse_form` (``i4 A4 B8 A4 b4 o3``). Consecutive sections
    with the same label stay separate sections.
    """
    body = re.sub(r"\s+", "", text)
    sections: list[Section] = []
    start, pos = 0, 0
    for m in _FORM_TOKEN.finditer(body):
        if m.start() != pos:
            break
        n = int(m.group(2))
        if n < 1:
            raise ValueError(f"bad form token {m.group(0)!r} in {text.strip()!r} (0 bars)")
        sections.append(Section(start, n, m.group(1)))
        start += n
        pos = m.end()
    if pos != len(body) or not sections:
        raise ValueError(f"bad form {text.strip()!r} (expected e.g. i4A8B8A8o4)")
    return sections


def read_forms(folder: str | Path) -> tuple[list[Section], list[Section]]:
    """The two human forms of a song folder (``human_label1.txt``, ``human_label2.txt``)."""
    folder = Path(folder)
    return tuple(  # type: ignore[return-value]
        parse_form(_read_text(folder / f"human_label{k}.txt")) for k in (1, 2)
    )


def _pitch_class(letter: str, accidentals: str) -> int:
    return (_LETTER_PC[letter] + accidentals.count("#") - accidentals.count("b")) % 12


def _degree(text: str) -> int | None:
    m = re.match(r"^([#b]*)(\d+)$", text.strip())
    if not m or m.group(2) not in _DEGREE:
        return None
    return (_DEGREE[m.group(2)] + m.group(1).count("#") - m.group(1).count("b")) % 12


def harte_chord(name: str, bass: int | None = None) -> tuple[int, str, int]:
    """`(root, quality, bass)` of a Harte chord name such as ``B:maj``, ``C#:min7/b7``,
    ``A:sus4(b7,9)``; ``N`` is ``(0, "N", 0)``.

    Qualities map onto `structdiff.analysis.chords.QUALITIES`: triads as they are; sus2 and
    sus4 (with or without an added b7 or 9) -> ``sus``; 7, 9, 11, 13 -> ``dom7``; maj7, maj9,
    ... -> ``maj7``; min7, min9, ... -> ``min7``; hdim7, dim7 as they are; maj6 -> ``maj``,
    min6 and minmaj7 -> ``min``; an added ``b7`` makes maj -> dom7, min -> min7, aug -> dom7,
    dim -> hdim7, an added ``7`` makes maj -> maj7; other added notes (2, 4, 9, 11, 13) are
    left out. The bass is the ``/degree`` above the root, the root when there is none, and
    `bass` (a pitch class, e.g. finalized_chord.txt's bass column) when the name's degree is
    cut off (``C#:min(2)/``). Raises ValueError naming the chord when it is not Harte syntax
    or its shorthand is unknown.
    """
    name = name.strip()
    if name == "N" or name.startswith("N("):
        return 0, "N", 0
    m = _HARTE.match(name)
    if not m or m.group(3) not in _SHORTHAND:
        raise ValueError(f"unknown Harte chord {name!r} (e.g. C:maj, A:min7, G:7, B:hdim7)")
    root = _pitch_class(m.group(1), m.group(2))
    quality = _SHORTHAND[m.group(3) or ""]
    added = [e.strip().lstrip("*") for e in (m.group(4) or "").split(",") if e.strip()]
    if "b7" in added:
        quality = _ADDED_B7.get(quality, quality)
    elif "7" in added:
        quality = _ADDED_7.get(quality, quality)
    if m.group(5) is None:
        return root, quality, root
    step = _degree(m.group(5))
    if step is not None:
        return root, quality, (root + step) % 12
    if bass is not None and 0 <= bass < 12:
        return root, quality, bass
    raise ValueError(f"unknown bass degree in Harte chord {name!r} (e.g. C:maj/3)")


@dataclass(frozen=True)
class ChordLine:
    """One line of ``finalized_chord.txt``."""

    name: str  # Harte name
    pitch_classes: tuple[int, ...]
    bass: int | None  # the bass column (None where a line leaves it out)
    beats: int


def read_chord_lines(path: str | Path) -> list[ChordLine]:
    """Lines ``B:maj [3, 6, 11] 11 2`` of ``finalized_chord.txt``: name, pitch classes, bass,
    length in beats. A line with one number after the list (``N []  7``) has no bass; the
    length is the number after the bass (a stray third number is ignored)."""
    lines = []
    for i, raw in enumerate(_read_text(Path(path)).splitlines()):
        raw = _CONTROL.sub("", raw)  # a few lines end in a stray \x01
        if not raw.strip():
            continue
        m = _CHORD_LINE.match(raw.strip())
        if not m:
            raise Pop909Error(f"{Path(path).name} line {i + 1}: bad chord line {raw.strip()!r}")
        pcs = tuple(int(x) for x in re.findall(r"\d+", m.group(2)))
        numbers = [int(x) for x in m.group(3).split()]
        if not numbers:
            raise Pop909Error(f"{Path(path).name} line {i + 1}: no length in {raw.strip()!r}")
        bass, beats = (None, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
        lines.append(ChordLine(m.group(1), pcs, bass, beats))
    return lines


def read_melody_txt(path: str | Path) -> np.ndarray:
    """Notes `[N, 3]` int (start, duration, pitch) in 16ths from the form's first bar; the
    rests (pitch 0) of ``melody.txt`` only advance the time."""
    rows, t = [], 0
    for i, raw in enumerate(_read_text(Path(path)).splitlines()):
        if not raw.strip():
            continue
        parts = raw.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise Pop909Error(f"{Path(path).name} line {i + 1}: bad melody line {raw.strip()!r}")
        pitch, length = int(parts[0]), int(parts[1])
        if pitch > 0:
            rows.append((t, length, pitch))
        t += length
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def read_key(path: str | Path) -> Key:
    """The first key of ``analyzed_key.txt`` (``Gb:maj``, ``A:min``)."""
    text = _read_text(Path(path)).split()
    m = re.match(rf"^{_NOTE}:(maj|min)$", text[0]) if text else None
    if not m:
        raise Pop909Error(f"{Path(path).name}: bad key {' '.join(text)[:40]!r} (e.g. Gb:maj)")
    return Key(_pitch_class(m.group(1), m.group(2)), "major" if m.group(3) == "maj" else "minor")


def read_beats(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``beat_midi.txt`` as beat times `[B]` float64 (seconds, increasing) and the two flag
    columns `[B]` bool (every 2 and every 4 beats in duple meter, every 3 and 6 in triple)."""
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as err:
        raise Pop909Error(f"{Path(path).name}: not a beat table ({err})") from None
    if table.shape[0] < 2 or table.shape[1] < 3 or np.any(np.diff(table[:, 0]) <= 0):
        raise Pop909Error(f"{Path(path).name}: needs 2+ increasing beats with 3 columns")
    return table[:, 0], table[:, 1] > 0, table[:, 2] > 0


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Pop909Error(f"missing {path.parent.name}/{path.name}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise Pop909Error(f"cannot read {path.parent.name}/{path.name}: {err}") from None


# --- grid and alignment --------------------------------------------------------------------


def seconds_to_beats(seconds: np.ndarray, beat_times: np.ndarray) -> np.ndarray:
    """Beat positions `[N]` float64 of times `[N]` (seconds) on the beat times `[B]`: linear
    between beats, extrapolated before the first and after the last with the length of the
    neighbouring beat."""
    seconds = np.asarray(seconds, dtype=np.float64)
    index = np.arange(len(beat_times), dtype=np.float64)
    beats = np.interp(seconds, beat_times, index)
    first, last = beat_times[1] - beat_times[0], beat_times[-1] - beat_times[-2]
    before, after = seconds < beat_times[0], seconds > beat_times[-1]
    beats[before] = (seconds[before] - beat_times[0]) / first
    beats[after] = index[-1] + (seconds[after] - beat_times[-1]) / last
    return beats


@dataclass(frozen=True)
class FormAlignment:
    """Where the form's first bar lies on the beat grid, and how well the melodies agree."""

    offset: int  # 16ths from beat 0 of beat_midi.txt to the form's first bar
    score: float  # share of melody.txt notes matched there (onset within a 16th, same pitch)
    worst_window: float  # the lowest share over the form's WINDOW_BARS-bar windows
    worst_bar: int  # first bar of that window

    @property
    def beat(self) -> int | None:
        """The beat of the form's first bar (None when the offset is not a whole beat)."""
        return self.offset // MELODY_GRID if self.offset % MELODY_GRID == 0 else None


def best_offset(melody: np.ndarray, midi_onsets: np.ndarray, midi_pitches: np.ndarray) -> int:
    """The offset (16ths) that puts the most ``melody.txt`` notes `[N, 3]` (start, duration,
    pitch) on a MIDI melody note of the same onset and pitch (MIDI onsets `[M]` in 16ths from
    beat 0, pitches `[M]`); 0 when they share no pitch."""
    same = melody[:, 2][:, None] == midi_pitches[None, :]
    if not same.any():
        return 0
    shifts = (midi_onsets[None, :] - melody[:, 0][:, None])[same]
    # one vote per melody.txt note and shift, so a doubled MIDI note does not count twice
    note = np.broadcast_to(np.arange(len(melody))[:, None], same.shape)[same]
    pairs = np.unique(np.stack([shifts, note], axis=1), axis=0)
    values, counts = np.unique(pairs[:, 0], return_counts=True)
    return int(values[np.argmax(counts)])


def matched_notes(melody: np.ndarray, midi_onsets: np.ndarray, midi_pitches: np.ndarray,
                  offset: int, tolerance: int = 1) -> np.ndarray:
    """`[N]` bool: has ``melody.txt`` note n a MIDI melody note of its pitch within
    `tolerance` 16ths of its onset + `offset`? (The two quantizations differ by a 16th at
    times.)"""
    keys = midi_onsets.astype(np.int64) * 128 + midi_pitches
    wanted = (melody[:, 0].astype(np.int64) + offset) * 128 + melody[:, 2]
    hit = np.zeros(len(melody), dtype=bool)
    for d in range(-tolerance, tolerance + 1):
        hit |= np.isin(wanted + d * 128, keys)
    return hit


def align_form(melody: np.ndarray, midi_onsets: np.ndarray, midi_pitches: np.ndarray,
               bar_16ths: int = 16) -> FormAlignment:
    """Align ``melody.txt`` notes `[N, 3]` with the MIDI melody (onsets `[M]` in 16ths from
    beat 0, pitches `[M]`): the best offset, the share of notes it matches, and the worst
    share over windows of `WINDOW_BARS` bars (of `bar_16ths`) with `MIN_WINDOW_NOTES` notes or
    more, which falls where the two timelines part inside the song."""
    if len(melody) == 0 or len(midi_onsets) == 0:
        return FormAlignment(0, 0.0, 0.0, 0)
    offset = best_offset(melody, midi_onsets, midi_pitches)
    hit = matched_notes(melody, midi_onsets, midi_pitches, offset)
    window = melody[:, 0] // (bar_16ths * WINDOW_BARS)
    worst, worst_bar = 1.0, 0
    for w in np.unique(window):
        inside = window == w
        if inside.sum() >= MIN_WINDOW_NOTES and hit[inside].mean() < worst:
            worst, worst_bar = float(hit[inside].mean()), int(w) * WINDOW_BARS
    return FormAlignment(offset, float(hit.mean()), worst, worst_bar)


def beats_per_bar_of(half_flags: np.ndarray) -> int:
    """3 or 4: the meter of a beat file, whose first flag column marks every 3 beats in triple
    meter and every 2 otherwise (`read_beats`)."""
    flagged = np.flatnonzero(half_flags)
    return 3 if len(flagged) > 1 and int(np.median(np.diff(flagged))) == 3 else 4


def _chord_meter(chord_beats: int, form_bars: int, beats_per_bar: int) -> int | None:
    """The other meter (3 or 4 beats a bar) when the chord lengths fill the form's bars of it
    within `MAX_METER_ERROR` and better than bars of `beats_per_bar`, else None."""
    other = 7 - beats_per_bar
    error = abs(chord_beats - other * form_bars)
    if error <= MAX_METER_ERROR * other * form_bars and error < abs(
        chord_beats - beats_per_bar * form_bars
    ):
        return other
    return None


# --- the song ------------------------------------------------------------------------------


def _read_midi(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Notes per track name: ``time`` and ``end`` in seconds, ``pitch``, ``velocity``."""
    import symusic

    if not path.is_file():
        raise Pop909Error(f"missing {path.parent.name}/{path.name}")
    try:
        score = symusic.Score(str(path)).to("second")
    except Exception as err:  # symusic raises RuntimeError/ValueError on broken files
        raise MusicFileError(f"not a readable MIDI file: {path.name} ({err})") from None
    tracks: dict[str, dict[str, np.ndarray]] = {}
    for track in score.tracks:
        arrays = track.notes.numpy()
        time = arrays["time"].astype(np.float64)
        notes = {
            "time": time,
            "end": time + arrays["duration"].astype(np.float64),
            "pitch": arrays["pitch"].astype(np.int64),
            "velocity": arrays["velocity"].astype(np.int64),
        }
        name = track.name.strip().upper()
        if name in tracks:  # a name twice: one track
            notes = {k: np.concatenate([tracks[name][k], v]) for k, v in notes.items()}
        tracks[name] = notes
    return tracks


def _quantize(notes: dict[str, np.ndarray], beat_times: np.ndarray, steps_per_beat: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Onset and end steps `[N]` int64 from beat 0 on a grid of `steps_per_beat`."""
    start = np.rint(seconds_to_beats(notes["time"], beat_times) * steps_per_beat).astype(np.int64)
    end = np.rint(seconds_to_beats(notes["end"], beat_times) * steps_per_beat).astype(np.int64)
    return start, np.maximum(end, start + 1)


@dataclass(frozen=True)
class Pop909Song:
    """A read song and what was measured on the way (for reports)."""

    song: Song
    alignment: FormAlignment
    on_downbeat: bool  # the form starts on a bar line of beat_midi.txt (else on another beat)
    lead_in_beats: int  # beats of beat_midi.txt before the form's first bar
    dropped_notes: int  # MIDI notes before the form's first bar or after its last
    chord_fit: float  # share of accompaniment onsets on a tone of the chord above them


def read_pop909(folder: str | Path, steps_per_quarter: int = 4) -> Song:
    """The POP909 song in `folder` (``.../NNN``) with its human plan; see the module doc.

    Raises `Pop909Error` (a ValueError) with a one-line reason when a file is missing or the
    annotation does not fit the music, `MusicFileError` when the MIDI cannot be read.
    """
    return read_pop909_measured(folder, steps_per_quarter).song


def read_pop909_measured(folder: str | Path, steps_per_quarter: int = 4) -> Pop909Song:
    """`read_pop909` with the alignment and what was dropped, for the corpus report.

    A skip reason starts with its kind: ``missing``/``cannot read``/a file name (a broken
    file), ``meter``, ``alignment``, ``off the beat``, ``chords``, ``too long``.
    """
    from structdiff.data.roles import load_role_map

    if steps_per_quarter < 1:
        raise ValueError(f"steps_per_quarter must be >= 1, got {steps_per_quarter}")
    folder = Path(folder)
    song_id = folder.name
    if not folder.is_dir():
        raise Pop909Error(f"missing song folder {folder}")
    try:
        sections = parse_form(_read_text(folder / "human_label1.txt"))
    except Pop909Error:
        raise
    except ValueError as err:
        raise Pop909Error(f"human_label1.txt: {err}") from None
    form_bars = sum(s.n_bars for s in sections)
    chord_lines = read_chord_lines(folder / "finalized_chord.txt")
    melody = read_melody_txt(folder / "melody.txt")
    key = read_key(folder / "analyzed_key.txt")
    tempo = _read_tempo(folder / "tempo.txt")
    beat_times, half_flags, bar_flags = read_beats(folder / "beat_midi.txt")
    tracks_in = _read_midi(folder / f"{song_id}.mid")
    unknown = sorted(set(tracks_in) - set(TRACK_ROLES))
    if unknown:
        raise Pop909Error(f"{song_id}.mid: unexpected track {unknown[0]!r} "
                          "(expected MELODY, BRIDGE, PIANO)")
    if "MELODY" not in tracks_in or len(tracks_in["MELODY"]["time"]) == 0 or len(melody) == 0:
        raise Pop909Error(f"{song_id}.mid: no MELODY notes to align melody.txt with")

    beats_per_bar = beats_per_bar_of(half_flags)
    triple = beats_per_bar == 3
    chord_beats = sum(c.beats for c in chord_lines)
    other = _chord_meter(chord_beats, form_bars, beats_per_bar)
    if other is not None:
        raise Pop909Error(
            f"meter: the chords fill {form_bars} bars of {other} beats, beat_midi.txt counts "
            f"bars of {beats_per_bar}"
        )
    bar_lines = half_flags if triple else bar_flags

    onsets, _ = _quantize(tracks_in["MELODY"], beat_times, MELODY_GRID)
    alignment = align_form(melody, onsets, tracks_in["MELODY"]["pitch"],
                           beats_per_bar * MELODY_GRID)
    if alignment.score < MIN_MATCH or alignment.worst_window < MIN_WINDOW:
        raise Pop909Error(
            f"alignment: melody.txt matches the MIDI melody in {alignment.score:.0%} of its "
            f"notes at best, {alignment.worst_window:.0%} in bars {alignment.worst_bar + 1}-"
            f"{alignment.worst_bar + WINDOW_BARS} (need {MIN_MATCH:.0%} and {MIN_WINDOW:.0%} "
            "in every 8 bars)"
        )
    if alignment.beat is None:
        raise Pop909Error(
            f"off the beat: melody.txt matches {alignment.offset % MELODY_GRID} 16th(s) after a "
            "beat of beat_midi.txt, so the form's first bar is on no beat"
        )
    if chord_beats < MIN_CHORD_COVER * beats_per_bar * form_bars:
        raise Pop909Error(
            f"chords: finalized_chord.txt lasts {chord_beats} beats, the form "
            f"{beats_per_bar * form_bars} ({form_bars} bars)"
        )
    first_beat = alignment.beat
    on_downbeat = 0 <= first_beat < len(bar_lines) and bool(bar_lines[first_beat])

    bar_steps = beats_per_bar * steps_per_quarter
    end = form_bars * bar_steps
    first_step = first_beat * steps_per_quarter
    grids = {name: _quantize(n, beat_times, steps_per_quarter) for name, n in tracks_in.items()}
    music_end = max(int(stop.max(initial=0)) for _, stop in grids.values()) - first_step
    if music_end <= end - bar_steps:
        raise Pop909Error(
            f"too long: the form has {form_bars} bars, the music from its first bar "
            f"{music_end / bar_steps:.1f}"
        )

    programs = load_role_map(ROLE_MAP).programs
    tracks, dropped = [], 0
    for name, role in TRACK_ROLES.items():
        if name not in tracks_in:
            continue
        start, stop = grids[name][0] - first_step, grids[name][1] - first_step
        keep = (start >= 0) & (start < end)
        dropped += int((~keep).sum())
        notes = np.stack([
            start[keep],
            np.minimum(stop[keep], end) - start[keep],
            tracks_in[name]["pitch"][keep],
            tracks_in[name]["velocity"][keep],
        ], axis=1)
        if len(notes):
            tracks.append(Track(name, programs[role], False, sort_notes(notes), role=role))

    chords = _plan_chords(chord_lines, steps_per_quarter, end)
    accompaniment = [t.notes for t in tracks if t.role != "melody"]
    fit, windows = chord_fit(
        np.concatenate(accompaniment) if accompaniment else np.zeros((0, 4), np.int64),
        chords, bar_steps,
    )
    low = _low_run(windows, MIN_CHORD_FIT, MAX_LOW_FIT_WINDOWS)
    if fit < MIN_CHORD_FIT or low is not None:
        where = "" if low is None else (
            f", below {MIN_CHORD_FIT:.0%} in bars {low * WINDOW_BARS + 1}-"
            f"{(low + MAX_LOW_FIT_WINDOWS) * WINDOW_BARS}"
        )
        raise Pop909Error(
            f"chords: {fit:.0%} of the accompaniment's notes are tones of the chord above them"
            f"{where} (finalized_chord.txt does not follow the music)"
        )

    time_signatures = [TimeSignature(0, beats_per_bar, 4)]
    plan = Plan(
        key=key,
        chords=chords,
        sections=sections,
        phrase_ends=[s.start_bar + s.n_bars - 1 for s in sections],
    )
    song = Song(
        tracks=tracks,
        bars=bar_grid(time_signatures, end, steps_per_quarter),
        end=end,
        time_signatures=time_signatures,
        tempos=[Tempo(0, tempo)],
        key_signature=key,
        steps_per_quarter=steps_per_quarter,
        source=f"pop909/{song_id}",
        plan=plan,
        role_map=ROLE_MAP,
        style=STYLE,
    )
    return Pop909Song(song, alignment, on_downbeat, first_beat, dropped, fit)


def _plan_chords(lines: Sequence[ChordLine], steps_per_quarter: int, end: int) -> list[Chord]:
    """Chords from ``finalized_chord.txt`` lines on the song's grid from step 0, cut at `end`,
    with equal neighbours (after the quality mapping) merged."""
    chords: list[Chord] = []
    onset = 0
    for line in lines:
        if onset >= end:
            break
        if line.beats <= 0:
            continue
        try:
            root, quality, bass = harte_chord(line.name, line.bass)
        except ValueError as err:
            raise Pop909Error(f"finalized_chord.txt: {err}") from None
        duration = min(line.beats * steps_per_quarter, end - onset)
        last = chords[-1] if chords else None
        if last is not None and (last.root, last.quality, last.bass) == (root, quality, bass):
            chords[-1] = Chord(last.onset, last.duration + duration, root, quality, bass)
        else:
            chords.append(Chord(onset, duration, root, quality, bass))
        onset += duration
    return chords


def chord_fit(notes: np.ndarray, chords: Sequence[Chord], bar_steps: int
              ) -> tuple[float, np.ndarray]:
    """How well `chords` follow the notes `[N, 4]`: the share of note onsets under a chord
    (not ``N``) that are its chord tones, over the song and per window of `WINDOW_BARS` bars
    of `bar_steps` (`[W]` float64, nan where a window has fewer than `MIN_FIT_NOTES` notes)."""
    from structdiff.analysis.chords import CHORD_TONES, QUALITIES

    chords = [c for c in chords if c.quality != "N"]
    if len(notes) == 0 or not chords:
        return 1.0, np.zeros(0)
    onset = np.array([c.onset for c in chords])
    stop = np.array([c.onset + c.duration for c in chords])
    quality = np.array([QUALITIES.index(c.quality) for c in chords])
    root = np.array([c.root for c in chords])
    k = np.searchsorted(onset, notes[:, START], side="right") - 1
    under = (k >= 0) & (notes[:, START] < stop[np.maximum(k, 0)])
    k = k[under]
    tone = CHORD_TONES[quality[k], root[k], notes[under, PITCH] % 12]
    if len(tone) == 0:
        return 1.0, np.zeros(0)
    window = notes[under, START] // (bar_steps * WINDOW_BARS)
    counts = np.bincount(window)
    shares = np.bincount(window, weights=tone) / np.maximum(counts, 1)
    shares[counts < MIN_FIT_NOTES] = np.nan
    return float(tone.mean()), shares


def _low_run(values: np.ndarray, threshold: float, length: int) -> int | None:
    """Index of the first of `length` consecutive `values` below `threshold` (nan breaks no
    run and counts as none), or None."""
    run = 0
    for i, v in enumerate(values):
        if np.isnan(v):
            continue
        run = run + 1 if v < threshold else 0
        if run == length:
            return i - length + 1
    return None


def _read_tempo(path: Path) -> float:
    text = _read_text(path).strip()
    try:
        qpm = float(text.split()[0])
    except (ValueError, IndexError):
        raise Pop909Error(f"{path.name}: bad tempo {text[:20]!r} (expected bpm)") from None
    if not 10 <= qpm <= 400:
        raise Pop909Error(f"{path.name}: tempo {qpm:g} bpm out of range")
    return qpm


# --- corpus adapter ------------------------------------------------------------------------


def song_folders(root: str | Path) -> list[Path]:
    """The ``NNN/`` folders of `root` that hold ``NNN.mid``, sorted."""
    root = Path(root)
    return sorted(
        p for p in root.iterdir()
        if p.is_dir() and _SONG_DIR.match(p.name) and (p / f"{p.name}.mid").is_file()
    )


def read_splits(folder: str | Path = SPLIT_DIR) -> dict[str, str]:
    """id -> split from the committed split files (empty when there are none)."""
    from structdiff.data.corpus import SPLITS, read_split

    return {i: split for split in SPLITS if (Path(folder) / f"{split}.txt").is_file()
            for i in read_split(split, folder)}


def list_entries(root: Path) -> list[CorpusEntry]:
    """One `CorpusEntry` per song folder of the POP909 folder `root`: id ``pop909/NNN``, the
    split from the committed split files (else `split_of(id)`), style ``pop``."""
    from structdiff.data.corpus import split_of
    from structdiff.data.prepare import CorpusEntry, PrepareError

    root = Path(root)
    folders = song_folders(root) if root.is_dir() else []
    if not folders:
        raise PrepareError(f"not the POP909 folder (no NNN/NNN.mid song folders): {root}")
    committed = read_splits()
    entries = []
    for folder in folders:
        song_id = f"pop909/{folder.name}"
        entries.append(CorpusEntry(song_id, str(folder), STYLE,
                                   committed.get(song_id) or split_of(song_id)))
    return entries


def read_entry(entry: CorpusEntry, steps_per_quarter: int = 4, seed: int = 0) -> Song:
    """The Song of one `CorpusEntry` (its split set); `seed` is unused."""
    song = read_pop909(entry.path, steps_per_quarter)
    song.split = entry.split
    return song


def write_splits(out_dir: str | Path = SPLIT_DIR, n_songs: int = 909) -> dict[str, int]:
    """Write ``train.txt``, ``validation.txt``, ``test.txt`` (ids ``pop909/001``...
    ``pop909/909`` by `split_of`, one a line, sorted); counts per split."""
    from structdiff.data.corpus import write_split_files

    return write_split_files([f"pop909/{i:03d}" for i in range(1, n_songs + 1)], out_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="POP909 split files")
    parser.add_argument("--write-splits", action="store_true", help="write the split files")
    parser.add_argument("--out", default=str(SPLIT_DIR), help="folder for the split files")
    args = parser.parse_args(argv)
    if args.write_splits:
        counts = write_splits(args.out)
        print(f"wrote splits to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
