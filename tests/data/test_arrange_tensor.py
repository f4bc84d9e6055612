"""The arranger's view of a plan: key shift, per-step plan arrays and per-token features."""

from dataclasses import replace

import numpy as np
import pytest

from structdiff.analysis import analyze
from structdiff.analysis.chords import QUALITIES
from structdiff.analysis.key import estimate_key
from structdiff.data.arrange_tensor import (
    INTENSITIES,
    INTENSITY_CUTS,
    MAX_WINDOW_LABELS,
    PLAN_FEATURES,
    STEPS_PER_TOKEN,
    WINDOW_STEPS,
    feature_slice,
    intensity_level,
    key_shift,
    note_density,
    step_plan,
    token_features,
    transpose_song,
    window_bars,
    withhold_bass,
)
from structdiff.data.io import read_song
from structdiff.data.song import PITCH, Key, Plan, Section, Song, TimeSignature, Track

N_TOKENS = WINDOW_STEPS // STEPS_PER_TOKEN
UNKNOWN = len(INTENSITIES)


@pytest.fixture(scope="module")
def chorale():
    """bwv66.6 (10 bars, a one-beat pickup, F# minor) and its analyzed plan."""
    song = read_song("music21:bach/bwv66.6")
    return song, analyze(song)


def _notes(starts, duration, pitch=60):
    return np.array([[s, duration, pitch, 80] for s in starts], dtype=np.int32)


def _bars_song(tracks, n_bars=2, bar_steps=16):
    bars = np.arange(n_bars, dtype=np.int64) * bar_steps
    return Song(tracks, bars, n_bars * bar_steps, [TimeSignature(0, 4, 4)])


# -- key shift and transposition -----------------------------------------------------------


@pytest.mark.parametrize(
    "tonic, shift", [(0, 0), (7, 5), (6, -6), (5, -5), (11, 1), (2, -2), (1, -1)]
)
def test_key_shift_moves_the_tonic_to_c_by_at_most_a_tritone(tonic, shift):
    for mode in ("major", "minor"):
        assert key_shift(Key(tonic, mode)) == shift
        assert (tonic + shift) % 12 == 0


def test_key_shift_of_no_key_is_zero():
    assert key_shift(None) == 0
    # a tritone goes down: F# -> C is -6 (the docstring's "-5..6" has it the other way round)
    assert sorted(key_shift(Key(t, "major")) for t in range(12)) == list(range(-6, 6))


def test_transposing_by_the_key_shift_puts_the_tonic_on_c(chorale):
    song, _ = chorale
    unsigned = replace(song, key_signature=None)  # the file's signature would bias the estimate
    key = estimate_key(unsigned)
    shift = key_shift(key)
    assert shift != 0  # bwv66.6 is not in C: the test moves something
    moved = transpose_song(unsigned, shift)
    for before, after in zip(song.tracks, moved.tracks):
        assert np.array_equal(after.notes[:, PITCH], before.notes[:, PITCH] + shift)
        assert np.array_equal(np.delete(after.notes, PITCH, 1), np.delete(before.notes, PITCH, 1))
    moved_key = estimate_key(moved)
    assert moved_key.tonic == 0 and moved_key.mode == key.mode
    # the original is untouched
    assert np.array_equal(song.tracks[0].notes, read_song("music21:bach/bwv66.6").tracks[0].notes)


def test_transpose_leaves_drums_and_zero_shift_alone():
    drums = Track("Drums", 0, True, _notes([0, 4], 1, pitch=36))
    melody = Track("Melody", 73, False, _notes([0, 4], 4, pitch=126))
    song = _bars_song([drums, melody])
    assert transpose_song(song, 0) is song
    moved = transpose_song(song, 5)
    assert moved.tracks[0].notes[:, PITCH].tolist() == [36, 36]
    assert moved.tracks[1].notes[:, PITCH].tolist() == [127, 127]  # clipped to MIDI's range
    assert melody.notes[:, PITCH].tolist() == [126, 126]


# -- step plan ------------------------------------------------------------------------------


def test_step_plan_chords_are_relative_to_the_tonic(chorale):
    song, plan = chorale
    sp = step_plan(song, plan)
    assert sp.n_steps == song.end
    tonic = plan.key.tonic
    assert tonic != 0  # else relative and absolute would agree
    checked = 0
    for c in plan.chords:
        if c.quality == "N" or c.onset >= song.end:
            continue
        assert sp.root[c.onset] == (c.root - tonic) % 12
        assert sp.bass[c.onset] == (c.bass - tonic) % 12
        assert sp.quality[c.onset] == QUALITIES.index(c.quality)
        checked += 1
    assert checked >= 10


def test_step_plan_without_chords_says_no_chord(chorale):
    song, plan = chorale
    sp = step_plan(song, replace(plan, chords=[]))
    assert (sp.root == 12).all() and (sp.bass == 12).all()
    assert (sp.quality == QUALITIES.index("N")).all()


def test_step_plan_bars_and_sections(chorale):
    song, plan = chorale
    sp = step_plan(song, plan)
    assert np.nonzero(sp.bar_start)[0].tolist() == song.bars.tolist()
    starts = [int(song.bars[s.start_bar]) for s in plan.sections]
    assert np.nonzero(sp.section_start)[0].tolist() == starts
    assert sp.labels == [s.label for s in plan.sections]
    for i, s in enumerate(plan.sections):
        lo = int(song.bars[s.start_bar])
        hi = int(song.bar_ends[s.start_bar + s.n_bars - 1])
        assert (sp.section[lo:hi] == i).all()
        assert sp.section_pos[lo] == 0 and (np.diff(sp.section_pos[lo:hi]) > 0).all()
        assert sp.section_pos[hi - 1] < 1
        last = int(song.bars[s.start_bar + s.n_bars - 1])
        assert sp.last_bar[last:hi].all() and not sp.last_bar[lo:last].any()
    # 4/4: a beat every quarter from each bar line (the pickup bar is one beat long)
    assert np.nonzero(sp.beat_start)[0].tolist() == list(range(0, song.end, 4))


def test_step_plan_phrase_ends_mark_whole_bars(chorale):
    song, plan = chorale
    sp = step_plan(song, plan)
    expected = np.zeros(song.end, dtype=bool)
    for b in plan.phrase_ends:
        expected[song.bars[b] : song.bar_ends[b]] = True
    assert plan.phrase_ends and np.array_equal(sp.phrase_end, expected)


def test_step_plan_intensity_measured_given_or_unknown(chorale):
    song, plan = chorale
    measured = step_plan(song, plan).intensity
    assert set(np.unique(measured).tolist()) <= {0, 1, 2}
    empty = Song([], song.bars, song.end, song.time_signatures)
    assert (step_plan(empty, plan).intensity == UNKNOWN).all()
    n = len(plan.sections)
    assert (step_plan(song, plan, [2] * n).intensity == 2).all()
    levels = [i % 3 for i in range(n)]
    given = step_plan(empty, plan, levels).intensity
    for level, s in zip(levels, plan.sections):
        lo, hi = song.bars[s.start_bar], song.bar_ends[s.start_bar + s.n_bars - 1]
        assert (given[lo:hi] == level).all()
    # a list too short leaves the remaining sections unknown
    short = step_plan(song, plan, [0]).intensity
    assert (short[: song.bar_ends[plan.sections[0].n_bars - 1]] == 0).all()
    assert short[-1] == UNKNOWN


def test_step_plan_without_sections_is_one_section(chorale):
    song, plan = chorale
    sp = step_plan(song, replace(plan, sections=[]))
    assert np.nonzero(sp.section_start)[0].tolist() == [0]
    assert (sp.section == 0).all() and sp.labels == ["A"]
    assert sp.section_pos[0] == 0 and (np.diff(sp.section_pos) > 0).all()


# -- token features -------------------------------------------------------------------------


def _group(features, name):
    return features[:, feature_slice(name)]


def test_token_features_shape_and_one_hot_groups(chorale):
    song, plan = chorale
    f = token_features(step_plan(song, plan), 0)
    assert f.shape == (N_TOKENS, PLAN_FEATURES) and f.dtype == np.float32
    real = min(N_TOKENS, song.end // STEPS_PER_TOKEN)
    for name in ("root", "quality", "bass", "label", "intensity"):
        assert (_group(f, name)[:real].sum(axis=1) == 1).all(), name
    assert (f[:real, -1] == 0).all()


def test_token_features_pad_tokens_past_the_end(chorale):
    song, plan = chorale
    start = int(song.bars[-2])
    f = token_features(step_plan(song, plan), start)
    real = (song.end - start) // STEPS_PER_TOKEN
    assert 0 < real < N_TOKENS
    assert (f[real:, -1] == 1).all() and (f[real:, :-1] == 0).all()
    assert (f[:real, -1] == 0).all() and (_group(f, "root")[:real].sum(axis=1) == 1).all()
    # a token only partly inside the song counts as padding
    g = token_features(step_plan(song, plan), start + 2)
    assert g[real - 1, -1] == 1 and g[real - 2, -1] == 0


def test_token_features_chord_of_each_token(chorale):
    song, plan = chorale
    sp = step_plan(song, plan)
    f = token_features(sp, 0)
    assert song.end > WINDOW_STEPS  # the window is full
    for n in range(N_TOKENS):
        step = n * STEPS_PER_TOKEN
        assert np.argmax(_group(f, "root")[n]) == sp.root[step]
        assert np.argmax(_group(f, "quality")[n]) == sp.quality[step]
        assert np.argmax(_group(f, "bass")[n]) == sp.bass[step]
        assert np.argmax(_group(f, "intensity")[n]) == sp.intensity[step]


def test_token_features_without_the_bass_zero_its_group_only(chorale):
    song, plan = chorale
    sp = step_plan(song, plan)
    f, g = token_features(sp, 0), token_features(sp, 0, bass=False)
    bass = feature_slice("bass")
    assert (_group(f, "bass").sum(axis=1) == 1).all() and (g[:, bass] == 0).all()
    rest = np.ones(PLAN_FEATURES, dtype=bool)
    rest[bass] = False
    assert np.array_equal(f[:, rest], g[:, rest])  # the chord's root and quality stay
    assert np.array_equal(withhold_bass(f), g) and (f[:, bass].sum() > 0)  # a copy


def test_window_bars_reads_back_the_bar_starts(chorale):
    song, plan = chorale
    sp = step_plan(song, plan)
    for start in (0, 20, 100, int(song.bars[-1])):
        f = token_features(sp, start)
        inside = song.bars[(song.bars >= start) & (song.bars < start + WINDOW_STEPS)]
        assert window_bars(f).tolist() == (inside - start).tolist()
    assert window_bars(token_features(sp, 0)).tolist()[:3] == [0, 4, 20]  # the pickup


def test_section_labels_are_numbered_within_the_window(chorale):
    song, plan = chorale
    sp = step_plan(song, plan)
    second = plan.sections[1]
    start = int(song.bars[second.start_bar])
    whole = token_features(sp, 0)
    later = token_features(sp, start)
    first_token = start // STEPS_PER_TOKEN
    assert np.argmax(_group(whole, "label")[first_token]) == 1  # B after A
    assert np.argmax(_group(later, "label")[0]) == 0  # B first in its own window
    third = (int(song.bars[plan.sections[2].start_bar]) - start) // STEPS_PER_TOKEN
    assert np.argmax(_group(later, "label")[third]) == 1
    # the section-start flag follows the window: on its first token and the next section's
    flags = _group(later, "section")[:, 0]
    assert flags[0] == 1 and flags[third] == 1 and flags[1:third].sum() == 0


def test_intro_and_outro_have_their_own_label_classes():
    song = _bars_song([], n_bars=4)
    plan = Plan(key=Key(0, "major"), sections=[Section(0, 1, "i"), Section(1, 2, "A"),
                                               Section(3, 1, "o")])
    f = token_features(step_plan(song, plan), 0)
    labels = np.argmax(_group(f, "label")[: song.end // STEPS_PER_TOKEN], axis=1)
    assert labels.tolist() == [MAX_WINDOW_LABELS] * 4 + [0] * 8 + [MAX_WINDOW_LABELS + 1] * 4


def test_token_features_needs_whole_tokens(chorale):
    song, plan = chorale
    with pytest.raises(ValueError, match="multiple of 4"):
        token_features(step_plan(song, plan), 0, n_steps=30)
    with pytest.raises(KeyError, match="no plan feature group"):
        feature_slice("tempo")


# -- intensity --------------------------------------------------------------------------------


def test_intensity_level_is_monotonic_over_the_cuts():
    lo, hi = INTENSITY_CUTS
    densities = np.linspace(0, 2, 401)
    levels = [intensity_level(d) for d in densities]
    assert levels == sorted(levels) and set(levels) == {0, 1, 2}
    assert intensity_level(0.0) == 0 and intensity_level(lo - 1e-6) == 0
    assert intensity_level(lo) == 1 and intensity_level(hi - 1e-6) == 1
    assert intensity_level(hi) == 2 and intensity_level(10.0) == 2


def test_note_density_counts_onsets_per_quarter_per_playing_track():
    quarters = Track("A", 0, False, _notes(range(0, 32, 4), 4))  # 8 quarters
    halves = Track("B", 0, False, _notes(range(0, 32, 8), 8))  # 4 halves
    second_bar = Track("C", 0, False, _notes(range(16, 32, 4), 4))  # 4 quarters, bar 2
    drums = Track("Drums", 0, True, _notes(range(32), 1, pitch=36))
    assert note_density(_bars_song([quarters, replace(quarters, name="A2")]), 0, 32) == 1.0
    assert note_density(_bars_song([quarters, halves]), 0, 32) == 0.75
    # a track silent in the span does not count; a drum track's hits are its onsets
    assert note_density(_bars_song([quarters, second_bar]), 0, 16) == 1.0
    assert note_density(_bars_song([quarters, second_bar, drums]), 0, 16) == 2.5
    assert note_density(_bars_song([drums]), 0, 32) == 4.0
    assert note_density(_bars_song([quarters]), 8, 8) == 0.0


def test_step_plan_measures_intensity_with_the_given_cuts():
    busy = Track("A", 0, False, _notes(range(0, 32, 2), 2))  # 2 onsets per quarter
    song = _bars_song([busy])
    plan = Plan(sections=[Section(0, 2, "A")])
    assert step_plan(song, plan).intensity[0] == 2  # the chorale cuts: high
    assert step_plan(song, plan, cuts=(1.63, 2.26)).intensity[0] == 1  # the band's: mid
