"""Band-song metrics: drums, bass against the chords, chord tones per part, and novelty.

Pure functions in the manner of MusPy's metrics: a float, `nan` where a metric does not apply
(no drums, no bass, no chords), a `ValueError` naming the argument for bad input.

- `drum_hits_per_bar(song, drum_class)`: hits of one class of the reduced kit
  (`structdiff.data.drums`; `hihat` = closed, pedal and open hi-hat) per bar of the song, over
  every drum track. Hits of one class at one step count once (a kick on 35 and 36 together,
  or doubled on two tracks, is one kick).
- `bass_root_at_changes(song, chords)`: at each chord change, is the bass on the chord's root?
  The bass is the lowest note of the `bass` role sounding at the change, else the first note
  it strikes within the beat that starts there. Changes where the bass plays neither are left
  out (a bass resting through an intro is an arranging choice, not a wrong note).
- `role_chord_tone_ratio(song, role, chords)`: `harmony.chord_tone_ratio` of one role's tracks.
- `longest_copy_bars(song, role, index)`: novelty, the longest run of consecutive bars of a
  role that equals a run of consecutive bars of the same role in one song of a `CopyIndex`
  (built over the training songs). A bar's content is what the role strikes in it (onset from
  the bar line, pitch) plus the pitches held into it from the bar before, and the bar's length.
  Pitched notes are moved to the key of C first (`arrange_tensor.key_shift` of the song's plan
  key), as the arranger sees them in training, so a copy in another key is still a copy; drum
  notes are reduced to their kit class. Durations are left out: the same notes played
  staccato are the same bar. Bars where the role plays nothing never match (a run of rests
  would match every song).

`band_metrics(song, plan)` gathers the per-song ones for `structdiff evaluate`; novelty needs
the training songs, so `evaluation/band_quality.py` computes it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import replace

import numpy as np

from structdiff.analysis.chords import QUALITIES
from structdiff.data.arrange_tensor import key_shift
from structdiff.data.drums import CLASS_OF_KEY, DRUM_CLASSES, HIHAT_CLASSES
from structdiff.data.song import DURATION, PITCH, START, Chord, Plan, Song, sort_notes
from structdiff.metrics.harmony import chord_tone_ratio

DRUM_COUNTS = ("kick", "snare", "hihat")  # the classes `band_metrics` reports hits per bar of
BASS_ROLE = "bass"
_NO_CHORD = "N"
_BAR_BITS = 20  # a CopyIndex position is track << _BAR_BITS | bar


def band_metrics(song: Song, plan: Plan | None = None) -> dict[str, float]:
    """`kick_hits_per_bar`, `snare_hits_per_bar`, `hihat_hits_per_bar`,
    `bass_root_at_changes` (against `plan`'s chords, default the song's plan) and
    `chord_tone_ratio/ROLE` for each pitched role."""
    chords = (plan or song.plan or Plan()).chords
    out = {f"{name}_hits_per_bar": drum_hits_per_bar(song, name) for name in DRUM_COUNTS}
    out["bass_root_at_changes"] = bass_root_at_changes(song, chords)
    for role in pitched_roles(song):
        out[f"chord_tone_ratio/{role}"] = role_chord_tone_ratio(song, role, chords)
    return out


def pitched_roles(song: Song) -> list[str]:
    """Roles with pitched notes, in the order of `song.roles`."""
    return [r for r in song.roles
            if any(t.role == r and not t.is_drum and t.n_notes for t in song.tracks)]


def _drum_classes(name: str) -> tuple[int, ...]:
    if name == "hihat":
        return HIHAT_CLASSES
    if name in DRUM_CLASSES:
        return (DRUM_CLASSES.index(name),)
    raise ValueError(f"unknown drum class {name!r}; choose from hihat, {', '.join(DRUM_CLASSES)}")


def drum_hits_per_bar(song: Song, drum_class: str) -> float:
    """Hits per bar of `drum_class` (a name of `DRUM_CLASSES`, or `hihat` for the closed,
    pedal and open hi-hat) over the song's drum tracks; `nan` without drum notes."""
    classes = _drum_classes(drum_class)
    parts = [t.notes for t in song.tracks if t.is_drum and t.n_notes]
    if not parts or song.n_bars == 0:
        return math.nan
    notes = np.concatenate(parts)
    keys = np.clip(notes[:, PITCH], 0, 127)
    hits = notes[np.isin(CLASS_OF_KEY[keys], classes), START]
    return len(np.unique(hits)) / song.n_bars


def chord_changes(chords: list[Chord]) -> list[Chord]:
    """The chords that start a new harmony: each chord whose root, quality or bass differs
    from the chord sounding just before it (or that follows a gap or `N`); `N` chords left
    out. Sorted by onset."""
    out: list[Chord] = []
    last: Chord | None = None
    for c in sorted(chords, key=lambda c: c.onset):
        if c.quality == _NO_CHORD:
            last = None
            continue
        same = (last is not None and last.onset + last.duration == c.onset
                and (last.root, last.quality, last.bass) == (c.root, c.quality, c.bass))
        if not same:
            out.append(c)
        last = c
    return out


def bass_root_at_changes(song: Song, chords: list[Chord] | None = None) -> float:
    """Share of the chord changes (`chord_changes` of `chords`, default the song's plan's)
    at which the bass plays the chord's root pitch class: the lowest `bass`-role note sounding
    at the change, else the first one struck within the beat after it. Changes where the bass
    plays neither are not counted; `nan` without bass notes or without counted changes."""
    if chords is None:
        chords = song.plan.chords if song.plan is not None else []
    bad = [c for c in chords if c.quality not in QUALITIES or not 0 <= c.root < 12]
    if bad:
        raise ValueError(f"chords: bad chord {bad[0]} (root 0-11, quality of {QUALITIES})")
    parts = [t.notes for t in song.tracks if t.role == BASS_ROLE and not t.is_drum and t.n_notes]
    if not parts:
        return math.nan
    notes = sort_notes(np.concatenate(parts))
    start, end, pitch = notes[:, START], notes[:, START] + notes[:, DURATION], notes[:, PITCH]
    on_root = counted = 0
    for c in chord_changes(chords):
        if not 0 <= c.onset < song.end:
            continue
        sounding = (start <= c.onset) & (end > c.onset)
        if not sounding.any():
            window = (start > c.onset) & (start < c.onset + song.beat_steps(c.onset))
            if not window.any():
                continue
            sounding = window & (start == start[window].min())
        counted += 1
        on_root += int(pitch[sounding].min() % 12 == c.root)
    return on_root / counted if counted else math.nan


def role_chord_tone_ratio(song: Song, role: str, chords: list[Chord]) -> float:
    """`harmony.chord_tone_ratio` of the pitched tracks of `role` alone; `nan` when the role
    has no pitched notes."""
    tracks = [t for t in song.tracks if t.role == role and not t.is_drum]
    if not any(t.n_notes for t in tracks):
        return math.nan
    return chord_tone_ratio(replace(song, tracks=tracks), chords)


def bar_contents(song: Song, role: str) -> list[Hashable | None]:
    """One hashable per bar `[L]` of what `role` plays in it (see the module docstring), or
    None for a bar where it plays nothing. Equal bars, and only those, give equal values."""
    tracks = [t for t in song.tracks if t.role == role and t.n_notes]
    out: list[Hashable | None] = [None] * song.n_bars
    if not tracks:
        return out
    drums = any(t.is_drum for t in tracks)
    notes = np.concatenate([t.notes for t in tracks])
    if drums:
        notes = notes.copy()
        notes[:, PITCH] = CLASS_OF_KEY[np.clip(notes[:, PITCH], 0, 127)]
        notes[:, DURATION] = 1  # a hit, however long the file holds it
    else:
        notes = notes.copy()
        notes[:, PITCH] += key_shift(song.plan.key if song.plan is not None else None)
    notes = sort_notes(notes)
    start, end = notes[:, START], notes[:, START] + notes[:, DURATION]
    bar_ends = song.bar_ends
    for b, lo in enumerate(song.bars.tolist()):
        hi = int(bar_ends[b])
        struck = notes[(start >= lo) & (start < hi)]
        held = notes[(start < lo) & (end > lo), PITCH]
        if not len(struck) and not len(held):
            continue
        offsets = (struck[:, START] - lo).tolist()
        onsets = tuple(sorted(set(zip(offsets, struck[:, PITCH].tolist()))))
        out[b] = (hi - lo, onsets, tuple(sorted(set(held.tolist()))))
    return out


class CopyIndex:
    """Where each bar content (`bar_contents`) occurs in a set of songs, per role, to find the
    longest exact copy of a run of bars. Build it over the training songs:
    `CopyIndex(train_songs)`, or `add` songs one by one."""

    def __init__(self, songs: Iterable[Song] = (), roles: Iterable[str] | None = None):
        self.roles = None if roles is None else frozenset(roles)
        self.n_songs = 0
        self._lists: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        self._arrays: dict[str, dict[int, np.ndarray]] = {}
        for song in songs:
            self.add(song)

    def add(self, song: Song) -> None:
        """Index every role of `song` (those of `roles` when the index was given some)."""
        if song.n_bars >= 1 << _BAR_BITS:
            raise ValueError(f"song: {song.n_bars} bars, more than CopyIndex holds")
        for role in song.roles:
            if self.roles is not None and role not in self.roles:
                continue
            postings = self._lists[role]
            base = self.n_songs << _BAR_BITS
            for b, content in enumerate(bar_contents(song, role)):
                if content is not None:
                    postings[hash(content)].append(base | b)
            self._arrays.pop(role, None)
        self.n_songs += 1

    def _positions(self, role: str) -> dict[int, np.ndarray]:
        if role not in self._arrays:
            lists = self._lists.get(role, {})
            self._arrays[role] = {k: np.asarray(v, dtype=np.int64) for k, v in lists.items()}
        return self._arrays[role]

    def longest_run(self, contents: list[Hashable | None], role: str) -> int:
        """Longest run of consecutive bars of `contents` (`bar_contents` of one song's role)
        equal to consecutive bars of `role` in one indexed song; 0 when no bar occurs."""
        positions = self._positions(role)
        best = 0
        prev_pos = np.zeros(0, dtype=np.int64)
        prev_len = np.zeros(0, dtype=np.int64)
        for content in contents:
            pos = positions.get(hash(content)) if content is not None else None
            if pos is None:
                prev_pos, prev_len = prev_pos[:0], prev_len[:0]
                continue
            # positions are ascending (songs and bars are added in order), so the bar before
            # each position is found by binary search among the previous bar's positions
            i = np.minimum(np.searchsorted(prev_pos, pos - 1), max(len(prev_pos) - 1, 0))
            extends = (prev_pos[i] == pos - 1) if len(prev_pos) else np.zeros(len(pos), bool)
            length = np.where(extends, prev_len[i] + 1 if len(prev_len) else 1, 1)
            best = max(best, int(length.max()))
            prev_pos, prev_len = pos, length
        return best


def longest_copy_bars(song: Song, role: str, index: CopyIndex) -> float:
    """The longest run of consecutive bars of `role` in `song` copied exactly from one song of
    `index`, in bars; `nan` when the role plays nothing in the song."""
    contents = bar_contents(song, role)
    if all(c is None for c in contents):
        return math.nan
    return float(index.longest_run(contents, role))
