"""Live sessions: music that follows a game's state, written bar by bar ahead of what plays.

A session starts in a state of a cue sheet (`structdiff.pipeline.cue`) and keeps a look-ahead
buffer of generated bars: a `Composer` asks the planner for the state's plan (made when the
state begins, continued when its bars run out) and the arranger for the notes, with the bars
already played as known context. `set_state`, `set_intensity` and `stinger` may be called from
any thread at any time; a change lands on the next bar, beat or phrase, and the buffered bars
after that point are thrown away and written anew. Transitions are infilling problems for the
same models:

- `cut`: the new state's first bars follow the old ones directly (at the next bar, beat or
  phrase);
- `bridge N`: the new state's first bars are written first, then N bars between the old music
  and them, both sides known, on chords that end on the dominant of the new first chord;
- `crossfade N`: over N bars of the new state, the layers only the old state had leave and
  those only the new one has come in, their velocities ramping.

`events()` plays the session: timed MIDI events (note on/off, program), bar, beat and marker
events, on a real clock (sleeping until each event is due) or a simulated one (as fast as it
can; for tests and for written scores, `structdiff.pipeline.soundtrack`). On the real clock a
producer thread writes ahead while the caller's thread plays; when the next bar is not ready in
time, the last bar is played again (an `underrun` event says so) and the session catches up.
Memory stays flat: only the last `context_bars` played bars are kept.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from structdiff.data.arrange_tensor import INTENSITIES
from structdiff.data.song import (
    DURATION,
    START,
    VELOCITY,
    Chord,
    Key,
    Plan,
    Section,
    Song,
    Tempo,
    TimeSignature,
    Track,
    drop_bars,
    section_labels,
    sort_notes,
)
from structdiff.pipeline.arrange import ArrangerBundle, arrange, repeat_chords
from structdiff.pipeline.cue import CueSheet, State, Transition
from structdiff.pipeline.plan import PlannerBundle, extend_plan, generate_plan

LAYER_ORDER = ("keys", "bass", "melody", "drums", "guitar", "strings")  # first in, last out
PHRASE_BARS = 4  # `at="phrase"` lands on a multiple of this many bars from the state's start
STATE_BARS = 16  # bars the planner writes for a state at a time (live, without a form)
STINGER_PROGRAM = 61  # Brass Section: a stinger's pitched parts stand out from the band
STINGER_CHANNEL = 14
WHEN = ("bar", "beat", "phrase")
URGENT = {"window": 64, "context_steps": 32}  # a bar due soon: 2 bars of 4/4 context
MIN_URGENT_STEPS = 4  # the fewest denoising steps a bar due soon is written with


def intensity_level(x: float) -> int:
    """The arranger's intensity level (index into INTENSITIES) of an intensity in [0, 1]."""
    return min(len(INTENSITIES) - 1, int(x * len(INTENSITIES)))


def intensity_velocity(x: float) -> int:
    """MIDI velocity of an intensity in [0, 1]: 55 at 0.1, 84 at 0.5, 113 at 0.9."""
    return int(round(48 + 72 * x))


def layers_for(layers: tuple[str, ...] | None, intensity: float,
               roles: list[str]) -> tuple[str, ...]:
    """The roles that play: a state's own `layers`, else more of `LAYER_ORDER` the higher the
    intensity (2 of 6 band roles at 0.1, 4 at 0.5, all 6 at 0.9)."""
    if layers:
        return tuple(r for r in roles if r in layers)
    order = [r for r in LAYER_ORDER if r in roles] + [r for r in roles if r not in LAYER_ORDER]
    low = min(2, len(order))
    n = low + int(round(intensity * (len(order) - low)))
    chosen = set(order[: max(low, min(len(order), n))])
    return tuple(r for r in roles if r in chosen)


@dataclass
class BarPlan:
    """One bar of a state's plan: its length, chords (onsets relative to the bar), section."""

    steps: int
    chords: list[Chord]
    label: str
    section_start: bool
    stream: int  # which entry into a state the bar belongs to
    position: int  # the bar's index in its stream's plan


@dataclass
class Bar:
    """One generated bar, ready to play. Note starts are relative to the bar's start (a held
    note may last past its end); `extra` holds stinger tracks, timed the same way."""

    index: int
    plan: BarPlan
    notes: dict[str, np.ndarray]
    state: str
    intensity: float
    tempo: float
    key: Key
    beat_steps: int
    markers: list[tuple[int, str]] = field(default_factory=list)
    extra: list[Track] = field(default_factory=list)
    transition: str | None = None
    underrun: bool = False

    @property
    def steps(self) -> int:
        return self.plan.steps

    @property
    def roles(self) -> list[str]:
        return [r for r, n in self.notes.items() if len(n)]


@dataclass
class BarSpec:
    """What the composer is asked for one new bar."""

    plan: BarPlan
    state: State
    key: Key
    intensity: float
    roles: tuple[str, ...]
    tempo: float
    fade: dict[str, float] = field(default_factory=dict)  # role -> velocity factor
    markers: list[tuple[int, str]] = field(default_factory=list)
    transition: str | None = None


class PlanStream:
    """The plan of one entry into a state: written by the planner when the state begins (its
    form, chords and key fixed where the state fixes them) and continued by it, in new
    sections, whenever its bars run out. Old bars are dropped, so memory stays flat."""

    def __init__(self, planner: PlannerBundle, state: State, style: str | None, key: Key,
                 meter: tuple[int, int], seed: int, steps: int, stream: int,
                 n_bars: int | None = None):
        self.planner, self.state, self.style, self.key = planner, state, style, key
        self.seed, self.steps, self.stream = seed, steps, stream
        self.chord_bias = state.qualities or None
        n = None if state.form else (n_bars or STATE_BARS)
        plan, song = generate_plan(planner, n, style=style, key=key, form=state.form,
                                   chords=state.chords, meter=meter, seed=seed, steps=steps,
                                   chord_bias=self.chord_bias)
        if state.chords is None:
            plan = repeat_chords(song, plan)
        self.song = replace(song, plan=plan)
        self.offset = 0  # stream position of the song's bar 0
        self.pos = 0  # stream position of the next bar to take

    def take(self, n: int) -> list[BarPlan]:
        """The next `n` bars of the plan."""
        while self.pos + n > self.offset + self.song.n_bars:
            self._extend()
        out = [self._bar(p) for p in range(self.pos, self.pos + n)]
        self.pos += n
        return out

    def rewind(self, position: int) -> None:
        """Take again from `position` (bars after it were thrown away)."""
        self.pos = max(self.offset, min(position, self.pos))

    def _extend(self) -> None:
        more = max(PHRASE_BARS, min(STATE_BARS, self.planner.model.cfg.max_bars // 2))
        plan, longer = extend_plan(self.planner, self.song, self.song.plan, more,
                                   style=self.style, seed=self.seed + self.offset
                                   + self.song.n_bars, steps=self.steps,
                                   context_bars=32, chord_bias=self.chord_bias)
        plan = repeat_chords(longer, plan, from_bar=self.song.n_bars)
        self.song = replace(longer, plan=plan)
        drop = self.pos - self.offset - 32
        if drop > 0:
            self.song = drop_bars(self.song, drop)
            self.offset += drop

    def _bar(self, position: int) -> BarPlan:
        i = position - self.offset
        song, plan = self.song, self.song.plan
        lo, hi = int(song.bars[i]), int(song.bar_ends[i])
        chords = bar_chords(song, plan, i)
        section = next((s for s in plan.sections if s.start_bar <= i < s.start_bar + s.n_bars),
                       None)
        label = section.label if section else "A"
        start = section is not None and section.start_bar == i
        return BarPlan(hi - lo, chords, label, start, self.stream, position)


def bar_chords(song: Song, plan: Plan, i: int) -> list[Chord]:
    """The chords of `plan` sounding in bar `i` of `song`, cut to it, onsets relative to it."""
    lo, hi = int(song.bars[i]), int(song.bar_ends[i])
    return [replace(c, onset=max(c.onset, lo) - lo,
                    duration=min(c.onset + c.duration, hi) - max(c.onset, lo))
            for c in plan.chords if c.onset < hi and c.onset + c.duration > lo]


def song_of_bars(bars: list[Bar], meter: tuple[int, int], programs: dict[str, int],
                 steps_per_quarter: int = 4, track_names: dict[str, str] | None = None,
                 ) -> tuple[Song, list[int]]:
    """The bars as one Song (a track per role in `programs`, stinger tracks after them) and
    each section's intensity level. Sections are runs of bars with the same label in the same
    stream; each (stream, label) gets its own letter, so a state never repeats another's."""
    starts = np.cumsum([0] + [b.steps for b in bars]).astype(np.int64)
    names = track_names or {}
    tracks = []
    for role, program in programs.items():
        parts = [b.notes[role] + [s, 0, 0, 0] for b, s in zip(bars, starts) if role in b.notes
                 and len(b.notes[role])]
        notes = sort_notes(np.concatenate(parts)) if parts else np.zeros((0, 4), np.int64)
        tracks.append(Track(names.get(role, role.capitalize()), program, role == "drums",
                            notes, role))
    extra: dict[tuple[str, bool], list[np.ndarray]] = {}
    programs_of: dict[tuple[str, bool], int] = {}
    for b, s in zip(bars, starts):
        for t in b.extra:
            extra.setdefault((t.name, t.is_drum), []).append(t.notes + [s, 0, 0, 0])
            programs_of[(t.name, t.is_drum)] = t.program
    for (name, drum), parts in extra.items():
        tracks.append(Track(name, programs_of[(name, drum)], drum,
                            sort_notes(np.concatenate(parts)), None))
    chords = [replace(c, onset=c.onset + int(s)) for b, s in zip(bars, starts)
              for c in b.plan.chords]
    letters = section_labels()
    letter_of: dict[tuple[int, str], str] = {}
    sections: list[Section] = []
    levels: list[int] = []
    for i, b in enumerate(bars):
        group = (b.plan.stream, b.plan.label)
        if b.plan.label in ("i", "o"):
            letter = b.plan.label
        else:
            if group not in letter_of:
                letter_of[group] = next(letters)
            letter = letter_of[group]
        prev = bars[i - 1] if i else None
        if (prev is None or b.plan.section_start or b.plan.stream != prev.plan.stream
                or b.plan.label != prev.plan.label):
            sections.append(Section(i, 1, letter))
            levels.append(intensity_level(b.intensity))
        else:
            sections[-1] = replace(sections[-1], n_bars=sections[-1].n_bars + 1)
    bar_steps = TimeSignature(0, *meter).bar_steps(steps_per_quarter)
    signatures, tempos = [], []
    for b, s in zip(bars, starts):
        ts = TimeSignature(int(s), *meter)
        if b.steps != bar_steps:  # a bar cut at a beat: its own meter for one bar
            quarters = b.steps / steps_per_quarter
            ts = (TimeSignature(int(s), int(quarters), 4) if quarters == int(quarters)
                  else TimeSignature(int(s), int(round(quarters * 2)), 8))
        if not signatures or (signatures[-1].numerator, signatures[-1].denominator) != (
                ts.numerator, ts.denominator):
            signatures.append(ts)
        if not tempos or tempos[-1].qpm != b.tempo:
            tempos.append(Tempo(int(s), float(b.tempo)))
    key = bars[-1].key if bars else None
    song = Song(tracks, bars=starts[:-1].copy(), end=int(starts[-1]) if bars else 1,
                time_signatures=signatures, tempos=tempos, steps_per_quarter=steps_per_quarter,
                source="structdiff session", plan=Plan(key, chords, sections, []),
                role_map="band" if "drums" in programs else None)
    return song, levels


class Composer:
    """Writes bars: the arranger's notes for bar specs, after (and before) known bars."""

    def __init__(self, planner: PlannerBundle, arranger: ArrangerBundle, cue: CueSheet,
                 programs: dict[str, int], seed: int = 0, steps: int | None = None,
                 harmony: float | None = None, context_bars: int = 8):
        self.planner, self.arranger, self.cue = planner, arranger, cue
        self.programs, self.seed, self.context_bars = programs, seed, context_bars
        meta = arranger.meta
        self.steps = steps or int(meta.get("default_steps", 20))
        self.harmony = float(meta.get("default_harmony", 2.0)) if harmony is None else harmony
        self.seconds = 0.0  # time spent writing bars
        self.n_written = 0

    def style_of(self, state: State) -> str | None:
        style = state.style or self.cue.style
        return style if style in self.arranger.styles else None

    def compose(self, history: list[Bar], specs: list[BarSpec], first_index: int,
                future: list[Bar] = (), urgent: bool = False,
                steps: int | None = None) -> list[Bar]:
        """New bars for `specs`, numbered from `first_index`, after the last `context_bars` of
        `history` and before `future` (both known). `urgent`: in a short window (`URGENT`: two
        bars of 4/4 context), for a bar that is due soon; `steps` overrides the denoising
        steps."""
        started = time.perf_counter()
        context = history[-self.context_bars:]
        blanks = [Bar(first_index + i, s.plan, {}, s.state.name, s.intensity, s.tempo, s.key,
                      0) for i, s in enumerate(specs)]
        song, levels = song_of_bars(context + blanks + list(future), self.cue.meter,
                                    self.programs)
        plan = replace(song.plan, key=specs[0].key)
        song = replace(song, plan=plan)
        roles = [r for r in self.arranger.roles
                 if any(r in s.roles for s in specs) or any(r in b.roles for b in future)]
        lo = int(song.bars[len(context)])
        hi = int(song.bars[len(context) + len(specs)]) if future else None
        notes = arrange(self.arranger, song, plan, roles, known_until=lo, known_from=hi,
                        style=self.style_of(specs[0].state), intensities=levels,
                        seed=self.seed * 100_003 + first_index, steps=steps or self.steps,
                        harmony=self.harmony, resample=0,  # a bar is due: no Gibbs rounds
                        **(URGENT if urgent and max(s.plan.steps for s in specs)
                           <= URGENT["window"] - URGENT["context_steps"] else {}))
        out = []
        for i, (spec, blank) in enumerate(zip(specs, blanks)):
            a = int(song.bars[len(context) + i])
            b = a + spec.plan.steps
            bar_notes = {}
            for role in spec.roles:
                n = notes.get(role, np.zeros((0, 4), np.int64))
                n = n[(n[:, START] >= a) & (n[:, START] < b)].copy()
                n[:, START] -= a
                if hi is not None:  # nothing rings into the known bars after
                    n[:, DURATION] = np.minimum(n[:, DURATION], hi - a - n[:, START])
                velocity = intensity_velocity(spec.intensity) * spec.fade.get(role, 1.0)
                n[:, VELOCITY] = int(np.clip(round(velocity), 1, 127))
                bar_notes[role] = n
            out.append(replace(blank, notes=bar_notes, markers=list(spec.markers),
                               transition=spec.transition, beat_steps=song.beat_steps(a)))
        self.seconds += time.perf_counter() - started
        self.n_written += len(out)
        return out

    def stinger_tracks(self, name: str, plans: list[BarPlan], key: Key, offset: int,
                       index: int) -> list[Track]:
        """The stinger `name` over the bars of `plans`, starting `offset` steps into the
        first: its roles alone, at its intensity (notes relative to that first bar)."""
        stinger = self.cue.stingers[name]
        spec_state = State(name=f"stinger {name}", style=self.cue.style)
        specs = [BarSpec(p, spec_state, key, stinger.intensity, stinger.roles, self.cue.tempo)
                 for p in plans]
        bars = self.compose([], specs, index)
        tracks = []
        for role in stinger.roles:
            parts = []
            start = 0
            for b in bars:
                n = b.notes.get(role, np.zeros((0, 4), np.int64)) + [start, 0, 0, 0]
                parts.append(n)
                start += b.steps
            notes = np.concatenate(parts) if parts else np.zeros((0, 4), np.int64)
            notes = notes[notes[:, START] < start - offset] if offset else notes
            notes = notes.copy()
            notes[:, START] += offset
            drum = role == "drums"
            tracks.append(Track(f"Stinger {name} ({role})", 0 if drum else STINGER_PROGRAM,
                                drum, sort_notes(notes), None))
        return [t for t in tracks if len(t.notes)]


@dataclass
class Event:
    """One timed event of a session. `time` in seconds from the session's start."""

    time: float
    type: str  # note_on | note_off | program | bar | beat | marker | underrun
    bar: int
    channel: int | None = None
    note: int | None = None
    velocity: int | None = None
    program: int | None = None
    text: str | None = None  # a bar's "STATE SECTION CHORDS", a marker's text
    beat: int | None = None
    intensity: float | None = None  # a bar's

    def to_dict(self) -> dict:
        return {k: v for k, v in (("t", round(self.time, 4)), ("type", self.type),
                                  ("bar", self.bar), ("beat", self.beat),
                                  ("ch", self.channel), ("note", self.note),
                                  ("vel", self.velocity), ("program", self.program),
                                  ("text", self.text), ("intensity", self.intensity))
                if v is not None}


@dataclass
class _Command:
    kind: str  # state | intensity | stinger
    value: object
    at: str = "bar"
    transition: Transition | None = None
    issued: float = 0.0  # session seconds when it was issued
    landing: int | None = None  # a scheduled command's bar: it lands exactly there


class Session:
    """A live session over a cue sheet's states (see the module's docstring).

    `clock`: "real" plays in real time (a producer thread writes ahead); "simulated" runs as
    fast as it can, commands landing where the music is when they are issued (call them from
    `on_bar` or schedule them with `at_bar`). `lookahead`: bars written beyond the one
    playing; `chunk`: bars the arranger writes at a time (fewer calls, more thrown away on a
    change). Raises ValueError with one line for a bad state name or value.
    """

    def __init__(self, cue: CueSheet, planner: PlannerBundle, arranger: ArrangerBundle, *,
                 state: str | None = None, seed: int = 0, lookahead: int = 1, chunk: int = 6,
                 context_bars: int = 8, steps: int | None = None, harmony: float | None = None,
                 clock: str = "real", programs: dict[str, int] | None = None,
                 on_bar: Callable[[Bar], None] | None = None,
                 on_beat: Callable[[Event], None] | None = None,
                 on_marker: Callable[[Event], None] | None = None):
        if clock not in ("real", "simulated"):
            raise ValueError(f"clock must be real or simulated, got {clock!r}")
        if lookahead < 1 or chunk < 1:
            raise ValueError(f"lookahead and chunk must be >= 1, got {lookahead}, {chunk}")
        self.cue = cue
        start = state or cue.start or (cue.timeline[0].state if cue.timeline
                                       else next(iter(cue.states)))
        cue.state(start)  # unknown: ValueError naming the states
        self.programs = programs or {r: (arranger.programs or {}).get(r, 0)
                                     for r in arranger.roles}
        self.composer = Composer(planner, arranger, cue, self.programs, seed, steps, harmony,
                                 context_bars)
        self.planner, self.arranger = planner, arranger
        self.clock, self.lookahead, self.chunk = clock, lookahead, chunk
        self.seed = seed
        self.on_bar = on_bar
        self.on_beat, self.on_marker = on_beat, on_marker
        self.key = self._session_key()
        self._lock = threading.RLock()
        self._step_seconds_ema = 0.04  # seconds per denoising step of an urgent bar
        self._plan_seconds = 0.15  # seconds to make a state's plan
        self._deadline: float | None = None  # when the bar after a late change is due
        self._wake = threading.Condition(self._lock)
        self._commands: list[_Command] = []
        self._scheduled: list[tuple[int, _Command]] = []
        self._bars: list[Bar] = []  # the last played bars, then the buffer
        self._next_play = 0  # index of the next bar to start playing
        self._epoch = 0  # bumped whenever buffered bars are thrown away
        self._streams: dict[int, PlanStream] = {}
        self._ready: dict[str, PlanStream] = {}  # plans made ahead, by state (real clock)
        self._n_streams = 0
        self._n_made = 0
        self._state = cue.state(start)
        self._intensity = float(self._state.intensity)
        self._stream = self._new_stream(self._state)
        self._pending: tuple[State, Transition] | None = (self._state, Transition("cut"))
        self._stingers: list[tuple[str, int, int]] = []  # (name, bar, offset) to write
        self._late: list[tuple[float, int, Event]] = []  # events from stingers, to merge
        self._stop = threading.Event()
        self._position = 0.0  # session seconds now playing (the consumer's clock)
        self._origin: float | None = None  # time.monotonic() when bar 0 began (real clock)
        self._write_times: deque[float] = deque(maxlen=8)  # seconds of the last writes
        self.write_seconds = 0.0  # all the writing so far (a real-time factor's numerator)
        self._entry_times: dict[str, deque[float]] = {}  # the same, of entries into a state
        self._bar_times: dict[int, float] = {}
        self.underruns: list[int] = []
        self.urgent_steps: list[int] = []  # denoising steps of each bar written when due soon

    # -- commands (any thread) ------------------------------------------------------------

    def set_state(self, name: str, at: str = "bar", transition: Transition | str | None = None
                  ) -> None:
        """Move to state `name` at the next bar, beat or phrase, by `transition` (default
        cut)."""
        from structdiff.pipeline.cue import parse_transition

        state = self.cue.state(name)
        if at not in WHEN:
            raise ValueError(f"at must be one of {', '.join(WHEN)}, got {at!r}")
        if isinstance(transition, str):
            transition = parse_transition(transition)
        self._post(_Command("state", state, at, transition or Transition("cut", 0, at)))

    def set_intensity(self, x: float) -> None:
        """The intensity in [0, 1] from the next bar on (layers, density, velocity)."""
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:
            raise ValueError(f"intensity must be a number in [0, 1], got {x!r}")
        self._post(_Command("intensity", float(x)))

    def stinger(self, name: str) -> None:
        """Play the stinger `name` over the music from the next beat."""
        if name not in self.cue.stingers:
            known = ", ".join(self.cue.stingers) or "none"
            raise ValueError(f"unknown stinger {name!r} (stingers: {known})")
        self._post(_Command("stinger", name, "beat"))

    def at_bar(self, bar: int, command: str, *args, **kwargs) -> None:
        """Schedule `command` ("set_state", "set_intensity", "stinger") to be issued when
        bar `bar` is about to be written (simulated clock: exactly there)."""
        before = len(self._commands)
        getattr(self, command)(*args, **kwargs)
        with self._lock:
            cmd = self._commands.pop(before)
            self._scheduled.append((bar, cmd))
            self._scheduled.sort(key=lambda x: x[0])

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()

    @property
    def position(self) -> float:
        """Session seconds of the music played so far."""
        return self._position

    def _now(self) -> float:
        """Session seconds now: the real clock's, or where the simulated music is."""
        if self.clock == "real" and self._origin is not None:
            return time.monotonic() - self._origin
        return self._position

    def _write_estimate(self, kind: str = "cut", state: State | None = None) -> float:
        """Seconds a change needs before it can land. A cut (or a new intensity) writes its
        first bar alone, in as many denoising steps as the time left allows down to
        `MIN_URGENT_STEPS`, after the state's plan when none was made ahead; a bridge or a
        crossfade takes as long as the last ones of its kind did."""
        if kind == "cut":
            plan = 0.0 if state is None or state.name in self._ready else self._plan_seconds
            return 1.25 * (self._step_seconds_ema * MIN_URGENT_STEPS + plan) + 0.03
        times = self._entry_times.get(kind)
        if times:
            return 1.25 * max(times) + 0.03
        return 2.0 * max(self._write_times) + 0.05 if self._write_times else 0.8

    def _urgent_steps(self) -> int:
        """Denoising steps for a bar due at `self._deadline`: what fits in the time left."""
        if self._deadline is None:
            return self.composer.steps
        left = self._deadline - self._now() - 0.03
        fit = int(left / 1.15 / max(self._step_seconds_ema, 1e-3))
        return max(MIN_URGENT_STEPS, min(self.composer.steps, fit))

    def _post(self, cmd: _Command) -> None:
        with self._wake:
            cmd.issued = self._now()
            self._commands.append(cmd)
            self._wake.notify_all()

    # -- the state machine ---------------------------------------------------------------

    def _session_key(self) -> Key:
        from structdiff.data.plan_constraints import parse_key
        from structdiff.pipeline.plan import choose_key

        if self.cue.key:
            return parse_key(self.cue.key)
        return choose_key(self.planner, self.cue.style, np.random.default_rng(self.seed))

    def _state_key(self, state: State) -> Key:
        from structdiff.data.plan_constraints import parse_key

        if state.key:
            return parse_key(state.key)
        return Key(self.key.tonic, state.mode or self.key.mode)

    def _make_stream(self, state: State, n_bars: int | None = None) -> PlanStream:
        self._n_made += 1
        started = time.perf_counter()
        stream = PlanStream(self.planner, state, self.composer.style_of(state)
                            if (state.style or self.cue.style) in self.planner.styles else None,
                            self._state_key(state), self.cue.meter,
                            self.seed * 7919 + self._n_made, self.composer.steps, 0, n_bars)
        self._plan_seconds = 0.7 * self._plan_seconds + 0.3 * (time.perf_counter() - started)
        return stream

    def _new_stream(self, state: State, n_bars: int | None = None) -> PlanStream:
        """The plan of a new entry into `state`: one made ahead while the session had time
        (real clock), else a new one."""
        ready = self._ready.pop(state.name, None) if n_bars is None else None
        stream = ready if ready is not None else self._make_stream(state, n_bars)
        self._n_streams += 1
        stream.stream = self._n_streams
        self._streams = {k: v for k, v in self._streams.items() if k >= self._n_streams - 1}
        self._streams[self._n_streams] = stream
        return stream

    def _prefetch(self) -> bool:
        """Make the plan of one state that has none ready (so that a change to it needs only
        the arranger); False when every state has one."""
        with self._lock:
            missing = [st for name, st in self.cue.states.items() if name not in self._ready]
        if not missing:
            return False
        stream = self._make_stream(missing[0])
        with self._lock:
            self._ready.setdefault(missing[0].name, stream)
        return True

    def _spec(self, plan: BarPlan, **kw) -> BarSpec:
        state = kw.pop("state", self._state)
        intensity = kw.pop("intensity", self._intensity)
        return BarSpec(plan, state, self._state_key(state), intensity,
                       layers_for(state.layers, intensity, self.arranger.roles),
                       float(state.tempo or self.cue.tempo), **kw)

    def _next_index(self) -> int:
        return self._bars[-1].index + 1 if self._bars else 0

    def _buffered(self) -> int:
        return sum(1 for b in self._bars if b.index >= self._next_play)

    def _drop_from(self, index: int) -> None:
        """Throw away the buffered bars from `index` on; their streams take them again."""
        dropped = [b for b in self._bars if b.index >= index]
        if not dropped:
            return
        self._bars = [b for b in self._bars if b.index < index]
        self._epoch += 1
        first = dropped[0]
        stream = self._streams.get(first.plan.stream)
        if stream is not None:
            stream.rewind(first.plan.position)
        for bar in dropped:  # a stinger on a bar thrown away plays on the bar written anew
            for offset, text in bar.markers:
                if text.startswith("stinger:"):
                    self._stingers.append((text.split(":", 1)[1], bar.index, offset))

    def _landing(self, cmd: _Command) -> int:
        """The bar index where `cmd` takes effect."""
        if cmd.landing is not None:
            return cmd.landing
        index = self._next_play
        if self.clock == "real" and self._next_play > 0:
            playing = next((b for b in self._bars if b.index == self._next_play - 1), None)
            if playing is not None and playing.index in self._bar_times:
                end = self._bar_times[playing.index] + playing.steps * self._step_seconds(playing)
                kind = cmd.transition.kind if cmd.transition is not None else "cut"
                state = cmd.value if isinstance(cmd.value, State) else None
                if end - self._now() < self._write_estimate(kind, state):
                    index += 1  # too late to write the next bar anew: the one after
                    end += playing.steps * self._step_seconds(playing)
                self._deadline = end
        if cmd.at == "phrase":
            origin = next((b.index for b in reversed(self._bars)
                           if b.index < index and b.plan.position == 0
                           and b.plan.stream == self._stream.stream), 0)
            while (index - origin) % PHRASE_BARS:
                index += 1
        return index

    def _apply(self, cmd: _Command) -> None:
        if cmd.kind == "stinger":
            where = (cmd.landing, 0) if cmd.landing is not None else self._next_beat(cmd.issued)
            self._stingers.append((str(cmd.value), *where))
            return
        landing = self._landing(cmd)
        if (cmd.at == "beat" and self._next_play > 0 and cmd.landing is None
                and self._cut_playing_bar(cmd.issued, cmd.value
                                          if isinstance(cmd.value, State) else None)):
            landing = self._next_play
        self._drop_from(landing)
        if cmd.kind == "intensity":
            self._intensity = float(cmd.value)
            return
        assert isinstance(cmd.value, State)
        self._pending = (cmd.value, cmd.transition or Transition("cut"))

    def _next_beat(self, seconds: float) -> tuple[int, int]:
        """(bar index, step offset) of the first beat at or after `seconds`."""
        for b in self._bars:
            t0 = self._bar_start_time(b)
            t1 = t0 + b.steps * self._step_seconds(b)
            if t0 <= seconds < t1 or b.index >= self._next_play:
                steps = max(0.0, (seconds - t0) / self._step_seconds(b))
                offset = int(np.ceil(steps / b.beat_steps - 1e-9)) * b.beat_steps
                if offset >= b.steps:
                    return b.index + 1, 0
                return b.index, offset
        return self._next_index(), 0

    def _cut_playing_bar(self, seconds: float, state: State | None = None) -> bool:
        """End the bar that plays at `seconds` at its next beat: a state change `at="beat"`."""
        playing = next((b for b in self._bars if b.index == self._next_play - 1), None)
        if playing is None:
            return False
        if self.clock == "real":  # a beat far enough ahead to write what follows it
            seconds = max(seconds, self._now() + self._write_estimate("cut", state))
        index, offset = self._next_beat(seconds)
        if index != playing.index or offset == 0:
            return False
        plan = replace(playing.plan, steps=offset,
                       chords=[replace(c, duration=min(c.duration, offset - c.onset))
                               for c in playing.plan.chords if c.onset < offset])
        notes = {}
        for role, n in playing.notes.items():
            n = n[n[:, START] < offset].copy()
            n[:, DURATION] = np.minimum(n[:, DURATION], offset - n[:, START])
            notes[role] = n
        playing.plan, playing.notes = plan, notes
        if playing.index in self._bar_times:
            self._deadline = self._bar_times[playing.index] + offset * self._step_seconds(playing)
        return True

    def _bar_start_time(self, bar: Bar) -> float:
        if bar.index in self._bar_times:
            return self._bar_times[bar.index]
        last = max((i for i in self._bar_times if i < bar.index), default=None)
        if last is None:
            return 0.0
        t = self._bar_times[last]
        for b in self._bars:
            if last <= b.index < bar.index:
                t += b.steps * self._step_seconds(b)
        return t

    def _step_seconds(self, bar: Bar) -> float:
        return 60.0 / bar.tempo / 4

    def _write_more(self) -> list[Bar]:
        """The next bars: a transition where one is pending, else the state's plan."""
        index = self._next_index()
        limit = self.chunk
        urgent = self.clock == "real" and self._next_play > 0 and index == self._next_play
        steps = None
        if urgent:
            limit = 1  # nothing left to play after this bar: one bar first, it is due soon
            steps = self._urgent_steps()
        for bar, _ in self._scheduled:
            if bar > index:
                limit = min(limit, bar - index)
                break
        history = [b for b in self._bars if b.index < index]
        if self._pending is not None:
            state, transition = self._pending
            self._pending = None
            return self._enter(state, transition, history, index, limit, urgent, steps)
        specs = [self._spec(p) for p in self._stream.take(limit)]
        return self._timed_compose(history, specs, index, urgent, steps)

    def _timed_compose(self, history, specs, index, urgent, steps) -> list[Bar]:
        """`compose`; an urgent write's time per denoising step goes into the estimates."""
        started = time.perf_counter()
        out = self.composer.compose(history, specs, index, urgent=urgent, steps=steps)
        if urgent:
            self.urgent_steps.append(steps or self.composer.steps)
            per_step = (time.perf_counter() - started) / (steps or self.composer.steps)
            self._step_seconds_ema = 0.7 * self._step_seconds_ema + 0.3 * per_step
            self._deadline = None
        return out

    def _enter(self, state: State, transition: Transition, history: list[Bar], index: int,
               limit: int, urgent: bool = False, steps: int | None = None) -> list[Bar]:
        old_state, old_stream = self._state, self._stream
        old_intensity = self._intensity
        old_roles = set(layers_for(old_state.layers, old_intensity, self.arranger.roles))
        n_bars = None
        for bar, _ in self._scheduled:  # a scheduled state's plan spans its bars
            if bar > index:
                n_bars = bar - index
                break
        self._state = state
        self._intensity = float(state.intensity)
        self._stream = self._new_stream(state, n_bars)
        marker = [(0, f"state:{state.name}")]
        if transition.kind == "bridge" and history:
            n = transition.bars
            target_specs = [self._spec(p) for p in self._stream.take(min(limit, PHRASE_BARS))]
            target_specs[0].markers = marker
            target = self.composer.compose(history, target_specs, index + n)
            bridge_plans = old_stream.take(n)
            _lead_into(bridge_plans[-1], target[0].plan)
            new_roles = set(target_specs[0].roles)
            specs = []
            for i, p in enumerate(bridge_plans):
                x = old_intensity + (self._intensity - old_intensity) * (i + 1) / (n + 1)
                specs.append(BarSpec(p, old_state, self._state_key(old_state), x,
                                     tuple(r for r in self.arranger.roles
                                           if r in old_roles | new_roles),
                                     float(old_state.tempo or self.cue.tempo),
                                     markers=[(0, "transition:bridge")] if i == 0 else [],
                                     transition="bridge"))
            bridge = self.composer.compose(history, specs, index, future=target)
            return bridge + target
        if transition.kind == "crossfade" and history:
            n = transition.bars
            new_roles = layers_for(state.layers, self._intensity, self.arranger.roles)
            leaving = [r for r in reversed(LAYER_ORDER) if r in old_roles and r not in new_roles]
            leaving += [r for r in old_roles if r not in new_roles and r not in leaving]
            entering = [r for r in LAYER_ORDER if r in new_roles and r not in old_roles]
            entering += [r for r in new_roles if r not in old_roles and r not in entering]
            specs = []
            for i, p in enumerate(self._stream.take(n)):
                f = (i + 1) / (n + 1)
                roles = set(new_roles) - set(entering)
                roles |= {r for j, r in enumerate(entering) if i >= j * n // max(len(entering), 1)}
                roles |= {r for j, r in enumerate(leaving)
                          if i < n - j * n // max(len(leaving), 1) - (1 if j else 0) or i == 0}
                fade = {r: 1 - f for r in leaving} | {r: f for r in entering}
                spec = self._spec(p, fade=fade, transition="crossfade",
                                  markers=(marker + [(0, "transition:crossfade")]) if i == 0
                                  else [])
                spec.roles = tuple(r for r in self.arranger.roles if r in roles)
                specs.append(spec)
            return self.composer.compose(history, specs, index)
        specs = [self._spec(p) for p in self._stream.take(limit)]
        specs[0].markers = marker
        return self._timed_compose(history, specs, index, urgent, steps)

    def _take_scheduled(self, index: int) -> None:
        """Issue the scheduled commands of bars up to `index` (the next bar to write): each
        lands on its own bar."""
        while self._scheduled and self._scheduled[0][0] <= index:
            bar, cmd = self._scheduled.pop(0)
            cmd.landing = max(bar, self._next_play)
            self._commands.append(cmd)

    def _step(self) -> bool:
        """One unit of producer work: apply commands, write stingers and, if the buffer is
        short, bars (the writing outside the lock). False when there was nothing to do."""
        with self._lock:
            self._take_scheduled(self._next_index())
            commands, self._commands = self._commands, []
            for cmd in commands:
                self._apply(cmd)
        wrote = self._write_stingers()
        with self._lock:
            if self._buffered() > self.lookahead:
                return wrote
            epoch = self._epoch
        started = time.perf_counter()
        entry = self._pending[1].kind if self._pending is not None else None
        new = self._write_more()  # the slow part, outside the lock
        seconds = time.perf_counter() - started
        self._write_times.append(seconds)
        self.write_seconds += seconds
        if entry is not None and self._next_play > 0:
            self._entry_times.setdefault(entry, deque(maxlen=8)).append(seconds)
        with self._lock:
            if epoch != self._epoch:  # a change threw away what these bars follow
                return True
            if not new or (self._bars and new[0].index != self._next_index()):
                return True
            self._bars.extend(new)
            keep = self._next_play - self.composer.context_bars
            self._bars = [b for b in self._bars if b.index >= keep]
        return True

    def _write_stingers(self) -> bool:
        """Write the stingers whose bars are written: the notes outside the lock (the player
        takes bars meanwhile), attached to their first bar under it."""
        with self._lock:
            jobs = []
            for name, index, offset in self._stingers:
                bars = [b for b in self._bars if b.index >= index]
                n = self.cue.stingers[name].bars + (1 if offset else 0)
                if len(bars) >= n and bars[0].index == index:
                    jobs.append((name, index, offset, [b.plan for b in bars[:n]], bars[0].key))
            epoch = self._epoch
        for name, index, offset, plans, key in jobs:
            tracks = self.composer.stinger_tracks(name, plans, key, offset, index)
            with self._lock:
                if epoch != self._epoch and index >= self._next_play:
                    continue  # its bars were thrown away: it waits for the new ones
                first = next((b for b in self._bars if b.index == index), None)
                if first is None:
                    continue
                first.extra.extend(tracks)
                first.markers.append((offset, f"stinger:{name}"))
                self._stingers.remove((name, index, offset))
                if index < self._next_play:  # already playing: its notes go out late
                    self._late_stinger(first, tracks, offset, name)
        return bool(jobs)

    def _late_stinger(self, bar: Bar, tracks: list[Track], offset: int, name: str) -> None:
        t0 = self._bar_start_time(bar)
        dt = self._step_seconds(bar)
        self._late.append((t0 + offset * dt, 0, Event(t0 + offset * dt, "marker", bar.index,
                                                      text=f"stinger:{name}")))
        for t in tracks:
            self._late += _note_items(t.notes, 9 if t.is_drum else STINGER_CHANNEL, t0, dt,
                                      bar.index)

    # -- playing -------------------------------------------------------------------------

    def bars(self, n_bars: int | None = None) -> Iterator[Bar]:
        """The bars as they are played, on the simulated clock. `on_bar` is called once before
        each bar is played; a state or intensity change it makes lands on that bar."""
        played = 0
        announced = -1
        while not self._stop.is_set() and (n_bars is None or played < n_bars):
            while self._step() and self._buffered() <= self.lookahead:
                pass
            with self._lock:
                bar = next((b for b in self._bars if b.index == self._next_play), None)
                if bar is None:
                    continue
                self._bar_times[bar.index] = self._position
                if self.on_bar is not None and announced < bar.index:
                    announced = bar.index
                    before = len(self._commands)
                    self.on_bar(bar)
                    new = self._commands[before:]
                    for cmd in new:
                        if cmd.kind != "stinger":
                            cmd.landing = bar.index
                    if any(cmd.kind != "stinger" for cmd in new):
                        continue  # the bar is written anew
                    self._commands = self._commands[:before]
                    for cmd in new:
                        self._apply(cmd)
                self._write_stingers()
                self._next_play += 1
                self._position += bar.steps * self._step_seconds(bar)
                self._forget()
            played += 1
            yield bar

    def _forget(self) -> None:
        keep = self._next_play - self.composer.context_bars - 1
        self._bars = [b for b in self._bars if b.index >= keep]
        self._bar_times = {i: t for i, t in self._bar_times.items() if i >= keep}

    def events(self, n_bars: int | None = None, seconds: float | None = None
               ) -> Iterator[Event]:
        """Timed events of the session: programs first, then per bar a `bar` event, its
        markers, its beats and its notes; all notes off at the end. On the real clock each
        event is yielded when it is due."""
        channels = role_channels(self.programs)
        for role, program in self.programs.items():
            if channels[role] != 9:
                yield Event(0.0, "program", 0, channels[role], program=program)
        yield Event(0.0, "program", 0, STINGER_CHANNEL, program=STINGER_PROGRAM)
        pending: list[tuple[float, int, int, Event]] = []  # heap: time, order, seq, event
        sounding: dict[tuple[int, int], int] = {}
        seq = 0
        source = self._real_bars(n_bars) if self.clock == "real" else self.bars(n_bars)
        end_time = 0.0
        for bar in source:
            t0 = self._bar_times.get(bar.index, self._position)
            dt = self._step_seconds(bar)
            items = [(t0, 0, Event(t0, "bar", bar.index, text=self._bar_text(bar),
                                   intensity=round(bar.intensity, 3)))]
            if bar.underrun:
                items.append((t0, 0, Event(t0, "underrun", bar.index)))
            for step, text in bar.markers:
                items.append((t0 + step * dt, 0, Event(t0 + step * dt, "marker", bar.index,
                                                       text=text)))
            for k in range(0, bar.steps, bar.beat_steps):
                items.append((t0 + k * dt, 0, Event(t0 + k * dt, "beat", bar.index,
                                                    beat=k // bar.beat_steps)))
            tracks = [(channels[r], n) for r, n in bar.notes.items()]
            tracks += [(9 if t.is_drum else STINGER_CHANNEL, t.notes) for t in bar.extra]
            for ch, notes in tracks:
                items += _note_items(notes, ch, t0, dt, bar.index)
            with self._lock:
                late, self._late = self._late, []
            for when, order, ev in items + late:
                heapq.heappush(pending, (when, order, seq, ev))
                seq += 1
            while pending:
                # a change `at="beat"` may cut this bar while it plays: its end is read anew
                bar_end = t0 + bar.steps * dt
                if pending[0][0] >= bar_end - 1e-9:
                    break
                ev = heapq.heappop(pending)[3]
                if ev.bar == bar.index and ev.type == "note_off":
                    with self._lock:
                        cut_end = t0 + bar.steps * dt
                    if ev.time > cut_end:  # a note of a cut bar ends with it
                        ev = replace(ev, time=cut_end)
                yield from self._emit(ev, sounding)
            bar_end = t0 + bar.steps * dt
            for i, (when, order, n, ev) in enumerate(pending):
                if ev.bar == bar.index and when > bar_end and ev.type != "note_off":
                    pending[i] = (when, order, n, replace(ev, type="skip"))
                elif ev.bar == bar.index and when > bar_end:
                    pending[i] = (bar_end, order, n, replace(ev, time=bar_end))
            heapq.heapify(pending)
            end_time = bar_end
            if seconds is not None and bar_end >= seconds:
                break
        while pending:  # notes that ring past the last bar
            ev = heapq.heappop(pending)[3]
            if ev.type == "note_off":
                yield from self._emit(ev, sounding)
        for (ch, note) in list(sounding):
            yield Event(end_time, "note_off", -1, ch, note, 0)
        self.stop()

    def _emit(self, ev: Event, sounding: dict) -> Iterator[Event]:
        if ev.type == "skip":  # a note of a bar cut before it
            return
        if self.clock == "real":
            wait = ev.time - self._now()  # the clock starts when the first bar does
            if wait > 0:
                time.sleep(wait)
            self._position = max(self._position, ev.time)
        if ev.type == "beat" and self.on_beat is not None:
            self.on_beat(ev)
        elif ev.type == "marker" and self.on_marker is not None:
            self.on_marker(ev)
        key = (ev.channel, ev.note)
        if ev.type == "note_on":
            if sounding.get(key, 0):  # the same key again: end the ringing one first
                yield replace(ev, type="note_off", velocity=0)
                sounding[key] -= 1
            sounding[key] = sounding.get(key, 0) + 1
        elif ev.type == "note_off":
            if not sounding.get(key, 0):
                return
            sounding[key] -= 1
            if not sounding[key]:
                del sounding[key]
        yield ev

    def _real_bars(self, n_bars: int | None) -> Iterator[Bar]:
        """Bars on the real clock: a producer thread writes ahead; each bar is taken when it
        is due, and the last one repeats (an underrun) when the next is not ready."""
        producer = threading.Thread(target=self._produce, name="structdiff-session",
                                    daemon=True)
        producer.start()
        played = 0
        previous: Bar | None = None
        try:
            with self._wake:  # the first bar waits for the first notes, however long
                while self._buffered() == 0 and not self._stop.is_set():
                    self._wake.wait(timeout=0.05)
                self._origin = time.monotonic()
            while not self._stop.is_set() and (n_bars is None or played < n_bars):
                with self._lock:
                    due = 0.0 if previous is None else (
                        self._bar_times[previous.index]
                        + previous.steps * self._step_seconds(previous))
                wait = due - self._now()
                if wait > 0:
                    self._stop.wait(wait)
                if self._stop.is_set():
                    break
                with self._lock:
                    self._position = due
                    ready = next((b for b in self._bars if b.index == self._next_play), None)
                    if ready is None:  # not written in time: play the last bar again
                        if previous is None:
                            continue
                        ready = replace(previous, index=self._next_play, underrun=True,
                                        markers=[], extra=[])
                        self._drop_from(self._next_play)
                        self._bars.append(ready)
                        self.underruns.append(ready.index)
                    self._bar_times[ready.index] = due
                    if self.on_bar is not None:
                        self.on_bar(ready)
                    self._next_play += 1
                    self._forget()
                    self._wake.notify_all()
                previous = ready
                played += 1
                yield ready
        finally:
            self.stop()
            producer.join(timeout=5)

    def _produce(self) -> None:
        while not self._stop.is_set():
            worked = self._step() or self._prefetch()
            if not worked:
                with self._wake:
                    if not self._commands and self._buffered() > self.lookahead:
                        self._wake.wait(timeout=0.05)

    def _bar_text(self, bar: Bar) -> str:
        chords = " ".join(Plan(bar.key).chord_label(c) for c in bar.plan.chords) or "-"
        return f"{bar.state} {bar.plan.label} {chords}"


def _note_items(notes: np.ndarray, channel: int, t0: float, dt: float, index: int
                ) -> list[tuple[float, int, Event]]:
    """`(time, order, event)` of the note on and off of every note `[N, 4]` of bar `index`
    (which starts at `t0` seconds, `dt` seconds a step); offs sort before ons at one time."""
    items = []
    for s, d, p, v in notes.tolist():
        on, off = t0 + s * dt, t0 + (s + max(d, 1)) * dt
        items.append((on, 1, Event(on, "note_on", index, channel, int(p), int(v))))
        items.append((off, 0, Event(off, "note_off", index, channel, int(p), 0)))
    return items


def _lead_into(plan: BarPlan, target: BarPlan) -> None:
    """End `plan` (a bridge's last bar) on the dominant seventh of `target`'s first chord,
    unless it already ends on that chord or its dominant."""
    if not target.chords or target.chords[0].quality == "N":
        return
    first = target.chords[0]
    dominant = (first.root + 7) % 12
    last = plan.chords[-1] if plan.chords else None
    if last is not None and last.root in (first.root, dominant) and last.quality != "N":
        return
    half = max(1, plan.steps // 2)
    kept = [replace(c, duration=min(c.duration, half - c.onset)) for c in plan.chords
            if c.onset < half]
    if not kept:
        half = 0
    plan.chords = kept + [Chord(half, plan.steps - half, dominant, "dom7", dominant)]


def role_channels(programs: dict[str, int]) -> dict[str, int]:
    """A channel per role: drums on 10 (index 9), the others from 0 in order, skipping the
    stinger's."""
    free = [c for c in range(16) if c not in (9, STINGER_CHANNEL)]
    out, k = {}, 0
    for role in programs:
        if role == "drums":
            out[role] = 9
        else:
            out[role] = free[k % len(free)]
            k += 1
    return out
