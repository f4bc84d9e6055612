"""The plan as a tensor: one categorical feature vector per bar, for the section-level planner.

Every bar `[N_FEATURES]` is a concatenation of one-hot groups (`PLAN_LAYOUT`):

- ``label``: the bar's section label. Letter labels are numbered by first appearance in the
  song (the first letter label met is class 0, the next new one class 1, ...), so ``B8 A8 B8``
  and ``A8 B8 A8`` are the same form; a form's letters come back as A, B, C... (or as the
  names given to `decode_plan`). Classes `0..MAX_LABELS - 1` are letter labels, then the two
  special labels ``i`` (intro) and ``o`` (outro) that users may write in a form. A song with
  more than `MAX_LABELS` distinct letter labels puts all the later ones in the last letter
  class (they decode as one label; section starts still keep their boundaries).
- ``section_start``: 1 on the first bar of a section (two sections in a row may share a
  label, e.g. ``A4 A4``).
- ``phrase_end``: 1 on a bar on which a phrase ends.
- for each of `MAX_SLOTS` chord slots ``root{s}`` (12, relative to the key's tonic),
  ``quality{s}`` (11: `QUALITIES`, N last) and ``bass{s}`` (12, relative to the tonic).

A chord slot is a beat of the bar (a 4/4 bar uses 4 slots, 3/4 three, 6/8 two; a pickup
counts its beats back from its end), exactly the candidates chord analysis chooses between,
so analyzed plans round-trip exactly. A bar of more than `MAX_SLOTS` beats (e.g. 12/4) groups
its beats evenly into `MAX_SLOTS` slots. Unused slots hold quality N with root and bass 0 and
are marked in `slot_valid` `[L, MAX_SLOTS]`, a condition that is not diffused. Each slot holds
the chord sounding at its start, or — when a chord begins inside the slot, off the beat grid —
the chord that begins there last (its onset snaps back to the slot's start); a slot that no
chord covers is N. N chords are root 0, bass 0, whatever the key.

Without a key (`key=None`) roots and basses are relative to C.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from structdiff.analysis.chords import CHORD_TONES, QUALITIES
from structdiff.data.song import (
    Chord,
    Key,
    Plan,
    Section,
    Song,
    TimeSignature,
    bar_grid,
    section_labels,
)

MAX_LABELS = 26  # letter label classes: single letters A..Z cover every analyzed corpus song
MAX_SLOTS = 8  # chord slots per bar: one per beat (12/8 uses 4, 7/4 seven)
SPECIAL_LABELS = ("i", "o")  # intro and outro: their own classes after the letters

N_QUALITIES = len(QUALITIES)
N_QUALITY = QUALITIES.index("N")


@dataclass(frozen=True)
class FeatureGroup:
    """One categorical group of the per-bar feature vector: features `[offset, offset + size)`."""

    name: str
    offset: int
    size: int

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.size)


def _layout() -> tuple[FeatureGroup, ...]:
    sizes = [("label", MAX_LABELS + len(SPECIAL_LABELS)), ("section_start", 2), ("phrase_end", 2)]
    for s in range(MAX_SLOTS):
        sizes += [(f"root{s}", 12), (f"quality{s}", N_QUALITIES), (f"bass{s}", 12)]
    groups, offset = [], 0
    for name, size in sizes:
        groups.append(FeatureGroup(name, offset, size))
        offset += size
    return tuple(groups)


PLAN_LAYOUT: tuple[FeatureGroup, ...] = _layout()
N_FEATURES = PLAN_LAYOUT[-1].offset + PLAN_LAYOUT[-1].size
SLOT_OFFSET = PLAN_LAYOUT[3].offset  # where slot 0's root group starts
SLOT_FEATURES = 12 + N_QUALITIES + 12  # root, quality, bass of one slot
_GROUPS = {g.name: g for g in PLAN_LAYOUT}


def group_slices() -> dict[str, slice]:
    """Feature slice of every group, by name, in layout order (for per-group cross-entropy)."""
    return {g.name: g.slice for g in PLAN_LAYOUT}


def group_index() -> np.ndarray:
    """Index `[N_FEATURES]` of the group (in `PLAN_LAYOUT`) each feature belongs to."""
    return np.repeat(np.arange(len(PLAN_LAYOUT)), [g.size for g in PLAN_LAYOUT])


def chord_group_names(kind: str) -> list[str]:
    """Names of the `kind` ("root", "quality" or "bass") group of every slot, slot order."""
    return [f"{kind}{s}" for s in range(MAX_SLOTS)]


# --- the grid: where bars and slots lie in time ------------------------------------------------


@dataclass(frozen=True, eq=False)
class PlanGrid:
    """Bars and chord slots of a song in steps: what decoding a plan tensor needs besides it."""

    bars: np.ndarray  # [L] start step of each bar
    bar_ends: np.ndarray  # [L] end step of each bar
    slot_starts: np.ndarray  # [L, MAX_SLOTS] start step of each slot; unused slots: the bar end
    slot_valid: np.ndarray  # [L, MAX_SLOTS] bool, which slots the bar uses (a prefix)
    full_bar_steps: np.ndarray  # [L] length of a full bar in the bar's meter
    steps_per_quarter: int = 4

    @property
    def n_bars(self) -> int:
        return len(self.bars)

    @property
    def end(self) -> int:
        return int(self.bar_ends[-1]) if self.n_bars else 0

    @property
    def n_beats(self) -> np.ndarray:
        """Used slots `[L]` per bar: its beats (at most `MAX_SLOTS`)."""
        return self.slot_valid.sum(axis=1)

    def flat_slots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Used slots in time order: their bar `[S]`, their slot `[S]` and bounds `[S + 1]`
        in steps (slot k spans `[bounds[k], bounds[k + 1])`, the last one up to the end)."""
        bar_idx, slot_idx = np.nonzero(self.slot_valid)
        starts = self.slot_starts[bar_idx, slot_idx]
        bounds = np.append(starts, self.end).astype(np.int64)
        return bar_idx, slot_idx, bounds

    @classmethod
    def from_beats(
        cls,
        bars: Sequence[int] | np.ndarray,
        bar_ends: Sequence[int] | np.ndarray,
        beat_starts_per_bar: Sequence[Sequence[int]],
        full_bar_steps: Sequence[int] | np.ndarray | None = None,
        steps_per_quarter: int = 4,
    ) -> PlanGrid:
        """A grid from bar starts `[L]`, bar ends `[L]` and each bar's beat start steps.

        Each bar's beats must begin at the bar start and increase within the bar (a bar of zero
        length has none). More than `MAX_SLOTS` beats are grouped evenly into `MAX_SLOTS`
        slots (the first beat of each group starts the slot). `full_bar_steps` (default: each
        bar's own length) tells a pickup or a shortened bar from a full one.
        """
        bars = np.asarray(bars, dtype=np.int64).reshape(-1)
        bar_ends = np.asarray(bar_ends, dtype=np.int64).reshape(-1)
        L = len(bars)
        if len(bar_ends) != L or len(beat_starts_per_bar) != L:
            raise ValueError(
                f"bars ({L}), bar_ends ({len(bar_ends)}) and beat_starts_per_bar "
                f"({len(beat_starts_per_bar)}) must have the same length"
            )
        if L and (np.any(bar_ends < bars) or np.any(bars[1:] != bar_ends[:-1])):
            raise ValueError("bars must follow each other: bar_ends[i] == bars[i + 1]")
        starts = np.repeat(bar_ends[:, None], MAX_SLOTS, axis=1)
        valid = np.zeros((L, MAX_SLOTS), dtype=bool)
        for i, beats in enumerate(beat_starts_per_bar):
            beats = [int(b) for b in beats]
            if bar_ends[i] == bars[i]:
                continue
            ok = beats and beats[0] == bars[i] and beats[-1] < bar_ends[i]
            if not ok or any(b >= c for b, c in zip(beats, beats[1:])):
                raise ValueError(
                    f"bar {i} [{bars[i]}, {bar_ends[i]}): beats must start at the bar start and "
                    f"increase inside the bar, got {beats}"
                )
            if len(beats) > MAX_SLOTS:
                beats = [beats[k * len(beats) // MAX_SLOTS] for k in range(MAX_SLOTS)]
            starts[i, : len(beats)] = beats
            valid[i, : len(beats)] = True
        full = bar_ends - bars if full_bar_steps is None else np.asarray(full_bar_steps)
        return cls(bars, bar_ends, starts, valid, full.astype(np.int64), steps_per_quarter)

    @classmethod
    def from_song(cls, song: Song) -> PlanGrid:
        """The grid of a song: its bars, one slot per beat (`Song.beat_steps`); a pickup bar's
        beats are counted back from its end, as chord analysis does."""
        spq = song.steps_per_quarter
        beats, full = [], []
        for i, (start, end) in enumerate(zip(song.bars.tolist(), song.bar_ends.tolist())):
            beat = song.beat_steps(start)
            full_steps = song.time_signature_at(start).bar_steps(spq)
            if end <= start:
                edges = []
            elif i == 0 and end - start < full_steps:
                edges = [start, *range(end - beat, start, -beat)[::-1]]
            else:
                edges = list(range(start, end, beat))
            beats.append(edges)
            full.append(full_steps)
        return cls.from_beats(song.bars, song.bar_ends, beats, full, spq)


def uniform_grid(
    n_bars: int, numerator: int = 4, denominator: int = 4, steps_per_quarter: int = 4
) -> PlanGrid:
    """The grid of a song that does not exist yet: `n_bars` full bars of one meter."""
    if n_bars < 1:
        raise ValueError(f"bars must be >= 1, got {n_bars}")
    if numerator < 1 or denominator < 1 or denominator & (denominator - 1):
        raise ValueError(f"bad meter {numerator}/{denominator} (e.g. 4/4, 3/4, 6/8)")
    if steps_per_quarter < 1:
        raise ValueError(f"steps_per_quarter must be >= 1, got {steps_per_quarter}")
    ts = TimeSignature(0, numerator, denominator)
    end = n_bars * ts.bar_steps(steps_per_quarter)
    bars = bar_grid([ts], end, steps_per_quarter)
    return PlanGrid.from_song(Song([], bars, end, [ts], steps_per_quarter=steps_per_quarter))


# --- per-bar conditions ------------------------------------------------------------------------

CONDITION_NAMES = (
    "beats",  # used slots / MAX_SLOTS
    "partial",  # 1 for a bar shorter than a full bar of its meter (a pickup, a short last bar)
    "position",  # bar index / (L - 1): where in the song the bar lies, 0 to 1
    "hyper4_sin", "hyper4_cos",  # phase in a 4-bar group, counted from the first full bar
    "hyper8_sin", "hyper8_cos",  # phase in an 8-bar group
)


def plan_condition(grid: PlanGrid) -> np.ndarray:
    """Per-bar conditions `[L, len(CONDITION_NAMES)]` float32 for the planner (not diffused).

    Beats and partial bars tell the model which slots exist and where a pickup is; position and
    the 4- and 8-bar phases (hypermeter, from the first full bar so a pickup does not shift it)
    tell it where phrases and sections tend to start and end.
    """
    L = grid.n_bars
    partial = (grid.bar_ends - grid.bars) < grid.full_bar_steps
    first_full = 1 if L and partial[0] else 0
    index = np.arange(L) - first_full
    cond = [
        grid.n_beats / MAX_SLOTS,
        partial.astype(np.float64),
        np.arange(L) / max(L - 1, 1),
    ]
    for period in (4, 8):
        phase = 2 * np.pi * index / period
        cond += [np.sin(phase), np.cos(phase)]
    return np.stack(cond, axis=1).astype(np.float32).reshape(L, len(CONDITION_NAMES))


# --- labels ------------------------------------------------------------------------------------


def letter_labels(sections: Sequence[Section]) -> list[str]:
    """The letter labels of `sections` (not `i`/`o`) in first-appearance order."""
    seen: list[str] = []
    for s in sections:
        if s.label not in SPECIAL_LABELS and s.label not in seen:
            seen.append(s.label)
    return seen


def label_classes(sections: Sequence[Section]) -> dict[str, int]:
    """Class of every label of `sections`: first-appearance order for letters (clamped to
    `MAX_LABELS - 1`), `MAX_LABELS` for `i`, `MAX_LABELS + 1` for `o`."""
    classes = {lab: MAX_LABELS + k for k, lab in enumerate(SPECIAL_LABELS)}
    for k, lab in enumerate(letter_labels(sections)):
        if not lab.isalpha() or not lab.isascii():
            raise ValueError(f"section label must be letters, got {lab!r}")
        classes[lab] = min(k, MAX_LABELS - 1)
    return classes


# --- encode and decode -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PlanTensor:
    x: np.ndarray  # [L, N_FEATURES] float32 one-hot per group
    slot_valid: np.ndarray  # [L, MAX_SLOTS] bool: which chord slots the bar uses (a condition)
    grid: PlanGrid  # where bars and slots lie: decoding needs it
    key: Key | None  # chords are relative to its tonic (C when None)


def one_hot(indices: dict[str, np.ndarray], n_bars: int) -> np.ndarray:
    """One-hot features `[L, N_FEATURES]` float32 from a class index `[L]` per group name.

    Groups left out are all zero.
    """
    x = np.zeros((n_bars, N_FEATURES), dtype=np.float32)
    rows = np.arange(n_bars)
    for name, idx in indices.items():
        group = _GROUPS[name]
        idx = np.asarray(idx, dtype=np.int64)
        if idx.shape != (n_bars,) or (n_bars and (idx.min() < 0 or idx.max() >= group.size)):
            raise ValueError(f"{name}: expected {n_bars} classes in [0, {group.size})")
        x[rows, group.offset + idx] = 1.0
    return x


def chord_classes(chord: tuple[int, str, int], tonic: int) -> tuple[int, int, int]:
    """(root, quality, bass) classes of a chord `(root, quality, bass)` relative to `tonic`."""
    root, quality, bass = chord
    if quality not in QUALITIES:
        raise ValueError(f"unknown chord quality {quality!r} (known: {', '.join(QUALITIES)})")
    if quality == "N":
        return 0, N_QUALITY, 0
    return (root - tonic) % 12, QUALITIES.index(quality), (bass - tonic) % 12


def _slot_chords(chords: Sequence[Chord], grid: PlanGrid) -> np.ndarray:
    """Index `[S]` into `chords` (sorted by onset) of each used slot's chord, -1 for none."""
    _, _, bounds = grid.flat_slots()
    if not chords:
        return np.full(len(bounds) - 1, -1, dtype=np.int64)
    onsets = np.array([c.onset for c in chords], dtype=np.int64)
    ends = onsets + np.array([c.duration for c in chords], dtype=np.int64)
    # the last chord to begin before the slot ends: it sounds at its start or snaps back to it
    idx = np.searchsorted(onsets, bounds[1:], side="left") - 1
    sounding = (idx >= 0) & (ends[np.maximum(idx, 0)] > bounds[:-1])
    return np.where(sounding, idx, -1)


def encode_plan(plan: Plan, grid: PlanGrid, key: Key | None = None) -> PlanTensor:
    """The plan as one-hot features `[L, N_FEATURES]` on `grid`.

    `key` (default: the plan's key) is the tonic chords are relative to. Sections past the
    grid's bars are cut; bars no section covers continue the previous section (or a section
    ``A`` from bar 0); phrase ends outside the grid are dropped.
    """
    key = key if key is not None else plan.key
    tonic = key.tonic if key is not None else 0
    L = grid.n_bars
    sections = sorted(plan.sections, key=lambda s: s.start_bar)
    classes = label_classes(sections)
    label = np.zeros(L, dtype=np.int64)
    start = np.zeros(L, dtype=np.int64)
    covered = np.zeros(L, dtype=bool)
    for s in sections:
        if s.n_bars < 1 or not 0 <= s.start_bar < L:
            continue
        a, b = s.start_bar, min(s.start_bar + s.n_bars, L)
        label[a:b], start[a], covered[a:b] = classes[s.label], 1, True
    if L:
        start[0] = 1
    for i in np.flatnonzero(~covered[1:]) + 1:
        label[i] = label[i - 1]
    phrase = np.zeros(L, dtype=np.int64)
    phrase[[e for e in plan.phrase_ends if 0 <= e < L]] = 1

    chords = sorted(plan.chords, key=lambda c: c.onset)
    table = np.array(
        [chord_classes((c.root, c.quality, c.bass), tonic) for c in chords] + [(0, N_QUALITY, 0)],
        dtype=np.int64,
    )  # [C + 1, 3]; the last row is N for slots without a chord
    slot_class = np.tile(np.array([0, N_QUALITY, 0]), (L, MAX_SLOTS, 1))  # [L, MAX_SLOTS, 3]
    bar_idx, slot_idx, _ = grid.flat_slots()
    slot_class[bar_idx, slot_idx] = table[_slot_chords(chords, grid)]
    indices = {"label": label, "section_start": start, "phrase_end": phrase}
    for s in range(MAX_SLOTS):
        for k, kind in enumerate(("root", "quality", "bass")):
            indices[f"{kind}{s}"] = slot_class[:, s, k]
    x = one_hot(indices, L)
    return PlanTensor(x, grid.slot_valid.copy(), grid, key)


def encode_song_plan(song: Song, plan: Plan | None = None) -> PlanTensor:
    """`encode_plan` on the song's own grid; `plan` defaults to `song.plan`."""
    plan = plan if plan is not None else song.plan
    if plan is None:
        raise ValueError(f"song {song.source or '(unnamed)'} has no plan: analyze it first")
    return encode_plan(plan, PlanGrid.from_song(song), plan.key)


def chord_tone_bass(slots: np.ndarray, root: np.ndarray, quality: np.ndarray,
                    bass: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, ...]:
    """`(root, quality, bass)` `[L, S]` with every `free` slot whose bass is not a tone of its
    chord (rare in analyzed plans: 0.3% of the chorales' time, 0.06% of POP909's) decoded
    jointly instead: the most likely chord whose bass is one of its tones, the three groups'
    values in `slots` `[L, S, SLOT_FEATURES]` (in [-1, 1], 2p - 1) read as probabilities.
    Ties keep the slot's root and quality and put the root in the bass."""
    root, quality, bass = root.copy(), quality.copy(), bass.copy()
    wrong = free & (quality != N_QUALITY) & ~CHORD_TONES[quality, root, bass]
    valid = CHORD_TONES.transpose(1, 0, 2)  # [root, quality, bass]; none for N
    for i, s in zip(*np.nonzero(wrong)):
        logp = np.log(np.clip((slots[i, s] + 1) / 2, 1e-6, 1.0))
        lr, lq = logp[:12], logp[12 : 12 + N_QUALITIES]
        lb = logp[12 + N_QUALITIES :]
        score = lr[:, None, None] + lq[None, :, None] + lb[None, None, :]
        score = score + 1e-3 * (np.arange(12) == root[i, s])[:, None, None]
        score = score + 1e-3 * (np.arange(N_QUALITIES) == quality[i, s])[None, :, None]
        score = score + 1e-4 * np.eye(12)[:, None, :]  # the root in the bass
        r, q, b = np.unravel_index(np.where(valid, score, -np.inf).argmax(), valid.shape)
        root[i, s], quality[i, s], bass[i, s] = r, q, b
    return root, quality, bass


def decode_plan(
    x: np.ndarray,
    grid: PlanGrid,
    key: Key | None,
    label_names: Sequence[str] | None = None,
    bass_free: np.ndarray | None = None,
) -> Plan:
    """The plan of features or logits `x` `[L, N_FEATURES]` (argmax per group) on `grid`.

    `bass_free` `[L, MAX_SLOTS]` bool (a sampled plan: `x` in [-1, 1]): in these slots a
    chord whose bass is not one of its tones is decoded jointly instead (`chord_tone_bass`);
    slots a user gave keep what they say.

    Chords: each used slot's chord, consecutive equal slots merged, each running to the next
    different one (the last to the grid's end). Sections: a new one where section_start is set
    (always at bar 0), labelled with the most common label of its bars. Letter classes are
    named in order of first appearance: `label_names[k]` for the k-th (e.g.
    `letter_labels(form)` to get a user's own letters back), then the next unused of A, B,
    C...; `i` and `o` stay. `key` passes through.
    """
    x = np.asarray(x)
    L = grid.n_bars
    if x.shape != (L, N_FEATURES):
        raise ValueError(f"x must be [L={L}, N_FEATURES={N_FEATURES}], got {list(x.shape)}")
    arg = {g.name: x[:, g.slice].argmax(axis=1) for g in PLAN_LAYOUT[:3]}
    slots = x[:, SLOT_OFFSET:].reshape(L, MAX_SLOTS, SLOT_FEATURES)
    root = slots[:, :, :12].argmax(axis=2)
    quality = slots[:, :, 12 : 12 + N_QUALITIES].argmax(axis=2)
    bass = slots[:, :, 12 + N_QUALITIES :].argmax(axis=2)
    if bass_free is not None:
        root, quality, bass = chord_tone_bass(slots, root, quality, bass, bass_free)

    tonic = key.tonic if key is not None else 0
    chords: list[Chord] = []
    bar_idx, slot_idx, bounds = grid.flat_slots()
    for k, (i, s) in enumerate(zip(bar_idx.tolist(), slot_idx.tolist())):
        q = QUALITIES[quality[i, s]]
        label = (0, q, 0) if q == "N" else ((root[i, s] + tonic) % 12, q, (bass[i, s] + tonic) % 12)
        length = int(bounds[k + 1] - bounds[k])
        last = chords[-1] if chords else None
        if last is not None and (last.root, last.quality, last.bass) == label:
            chords[-1] = replace(last, duration=last.duration + length)
        else:
            chords.append(Chord(int(bounds[k]), length, int(label[0]), label[1], int(label[2])))

    names: dict[int, str] = {MAX_LABELS + k: lab for k, lab in enumerate(SPECIAL_LABELS)}
    given = list(label_names or [])
    reserved = set(given)
    fresh = (n for n in section_labels() if n not in reserved)
    sections: list[Section] = []
    labels = arg["label"]
    bounds = [0] + [i for i in range(1, L) if arg["section_start"][i] == 1] + [L]
    for a, b in zip(bounds[:-1], bounds[1:]):
        # a sampled plan's labels may flicker bar to bar inside a section whose start bits
        # are consistent: the section takes its most common label (ties: the lowest class)
        label = int(np.bincount(labels[a:b]).argmax())
        if label not in names:
            names[label] = given.pop(0) if given else next(fresh)
        sections.append(Section(a, b - a, names[label]))
    phrase_ends = np.flatnonzero(arg["phrase_end"] == 1).tolist()
    return Plan(key=key, chords=chords, sections=sections, phrase_ends=phrase_ends)
