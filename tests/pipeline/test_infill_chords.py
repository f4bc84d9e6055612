"""Writing a song's chords anew (`infill_chords`) with the shipped planner, some beats kept:
the kept beats keep their chords and the planner writes the rest around them."""

from dataclasses import replace

import numpy as np
import pytest

from structdiff.data.plan_tensor import MAX_SLOTS
from structdiff.data.song import Chord, Key, Plan, Section, Song, Tempo, TimeSignature
from structdiff.pipeline.plan import infill_chords, load_planner

pytestmark = pytest.mark.usefixtures("one_thread")

BAR, BEAT, BARS = 16, 4, 8
# an unusual chord a beat (root, quality, bass), which the planner would not write itself
CYCLE = [(1, "aug", 5), (8, "dim", 8), (3, "min", 10), (11, "hdim7", 2), (6, "maj", 6)]


@pytest.fixture(scope="module")
def planner():
    return load_planner()


@pytest.fixture(scope="module")
def song_and_plan():
    chords = [Chord(b * BEAT, BEAT, *CYCLE[b % len(CYCLE)]) for b in range(BARS * 4)]
    plan = Plan(Key(0, "major"), chords, [Section(0, 4, "A"), Section(4, 4, "B")], [3])
    song = Song([], np.arange(BARS, dtype=np.int64) * BAR, BARS * BAR,
                [TimeSignature(0, 4, 4)], [Tempo(0, 100.0)])
    return song, plan


def _at(plan: Plan, step: int) -> tuple:
    chord = next(c for c in plan.chords if c.onset <= step < c.onset + c.duration)
    return chord.root, chord.quality, chord.bass


def test_kept_beats_keep_their_chords_and_the_rest_is_written_anew(planner, song_and_plan):
    song, plan = song_and_plan
    keep = np.zeros((BARS, MAX_SLOTS), dtype=bool)
    keep[3, 2:4] = True  # the cadence of the phrase that ends in bar 4
    keep[7, 3] = True
    out = infill_chords(planner, song, plan, range(BARS), seed=0, keep=keep)
    for bar, slot in zip(*np.nonzero(keep)):
        step = bar * BAR + slot * BEAT
        assert _at(out, step) == _at(plan, step)
    free = [b * BAR + s * BEAT for b in range(BARS) for s in range(4) if not keep[b, s]]
    assert sum(_at(out, s) != _at(plan, s) for s in free) > len(free) // 2
    # the control: without `keep` the planner does not happen to write those beats' chords
    alone = infill_chords(planner, song, plan, range(BARS), seed=0)
    assert any(_at(alone, b * BAR + s * BEAT) != _at(plan, b * BAR + s * BEAT)
               for b, s in zip(*np.nonzero(keep)))
    assert out.sections == plan.sections and out.phrase_ends == plan.phrase_ends


def test_beats_kept_outside_the_written_bars_change_nothing(planner, song_and_plan):
    song, plan = song_and_plan
    keep = np.zeros((BARS, MAX_SLOTS), dtype=bool)
    keep[0, 0] = True  # bar 1 is not written anew: it stays whole anyway
    out = infill_chords(planner, song, plan, range(4, BARS), seed=1, keep=keep)
    assert out.chords[:16] == plan.chords[:16]
    assert out == infill_chords(planner, song, plan, range(4, BARS), seed=1)


def test_a_keep_of_the_wrong_shape_is_a_one_line_error(planner, song_and_plan):
    song, plan = song_and_plan
    with pytest.raises(ValueError, match=r"keep must be \[bars, slots\] = \[8, 8\]"):
        infill_chords(planner, song, plan, range(BARS), keep=np.zeros((4, MAX_SLOTS), bool))
    with pytest.raises(ValueError, match="not bars of the song"):
        infill_chords(planner, replace(song), plan, range(2, 12))
