"""The Song: one piece of music on a quantized grid, whatever file it came from.

Time is counted in grid *steps* from the start of the file (``steps_per_quarter`` steps per
quarter note, 4 by default: a 16th-note grid). Notes of a track are one int array
``[N, 4]`` with the columns of ``NOTE_COLUMNS`` so that corpora of thousands of songs stay
cheap to load, encode and cache.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

NOTE_COLUMNS = ("start", "duration", "pitch", "velocity")
START, DURATION, PITCH, VELOCITY = range(4)

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


class MusicFileError(ValueError):
    """A file that cannot be read as music: not a music file, empty, truncated, unsupported."""


def empty_notes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.int32)


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """Notes `[N, 4]` sorted by start, then pitch, then duration."""
    if len(notes) == 0:
        return notes.astype(np.int32).reshape(0, 4)
    start, pitch, duration = (notes[:, c].astype(np.int64) for c in (START, PITCH, DURATION))
    if (start.min() >= 0 and start.max() < 2**30 and pitch.min() >= 0 and pitch.max() < 128
            and duration.min() >= 0 and duration.max() < 2**26):
        # one int64 key, the three fields side by side (30 + 7 + 26 bits): the same order as
        # the lexsort below, stable as it is, 3x faster, and no sort at all when in order
        key = (start << 33) | (pitch << 26) | duration
        if (key[1:] >= key[:-1]).all():
            return np.ascontiguousarray(notes, dtype=np.int32)
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((duration, pitch, start))
    return np.ascontiguousarray(notes[order], dtype=np.int32)


@dataclass
class Track:
    name: str
    program: int  # General MIDI program 0-127 (ignored for drums)
    is_drum: bool
    notes: np.ndarray = field(default_factory=empty_notes)  # [N, 4] start, dur, pitch, velocity
    role: str | None = None  # the role slot this track fills under the song's role map

    @property
    def n_notes(self) -> int:
        return len(self.notes)


@dataclass(frozen=True)
class TimeSignature:
    step: int
    numerator: int
    denominator: int

    def bar_steps(self, steps_per_quarter: int) -> int:
        """Length of one full bar in steps (at least 1)."""
        return max(1, round(self.numerator * 4 * steps_per_quarter / self.denominator))


@dataclass(frozen=True)
class Tempo:
    step: int
    qpm: float  # quarter notes per minute


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0-11
    mode: str  # "major" | "minor"

    def __post_init__(self):
        if not 0 <= self.tonic < 12 or self.mode not in ("major", "minor"):
            raise ValueError(f"bad key: tonic {self.tonic}, mode {self.mode!r}")

    @property
    def name(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.tonic]} {self.mode}"


@dataclass(frozen=True, slots=True)  # slots: a song's analysis makes hundreds of them
class Chord:
    onset: int  # step
    duration: int  # steps
    root: int  # pitch class 0-11
    quality: str  # one of structdiff.analysis.chords.QUALITIES
    bass: int  # pitch class 0-11

    def __init__(self, onset: int, duration: int, root: int, quality: str, bass: int) -> None:
        # the frozen dataclass's own __init__ sets each field through object.__setattr__: 1.5 us
        # a chord, 0.2 ms a song in `prepare`; the slots' own setters take a third of that
        set_onset, set_duration, set_root, set_quality, set_bass = _CHORD_SETTERS
        set_onset(self, onset)
        set_duration(self, duration)
        set_root(self, root)
        set_quality(self, quality)
        set_bass(self, bass)

    @property
    def name(self) -> str:
        from structdiff.analysis.chords import chord_name

        return chord_name(self.root, self.quality, self.bass)


_CHORD_SETTERS = tuple(Chord.__dict__[f].__set__
                       for f in ("onset", "duration", "root", "quality", "bass"))


@dataclass(frozen=True)
class Section:
    start_bar: int
    n_bars: int
    label: str


def section_labels() -> Iterator[str]:
    """Section label names in order: A..Z, then AA, AB, ... (letters only, so a form string
    such as `A8 AB4` stays parseable)."""
    n = 0
    while True:
        name, k = "", n
        while True:
            name = string.ascii_uppercase[k % 26] + name
            k = k // 26 - 1
            if k < 0:
                break
        yield name
        n += 1


@dataclass
class Plan:
    """What the planner writes and analysis recovers: key, chords, form and phrases."""

    key: Key | None = None
    chords: list[Chord] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    phrase_ends: list[int] = field(default_factory=list)  # bar indices on which a phrase ends

    def chord_label(self, chord: Chord) -> str:
        """The chord's name spelled in the plan's key (`E/G#` in A major, `Bb` in F major)."""
        from structdiff.analysis.chords import chord_name

        return chord_name(chord.root, chord.quality, chord.bass, self.key)

    @property
    def form(self) -> str:
        """The form string, e.g. ``A8 B8 A8``."""
        return " ".join(f"{s.label}{s.n_bars}" for s in self.sections)


@dataclass
class Song:
    tracks: list[Track]
    bars: np.ndarray  # [L] start step of each bar; bar i spans [bars[i], bars[i+1]) (last: end)
    end: int  # step at which the song ends (>= every note end, >= bars[-1] + 1)
    time_signatures: list[TimeSignature] = field(default_factory=list)
    tempos: list[Tempo] = field(default_factory=list)
    key_signature: Key | None = None  # the key written in the file, if any
    steps_per_quarter: int = 4
    source: str = ""
    fermatas: list[int] = field(default_factory=list)  # steps at which a note under a fermata ends
    plan: Plan | None = None  # given (read from our own MIDI) or analyzed
    role_map: str | None = None
    style: str | None = None  # a corpus's style label, e.g. "chorale"
    split: str | None = None  # "train" | "validation" | "test" when the corpus is split
    grid: str = "file"  # where a MIDI file's beats and bars came from (structdiff.analysis.beats)

    @property
    def n_bars(self) -> int:
        return len(self.bars)

    @property
    def bar_ends(self) -> np.ndarray:
        return np.append(self.bars[1:], self.end)

    @property
    def tempo_qpm(self) -> float:
        return self.tempos[0].qpm if self.tempos else 120.0

    @property
    def roles(self) -> list[str]:
        """Roles filled by at least one track with notes, in role-map order of first appearance."""
        seen: list[str] = []
        for t in self.tracks:
            if t.role and t.n_notes and t.role not in seen:
                seen.append(t.role)
        return seen

    def all_notes(self, include_drums: bool = False, sort: bool = True) -> np.ndarray:
        """All pitched notes `[N, 4]`, sorted (`sort`; else track by track, which is faster)."""
        parts = [t.notes for t in self.tracks if include_drums or not t.is_drum]
        if not parts:
            return empty_notes()
        notes = np.concatenate(parts)
        return sort_notes(notes) if sort else notes

    def bar_of(self, step: int | np.ndarray) -> np.ndarray:
        """Index of the bar that contains `step` (clipped to the song's bars)."""
        # minimum/maximum, not np.clip: the same result, a third of the time on small arrays
        return np.minimum(np.maximum(np.asarray(self.bars).searchsorted(step, side="right") - 1, 0),
                          self.n_bars - 1)

    def time_signature_at(self, step: int) -> TimeSignature:
        current = self.time_signatures[0] if self.time_signatures else TimeSignature(0, 4, 4)
        for ts in self.time_signatures:
            if ts.step <= step:
                current = ts
        return current

    def beat_steps(self, step: int) -> int:
        """Steps per beat at `step`: a quarter in x/4, a dotted quarter in compound x/8."""
        return self._beat_of(self.time_signature_at(step))

    def _beat_of(self, ts: TimeSignature) -> int:
        unit = 4 * self.steps_per_quarter // ts.denominator or 1
        if ts.denominator >= 8 and ts.numerator % 3 == 0 and ts.numerator > 3:
            return 3 * unit
        return unit

    def bar_meters(self) -> tuple[np.ndarray, np.ndarray]:
        """Per bar `[L]`: `beat_steps` and the full bar's steps (`TimeSignature.bar_steps`) of
        the meter at the bar's start, as `time_signature_at` finds it, for all bars at once."""
        tss = self.time_signatures or [TimeSignature(0, 4, 4)]
        steps = [ts.step for ts in tss]
        if all(a <= b for a, b in zip(steps, steps[1:])):
            # the last meter (in list order) starting at or before the bar; before the first
            # meter, the first
            index = np.maximum(np.asarray(steps).searchsorted(self.bars, side="right") - 1, 0)
        else:
            index = np.array([max((i for i, ts in enumerate(tss) if ts.step <= b), default=0)
                              for b in self.bars.tolist()], dtype=np.int64)
        beats = np.array([self._beat_of(ts) for ts in tss], dtype=np.int64)
        full = np.array([ts.bar_steps(self.steps_per_quarter) for ts in tss], dtype=np.int64)
        return beats[index], full[index]

    def qn(self, step: int) -> float:
        return step / self.steps_per_quarter


def bar_grid(
    time_signatures: list[TimeSignature], end: int, steps_per_quarter: int, pickup: int = 0
) -> np.ndarray:
    """Bar start steps covering [0, end): bars follow the meters; a meter change starts a bar.

    `pickup` > 0 makes the first bar an anacrusis of that many steps.
    """
    tss = sorted(time_signatures, key=lambda t: t.step) or [TimeSignature(0, 4, 4)]
    if tss[0].step > 0:
        tss.insert(0, TimeSignature(0, 4, 4))
    if end <= 0:
        return np.zeros(1, dtype=np.int64)  # one bar, at 0
    runs, pos, i = [], 0, 0  # a run of bars per meter (np.arange), not a loop per bar
    while pos < end:
        while i + 1 < len(tss) and tss[i + 1].step <= pos:
            i += 1
        change = tss[i + 1].step if i + 1 < len(tss) else None
        if pos == 0 and pickup > 0:
            runs.append(np.array([0]))
            pos = pickup if change is None or not 0 < change < pickup else change
            continue
        length = tss[i].bar_steps(steps_per_quarter)
        stop = end if change is None or change >= end else change
        runs.append(np.arange(pos, stop, length))
        # the meter's last bar ends at the next change (cut short there), else past the end
        pos = change if change is not None and change < end else int(runs[-1][-1]) + length
    return np.concatenate(runs).astype(np.int64)


def bars_follow_meters(song: Song) -> bool:
    """Whether the song's bars are the ones its meters give from step 0 (`bar_grid`): no
    pickup, no bar cut short but perhaps the last."""
    grid = bar_grid(song.time_signatures, int(song.end), song.steps_per_quarter)
    return grid.tolist() == song.bars.tolist()


def extend_bars(bars: np.ndarray, end: int, bar_steps: int) -> np.ndarray:
    """Append full bars of `bar_steps` until they cover `end` (notes after the last bar line)."""
    bars = list(int(b) for b in bars) or [0]
    while bars[-1] + bar_steps < end:
        bars.append(bars[-1] + bar_steps)
    return np.asarray(bars, dtype=np.int64)


def crop_bars(song: Song, n_bars: int) -> Song:
    """The first `n_bars` whole bars of `song`: notes (cut at the last bar line), plan
    (chords, sections, phrase ends), meters, tempos and fermatas cut with them."""
    from dataclasses import replace

    if n_bars < 1:
        raise ValueError(f"n_bars must be >= 1, got {n_bars}")
    if song.n_bars <= n_bars:
        return song
    end = int(song.bars[n_bars])
    tracks = []
    for t in song.tracks:
        notes = t.notes[t.notes[:, START] < end].copy()
        notes[:, DURATION] = np.minimum(notes[:, DURATION], end - notes[:, START])
        tracks.append(replace(t, notes=notes))
    plan = song.plan
    if plan is not None:
        chords = [replace(c, duration=min(c.duration, end - c.onset))
                  for c in plan.chords if c.onset < end]
        sections = [Section(s.start_bar, min(s.n_bars, n_bars - s.start_bar), s.label)
                    for s in plan.sections if s.start_bar < n_bars]
        plan = Plan(plan.key, chords, sections, [b for b in plan.phrase_ends if b < n_bars])
    return replace(song, tracks=tracks, bars=song.bars[:n_bars].copy(), end=end, plan=plan,
                   time_signatures=[ts for ts in song.time_signatures if ts.step < end],
                   tempos=[tp for tp in song.tempos if tp.step < end],
                   fermatas=[f for f in song.fermatas if f < end])


def drop_bars(song: Song, n: int) -> Song:
    """`song` without its first `n` bars (the other side of `crop_bars`): notes, plan and
    meters moved to start at step 0; one tempo (`tempo_qpm`), no fermatas."""
    from dataclasses import replace

    if n <= 0:
        return song
    cut = int(song.bars[n])
    tracks = []
    for t in song.tracks:
        notes = t.notes[t.notes[:, START] >= cut].copy()
        notes[:, START] -= cut
        tracks.append(replace(t, notes=notes))
    plan = song.plan
    if plan is not None:
        chords = [replace(c, onset=c.onset - cut) for c in plan.chords if c.onset >= cut]
        sections = [Section(max(s.start_bar, n) - n, s.start_bar + s.n_bars - max(s.start_bar, n),
                            s.label) for s in plan.sections if s.start_bar + s.n_bars > n]
        plan = Plan(plan.key, chords, sections, [b - n for b in plan.phrase_ends if b >= n])
    ts = song.time_signature_at(cut)
    return replace(song, tracks=tracks, bars=song.bars[n:] - cut, end=song.end - cut, plan=plan,
                   time_signatures=[replace(ts, step=0)] + [replace(t, step=t.step - cut) for t
                                                            in song.time_signatures
                                                            if t.step > cut],
                   tempos=[Tempo(0, song.tempo_qpm)], fermatas=[])
