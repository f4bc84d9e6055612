"""Continuing a song's plan (`extend_plan`) with the shipped planner (0.1 s a plan on a CPU):
the planner sees a window of the song's last bars, so a song longer than the planner takes can
be continued, and a short one continues exactly as it did when the planner saw all of it."""

from dataclasses import replace

import numpy as np
import pytest

from structdiff.data.plan_tensor import (
    CONDITION_NAMES,
    N_FEATURES,
    PLAN_LAYOUT,
    PlanGrid,
    decode_plan,
    encode_plan,
    plan_condition,
)
from structdiff.data.song import START, Chord, Key, Plan, Section, Song, Tempo, TimeSignature, Track
from structdiff.pipeline import plan as plan_module
from structdiff.pipeline.arrange import load_arranger
from structdiff.pipeline.generate import Options, continue_song
from structdiff.pipeline.plan import _sample_plan, extend_plan, free_slots, load_planner

pytestmark = pytest.mark.usefixtures("one_thread")

BAR = 16  # steps of a 4/4 bar
LABEL, SECTION_START = PLAN_LAYOUT[0].slice, PLAN_LAYOUT[1].slice


@pytest.fixture(scope="module")
def planner():
    """The shipped planner alone: its own labels for new bars, as before form models."""
    return replace(load_planner(), forms=None)


@pytest.fixture(scope="module")
def planner_with_forms():
    return load_planner()


def _song(form: list[tuple[str, int]], roots=(0,)) -> tuple[Song, Plan]:
    """An empty 4/4 song of `form`'s bars and its plan in C major: one chord a bar cycling
    through `roots` (major triads), a phrase ending every 4 bars."""
    sections, bar = [], 0
    for label, n in form:
        sections.append(Section(bar, n, label))
        bar += n
    chords = [Chord(i * BAR, BAR, roots[i % len(roots)], "maj", roots[i % len(roots)])
              for i in range(bar)]
    merged: list[Chord] = []  # what decoding gives back: equal neighbours are one chord
    for c in chords:
        if merged and (merged[-1].root, merged[-1].bass) == (c.root, c.bass):
            merged[-1] = replace(merged[-1], duration=merged[-1].duration + c.duration)
        else:
            merged.append(c)
    plan = Plan(Key(0, "major"), merged, sections, list(range(3, bar, 4)))
    song = Song([], np.arange(bar, dtype=np.int64) * BAR, bar * BAR, [TimeSignature(0, 4, 4)],
                [Tempo(0, 100.0)])
    return song, plan


def _old_extend_plan(bundle, song, plan, n_bars, seed, steps):
    """`extend_plan` as it was before windows: the planner sees the whole song."""
    key = plan.key
    bar_steps = song.time_signature_at(int(song.bars[-1])).bar_steps(song.steps_per_quarter)
    bars = np.concatenate([song.bars, int(song.bars[-1]) + bar_steps * np.arange(1, n_bars + 1)])
    end = int(song.bars[-1]) + bar_steps * (n_bars + 1)
    longer = replace(song, bars=bars.astype(np.int64), end=end, plan=None)
    grid = PlanGrid.from_song(longer)
    tensor = encode_plan(plan, grid, key)
    mask = np.zeros_like(tensor.x)
    mask[: song.n_bars] = 1
    x = _sample_plan(bundle, grid, key, None, tensor.x, mask, seed, steps, "ddim", 1.0)
    names = list(dict.fromkeys(s.label for s in plan.sections if s.label not in ("i", "o")))
    return decode_plan(x, grid, key, label_names=names or None, bass_free=free_slots(mask))


def _cut(plan: Plan, n_bars: int, end: int) -> Plan:
    """The plan of the first `n_bars` bars (steps before `end`) of `plan`."""
    chords = [replace(c, onset=int(c.onset), duration=int(min(c.onset + c.duration, end) - c.onset),
                      root=int(c.root), bass=int(c.bass))
              for c in plan.chords if c.onset < end]
    sections = [replace(s, n_bars=min(s.n_bars, n_bars - s.start_bar))
                for s in plan.sections if s.start_bar < n_bars]
    return Plan(plan.key, chords, sections, [e for e in plan.phrase_ends if e < n_bars])


def _check_extension(song: Song, plan: Plan, new: Plan, longer: Song, n_bars: int) -> None:
    """The song's own bars keep `plan`; the new bars have chords and sections to the end."""
    assert longer.n_bars == song.n_bars + n_bars
    assert longer.end == song.end + n_bars * BAR
    assert np.array_equal(longer.bars[: song.n_bars], song.bars)
    assert longer.plan is new
    assert _cut(new, song.n_bars, song.end) == plan
    onsets = [c.onset for c in new.chords]
    ends = [c.onset + c.duration for c in new.chords]
    assert onsets[0] == 0 and ends[-1] == longer.end and onsets[1:] == ends[:-1]
    assert any(c.quality != "N" for c in new.chords if c.onset + c.duration > song.end)
    starts = [s.start_bar for s in new.sections]
    stops = [s.start_bar + s.n_bars for s in new.sections]
    assert starts[0] == 0 and stops[-1] == longer.n_bars and starts[1:] == stops[:-1]


# -- the shipped planner --------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_short_song_extends_as_when_the_planner_saw_all_of_it(planner, seed):
    song, plan = _song([("A", 4), ("B", 4), ("A", 4), ("B", 4)], roots=(0, 5, 7, 9))
    new, longer = extend_plan(planner, song, plan, 8, seed=seed, steps=8)
    assert new == _old_extend_plan(planner, song, plan, 8, seed=seed, steps=8)
    _check_extension(song, plan, new, longer, 8)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_with_a_form_model_the_new_bars_follow_the_drawn_continuation(planner_with_forms, seed):
    planner = planner_with_forms
    assert planner.forms is not None
    song, plan = _song([("A", 4), ("B", 4), ("A", 4), ("B", 4)], roots=(0, 5, 7, 9))
    new, longer = extend_plan(planner, song, plan, 16, seed=seed, steps=8)
    _check_extension(song, plan, new, longer, 16)
    drawn = planner.forms.continue_form(plan.sections, 16, None, np.random.default_rng([seed, 1]))
    # the same sections, up to the names of new labels (decoding names them)
    got = [s for s in new.sections if s.start_bar >= song.n_bars]
    assert [(s.start_bar, s.n_bars) for s in got] == [(s.start_bar, s.n_bars) for s in drawn]
    old = {s.label for s in plan.sections}
    for g, d in zip(got, drawn):
        assert (g.label in old) == (d.label in old)
        if d.label in old:
            assert g.label == d.label


def test_a_song_longer_than_the_planner_takes_extends(planner):
    n = planner.model.cfg.max_bars + 88  # 600 bars for the shipped planner's 512
    song, plan = _song([("A", 8), ("B", 8)] * (n // 16) + [("C", n % 16)])
    new, longer = extend_plan(planner, song, plan, 8, seed=0, steps=8)
    _check_extension(song, plan, new, longer, 8)


def test_the_same_seed_gives_the_same_plan(planner):
    song, plan = _song([("A", 8), ("B", 8)] * 6)
    first, _ = extend_plan(planner, song, plan, 4, seed=5, steps=4, context_bars=32)
    again, _ = extend_plan(planner, song, plan, 4, seed=5, steps=4, context_bars=32)
    assert first == again


def test_continue_song_of_600_bars(planner):
    arranger = load_arranger()
    n = planner.model.cfg.max_bars + 88
    song, plan = _song([("A", n)])
    notes = np.array([[i * 4, 4, 72 + 4 * (i % 2), 80] for i in range(n * 4)], dtype=np.int32)
    song = replace(song, tracks=[Track("Soprano", 40, False, notes, role="soprano")],
                   role_map="satb", plan=plan)
    out = continue_song(planner, arranger, song, 8, Options(steps=2))
    assert out.n_bars == n + 8 and out.end == song.end + 8 * BAR
    (track,) = out.tracks
    old = track.notes[track.notes[:, START] < song.end]
    assert np.array_equal(old, notes)
    assert len(track.notes) > len(notes)  # the new bars have notes
    assert _cut(out.plan, n, song.end).sections == plan.sections


# -- what the planner is given: a recording stand-in ----------------------------------------


class FakePlanner:
    """Stands in for `_sample_plan`: records what it is given and returns the known rows with
    `new_rows(n_new)` after them."""

    def __init__(self, new_rows):
        self.new_rows = new_rows
        self.calls = []

    def __call__(self, bundle, grid, key, style, known, mask, seed, steps, sampler,
                 guidance_scale, bar_cond=None, chord_bias=None):
        self.calls.append({"grid": grid, "known": known, "mask": mask, "bar_cond": bar_cond})
        n_known = int(mask[:, 0].sum())
        x = known.copy()
        x[n_known:] = self.new_rows(grid.n_bars - n_known)
        return x


def _rows(n: int, labels: list[int], starts: list[int]) -> np.ndarray:
    """`n` rows of C major chords (all zero: class 0 everywhere), the given label classes and
    section starts."""
    x = np.zeros((n, N_FEATURES), dtype=np.float32)
    x[np.arange(n), LABEL.start + np.asarray(labels)] = 1
    x[:, SECTION_START] = 0
    x[np.arange(n), SECTION_START.start + np.asarray(starts)] = 1
    return x


def test_the_planner_sees_a_window_and_its_labels_name_the_songs(planner, monkeypatch):
    # E appears only before the window; the window (last 16 bars) holds C then D
    song, plan = _song([("A", 8), ("E", 8), ("B", 8), ("C", 8), ("D", 8)])
    # window classes: C is 0, D is 1; 7 is one the window does not have
    fake = FakePlanner(lambda n: _rows(n, [1] * 4 + [7] * 4, [1, 0, 0, 0] * 2))
    monkeypatch.setattr(plan_module, "_sample_plan", fake)
    new, longer = extend_plan(planner, song, plan, 8, context_bars=16)

    (call,) = fake.calls
    assert call["grid"].n_bars == 24
    assert np.array_equal(call["grid"].bars, longer.bars[24:])
    assert call["mask"][:16].all() and not call["mask"][16:].any()
    labels = call["known"][:16, LABEL].argmax(axis=1)
    assert labels.tolist() == [0] * 8 + [1] * 8
    cond = plan_condition(PlanGrid.from_song(longer))[24:]
    position = CONDITION_NAMES.index("position")
    assert np.allclose(call["bar_cond"][:, position], np.arange(24) / 23)
    others = [i for i in range(len(CONDITION_NAMES)) if i != position]
    assert np.allclose(call["bar_cond"][:, others], cond[:, others])

    assert _cut(new, 40, song.end) == plan
    assert new.sections[-2:] == [Section(40, 4, "D"), Section(44, 4, "F")]


def test_new_bars_that_continue_the_last_section_keep_its_label(planner, monkeypatch):
    song, plan = _song([("A", 4), ("B", 4), ("A", 4)])
    # no section start on the new bars, and a label of their own on most of them
    fake = FakePlanner(lambda n: _rows(n, [5] * n, [0] * n))
    monkeypatch.setattr(plan_module, "_sample_plan", fake)
    new, _ = extend_plan(planner, song, plan, 8)
    assert new.sections == [Section(0, 4, "A"), Section(4, 4, "B"), Section(8, 12, "A")]


def test_the_window_leaves_room_for_the_new_bars(planner, monkeypatch):
    max_bars = planner.model.cfg.max_bars
    song, plan = _song([("A", 8), ("B", 8)] * 4)
    fake = FakePlanner(lambda n: _rows(n, [0] * n, [1] + [0] * (n - 1)))
    monkeypatch.setattr(plan_module, "_sample_plan", fake)
    extend_plan(planner, song, plan, max_bars - 10, context_bars=64)
    new, longer = extend_plan(planner, song, plan, max_bars)
    assert [c["grid"].n_bars for c in fake.calls] == [max_bars, max_bars]
    assert [int(c["mask"][:, 0].sum()) for c in fake.calls] == [10, 0]
    assert longer.n_bars == 64 + max_bars
    assert _cut(new, 64, song.end) == plan
    assert new.sections[-1] == Section(64, max_bars, "C")  # no context: a label of its own


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_bars": 0}, "bars must be >= 1, got 0"),
        ({"n_bars": "max+1"}, "bars must be <= {max}, got {max+1}"),
        ({"n_bars": 4, "context_bars": 0}, "context_bars must be >= 1, got 0"),
    ],
)
def test_bad_values_are_one_line_errors(planner, kwargs, message):
    max_bars = planner.model.cfg.max_bars
    if kwargs["n_bars"] == "max+1":
        kwargs = {"n_bars": max_bars + 1}
        message = f"bars must be <= {max_bars}, got {max_bars + 1}"
    song, plan = _song([("A", 8)])
    with pytest.raises(ValueError) as info:
        extend_plan(planner, song, plan, **kwargs)
    assert str(info.value) == message
