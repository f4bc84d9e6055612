import math

import numpy as np
import pytest

from structdiff.data.plan_tensor import decode_plan, encode_plan, uniform_grid
from structdiff.data.song import Chord, Key, Plan, Section, Song, TimeSignature
from structdiff.metrics.plan_metrics import (
    HISTOGRAM_BINS,
    compare_histograms,
    is_diatonic,
    jensen_shannon,
    plan_histograms,
    plan_statistics,
    pool_histograms,
    song_grid,
    total_variation,
)

BAR = 16  # steps of a 4/4 bar at 4 steps per quarter
C_MAJOR = Key(0, "major")
A_MINOR = Key(9, "minor")


def _loop(n_bars: int, chords=((0, "maj"), (7, "maj"), (9, "min"), (5, "maj"))) -> list[Chord]:
    """Two chords per bar, each two beats, cycling through `chords` (root, quality)."""
    out = []
    for k in range(2 * n_bars):
        root, quality = chords[k % len(chords)]
        out.append(Chord(k * 8, 8, root, quality, root))
    return out


def _bars(n_bars: int, bar: int = BAR) -> tuple[np.ndarray, int]:
    return np.arange(n_bars) * bar, n_bars * bar


def test_c_g_am_f_loop():
    bars, end = _bars(4)
    plan = Plan(C_MAJOR, _loop(4), [Section(0, 4, "A")])
    hist = plan_histograms(plan, bars, end)
    # C G Am F C G Am F: motions 7 2 8 7 7 2 8
    expected = np.zeros(12)
    expected[[7, 2, 8]] = [3 / 7, 2 / 7, 2 / 7]
    np.testing.assert_allclose(hist["root_motion"], expected)
    quality = dict(zip(HISTOGRAM_BINS["chord_quality"], hist["chord_quality"]))
    assert quality["maj"] == pytest.approx(0.75) and quality["min"] == pytest.approx(0.25)
    np.testing.assert_allclose(hist["harmonic_rhythm"], [0, 1, 0, 0, 0])  # every chord 2 beats
    stats = plan_statistics(plan, bars, end)
    assert stats["chords_per_bar"] == 2.0
    assert stats["diatonic_share"] == 1.0
    assert stats["no_chord_share"] == 0.0


def test_diatonic_share_is_duration_weighted_and_knows_harmonic_minor():
    assert is_diatonic(4, "maj", 9, "minor")  # E, V of A minor
    assert is_diatonic(4, "dom7", 9, "minor")  # E7
    assert is_diatonic(8, "dim7", 9, "minor")  # G#dim7, vii°7
    assert is_diatonic(7, "maj", 9, "minor")  # G, VII of natural minor
    assert not is_diatonic(2, "maj", 9, "minor")  # D major: F# is in no A minor scale
    assert not is_diatonic(4, "maj", 0, "major") and not is_diatonic(0, "N", 0, "major")
    # a bar of Am, two beats of E, two of D major (F# not in A minor)
    chords = [Chord(0, 16, 9, "min", 9), Chord(16, 8, 4, "maj", 4), Chord(24, 8, 2, "maj", 2)]
    bars, end = _bars(2)
    assert plan_statistics(Plan(A_MINOR, chords), bars, end)["diatonic_share"] == 0.75
    assert math.isnan(plan_statistics(Plan(None, chords), bars, end)["diatonic_share"])


def test_sections_a8_b8_a8():
    bars, end = _bars(24)
    sections = [Section(0, 8, "A"), Section(8, 8, "B"), Section(16, 8, "A")]
    stats = plan_statistics(Plan(C_MAJOR, [Chord(0, end, 0, "maj", 0)], sections), bars, end)
    assert stats["repeated_section_bars"] == pytest.approx(16 / 24)
    assert stats["n_labels"] == 2.0
    assert stats["mean_section_bars"] == 8.0
    assert stats["chords_per_bar"] == pytest.approx(1 / 24)
    # sections are cut to the bars measured: the first 12 bars are A8 B4, nothing repeats
    short = plan_statistics(Plan(C_MAJOR, [], sections), bars[:12], 12 * BAR)
    assert short["repeated_section_bars"] == 0.0 and short["mean_section_bars"] == 6.0


def test_n_chords_and_gaps():
    # C for a bar, N for a bar, G for a bar, then a bar no chord covers
    chords = [Chord(0, 16, 0, "maj", 0), Chord(16, 16, 0, "N", 0), Chord(32, 16, 7, "maj", 7)]
    bars, end = _bars(4)
    plan = Plan(C_MAJOR, chords)
    stats = plan_statistics(plan, bars, end)
    assert stats["no_chord_share"] == 0.5
    assert stats["chords_per_bar"] == 0.5
    hist = plan_histograms(plan, bars, end)
    assert hist["chord_quality"][-1] == 0.5  # N, covered or not
    assert hist["root_motion"][7] == 1.0  # C -> G across the N
    np.testing.assert_allclose(hist["harmonic_rhythm"], [0, 0, 0, 1, 0])


def test_split_chords_merge_and_beats_follow_the_meter():
    # one C held over a 4/2 bar (4 half-note beats of 8 steps), written as two halves
    split = [Chord(0, 16, 0, "maj", 0), Chord(16, 16, 0, "maj", 0)]
    hist = plan_histograms(Plan(C_MAJOR, split), [0], 32, beat_steps=8)
    np.testing.assert_allclose(hist["harmonic_rhythm"], [0, 0, 0, 1, 0])
    assert plan_statistics(Plan(C_MAJOR, split), [0], 32, beat_steps=8)["chords_per_bar"] == 1
    assert math.isnan(hist["root_motion"][0])  # one chord: no motion

    song = Song([], bars=np.array([0, 32]), end=64, time_signatures=[TimeSignature(0, 4, 2)])
    grid = song_grid(song)
    np.testing.assert_array_equal(grid["beat_steps"], [8, 8])
    chords = [Chord(0, 8, 0, "maj", 0), Chord(8, 56, 7, "maj", 7)]  # 1 beat, then 7 beats
    hist = plan_histograms(Plan(C_MAJOR, chords), **grid)
    np.testing.assert_allclose(hist["harmonic_rhythm"], [0.5, 0, 0, 0, 0.5])
    assert song_grid(song, n_bars=1)["end"] == 32


def test_a_decoded_plan_measures_like_its_source():
    grid = uniform_grid(4)
    plan = Plan(C_MAJOR, _loop(4), [Section(0, 2, "A"), Section(2, 2, "A")])
    decoded = decode_plan(encode_plan(plan, grid).x, grid, C_MAJOR)
    args = (grid.bars, grid.end)
    assert plan_statistics(decoded, *args) == plan_statistics(plan, *args)
    for name, hist in plan_histograms(plan, *args).items():
        np.testing.assert_allclose(plan_histograms(decoded, *args)[name], hist)


def test_empty_gives_nan():
    bars, end = _bars(2)
    stats = plan_statistics(Plan(C_MAJOR), bars, end)
    assert all(math.isnan(v) for v in stats.values())
    assert all(np.isnan(h).all() for h in plan_histograms(Plan(C_MAJOR), bars, end).values())
    full = Plan(C_MAJOR, _loop(2), [Section(0, 2, "A")])
    assert all(math.isnan(v) for v in plan_statistics(full, [], 0).values())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="bars"):
        plan_statistics(Plan(C_MAJOR), [16, 0], 32)
    with pytest.raises(ValueError, match="beat_steps"):
        plan_histograms(Plan(C_MAJOR), [0], 16, beat_steps=0)
    with pytest.raises(ValueError, match="steps_per_quarter"):
        plan_statistics(Plan(C_MAJOR), [0], 16, steps_per_quarter=0)
    with pytest.raises(ValueError, match="key_mode"):
        is_diatonic(0, "maj", 0, "dorian")


def test_distances_of_distributions():
    p = np.array([0.2, 0.3, 0.5, 0.0])
    assert total_variation(p, p) == 0.0 and jensen_shannon(p, p) == 0.0
    a, b = np.array([1.0, 1.0, 0, 0]), np.array([0, 0, 2.0, 2.0])  # normalized inside
    assert total_variation(a, b) == 1.0
    assert jensen_shannon(a, b) == pytest.approx(1.0)  # bits: ln 2 nats
    assert jensen_shannon([1, 0], [0.5, 0.5]) == pytest.approx(
        0.5 * math.log2(4 / 3) + 0.25 * math.log2(2 / 3) + 0.25 * 1.0
    )
    assert math.isnan(total_variation([0, 0], [1, 0]))
    with pytest.raises(ValueError, match="one length"):
        total_variation([1, 0], [1, 0, 0])


def test_compare_histograms_pools_each_plan_equally():
    set_a = [[1.0, 0.0], [0.0, 1.0], [math.nan, math.nan]]
    np.testing.assert_allclose(pool_histograms(set_a), [0.5, 0.5])
    same = compare_histograms(set_a, [[0.5, 0.5]])
    assert same == {"tv": 0.0, "js": 0.0, "n_a": 2, "n_b": 1}
    apart = compare_histograms([[1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]])
    assert apart["tv"] == 1.0 and apart["js"] == pytest.approx(1.0)
