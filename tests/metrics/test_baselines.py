import numpy as np

from structdiff.data.io import read_song
from structdiff.metrics.baselines import random_pitches, shuffle_bars


def _bar_contents(song):
    """Per bar: the multiset of (offset in bar, pitch) of its notes, order-free."""
    notes = song.all_notes()
    bars = song.bar_of(notes[:, 0])
    return sorted(
        tuple(sorted(zip((notes[bars == b, 0] - song.bars[b]).tolist(),
                         notes[bars == b, 2].tolist())))
        for b in range(song.n_bars)
    )


def test_shuffled_bars_keep_each_bar_but_not_the_order():
    song = read_song("music21:bach/bwv66.6")
    song.bars = song.bars[1:] - song.bars[1]  # drop the pickup so all bars are equal
    for t in song.tracks:
        t.notes = t.notes[t.notes[:, 0] >= 4]
        t.notes[:, 0] -= 4
    song.end -= 4
    shuffled = shuffle_bars(song, np.random.default_rng(0))
    assert _bar_contents(shuffled) == _bar_contents(song)
    assert not np.array_equal(shuffled.tracks[0].notes, song.tracks[0].notes)
    assert sum(t.n_notes for t in shuffled.tracks) == sum(t.n_notes for t in song.tracks)


def test_a_note_held_over_a_bar_line_is_cut_at_its_bar_end():
    song = read_song("music21:bach/bwv66.6")
    held = song.tracks[0].notes.copy()
    held[-2, 1] += 8  # the second-to-last note now sounds into the last bar
    song.tracks[0].notes = held
    for seed in range(5):
        shuffled = shuffle_bars(song, np.random.default_rng(seed))
        ends = shuffled.all_notes()[:, 0] + shuffled.all_notes()[:, 1]
        assert ends.max() <= shuffled.end
        notes = shuffled.all_notes()
        bars = shuffled.bar_of(notes[:, 0])
        assert (notes[:, 0] + notes[:, 1] <= shuffled.bar_ends[bars]).all()


def test_random_pitches_keep_rhythm_and_range():
    song = read_song("music21:bach/bwv66.6")
    noisy = random_pitches(song, np.random.default_rng(0))
    for a, b in zip(song.tracks, noisy.tracks):
        assert sorted(map(tuple, a.notes[:, :2].tolist())) == sorted(
            map(tuple, b.notes[:, :2].tolist()))
        assert a.notes[:, 2].min() <= b.notes[:, 2].min() <= b.notes[:, 2].max() <= a.notes[
            :, 2].max()
        assert not np.array_equal(a.notes[:, 2], b.notes[:, 2])
