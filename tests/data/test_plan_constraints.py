import numpy as np
import pytest

from structdiff.data.plan_constraints import (
    constraint_arrays,
    parse_chord_chart,
    parse_form,
    parse_key,
    spread_over_beats,
)
from structdiff.data.plan_tensor import (
    PLAN_LAYOUT,
    PlanGrid,
    decode_plan,
    group_slices,
    letter_labels,
    one_hot,
    uniform_grid,
)
from structdiff.data.song import Chord, Key, Section


def test_parse_form():
    assert parse_form("i4 A8 B8 A8 o4") == [
        Section(0, 4, "i"), Section(4, 8, "A"), Section(12, 8, "B"), Section(20, 8, "A"),
        Section(28, 4, "o"),
    ]
    assert parse_form("  A4\tA4 \n AA16 a2 ") == [
        Section(0, 4, "A"), Section(4, 4, "A"), Section(8, 16, "AA"), Section(24, 2, "a")
    ]


@pytest.mark.parametrize(
    "text,message",
    [
        ("A8 A B8", r"bad form token 'A' \(expected a label and a bar count, e.g. A8\)"),
        ("8", "bad form token '8'"),
        ("A8 B-4", "bad form token 'B-4'"),
        ("A8,B8", "bad form token 'A8,B8'"),
        ("A0", r"bad form token 'A0' \(a section needs at least 1 bar\)"),
        ("   ", "empty form"),
    ],
)
def test_parse_form_errors_name_the_token(text, message):
    with pytest.raises(ValueError, match=message):
        parse_form(text)


def test_parse_chord_chart():
    chart = parse_chord_chart("C G | Am F | G7 | C")
    assert chart == [[(0, "maj", 0), (7, "maj", 7)], [(9, "min", 9), (5, "maj", 5)],
                     [(7, "dom7", 7)], [(0, "maj", 0)]]
    assert parse_chord_chart("| F#m7/A N | % | Bb |") == [
        [(6, "min7", 9), (0, "N", 0)], [(6, "min7", 9), (0, "N", 0)], [(10, "maj", 10)]
    ]
    assert parse_chord_chart("C D E | F", beats_per_bar=[3, 4]) == [
        [(0, "maj", 0), (2, "maj", 2), (4, "maj", 4)], [(5, "maj", 5)]
    ]


@pytest.mark.parametrize(
    "text,beats,message",
    [
        ("C | Hm7", None, "unknown chord symbol 'Hm7'"),
        ("C | | G", None, "bar 2 of the chord chart is empty"),
        ("% | C", None, "bar 1 of the chord chart is '%'"),
        ("C | C D E F", 3, "bar 2 of the chord chart has 4 chords but only 3 beats"),
        ("C D E | C", [2, 4], "bar 1 of the chord chart has 3 chords but only 2 beats"),
    ],
)
def test_parse_chord_chart_errors(text, beats, message):
    with pytest.raises(ValueError, match=message):
        parse_chord_chart(text, beats)


def test_chords_share_a_bars_beats_evenly():
    c, g, f = (0, "maj", 0), (7, "maj", 7), (5, "maj", 5)
    assert spread_over_beats([c, g], 4) == [c, c, g, g]
    assert spread_over_beats([c, g, f], 4) == [c, c, g, f]
    assert spread_over_beats([c], 3) == [c, c, c]
    with pytest.raises(ValueError, match="cannot spread 3 chords over 2 beats"):
        spread_over_beats([c, g, f], 2)


@pytest.mark.parametrize(
    "text,key",
    [
        ("C major", Key(0, "major")), ("A minor", Key(9, "minor")), ("Am", Key(9, "minor")),
        ("F#", Key(6, "major")), ("Bbm", Key(10, "minor")), ("C# minor", Key(1, "minor")),
        ("eb maj", Key(3, "major")), ("G min", Key(7, "minor")), ("B", Key(11, "major")),
        ("Cb major", Key(11, "major")),
    ],
)
def test_parse_key(text, key):
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["H major", "C dorian", "", "Am minor", "AM", "C##"])
def test_parse_key_errors(text):
    with pytest.raises(ValueError, match=r"bad key .* \(expected e.g. C major, A minor, Am"):
        parse_key(text)


def test_constraint_errors():
    grid = uniform_grid(32)
    with pytest.raises(ValueError, match="form has 28 bars, --bars is 32"):
        constraint_arrays(32, grid, None, form=parse_form("A8 B8 A8 B4"))
    with pytest.raises(ValueError, match="chord chart has 33 bars, --bars is 32"):
        constraint_arrays(32, grid, Key(0, "major"), chords=parse_chord_chart(" | ".join("C" * 33)))
    with pytest.raises(ValueError, match="a chord chart needs a key"):
        constraint_arrays(32, grid, None, chords=parse_chord_chart("C | G"))
    with pytest.raises(ValueError, match="bar 2 of the chord chart has 4 chords but only 3 beats"):
        constraint_arrays(4, uniform_grid(4, 3, 4), Key(0, "major"),
                          chords=parse_chord_chart("C | C D E F"))
    with pytest.raises(ValueError, match="grid has 32 bars, --bars is 16"):
        constraint_arrays(16, grid, None)
    letters = " ".join(f"{a}{b}1" for a in "AB" for b in "ABCDEFGHIJKLMNO")
    with pytest.raises(ValueError, match="form has 30 different labels, at most 26"):
        constraint_arrays(30, uniform_grid(30), None, form=parse_form(letters))


def test_mask_covers_exactly_what_the_user_fixed():
    grid = uniform_grid(8, 3, 4)
    form = parse_form("A4 B4")
    chart = parse_chord_chart("C G | Am")
    known, mask = constraint_arrays(8, grid, Key(0, "major"), form=form, chords=chart)
    s = group_slices()
    fixed = {g.name for g in PLAN_LAYOUT if mask[:, g.slice].any()}
    assert fixed == {"label", "section_start"} | {f"{k}{i}" for k in ("root", "quality", "bass")
                                                  for i in range(3)}
    assert mask[:, s["label"]].all() and mask[:, s["section_start"]].all()
    assert mask[:2, s["root0"]].all() and not mask[2:, s["root0"]].any()  # chart covers 2 bars
    assert not mask[:, s["phrase_end"]].any() and not mask[:, s["quality3"]].any()  # unused slot
    assert np.array_equal(known[~mask], np.zeros((~mask).sum()))
    for g in PLAN_LAYOUT:
        rows = mask[:, g.offset]
        assert np.all(known[rows, g.slice].sum(axis=1) == 1), g.name
    # C G in 3/4: C takes two beats
    roots = [int(known[0, s[f"root{i}"]].argmax()) for i in range(3)]
    assert roots == [0, 0, 7]


def random_one_hot(n_bars: int, rng: np.random.Generator) -> np.ndarray:
    return one_hot({g.name: rng.integers(g.size, size=n_bars) for g in PLAN_LAYOUT}, n_bars)


def expected_chords(chart, grid: PlanGrid) -> list[Chord]:
    """The chart's chords on the grid, one per beat, merged where a chord goes on."""
    chords: list[Chord] = []
    for bar, bar_chords in enumerate(chart):
        beats = int(grid.n_beats[bar])
        ends = [*grid.slot_starts[bar, 1:beats].tolist(), int(grid.bar_ends[bar])]
        for start, end, chord in zip(grid.slot_starts[bar, :beats].tolist(), ends,
                                     spread_over_beats(bar_chords, beats)):
            if chords and (chords[-1].root, chords[-1].quality, chords[-1].bass) == chord:
                last = chords[-1]
                chords[-1] = Chord(last.onset, last.duration + end - start, *chord)
            else:
                chords.append(Chord(start, end - start, *chord))
    return chords


@pytest.mark.parametrize("meter", [(4, 4), (3, 4), (6, 8)])
def test_fixed_form_and_chords_come_back_exactly_from_a_sampled_plan(meter):
    rng = np.random.default_rng(meter[0])
    n_bars = 32
    grid = uniform_grid(n_bars, *meter)
    key = parse_key("Bbm")
    form = parse_form("i4 B4 A8 B4 B4 o8")  # written out of order; B twice in a row
    symbols = ["C", "G7/B", "Am", "F", "Dm7", "Bdim", "N", "Ebmaj7", "F#m7b5", "Bb"]
    bars = [" ".join(rng.choice(symbols, size=rng.integers(1, 3))) for _ in range(n_bars)]
    chart = parse_chord_chart(" | ".join(bars))
    known, mask = constraint_arrays(n_bars, grid, key, form=form, chords=chart)
    sampled = np.where(mask, known, random_one_hot(n_bars, rng))
    plan = decode_plan(sampled, grid, key, label_names=letter_labels(form))
    assert plan.sections == form
    assert plan.chords == expected_chords(chart, grid)
    assert plan.key == key


def test_a_short_chart_fixes_only_its_bars():
    rng = np.random.default_rng(1)
    grid = uniform_grid(16, 3, 4)
    key = Key(9, "minor")
    chart = parse_chord_chart("Am | E7/G# Am | % | Dm")
    known, mask = constraint_arrays(16, grid, key, chords=chart)
    plan = decode_plan(np.where(mask, known, random_one_hot(16, rng)), grid, key)
    for expected in expected_chords(chart, grid):
        for step in range(expected.onset, expected.onset + expected.duration, 4):
            found = [c for c in plan.chords if c.onset <= step < c.onset + c.duration]
            assert [(c.root, c.quality, c.bass) for c in found] == [
                (expected.root, expected.quality, expected.bass)
            ]


def test_phrase_ends_fix_the_phrase_end_group_of_their_bars_only():
    from structdiff.data.plan_tensor import group_slices, uniform_grid

    grid = uniform_grid(4, 4, 4)
    known, mask = constraint_arrays(4, grid, None, phrase_ends={1: True, 2: False})
    g = group_slices()["phrase_end"]
    assert mask[1, g].all() and mask[2, g].all() and not mask[[0, 3], g].any()
    assert known[1, g].tolist() == [0, 1] and known[2, g].tolist() == [1, 0]
    assert mask.sum() == 4  # nothing else is fixed
    with pytest.raises(ValueError, match="phrase end at bar 4, outside the 4 bars"):
        constraint_arrays(4, grid, None, phrase_ends={4: True})


def test_a_final_chord_fixes_the_last_bars_second_half_unless_the_chart_reaches_it():
    from structdiff.data.plan_tensor import group_slices, uniform_grid

    grid = uniform_grid(2, 4, 4)
    known, mask = constraint_arrays(2, grid, None, final_chord=(7, "dom7", 11))
    g = group_slices()
    fixed = [s for s in range(8) if mask[1, g[f"root{s}"]].any()]
    assert fixed == [2, 3] and not mask[0].any()
    assert known[1, g["root3"]].argmax() == 7 and known[1, g["bass3"]].argmax() == 11
    charted, _ = constraint_arrays(2, grid, Key(0, "major"), chords=parse_chord_chart(
        "C | F", [4, 4]), final_chord=(7, "dom7", 11))
    assert charted[1, g["root3"]].argmax() == 5  # the chart's F stays
