"""Cue sheets: the states, timeline, stingers and transitions of an adaptive soundtrack.

A cue sheet is YAML (the format: docs/cue_sheets.md; examples: configs/cues/). `load_cue` reads
one and checks everything that does not depend on a model: unknown keys (with a did-you-mean),
types, ranges, forms, chord charts, keys, transitions and the state names the timeline uses.
`check_cue` adds what does: the styles and roles a model knows. Every problem is a `CueError`
of one line, ``<source>: <path>: <what is wrong>``, the path written with dots and ``[i]``
(``level.yaml: timeline[1].state: unknown state 'boss' (states: explore, battle)``).

Mood presets (`MOODS`) set a state's intensity, mode and chord vocabulary; whatever the state
sets itself wins over its mood, and the mood over the defaults:

==========  =========  =====  ===================================  ========================
mood        intensity  mode   favours (logit offset)               avoids (logit offset)
==========  =========  =====  ===================================  ========================
``calm``    0.25       major  maj7 +1.5, maj +1.0, sus +1.0        dim, dim7, aug -3.0
``tense``   0.7        minor  dim, dim7 +1.5, min, hdim7, dom7 +1  maj7 -3.0
``heroic``  0.85       major  maj +1.5, sus, dom7 +1.0             min7 -2.0, hdim7, dim7 -3
``sad``     0.3        minor  min, min7 +1.5, hdim7 +1.0           aug -3.0, maj7 -1.5
==========  =========  =====  ===================================  ========================

The offsets are added to the planner's logits of the chord qualities
(`structdiff.analysis.chords.QUALITIES`) for the state's bars.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from structdiff.data.plan_constraints import parse_chord_chart, parse_form, parse_key
from structdiff.data.plan_tensor import MAX_LABELS, letter_labels, uniform_grid


class CueError(ValueError):
    """A cue sheet that cannot be read or does not fit: one line naming the file and the place."""


MOODS: dict[str, dict] = {
    "calm": {
        "intensity": 0.25,
        "mode": "major",
        "qualities": {"maj": 1.0, "maj7": 1.5, "sus": 1.0, "dim": -3.0, "dim7": -3.0,
                      "aug": -3.0},
    },
    "tense": {
        "intensity": 0.7,
        "mode": "minor",
        "qualities": {"min": 1.0, "dim": 1.5, "dim7": 1.5, "hdim7": 1.0, "dom7": 1.0,
                      "maj7": -3.0},
    },
    "heroic": {
        "intensity": 0.85,
        "mode": "major",
        "qualities": {"maj": 1.5, "sus": 1.0, "dom7": 1.0, "min7": -2.0, "hdim7": -3.0,
                      "dim7": -3.0},
    },
    # a minor V7 is everyday sad harmony, so dom7 stays neutral; the bright maj7 and the
    # unsettled aug are what sound wrong
    "sad": {
        "intensity": 0.3,
        "mode": "minor",
        "qualities": {"min": 1.5, "min7": 1.5, "hdim7": 1.0, "maj7": -1.5, "aug": -3.0},
    },
}

MODES = ("major", "minor")
TRANSITIONS = ("cut", "bridge", "crossfade")
ANCHORS = ("bar", "beat", "phrase")  # where a change lands: the next bar, beat or phrase end
DEFAULT_INTENSITY = 0.5
TEMPO_RANGE = (20.0, 400.0)  # quarter notes per minute
STINGER_BARS = (1, 4)
MAX_SEED = 2**32 - 1  # numpy's legacy seeding takes no more

# names become file names (score.STATE.loop.mid) and live commands (`state battle`)
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_METER = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_TRANSITION_HELP = "expected cut, cut beat, cut phrase, bridge N or crossfade N"


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """How the music gets into a timeline entry or a new live state."""

    kind: str  # one of TRANSITIONS
    bars: int = 0  # bridge/crossfade length in bars (>= 1 for them; 0 for a cut)
    at: str = "bar"  # one of ANCHORS: where the change lands (only a cut may say beat or phrase)

    def __post_init__(self):
        if self.kind not in TRANSITIONS:
            raise ValueError(f"unknown transition {self.kind!r} ({_TRANSITION_HELP})")
        if self.at not in ANCHORS:
            raise ValueError(f"a change lands at one of {', '.join(ANCHORS)}, got {self.at!r}")
        if self.kind == "cut" and self.bars != 0:
            raise ValueError(f"a cut has no length, got {self.bars} bars")
        if self.kind != "cut" and (self.bars < 1 or self.at != "bar"):
            raise ValueError(f"a {self.kind} needs >= 1 bars and lands at a bar, got {self}")

    def __str__(self) -> str:
        if self.kind == "cut":
            return "cut" if self.at == "bar" else f"cut {self.at}"
        return f"{self.kind} {self.bars}"


def parse_transition(text: str) -> Transition:
    """A transition from ``cut`` (at the next bar), ``cut beat``, ``cut phrase``, ``bridge N``
    or ``crossfade N`` (N >= 1 bars). Raises a one-line `ValueError` for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"a transition is text ({_TRANSITION_HELP}), got {_show(text)}")
    words = text.lower().split()
    if not words:
        raise ValueError(f"empty transition ({_TRANSITION_HELP})")
    kind, rest = words[0], words[1:]
    if kind not in TRANSITIONS:
        raise ValueError(f"unknown transition {kind!r}{_hint(kind, TRANSITIONS, 'expected')}")
    if kind == "cut":
        if len(rest) > 1 or (rest and rest[0] not in ANCHORS):
            raise ValueError(f"bad transition {text!r} (a cut lands at the next bar, beat or "
                             "phrase: cut, cut beat, cut phrase)")
        return Transition("cut", 0, rest[0] if rest else "bar")
    if not rest:
        raise ValueError(f"{kind} needs a bar count, e.g. {kind} 2")
    if len(rest) > 1 or not rest[0].isdigit():
        raise ValueError(f"bad transition {text!r} ({kind} takes one bar count, e.g. {kind} 2)")
    bars = int(rest[0])
    if bars < 1:
        raise ValueError(f"{kind} needs at least 1 bar, got {bars}")
    return Transition(kind, bars)


@dataclass(frozen=True)
class State:
    """One state of the music (explore, battle, ...): what the generator is asked for in it.

    `intensity` and `mode` left out (None) take the mood's values; an intensity then falls
    back to 0.5 and a mode to the key's own. A state with its own `key` keeps that key's mode
    whatever its mood says. After construction `intensity` is always a float.
    """

    name: str
    style: str | None = None  # None: the sheet's style
    intensity: float | None = None  # [0, 1]; None: the mood's, else DEFAULT_INTENSITY
    mode: str | None = None  # "major" | "minor" | None: the mood's, else the key's own
    mood: str | None = None  # a MOODS name
    layers: tuple[str, ...] | None = None  # roles that play; None: all (chosen by intensity)
    form: str | None = None  # e.g. "A8 B8" (plan_constraints.parse_form)
    chords: str | None = None  # a chord chart, e.g. "C G | Am F" (parse_chord_chart)
    key: str | None = None  # e.g. "E minor" (parse_key); None: the sheet's key
    tempo: float | None = None  # quarter notes per minute; None: the sheet's tempo

    def __post_init__(self):
        preset = {}
        if self.mood is not None:
            if self.mood not in MOODS:
                raise ValueError(f"unknown mood {self.mood!r}{_hint(self.mood, MOODS, 'moods')}")
            preset = MOODS[self.mood]
        if self.intensity is None:
            object.__setattr__(self, "intensity", float(preset.get("intensity",
                                                                   DEFAULT_INTENSITY)))
        if self.mode is None and self.key is None and preset:
            object.__setattr__(self, "mode", preset["mode"])

    @property
    def qualities(self) -> dict[str, float]:
        """Logit offsets per chord quality from the mood (``{}`` without one)."""
        return dict(MOODS[self.mood]["qualities"]) if self.mood else {}


@dataclass(frozen=True)
class Cue:
    """One timeline entry: `bars` bars of `state`, entered by `transition`."""

    state: str
    bars: int  # >= 1
    transition: Transition = Transition("cut")  # into this entry (its bars count in `bars`)
    stinger: str | None = None  # a stinger played where the state begins


@dataclass(frozen=True)
class Stinger:
    """A short phrase played over the music on request (a boss appears, an item is found)."""

    name: str
    bars: int = 1  # STINGER_BARS
    roles: tuple[str, ...] = ("melody", "drums")
    intensity: float = 1.0


@dataclass
class CueSheet:
    """A whole cue sheet. Fields left out of the file have the defaults here."""

    states: dict[str, State]  # in file order
    timeline: list[Cue] = field(default_factory=list)  # empty: live use only
    stingers: dict[str, Stinger] = field(default_factory=dict)
    tempo: float = 120.0  # quarter notes per minute
    meter: tuple[int, int] = (4, 4)
    key: str | None = None  # None: the planner chooses
    style: str | None = None  # None: the model chooses
    seed: int = 0
    start: str | None = None  # a live session's first state; None: timeline[0]'s, else the first
    source: str = "<cue>"  # the file name in error messages

    def __post_init__(self):
        if self.start is None and self.states:
            self.start = self.timeline[0].state if self.timeline else next(iter(self.states))

    def state(self, name: str) -> State:
        """The state called `name`; `CueError` naming the known ones when there is none."""
        if name not in self.states:
            raise CueError(f"{self.source}: {_unknown_state(name, self.states)}")
        return self.states[name]

    @property
    def total_bars(self) -> int:
        """Bars of the written score: the sum of the timeline's."""
        return sum(cue.bars for cue in self.timeline)


# --- reading -------------------------------------------------------------------------------------

SHEET_KEYS = ("tempo", "meter", "key", "style", "seed", "start", "states", "timeline",
              "stingers")
STATE_KEYS = ("style", "intensity", "mode", "mood", "layers", "form", "chords", "key", "tempo")
CUE_KEYS = ("state", "bars", "transition", "stinger")
STINGER_KEYS = ("bars", "roles", "intensity")


class _Invalid(Exception):
    """A problem at `path` (dots and [i]); parse_cue adds the source."""

    def __init__(self, path: str, what: str):
        super().__init__(path, what)
        self.path, self.what = path, what


def load_cue(path: str | Path) -> CueSheet:
    """Read and check the cue sheet at `path` (the path as given names it in errors)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CueError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise CueError(f"{source}: is a folder, not a cue sheet") from None
    except UnicodeDecodeError:
        raise CueError(f"{source}: not a text file (a cue sheet is UTF-8 YAML)") from None
    except OSError as e:
        raise CueError(f"{source}: {e.strerror or e}") from None
    return read_cue(text, source)


def read_cue(text: str, source: str = "<cue>") -> CueSheet:
    """Read and check a cue sheet from its YAML `text` (a file's, or one uploaded to the
    studio); `source` names it in errors."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = " ".join(str(e.problem or e.context or e).split())
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise CueError(f"{source}: {where}{problem}") from None
    except yaml.YAMLError as e:
        raise CueError(f"{source}: {' '.join(str(e).split())}") from None
    return parse_cue(data, source)


def parse_cue(data: object, source: str = "<cue>") -> CueSheet:
    """A `CueSheet` from a loaded YAML object; `CueError` on the first problem found."""
    try:
        return _sheet(data, source)
    except _Invalid as e:
        where = f"{source}: {e.path}" if e.path else source
        raise CueError(f"{where}: {e.what}") from None


def check_cue(cue: CueSheet, styles: Sequence[str], roles: Sequence[str]) -> None:
    """Check what depends on the model: every style is one of `styles` and every layer and
    stinger role one of `roles`. Raises `CueError` naming the place."""
    problems: list[tuple[str, str]] = []
    if cue.style is not None and cue.style not in styles:
        problems.append(("style", _unknown("style", cue.style, styles)))
    for name, state in cue.states.items():
        if state.style is not None and state.style not in styles:
            problems.append((f"states.{name}.style", _unknown("style", state.style, styles)))
        for i, role in enumerate(state.layers or ()):
            if role not in roles:
                problems.append((f"states.{name}.layers[{i}]", _unknown("role", role, roles)))
    for name, stinger in cue.stingers.items():
        for i, role in enumerate(stinger.roles):
            if role not in roles:
                problems.append((f"stingers.{name}.roles[{i}]", _unknown("role", role, roles)))
    if problems:
        path, what = problems[0]
        raise CueError(f"{cue.source}: {path}: {what}")


def _sheet(data: object, source: str) -> CueSheet:
    if data is None:
        raise _Invalid("", "empty cue sheet (it needs at least states:)")
    top = _mapping(data, "", "a mapping with states: (and timeline:, stingers:, ...)")
    _known_keys(top, "", SHEET_KEYS)
    meter = _meter(top["meter"], "meter") if "meter" in top else (4, 4)
    # the chord chart of a state must fit the sheet's bars: one chord per beat at most
    beats = int(uniform_grid(1, *meter).n_beats[0])
    if top.get("states") is None:
        raise _Invalid("states", "missing (a cue sheet needs at least one state)")
    raw_states = _mapping(top["states"], "states", "a mapping of state names to settings")
    if not raw_states:
        raise _Invalid("states", "needs at least one state")
    states = {}
    for name, raw in raw_states.items():
        _name(name, "states", "state")
        states[name] = _state(name, raw, f"states.{name}", beats)
    stingers = {}
    raw_stingers = top.get("stingers")
    if raw_stingers is not None:
        for name, raw in _mapping(raw_stingers, "stingers", "a mapping of stinger names").items():
            _name(name, "stingers", "stinger")
            stingers[name] = _stinger(name, raw, f"stingers.{name}")
    timeline = [_cue(raw, f"timeline[{i}]", states, first=i == 0, stingers=stingers)
                for i, raw in enumerate(_list(top.get("timeline"), "timeline"))]
    start = top.get("start")
    if start is not None:
        start = _text(start, "start")
        if start not in states:
            raise _Invalid("start", _unknown_state(start, states))
    return CueSheet(
        states=states,
        timeline=timeline,
        stingers=stingers,
        tempo=_tempo(top["tempo"], "tempo") if top.get("tempo") is not None else 120.0,
        meter=meter,
        key=_key(top["key"], "key") if top.get("key") is not None else None,
        style=_text(top["style"], "style") if top.get("style") is not None else None,
        seed=_integer(top["seed"], "seed", 0, MAX_SEED) if top.get("seed") is not None else 0,
        start=start,
        source=source,
    )


def _state(name: str, raw: object, path: str, beats: int) -> State:
    values = _mapping(raw, path, "a mapping of settings (or empty)") if raw is not None else {}
    _known_keys(values, path, STATE_KEYS)
    v = {k: x for k, x in values.items() if x is not None}

    def at(key: str) -> str:
        return f"{path}.{key}"

    fields: dict = {}
    if "style" in v:
        fields["style"] = _text(v["style"], at("style"))
    if "intensity" in v:
        fields["intensity"] = _unit(v["intensity"], at("intensity"))
    if "mode" in v:
        fields["mode"] = _choice(v["mode"], at("mode"), MODES, "mode")
    if "mood" in v:
        fields["mood"] = _choice(v["mood"], at("mood"), MOODS, "mood")
    if "layers" in v:
        fields["layers"] = _roles(v["layers"], at("layers"))
    if "form" in v:
        fields["form"] = _parsed(v["form"], at("form"), _parse_form)
    if "chords" in v:
        fields["chords"] = _parsed(v["chords"], at("chords"),
                                   lambda text: parse_chord_chart(text, beats))
    if "key" in v:
        fields["key"] = _key(v["key"], at("key"))
    if "tempo" in v:
        fields["tempo"] = _tempo(v["tempo"], at("tempo"))
    if "key" in fields and "mode" in fields:
        own = parse_key(fields["key"]).mode
        if own != fields["mode"]:
            raise _Invalid(at("mode"), f"{fields['mode']} contradicts the state's key "
                           f"{fields['key']!r} (leave one of them out)")
    return State(name, **fields)


def _cue(raw: object, path: str, states: dict[str, State], first: bool,
         stingers: dict[str, Stinger] | None = None) -> Cue:
    entry = _mapping(raw, path, "a timeline entry {state: NAME, bars: N}")
    _known_keys(entry, path, CUE_KEYS)
    for needed in ("state", "bars"):
        if entry.get(needed) is None:
            raise _Invalid(path, f"missing {needed!r} (a timeline entry needs state and bars)")
    state = _text(entry["state"], f"{path}.state")
    if state not in states:
        raise _Invalid(f"{path}.state", _unknown_state(state, states))
    bars = _integer(entry["bars"], f"{path}.bars", 1)
    transition = Transition("cut")
    if entry.get("transition") is not None:
        try:
            transition = parse_transition(entry["transition"])
        except ValueError as e:
            raise _Invalid(f"{path}.transition", str(e)) from None
        if first and transition.kind != "cut":
            raise _Invalid(f"{path}.transition", f"the first entry has no music to "
                           f"{transition.kind} from (leave the transition out)")
        if transition.bars >= bars:
            raise _Invalid(f"{path}.transition", f"a {transition.kind} of {transition.bars} "
                           f"bars leaves none of the entry's {bars} bars to the state")
    stinger = None
    if entry.get("stinger") is not None:
        stinger = _text(entry["stinger"], f"{path}.stinger")
        if stinger not in (stingers or {}):
            known = ", ".join(stingers or {}) or "none"
            raise _Invalid(f"{path}.stinger", f"unknown stinger {stinger!r} (stingers: "
                           f"{known})")
    return Cue(state, bars, transition, stinger)


def _stinger(name: str, raw: object, path: str) -> Stinger:
    values = _mapping(raw, path, "a mapping of settings (or empty)") if raw is not None else {}
    _known_keys(values, path, STINGER_KEYS)
    v = {k: x for k, x in values.items() if x is not None}
    fields: dict = {}
    if "bars" in v:
        fields["bars"] = _integer(v["bars"], f"{path}.bars", *STINGER_BARS)
    if "roles" in v:
        fields["roles"] = _roles(v["roles"], f"{path}.roles")
    if "intensity" in v:
        fields["intensity"] = _unit(v["intensity"], f"{path}.intensity")
    return Stinger(name, **fields)


# --- value checks: each returns the value or raises _Invalid(path, ...) --------------------------


def _mapping(value: object, path: str, expected: str) -> dict:
    if not isinstance(value, dict):
        raise _Invalid(path, f"must be {expected}, got {_show(value)}")
    return value


def _list(value: object, path: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(path, f"must be a list of entries (- {{state: NAME, bars: N}}), "
                       f"got {_show(value)}")
    return value


def _known_keys(values: dict, path: str, known: Sequence[str]) -> None:
    for key in values:
        if key not in known:
            raise _Invalid(path, f"unknown key {_show(key)}{_hint(str(key), known, 'known')}")


def _name(name: object, path: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise _Invalid(path, f"bad {what} name {_show(name)} (letters, digits, _ and - only: "
                       "it names files and live commands)")


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(path, f"must be a name, got {_show(value)}")
    return value.strip()


def _number(value: object) -> float | None:
    # YAML's true/false are bools, which Python counts as ints: not a number here
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _unit(value: object, path: str) -> float:
    x = _number(value)
    if x is None or not 0.0 <= x <= 1.0:
        raise _Invalid(path, f"must be a number in [0, 1], got {_show(value)}")
    return x


def _tempo(value: object, path: str) -> float:
    x = _number(value)
    lo, hi = TEMPO_RANGE
    if x is None or not lo <= x <= hi:
        raise _Invalid(path, f"must be a number of quarter notes per minute in "
                       f"[{lo:g}, {hi:g}], got {_show(value)}")
    return x


def _integer(value: object, path: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (
        hi is not None and value > hi
    ):
        span = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise _Invalid(path, f"must be a whole number {span}, got {_show(value)}")
    return value


def _choice(value: object, path: str, choices, what: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(path, f"must be one of {', '.join(choices)}, got {_show(value)}")
    if value not in choices:
        raise _Invalid(path, f"unknown {what} {value!r}{_hint(value, choices, what + 's')}")
    return value


def _roles(value: object, path: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list) or not value:
        raise _Invalid(path, f"must be a non-empty list of roles, e.g. [melody, bass], "
                       f"got {_show(value)}")
    for i, role in enumerate(value):
        if not isinstance(role, str) or not role.strip():
            raise _Invalid(f"{path}[{i}]", f"must be a role name, got {_show(role)}")
        if role in value[:i]:
            raise _Invalid(f"{path}[{i}]", f"{role!r} is listed twice")
    return tuple(value)


def _meter(value: object, path: str) -> tuple[int, int]:
    m = _METER.match(value) if isinstance(value, str) else None
    if m:
        numerator, denominator = int(m.group(1)), int(m.group(2))
        if 1 <= numerator <= 32 and denominator in (1, 2, 4, 8, 16, 32):
            return numerator, denominator
    raise _Invalid(path, f"must be a meter such as 4/4, 3/4 or 6/8, got {_show(value)}")


def _parse_form(text: str) -> None:
    labels = letter_labels(parse_form(text))
    if len(labels) > MAX_LABELS:
        raise ValueError(f"form has {len(labels)} different labels, at most {MAX_LABELS} are "
                         "supported")


def _key(value: object, path: str) -> str:
    return _parsed(value, path, parse_key)


def _parsed(value: object, path: str, parse) -> str:
    """`value` as text that `parse` accepts (its ValueError becomes the message)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Invalid(path, f"must be text, got {_show(value)}")
    text = str(value).strip()
    try:
        parse(text)
    except ValueError as e:
        raise _Invalid(path, str(e)) from None
    return text


# --- messages ------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as a message shows it: YAML's words for null and booleans, repr for the rest."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _hint(value: str, known, label: str) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else `` (<label>: a, b, c)``."""
    close = difflib.get_close_matches(value, list(known), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" ({label}: {', '.join(known) or 'none'})"


def _unknown(what: str, value: str, known: Sequence[str]) -> str:
    return f"unknown {what} {value!r}{_hint(value, known, 'known')}"


def _unknown_state(name: str, states) -> str:
    return f"unknown state {name!r}{_hint(name, states, 'states')}"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping (PyYAML keeps the
    last silently, which hides a copied state). Keys brought in by a ``<<`` merge may still
    be overridden."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: SafeLoader reports it itself
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
        return super().construct_mapping(node, deep)
