"""Plan metrics: how a plan's harmony and form look, as pure functions of a plan on its bars.

In the manner of MusPy's metrics: a float (or a normalized histogram) per plan, `nan` where a
metric does not apply (no bars, no chords, no sections, no key), a `ValueError` naming the
argument for bad input. Every function takes the plan and its bar grid: `bars` `[L]` (start step
of each bar), `end` (the step the last bar ends on) and `beat_steps` (steps per beat, one number
or one per bar `[L]`; default a quarter note). `song_grid(song)` gives all three for a song.

Time is counted in *beats of the bar's meter* (`Song.beat_steps`: a quarter in 4/4, a half in
4/2, a dotted quarter in 6/8), which are the plan tensor's chord slots: a bar of 4/2 and a bar
of 4/4 both hold four beats, so plans of different meters compare beat for beat and bar for bar.

Chords are read as the plan's chord list sorted by onset, cut to ``[0, end)``, with neighbouring
chords of the same (root, quality, bass) merged into one (analysis and `decode_plan` both merge
already; merging again makes the metrics independent of how a held chord is split). `N` is "no
chord"; a beat no chord covers counts as `N`.

Histograms (`plan_histograms`), each normalized to sum to 1:

- ``chord_quality`` `[11]` over `QUALITIES` (N last), *duration weighted* (beats): the share of
  the plan's time under each quality, so a chord held for a bar weighs four times a chord of one
  beat, whatever the chord segmentation;
- ``root_motion`` `[12]`: the interval (root of the next chord - root of this one) mod 12 between
  consecutive chords, N chords removed first (``C N G`` is one motion, 7), one count per motion;
  a change of quality or bass over the same root is motion 0;
- ``harmonic_rhythm`` `[5]`: the duration in beats of each non-N chord, one count per chord,
  rounded to whole beats into bins 1, 2, 3, 4 and >4 (under 1.5 beats is 1).

Scalars (`plan_statistics`):

- ``chords_per_bar``: the chord changes per bar, counted as non-N chords per bar (every chord
  onset, the first included: a plan of two chords in every bar scores 2);
- ``repeated_section_bars``: the share of the bars that lie in a section whose label labels more
  than one section (``A8 B8 A8``: 16 / 24);
- ``n_labels``: the number of distinct section labels;
- ``mean_section_bars``: the mean section length in bars;
- ``diatonic_share``: the share of the non-N chord time (beats) under chords whose pitch classes
  all lie in the plan key's scale: the major scale in major, the natural or the harmonic minor
  scale in minor (so V, V7 and vii°7 count in minor); the bass is not looked at;
- ``no_chord_share``: the share of the plan's beats without a chord (N or not covered).

Sets of plans are compared with `compare_histograms` (total variation and Jensen-Shannon
divergence of the pooled histograms) and, for the scalars, `distances.compare_sets`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from structdiff.analysis.chords import QUALITIES, chord_pitch_classes
from structdiff.data.song import Chord, Plan, Song

RHYTHM_BINS = ("1", "2", "3", "4", ">4")  # chord durations in beats
HISTOGRAM_BINS: dict[str, tuple[str, ...]] = {
    "chord_quality": QUALITIES,
    "root_motion": tuple(str(i) for i in range(12)),  # semitones up, mod 12
    "harmonic_rhythm": RHYTHM_BINS,
}
STATISTIC_NAMES = (
    "chords_per_bar",
    "repeated_section_bars",
    "n_labels",
    "mean_section_bars",
    "diatonic_share",
    "no_chord_share",
)

MAJOR_SCALE = frozenset({0, 2, 4, 5, 7, 9, 11})
NATURAL_MINOR_SCALE = frozenset({0, 2, 3, 5, 7, 8, 10})
HARMONIC_MINOR_SCALE = frozenset({0, 2, 3, 5, 7, 8, 11})
SCALES = {"major": (MAJOR_SCALE,), "minor": (NATURAL_MINOR_SCALE, HARMONIC_MINOR_SCALE)}

_N = QUALITIES.index("N")


# --- the grid ----------------------------------------------------------------------------------


def song_grid(song: Song, n_bars: int | None = None) -> dict:
    """Keyword arguments `bars`, `end`, `steps_per_quarter`, `beat_steps` of the metric
    functions for `song` (its first `n_bars` bars when given): ``plan_statistics(plan,
    **song_grid(song))``."""
    n = song.n_bars if n_bars is None else min(int(n_bars), song.n_bars)
    if n < 0:
        raise ValueError(f"n_bars must be >= 0, got {n_bars}")
    bars = np.asarray(song.bars[:n], dtype=np.int64)
    end = int(song.bar_ends[n - 1]) if n else 0
    beat_steps = np.array([song.beat_steps(int(b)) for b in bars], dtype=np.int64)
    return {"bars": bars, "end": end, "steps_per_quarter": song.steps_per_quarter,
            "beat_steps": beat_steps}


def _beat_positions(
    bars: np.ndarray, end: int, steps_per_quarter: int, beat_steps: int | np.ndarray | None
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Checked `bars` `[L]` and `end`, the beat count `[L + 1]` at each bar start and at the
    end, and the steps per beat `[L]` of each bar."""
    bars = np.asarray(bars, dtype=np.int64).reshape(-1)
    end = int(end)
    if steps_per_quarter < 1:
        raise ValueError(f"steps_per_quarter must be >= 1, got {steps_per_quarter}")
    if len(bars) and (np.any(np.diff(bars) < 0) or bars[0] < 0 or end < bars[-1]):
        raise ValueError(
            f"bars must be non-negative and increasing with end >= the last bar start, got "
            f"bars {bars[:3].tolist()}... (L={len(bars)}) and end {end}"
        )
    if beat_steps is None:
        beat_steps = steps_per_quarter
    beats = np.broadcast_to(np.asarray(beat_steps, dtype=np.float64), bars.shape).copy()
    if np.any(beats <= 0):
        raise ValueError(f"beat_steps must be > 0, got {np.unique(beats).tolist()}")
    lengths = np.diff(np.append(bars, end)) / beats if len(bars) else np.zeros(0)
    return bars, end, np.concatenate([[0.0], np.cumsum(lengths)]), beats


def _to_beats(steps: np.ndarray, bars: np.ndarray, cum: np.ndarray, beats: np.ndarray):
    """Beat position of each step `[N]` (steps per beat follow the bar the step lies in)."""
    i = np.clip(np.searchsorted(bars, steps, side="right") - 1, 0, len(bars) - 1)
    return cum[i] + (steps - bars[i]) / beats[i]


def _chords(plan: Plan, end: int) -> list[Chord]:
    """The plan's chords by onset, cut to [0, end), same-label neighbours merged."""
    out: list[Chord] = []
    for c in sorted(plan.chords, key=lambda c: c.onset):
        if c.quality not in QUALITIES:
            raise ValueError(f"unknown chord quality {c.quality!r} (known: {', '.join(QUALITIES)})")
        onset, stop = max(int(c.onset), 0), min(int(c.onset + c.duration), end)
        if stop <= onset:
            continue
        label = (c.root % 12, c.quality, c.bass % 12) if c.quality != "N" else (0, "N", 0)
        last = out[-1] if out else None
        if last is not None and (last.root, last.quality, last.bass) == label \
                and onset <= last.onset + last.duration:
            out[-1] = Chord(last.onset, max(stop, last.onset + last.duration) - last.onset, *label)
        else:
            out.append(Chord(onset, stop - onset, *label))
    return out


def _chord_beats(chords: list[Chord], bars, cum, beats) -> np.ndarray:
    """Duration of each chord in beats `[C]`."""
    if not chords:
        return np.zeros(0)
    onsets = np.array([c.onset for c in chords], dtype=np.int64)
    ends = onsets + np.array([c.duration for c in chords], dtype=np.int64)
    return _to_beats(ends, bars, cum, beats) - _to_beats(onsets, bars, cum, beats)


def _sections(plan: Plan, n_bars: int) -> list[tuple[int, int, str]]:
    """(start, stop, label) of each section cut to bars [0, n_bars), empty ones dropped."""
    out = []
    for s in plan.sections:
        start, stop = max(s.start_bar, 0), min(s.start_bar + s.n_bars, n_bars)
        if stop > start:
            out.append((start, stop, s.label))
    return out


def _normalized(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(counts), math.nan)


# --- per plan ----------------------------------------------------------------------------------


def is_diatonic(root: int, quality: str, key_tonic: int, key_mode: str) -> bool:
    """Whether every pitch class of the chord lies in one scale of the key (major; natural or
    harmonic minor). `N` is not diatonic."""
    if key_mode not in SCALES:
        raise ValueError(f"key_mode must be 'major' or 'minor', got {key_mode!r}")
    pcs = {(p - key_tonic) % 12 for p in chord_pitch_classes(root, quality)}
    return bool(pcs) and any(pcs <= scale for scale in SCALES[key_mode])


def plan_histograms(
    plan: Plan,
    bars: Sequence[int] | np.ndarray,
    end: int,
    steps_per_quarter: int = 4,
    beat_steps: int | np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The plan's normalized histograms ``chord_quality`` `[11]`, ``root_motion`` `[12]` and
    ``harmonic_rhythm`` `[5]` (see the module docstring); all `nan` where nothing is counted
    (no bars or no chords; fewer than two non-N chords for root motion)."""
    bars, end, cum, beats = _beat_positions(bars, end, steps_per_quarter, beat_steps)
    empty = {name: np.full(len(b), math.nan) for name, b in HISTOGRAM_BINS.items()}
    chords = _chords(plan, end) if len(bars) else []
    if not chords:
        return empty
    durations = _chord_beats(chords, bars, cum, beats)
    quality_idx = np.array([QUALITIES.index(c.quality) for c in chords])
    quality = np.bincount(quality_idx, weights=durations, minlength=len(QUALITIES))
    quality[_N] += max(cum[-1] - durations.sum(), 0.0)  # beats no chord covers

    sounding = quality_idx != _N
    roots = np.array([c.root for c in chords])[sounding]
    motion = np.bincount((roots[1:] - roots[:-1]) % 12, minlength=12).astype(np.float64)

    whole = np.floor(durations[sounding] + 0.5).astype(np.int64)
    rhythm_idx = np.clip(whole - 1, 0, len(RHYTHM_BINS) - 1)
    rhythm = np.bincount(rhythm_idx, minlength=len(RHYTHM_BINS)).astype(np.float64)
    return {
        "chord_quality": _normalized(quality),
        "root_motion": _normalized(motion),
        "harmonic_rhythm": _normalized(rhythm),
    }


def plan_statistics(
    plan: Plan,
    bars: Sequence[int] | np.ndarray,
    end: int,
    steps_per_quarter: int = 4,
    beat_steps: int | np.ndarray | None = None,
) -> dict[str, float]:
    """The plan's scalar metrics `STATISTIC_NAMES` (see the module docstring): chord metrics
    `nan` without chords (``diatonic_share`` also without a key or without non-N chords),
    section metrics `nan` without sections, all `nan` without bars."""
    bars, end, cum, beats = _beat_positions(bars, end, steps_per_quarter, beat_steps)
    n_bars = len(bars)
    out = dict.fromkeys(STATISTIC_NAMES, math.nan)
    if n_bars == 0:
        return out

    chords = _chords(plan, end)
    if chords:
        durations = _chord_beats(chords, bars, cum, beats)
        sounding = np.array([c.quality != "N" for c in chords])
        out["chords_per_bar"] = float(sounding.sum() / n_bars)
        total = cum[-1]
        out["no_chord_share"] = float(1 - durations[sounding].sum() / total) if total else math.nan
        if plan.key is not None and durations[sounding].sum() > 0:
            diatonic = np.array([
                is_diatonic(c.root, c.quality, plan.key.tonic, plan.key.mode) for c in chords
            ])
            out["diatonic_share"] = float(
                durations[sounding & diatonic].sum() / durations[sounding].sum()
            )

    sections = _sections(plan, n_bars)
    if sections:
        labels = [lab for _, _, lab in sections]
        repeated = sum(b - a for a, b, lab in sections if labels.count(lab) > 1)
        out["repeated_section_bars"] = repeated / n_bars
        out["n_labels"] = float(len(set(labels)))
        out["mean_section_bars"] = float(np.mean([b - a for a, b, _ in sections]))
    return out


# --- between sets ------------------------------------------------------------------------------


def pool_histograms(histograms: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """The pooled distribution `[K]` of a set of normalized histograms `[N, K]`: their mean, each
    plan weighing the same; rows with `nan` are dropped (all `nan` when none is left)."""
    h = np.asarray(histograms, dtype=np.float64)
    if h.ndim != 2:
        raise ValueError(f"histograms must be [N, K], got shape {h.shape}")
    h = h[np.all(np.isfinite(h), axis=1)]
    if len(h) == 0:
        return np.full(h.shape[1], math.nan)
    return _normalized(h.mean(axis=0))


def _distributions(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"p and q must be 1-D of one length, got {p.shape} and {q.shape}")
    if np.any(p < 0) or np.any(q < 0):
        raise ValueError("p and q must be non-negative")
    return _normalized(p), _normalized(q)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance ½ Σ |p - q| of two distributions `[K]` (normalized here): 0 for
    equal, 1 for disjoint ones; `nan` when either is empty or `nan`."""
    p, q = _distributions(p, q)
    return float(0.5 * np.abs(p - q).sum())


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two distributions `[K]` (normalized here) in bits (log base
    2): 0 for equal, 1 for disjoint ones; `nan` when either is empty or `nan`."""
    p, q = _distributions(p, q)
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
        return math.nan
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.5 * kl(p) + 0.5 * kl(q), 0.0)


def compare_histograms(
    set_a: Sequence[np.ndarray] | np.ndarray, set_b: Sequence[np.ndarray] | np.ndarray
) -> dict[str, float]:
    """Distance between two sets of histograms `[N, K]`, `[M, K]` of one metric: ``tv`` and
    ``js`` (bits) between their pooled distributions (`pool_histograms`), and ``n_a``, ``n_b``,
    the plans each pooled (those without `nan`)."""
    a, b = np.asarray(set_a, dtype=np.float64), np.asarray(set_b, dtype=np.float64)
    pa, pb = pool_histograms(a), pool_histograms(b)
    return {
        "tv": total_variation(pa, pb),
        "js": jensen_shannon(pa, pb),
        "n_a": int(np.all(np.isfinite(a), axis=1).sum()),
        "n_b": int(np.all(np.isfinite(b), axis=1).sum()),
    }
