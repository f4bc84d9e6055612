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


def test_crop_bars_cuts_notes_plan_and_meters():
    from structdiff.data.song import Chord, Key, Plan, Section, Song, Tempo, Track, crop_bars

    notes = np.array([[0, 4, 60, 80], [12, 8, 62, 80], [20, 4, 64, 80]])
    plan = Plan(Key(0, "major"), [Chord(0, 16, 0, "maj", 0), Chord(16, 16, 7, "maj", 7)],
                [Section(0, 1, "A"), Section(1, 1, "B")], [0, 1])
    song = Song([Track("x", 0, False, notes)], np.array([0, 16]), 32,
                [TimeSignature(0, 4, 4), TimeSignature(16, 3, 4)], [Tempo(0, 90.0),
                                                                    Tempo(20, 60.0)], plan=plan)
    cut = crop_bars(song, 1)
    assert cut.end == 16 and cut.bars.tolist() == [0]
    assert cut.tracks[0].notes.tolist() == [[0, 4, 60, 80], [12, 4, 62, 80]]
    assert [(c.onset, c.duration) for c in cut.plan.chords] == [(0, 16)]
    assert cut.plan.form == "A1" and cut.plan.phrase_ends == [0]
    assert len(cut.time_signatures) == 1 and len(cut.tempos) == 1
    assert crop_bars(song, 5) is song


def test_drop_bars_keeps_the_rest_from_step_0():
    from structdiff.data.song import Chord, Key, Plan, Section, Song, Tempo, Track, drop_bars

    notes = np.array([[0, 4, 60, 80], [16, 8, 62, 80], [20, 4, 64, 80]])
    plan = Plan(Key(0, "major"), [Chord(0, 16, 0, "maj", 0), Chord(16, 12, 7, "maj", 7)],
                [Section(0, 1, "A"), Section(1, 1, "B")], [0, 1])
    song = Song([Track("x", 0, False, notes)], np.array([0, 16]), 28,
                [TimeSignature(0, 4, 4), TimeSignature(16, 3, 4)], [Tempo(0, 90.0)], plan=plan)
    rest = drop_bars(song, 1)
    assert rest.end == 12 and rest.bars.tolist() == [0]
    assert rest.tracks[0].notes.tolist() == [[0, 8, 62, 80], [4, 4, 64, 80]]
    assert [(c.onset, c.root) for c in rest.plan.chords] == [(0, 7)]
    assert rest.plan.form == "B1" and rest.plan.phrase_ends == [0]
    assert [(t.step, t.numerator) for t in rest.time_signatures] == [(0, 3)]
    assert drop_bars(song, 0) is song
