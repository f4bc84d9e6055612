"""The shipped planner's basses are tones of their chords (`decode_plan(bass_free=)`): read
one group at a time, 5.6% of its chorale chords had a bass outside the chord (C major over D;
0.3% of the analyzed chorales' time); the chords a user gives stay as given."""

import numpy as np
import pytest

from structdiff.analysis.chords import CHORD_TONES, QUALITIES
from structdiff.pipeline.plan import generate_plan, load_planner

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def planner():
    return load_planner()


def _outside(plan) -> list:
    return [c for c in plan.chords
            if c.quality != "N" and not CHORD_TONES[QUALITIES.index(c.quality), c.root, c.bass]]


def test_sampled_chords_have_a_chord_tone_in_the_bass(planner):
    plans = [generate_plan(planner, 32, style="chorale", seed=seed)[0] for seed in range(3)]
    assert sum(len(p.chords) for p in plans) > 150
    assert [_outside(p) for p in plans] == [[], [], []]


def test_given_chords_keep_their_bass(planner):
    plan, _ = generate_plan(planner, 2, style="chorale", key="C", chords="C/D | G7/Ab")
    assert [(c.root, c.quality, c.bass) for c in plan.chords] == [(0, "maj", 2), (7, "dom7", 8)]
    assert len(_outside(plan)) == 2 and np.all([c.duration for c in plan.chords])
