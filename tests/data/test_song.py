import numpy as np

from structdiff.data.song import TimeSignature, bar_grid, extend_bars


def test_bar_grid_follows_meters_and_pickup():
    tss = [TimeSignature(0, 4, 4), TimeSignature(36, 3, 4)]
    bars = bar_grid(tss, end=60, steps_per_quarter=4, pickup=4)
    # pickup of one beat, two 4/4 bars, then 3/4 bars from step 36
    assert bars.tolist() == [0, 4, 20, 36, 48]


def test_meter_change_inside_a_bar_starts_a_new_bar():
    bars = bar_grid([TimeSignature(0, 4, 4), TimeSignature(24, 6, 8)], 60, 4)
    assert bars.tolist() == [0, 16, 24, 36, 48]


def test_extend_bars_covers_notes_after_last_bar_line():
    assert extend_bars(np.array([0, 16]), 70, 16).tolist() == [0, 16, 32, 48, 64]
