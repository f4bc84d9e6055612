"""The shipped classical planner writes a chorale around phrase ends drawn with its form
(`FormModel.phrase_ends`) and with its chorale guidance (`sampling_settings`). Left to write
its own phrase ends, it ended a phrase on 45% of a chorale's bars, most of them one bar
long, only half of them where a section ends (Bach's analyzed chorales: 36% of the bars, 10%
one-bar phrases, 85% at a section's end)."""

import numpy as np
import pytest

from structdiff.pipeline.plan import generate_plan, load_planner, sampling_settings

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def planner():
    return load_planner()


def test_chorale_phrases_end_where_sections_end_and_last_more_than_a_bar(planner):
    at_section_end, lengths = [], []
    for seed in range(6):
        plan, _ = generate_plan(planner, 32, style="chorale", seed=seed)
        ends = {s.start_bar + s.n_bars - 1 for s in plan.sections}
        at_section_end += [b in ends for b in plan.phrase_ends]
        lengths += np.diff([-1] + plan.phrase_ends).tolist()
    assert len(lengths) > 40
    assert np.mean(at_section_end) > 0.75
    assert np.mean(np.asarray(lengths) == 1) < 0.25


def test_the_classical_planner_guides_its_chorales_only(planner):
    assert sampling_settings(planner, "chorale")["guidance"] == 3.0
    assert "guidance" not in sampling_settings(planner, "madrigal")
    assert "guidance" not in sampling_settings(planner, None)
    default, _ = generate_plan(planner, 8, style="chorale", seed=1)
    guided, _ = generate_plan(planner, 8, style="chorale", seed=1, guidance_scale=3.0)
    unguided, _ = generate_plan(planner, 8, style="chorale", seed=1, guidance_scale=1.0)
    assert default == guided and default.chords != unguided.chords


def test_chorales_end_on_a_final_chord_drawn_from_the_training_chorales(planner):
    # the planner left to end them itself: 72% on the tonic unguided, 53% at its chorale
    # guidance (36 chorales of 32 bars); the training chorales' final chords: 86%
    finals = planner.forms.styles["chorale"].finals
    tonic = sum(n for mode in finals.values() for chord, n in mode.items()
                if chord.startswith("0 "))
    assert tonic / sum(sum(mode.values()) for mode in finals.values()) > 0.8
    for seed in range(6):
        plan, _ = generate_plan(planner, 16, style="chorale", seed=seed)
        drawn = planner.forms.final_chord("chorale", plan.key.mode,
                                          np.random.default_rng([seed, 3]))
        last = plan.chords[-1]
        assert ((last.root - plan.key.tonic) % 12, last.quality,
                (last.bass - plan.key.tonic) % 12) == drawn
