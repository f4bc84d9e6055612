"""Cue sheets (`structdiff.pipeline.cue`): the shipped examples load as written, every kind of
mistake is one line naming the file and the place, moods resolve with explicit values winning."""

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
import yaml

from structdiff.analysis.chords import QUALITIES
from structdiff.pipeline.cue import (
    MOODS,
    CueError,
    CueSheet,
    State,
    Stinger,
    Transition,
    check_cue,
    load_cue,
    parse_cue,
    parse_transition,
)

CUES = Path(__file__).resolve().parents[2] / "configs" / "cues"
BAND = ["melody", "bass", "keys", "guitar", "strings", "drums"]


def write(tmp_path, text, name="level.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path, text) -> str:
    """The message of the CueError that loading `text` as level.yaml raises."""
    with pytest.raises(CueError) as e:
        load_cue(write(tmp_path, text))
    message = str(e.value)
    assert "\n" not in message
    return message.replace(str(tmp_path) + "/", "")


# --- the examples --------------------------------------------------------------------------------


def test_game_level_loads_as_written():
    cue = load_cue(CUES / "game_level.yaml")
    assert list(cue.states) == ["explore", "battle", "victory"]
    assert [(c.state, c.bars, str(c.transition)) for c in cue.timeline] == [
        ("explore", 16, "cut"), ("battle", 16, "bridge 2"), ("victory", 8, "crossfade 2"),
    ]
    assert cue.timeline[1].transition == Transition("bridge", 2)
    assert cue.total_bars == 40
    assert cue.style == "pop" and cue.start == "explore" and cue.meter == (4, 4)
    explore, battle, victory = cue.states.values()
    assert explore.layers == ("melody", "keys", "bass") and explore.intensity < 0.5
    assert (battle.intensity, battle.mode) == (0.9, "minor")
    assert victory.mood == "heroic" and victory.intensity == MOODS["heroic"]["intensity"]
    assert cue.stingers == {"boss": Stinger("boss", bars=1)}
    check_cue(cue, styles=["pop", "game"], roles=BAND)


def test_film_scene_loads_as_written():
    cue = load_cue(CUES / "film_scene.yaml")
    assert list(cue.states) == ["calm", "tension", "release"]
    assert [s.mood for s in cue.states.values()] == ["calm", "tense", "heroic"]
    assert cue.timeline[1].state == "tension" and cue.timeline[1].transition == Transition("cut")
    assert all(8 <= c.bars <= 16 for c in cue.timeline)
    assert cue.style in ("pop", "game")
    assert cue.states["release"].intensity == 0.6  # set over the heroic mood's 0.85
    assert cue.states["tension"].tempo == 96.0 and cue.tempo == 84.0
    check_cue(cue, styles=["pop", "game"], roles=BAND)


# --- one-line errors with the path ---------------------------------------------------------------

TWO_STATES = "states:\n  explore:\n  battle:\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("states:\n  battle: {intensity: high}\n",
         "level.yaml: states.battle.intensity: must be a number in [0, 1], got 'high'"),
        ("states:\n  battle: {intensity: 1.5}\n",
         "level.yaml: states.battle.intensity: must be a number in [0, 1], got 1.5"),
        ("states:\n  battle: {intensity: true}\n",
         "level.yaml: states.battle.intensity: must be a number in [0, 1], got true"),
        (TWO_STATES + "timeline:\n  - {state: explore, bars: 4}\n  - {state: boss, bars: 4}\n",
         "level.yaml: timeline[1].state: unknown state 'boss' (states: explore, battle)"),
        ("states:\n  explore: {intensty: 0.2}\n",
         "level.yaml: states.explore: unknown key 'intensty' (did you mean 'intensity'?)"),
        ("tempi: 90\n" + TWO_STATES,
         "level.yaml: unknown key 'tempi' (did you mean 'tempo'?)"),
        (TWO_STATES + "timeline:\n  - {state: explore, bars: 4, fade: 2}\n",
         "level.yaml: timeline[0]: unknown key 'fade' (known: state, bars, transition, stinger)"),
        (TWO_STATES + "stingers: {boss: {bar: 2}}\n",
         "level.yaml: stingers.boss: unknown key 'bar' (did you mean 'bars'?)"),
        ("states:\n  explore: {a: 1\n  battle: 2\n",
         "level.yaml: line 3: expected ',' or '}', but got ':'"),
        ("states:\n  explore:\n  explore: {intensity: 1}\n",
         "level.yaml: line 3: duplicate key 'explore'"),
        (TWO_STATES + "timeline:\n  - {state: explore, bars: 0}\n",
         "level.yaml: timeline[0].bars: must be a whole number >= 1, got 0"),
        (TWO_STATES + "timeline:\n  - {state: explore, bars: 4.0}\n",
         "level.yaml: timeline[0].bars: must be a whole number >= 1, got 4.0"),
        (TWO_STATES + "timeline:\n  - {state: explore}\n",
         "level.yaml: timeline[0]: missing 'bars' (a timeline entry needs state and bars)"),
        (TWO_STATES + "timeline:\n  - {state: explore, bars: 4}\n"
         "  - {state: battle, bars: 4, transition: bridge}\n",
         "level.yaml: timeline[1].transition: bridge needs a bar count, e.g. bridge 2"),
        (TWO_STATES + "timeline:\n  - {state: explore, bars: 4, transition: crossfade 2}\n",
         "level.yaml: timeline[0].transition: the first entry has no music to crossfade from "
         "(leave the transition out)"),
        ("states: {}\n", "level.yaml: states: needs at least one state"),
        ("tempo: 100\n", "level.yaml: states: missing (a cue sheet needs at least one state)"),
        ("", "level.yaml: empty cue sheet (it needs at least states:)"),
        ("states:\n  battle: {mode: Minor}\n",
         "level.yaml: states.battle.mode: unknown mode 'Minor' (did you mean 'minor'?)"),
        ("states:\n  battle: {mood: angry}\n",
         "level.yaml: states.battle.mood: unknown mood 'angry' (moods: calm, tense, heroic, sad)"),
        ("states:\n  battle: {layers: bass}\n",
         "level.yaml: states.battle.layers: must be a non-empty list of roles, e.g. "
         "[melody, bass], got 'bass'"),
        ("states:\n  battle: {layers: [bass, bass]}\n",
         "level.yaml: states.battle.layers[1]: 'bass' is listed twice"),
        ("states:\n  battle: {form: A8 B}\n",
         "level.yaml: states.battle.form: bad form token 'B' (expected a label and a bar count, "
         "e.g. A8)"),
        ("states:\n  battle: {chords: C G | Am H}\n",
         "level.yaml: states.battle.chords: unknown chord symbol 'H' (e.g. C, Am, G7, Bdim, "
         "Fmaj7/A, N)"),
        ("meter: 3/4\nstates:\n  battle: {chords: C G Am F}\n",
         "level.yaml: states.battle.chords: bar 1 of the chord chart has 4 chords but only 3 "
         "beats"),
        ("states:\n  battle: {key: H minor}\n",
         "level.yaml: states.battle.key: bad key 'H minor' (expected e.g. C major, A minor, Am, "
         "F#, Bbm)"),
        ("states:\n  battle: {key: E minor, mode: major}\n",
         "level.yaml: states.battle.mode: major contradicts the state's key 'E minor' "
         "(leave one of them out)"),
        ("states:\n  battle: {tempo: 1000}\n",
         "level.yaml: states.battle.tempo: must be a number of quarter notes per minute in "
         "[20, 400], got 1000"),
        ("states:\n  battle: high\n",
         "level.yaml: states.battle: must be a mapping of settings (or empty), got 'high'"),
        ("states:\n  big boss:\n",
         "level.yaml: states: bad state name 'big boss' (letters, digits, _ and - only: it "
         "names files and live commands)"),
        (TWO_STATES + "stingers: {boss: {bars: 5}}\n",
         "level.yaml: stingers.boss.bars: must be a whole number in 1..4, got 5"),
        (TWO_STATES + "start: boss\n",
         "level.yaml: start: unknown state 'boss' (states: explore, battle)"),
        (TWO_STATES + "meter: 4\n",
         "level.yaml: meter: must be a meter such as 4/4, 3/4 or 6/8, got 4"),
        (TWO_STATES + "timeline: {state: explore}\n",
         "level.yaml: timeline: must be a list of entries (- {state: NAME, bars: N}), got "
         "{'state': 'explore'}"),
    ],
)
def test_each_mistake_is_one_line_naming_its_place(tmp_path, text, message):
    assert error_of(tmp_path, text) == message


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(CueError, match=r"^.*nowhere\.yaml: no such file$"):
        load_cue(path)


def test_parse_cue_names_its_source_and_state_lookups_fail_cleanly():
    with pytest.raises(CueError, match=r"^<cue>: must be a mapping with states:"):
        parse_cue(["explore"])
    cue = parse_cue({"states": {"explore": None, "battle": {}}}, source="level.yaml")
    assert cue.state("battle").name == "battle"
    with pytest.raises(CueError, match=r"^level\.yaml: unknown state 'boss' "
                                       r"\(states: explore, battle\)$"):
        cue.state("boss")


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    text = "states:\n  explore: &base {intensity: 0.3, mode: minor}\n" \
           "  battle: {<<: *base, intensity: 0.9}\n"
    battle = load_cue(write(tmp_path, text)).states["battle"]
    assert (battle.intensity, battle.mode) == (0.9, "minor")


# --- transitions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("cut", Transition("cut", 0, "bar")),
        ("cut beat", Transition("cut", 0, "beat")),
        ("Cut  Phrase", Transition("cut", 0, "phrase")),
        ("bridge 2", Transition("bridge", 2)),
        ("crossfade 4", Transition("crossfade", 4, "bar")),
    ],
)
def test_transitions_parse(text, expected):
    assert parse_transition(text) == expected
    assert parse_transition(str(expected)) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("bridge", "bridge needs a bar count, e.g. bridge 2"),
        ("crossfade", "crossfade needs a bar count, e.g. crossfade 2"),
        ("bridge 0", "bridge needs at least 1 bar, got 0"),
        ("bridge two", "bad transition 'bridge two' (bridge takes one bar count, e.g. bridge 2)"),
        ("bridge 2 beat", "bad transition 'bridge 2 beat' (bridge takes one bar count, "
                          "e.g. bridge 2)"),
        ("cut 2", "bad transition 'cut 2' (a cut lands at the next bar, beat or phrase: cut, "
                  "cut beat, cut phrase)"),
        ("fade 2", "unknown transition 'fade' (did you mean 'crossfade'?)"),
        ("jump", "unknown transition 'jump' (expected: cut, bridge, crossfade)"),
        ("", "empty transition (expected cut, cut beat, cut phrase, bridge N or crossfade N)"),
    ],
)
def test_bad_transitions_say_why(text, message):
    with pytest.raises(ValueError) as e:
        parse_transition(text)
    assert str(e.value) == message


def test_transitions_are_checked_when_built_directly():
    with pytest.raises(ValueError):
        Transition("bridge", 0)
    with pytest.raises(ValueError):
        Transition("cut", 2)
    with pytest.raises(ValueError):
        Transition("crossfade", 2, "beat")


# --- moods ---------------------------------------------------------------------------------------


def test_moods_set_intensity_mode_and_a_vocabulary_of_known_qualities():
    assert set(MOODS) >= {"calm", "tense", "heroic", "sad"}
    for name, preset in MOODS.items():
        assert 0.0 <= preset["intensity"] <= 1.0 and preset["mode"] in ("major", "minor")
        assert preset["qualities"] and set(preset["qualities"]) <= set(QUALITIES) - {"N"}, name
    assert MOODS["calm"]["qualities"]["dim"] < 0 < MOODS["calm"]["qualities"]["maj7"]
    assert MOODS["tense"]["qualities"]["maj7"] < 0 < MOODS["tense"]["qualities"]["dim7"]
    assert MOODS["heroic"]["qualities"]["hdim7"] < 0 < MOODS["heroic"]["qualities"]["maj"]


def test_a_state_sets_what_its_mood_would_and_explicit_values_win():
    cue = parse_cue({"key": "C major", "states": {
        "plain": None,
        "tense": {"mood": "tense"},
        "own": {"mood": "tense", "intensity": 0.2, "mode": "major"},
        "keyed": {"mood": "tense", "key": "E major"},
    }})
    plain, tense, own, keyed = cue.states.values()
    assert (plain.intensity, plain.mode, plain.qualities) == (0.5, None, {})
    assert (tense.intensity, tense.mode) == (0.7, "minor")
    assert tense.qualities == MOODS["tense"]["qualities"]
    assert (own.intensity, own.mode) == (0.2, "major")
    assert own.qualities == MOODS["tense"]["qualities"]  # the vocabulary still comes from the mood
    assert keyed.mode is None and keyed.key == "E major"  # the state's own key keeps its mode
    # built directly, the same rule
    assert State("x", mood="calm").intensity == 0.25
    assert State("x", mood="calm", intensity=0.9).intensity == 0.9
    with pytest.raises(FrozenInstanceError):
        tense.intensity = 0.1


def test_qualities_is_a_copy():
    state = State("x", mood="sad")
    state.qualities["maj"] = 9.0
    assert "maj" not in MOODS["sad"]["qualities"]


# --- sheet settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, meter", [("4/4", (4, 4)), ("3/4", (3, 4)), ("6/8", (6, 8)),
                                         (" 12 / 8 ", (12, 8))])
def test_meters_parse(text, meter):
    assert parse_cue({"meter": text, "states": {"a": None}}).meter == meter


@pytest.mark.parametrize("text", ["4/3", "0/4", "4-4", "44", "four/four"])
def test_bad_meters_are_refused(text):
    with pytest.raises(CueError, match=r"^<cue>: meter: must be a meter such as 4/4"):
        parse_cue({"meter": text, "states": {"a": None}})


def test_defaults_and_start():
    cue = parse_cue({"states": {"explore": None, "battle": None}})
    assert (cue.tempo, cue.meter, cue.key, cue.style, cue.seed) == (120.0, (4, 4), None, None, 0)
    assert cue.timeline == [] and cue.stingers == {} and cue.total_bars == 0
    assert cue.start == "explore"  # no timeline: the first state
    cue = parse_cue({"states": {"explore": None, "battle": None},
                     "timeline": [{"state": "battle", "bars": 4}]})
    assert cue.start == "battle"  # the timeline's first
    cue = parse_cue({"states": {"explore": None, "battle": None}, "start": "battle"})
    assert cue.start == "battle"
    assert CueSheet({"a": State("a")}).start == "a"


def test_stingers_take_defaults_and_settings():
    cue = parse_cue({"states": {"a": None},
                     "stingers": {"boss": {"bars": 2, "roles": ["drums"], "intensity": 0.5},
                                  "coin": None}})
    assert cue.stingers["boss"] == Stinger("boss", 2, ("drums",), 0.5)
    assert cue.stingers["coin"] == Stinger("coin", 1, ("melody", "drums"), 1.0)


# --- model-dependent checks ----------------------------------------------------------------------


def test_check_cue_catches_an_unknown_style():
    cue = parse_cue(yaml.safe_load("states:\n  battle: {style: metal}\n"), source="level.yaml")
    with pytest.raises(CueError) as e:
        check_cue(cue, styles=["pop", "game", "rock"], roles=BAND)
    assert str(e.value) == ("level.yaml: states.battle.style: unknown style 'metal' "
                            "(known: pop, game, rock)")
    cue = parse_cue({"style": "rok", "states": {"a": None}}, source="level.yaml")
    with pytest.raises(CueError, match=r"^level\.yaml: style: unknown style 'rok' "
                                       r"\(did you mean 'rock'\?\)$"):
        check_cue(cue, styles=["pop", "game", "rock"], roles=BAND)


def test_check_cue_catches_unknown_roles():
    cue = parse_cue({"states": {"explore": {"layers": ["melody", "piano"]}}}, source="level.yaml")
    with pytest.raises(CueError) as e:
        check_cue(cue, styles=["pop"], roles=BAND)
    assert str(e.value) == ("level.yaml: states.explore.layers[1]: unknown role 'piano' "
                            "(known: melody, bass, keys, guitar, strings, drums)")
    cue = parse_cue({"states": {"a": None}, "stingers": {"boss": {"roles": ["drum"]}}},
                    source="level.yaml")
    with pytest.raises(CueError, match=r"^level\.yaml: stingers\.boss\.roles\[0\]: unknown role "
                                       r"'drum' \(did you mean 'drums'\?\)$"):
        check_cue(cue, styles=["pop"], roles=BAND)
    # the same sheet passes for a model that has the role
    check_cue(cue, styles=["pop"], roles=BAND + ["drum"])
