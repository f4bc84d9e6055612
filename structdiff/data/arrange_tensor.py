"""What the arranger sees of a plan and of a song: per-step plan arrays and per-token features.

The arranger works on windows of `WINDOW_STEPS` 16th steps (8 bars of 4/4) aligned to bar
lines, one token per track and quarter note (`STEPS_PER_TOKEN` steps). Notes are the per-step
tokens of `structdiff.data.tokens`, transposed so that the key's tonic is C (`key_shift`); the
plan's chords are relative to the tonic already, so the same model serves every key.

Per step, `step_plan` lays the plan out as arrays: the chord (root, quality and bass classes
relative to the tonic), the section (label, first step, position within it, last bar), phrase
ends, bar and beat starts and the section's intensity. `token_features` turns a window of them
into one float vector per token (`PLAN_FEATURES` wide) for the network's plan encoder.

Intensity is a per-section control with three levels from the note density (onsets per quarter
note per playing track, drum hits counted as onsets of the drum track), the cut points being the
terciles of the sections of a model's training corpora (`evaluation/intensity_cuts.py` measures
them): `INTENSITY_CUTS` for the embedded corpus, `BAND_INTENSITY_CUTS` for the band corpora;
each arranger bundle records its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from structdiff.analysis.chords import QUALITIES
from structdiff.data.song import PITCH, START, Key, Plan, Song

WINDOW_STEPS = 128  # steps per arranger window (8 bars of 4/4 at 4 steps per quarter)
STEPS_PER_TOKEN = 4  # one network token per track and quarter note
ROLES = ("soprano", "alto", "tenor", "bass", "quintus")  # the slots of the `satb` role map
INTENSITIES = ("low", "mid", "high")  # index len(INTENSITIES) = unknown
INTENSITY_CUTS = (0.30, 0.44)  # onsets per quarter per playing track between the levels
BAND_INTENSITY_CUTS = (1.63, 2.26)  # the same, measured on the band models' corpora
MAX_WINDOW_LABELS = 8  # section labels numbered by first appearance in a window
N_ROOT = 13  # 12 pitch classes relative to the tonic, then "no chord"
N_QUALITY = len(QUALITIES)  # QUALITIES ends with N

_FEATURE_SIZES = {
    "root": N_ROOT, "quality": N_QUALITY, "bass": N_ROOT,
    "label": MAX_WINDOW_LABELS + 3,  # window letters, intro, outro, none
    "section": 4,  # section starts in the token, position in section, last bar, phrase end
    "bar_start": STEPS_PER_TOKEN, "beat_start": STEPS_PER_TOKEN,
    "intensity": len(INTENSITIES) + 1,
    "pad": 1,
}
PLAN_FEATURES = sum(_FEATURE_SIZES.values())


def feature_slice(name: str) -> slice:
    """Where the feature group `name` lies in a token's plan features."""
    offset = 0
    for key, size in _FEATURE_SIZES.items():
        if key == name:
            return slice(offset, offset + size)
        offset += size
    raise KeyError(f"no plan feature group {name!r} (groups: {', '.join(_FEATURE_SIZES)})")


def window_bars(features: np.ndarray) -> np.ndarray:
    """Bar start steps within a window, read back from its token features `[N, F]`."""
    flags = features[:, feature_slice("bar_start")].reshape(-1) > 0.5
    return np.nonzero(flags)[0]


def key_shift(key: Key | None) -> int:
    """Semitones (-6..5) to add to a song in `key` so that its tonic becomes C."""
    if key is None:
        return 0
    return -(key.tonic if key.tonic <= 6 else key.tonic - 12)


def transpose_song(song: Song, semitones: int) -> Song:
    """The song with every pitched note moved by `semitones` (drums stay)."""
    if semitones == 0:
        return song
    tracks = []
    for t in song.tracks:
        if t.is_drum or not t.n_notes:
            tracks.append(t)
            continue
        notes = t.notes.copy()
        notes[:, PITCH] = np.clip(notes[:, PITCH] + semitones, 0, 127)
        tracks.append(replace(t, notes=notes))
    return replace(song, tracks=tracks)


@dataclass
class StepPlan:
    """The plan of a song laid out per step `[T]` (T = the song's end)."""

    root: np.ndarray  # int, 0..11 relative to the tonic, 12 = no chord
    quality: np.ndarray  # int, index into QUALITIES (N = no chord)
    bass: np.ndarray  # int, 0..11 relative to the tonic, 12 = no chord
    section: np.ndarray  # int, index of the section the step lies in
    labels: list[str]  # label of each section
    section_start: np.ndarray  # bool, first step of a section
    section_pos: np.ndarray  # float, 0 at a section's start .. <1 at its end
    last_bar: np.ndarray  # bool, step lies in the last bar of its section
    phrase_end: np.ndarray  # bool, step lies in a bar on which a phrase ends
    bar_start: np.ndarray  # bool
    beat_start: np.ndarray  # bool
    intensity: np.ndarray  # int, 0..2, 3 = unknown

    @property
    def n_steps(self) -> int:
        return len(self.root)


def note_density(song: Song, start: int, end: int) -> float:
    """Onsets per quarter note per track with notes in [start, end) (a drum track's hits are
    its onsets)."""
    onsets, playing = 0, 0
    for t in song.tracks:
        if not t.n_notes:
            continue
        inside = (t.notes[:, START] >= start) & (t.notes[:, START] < end)
        if inside.any():
            onsets += int(inside.sum())
            playing += 1
    if playing == 0 or end <= start:
        return 0.0
    return onsets / playing / ((end - start) / song.steps_per_quarter)


def intensity_level(density: float, cuts: tuple[float, float] = INTENSITY_CUTS) -> int:
    """The intensity level (index into INTENSITIES) of a note density."""
    return int(np.searchsorted(cuts, density, side="right"))


def step_plan(song: Song, plan: Plan, intensities: list[int] | None = None,
              cuts: tuple[float, float] = INTENSITY_CUTS) -> StepPlan:
    """The plan laid out on the song's steps.

    `intensities` gives a level per section (index into INTENSITIES, or len(INTENSITIES) for
    unknown); by default each section's level is measured from the song's notes with the
    density cut points `cuts` (a song with no notes, such as a plan's empty song, gets unknown).
    """
    T = int(song.end)
    tonic = plan.key.tonic if plan.key else 0
    root = np.full(T, 12, dtype=np.int64)
    quality = np.full(T, QUALITIES.index("N"), dtype=np.int64)
    bass = np.full(T, 12, dtype=np.int64)
    for c in plan.chords:
        lo, hi = max(0, c.onset), min(T, c.onset + c.duration)
        if hi <= lo or c.quality == "N":
            continue
        root[lo:hi] = (c.root - tonic) % 12
        quality[lo:hi] = QUALITIES.index(c.quality)
        bass[lo:hi] = (c.bass - tonic) % 12

    bars, bar_ends = song.bars, song.bar_ends
    sections = plan.sections or []
    section = np.zeros(T, dtype=np.int64)
    section_start = np.zeros(T, dtype=bool)
    section_pos = np.zeros(T, dtype=np.float32)
    last_bar = np.zeros(T, dtype=bool)
    labels = [s.label for s in sections] or ["A"]
    spans = []
    for i, s in enumerate(sections):
        first = min(s.start_bar, song.n_bars - 1)
        last = min(s.start_bar + s.n_bars, song.n_bars) - 1
        if last < first:
            continue
        lo, hi = int(bars[first]), int(bar_ends[last])
        spans.append((i, lo, hi))
        section[lo:hi] = i
        section_start[lo] = True
        section_pos[lo:hi] = (np.arange(hi - lo) / max(hi - lo, 1)).astype(np.float32)
        last_bar[int(bars[last]):hi] = True
    if not spans:
        section_start[0] = True
        section_pos[:] = np.arange(T) / max(T, 1)
        spans = [(0, 0, T)]
    phrase_end = np.zeros(T, dtype=bool)
    for b in plan.phrase_ends:
        if 0 <= b < song.n_bars:
            phrase_end[int(bars[b]):int(bar_ends[b])] = True
    bar_start = np.zeros(T, dtype=bool)
    bar_start[bars[bars < T]] = True
    beat_start = np.zeros(T, dtype=bool)
    for lo, hi in zip(bars.tolist(), bar_ends.tolist()):
        beat_start[lo:min(hi, T):song.beat_steps(lo)] = True

    intensity = np.full(T, len(INTENSITIES), dtype=np.int64)
    has_notes = any(t.n_notes for t in song.tracks)
    for i, lo, hi in spans:
        if intensities is not None:
            level = intensities[i] if i < len(intensities) else len(INTENSITIES)
        elif has_notes:
            level = intensity_level(note_density(song, lo, hi), cuts)
        else:
            level = len(INTENSITIES)
        intensity[lo:hi] = level
    return StepPlan(root, quality, bass, section, labels, section_start, section_pos, last_bar,
                    phrase_end, bar_start, beat_start, intensity)


def _one_hot(index: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((len(index), size), dtype=np.float32)
    out[np.arange(len(index)), np.clip(index, 0, size - 1)] = 1
    return out


def withhold_bass(plan):
    """Plan features (`token_features`, numpy or torch, `[..., PLAN_FEATURES]`) with the
    chords' bass withheld: its group all zeros, which no plan writes (a chord's bass, or "no
    chord", is one-hot). An arranger trained with the bass withheld at random
    (`ArrangerModule(bass_drop=)`) then writes the bass line's inversions itself."""
    plan = plan.clone() if hasattr(plan, "clone") else plan.copy()
    plan[..., feature_slice("bass")] = 0
    return plan


def token_features(sp: StepPlan, start: int, n_steps: int = WINDOW_STEPS,
                   bass: bool = True) -> np.ndarray:
    """Per-token plan features `[n_steps // STEPS_PER_TOKEN, PLAN_FEATURES]` of the window of
    steps [start, start + n_steps); steps past the song's end are padding. Without `bass` the
    chords' bass is withheld (`withhold_bass`)."""
    if n_steps % STEPS_PER_TOKEN:
        raise ValueError(f"window steps must be a multiple of {STEPS_PER_TOKEN}, got {n_steps}")
    N = n_steps // STEPS_PER_TOKEN
    steps = start + np.arange(n_steps)
    real = steps < sp.n_steps
    s = np.minimum(steps, sp.n_steps - 1)
    first = s[::STEPS_PER_TOKEN]  # the step each token starts on

    # section labels numbered by first appearance in the window; intro and outro kept apart
    label_ids = np.full(N, MAX_WINDOW_LABELS + 2, dtype=np.int64)
    order: dict[str, int] = {}
    for n, step in enumerate(first):
        if not real[n * STEPS_PER_TOKEN]:
            continue
        name = sp.labels[sp.section[step]] if sp.section[step] < len(sp.labels) else "A"
        if name == "i":
            label_ids[n] = MAX_WINDOW_LABELS
        elif name == "o":
            label_ids[n] = MAX_WINDOW_LABELS + 1
        else:
            order.setdefault(name, min(len(order), MAX_WINDOW_LABELS - 1))
            label_ids[n] = order[name]

    by_token = lambda a: a[s].reshape(N, STEPS_PER_TOKEN)  # noqa: E731
    real_steps = real.reshape(N, STEPS_PER_TOKEN)
    pad = ~real_steps.all(axis=1)
    section = np.stack([
        by_token(sp.section_start).any(axis=1),
        sp.section_pos[first],
        sp.last_bar[first],
        sp.phrase_end[first],
    ], axis=1).astype(np.float32)
    parts = [
        _one_hot(sp.root[first], N_ROOT),
        _one_hot(sp.quality[first], N_QUALITY),
        _one_hot(sp.bass[first], N_ROOT),
        _one_hot(label_ids, MAX_WINDOW_LABELS + 3),
        section,
        (by_token(sp.bar_start) & real_steps).astype(np.float32),
        (by_token(sp.beat_start) & real_steps).astype(np.float32),
        _one_hot(sp.intensity[first], len(INTENSITIES) + 1),
        pad[:, None].astype(np.float32),
    ]
    out = np.concatenate(parts, axis=1)
    out[pad, : -1] = 0
    return out if bass else withhold_bass(out)


def window_starts(song_bars: np.ndarray, end: int, min_steps: int = 16) -> np.ndarray:
    """Bar starts at which a training window may begin: at least `min_steps` of song after."""
    bars = np.asarray(song_bars)
    return bars[bars <= end - min_steps]
