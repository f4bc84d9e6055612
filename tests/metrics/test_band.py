import math

import numpy as np
import pytest

from structdiff.data.song import Chord, Key, Plan, Song, TimeSignature, Track
from structdiff.metrics.band import (
    CopyIndex,
    band_metrics,
    bar_contents,
    bass_root_at_changes,
    chord_changes,
    drum_hits_per_bar,
    longest_copy_bars,
    role_chord_tone_ratio,
)

BAR = 16  # 4/4 on a 16th grid


def _notes(rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.int32).reshape(-1, 4)


def _song(n_bars: int, tracks: list[Track], plan: Plan | None = None) -> Song:
    return Song(tracks, bars=np.arange(n_bars) * BAR, end=n_bars * BAR,
                time_signatures=[TimeSignature(0, 4, 4)], plan=plan, role_map="band")


def _drums(rows) -> Track:
    return Track("Drums", 0, True, _notes(rows), "drums")


def _bass(rows) -> Track:
    return Track("Bass", 33, False, _notes(rows), "bass")


def _melody(rows) -> Track:
    return Track("Melody", 73, False, _notes(rows), "melody")


# drum hits per bar


def _rock_bar(bar: int) -> list[list[int]]:
    """Four kicks (35 and 36 doubled on beat 1), snare on 2 and 4, eighth hats with one open."""
    s = bar * BAR
    kicks = [[s + q, 1, 36, 100] for q in (0, 4, 8, 12)] + [[s, 1, 35, 90]]
    snares = [[s + 4, 1, 38, 100], [s + 12, 1, 40, 100]]
    hats = [[s + e, 1, 42, 70] for e in range(0, 14, 2)] + [[s + 14, 1, 46, 70]]
    return kicks + snares + hats


def test_four_kicks_two_snares_eight_hats_per_bar():
    song = _song(2, [_drums(_rock_bar(0) + _rock_bar(1))])
    assert drum_hits_per_bar(song, "kick") == 4.0  # 35 with 36 at one step is one kick
    assert drum_hits_per_bar(song, "snare") == 2.0
    assert drum_hits_per_bar(song, "hihat") == 8.0  # closed and open
    assert drum_hits_per_bar(song, "open_hat") == 1.0
    assert drum_hits_per_bar(song, "ride") == 0.0


def test_drum_hits_count_every_bar_and_every_drum_track():
    # one bar of kicks on one track, a second track's kick on beat 3 of the same bar; 2 bars
    song = _song(2, [_drums([[0, 1, 36, 100], [4, 1, 36, 100]]), _drums([[8, 1, 36, 100]])])
    assert drum_hits_per_bar(song, "kick") == 1.5


def test_drum_hits_nan_without_drums_and_error_for_unknown_class():
    song = _song(1, [_bass([[0, 4, 36, 80]])])  # pitch 36 on a pitched track is no kick
    assert math.isnan(drum_hits_per_bar(song, "kick"))
    with pytest.raises(ValueError, match="unknown drum class"):
        drum_hits_per_bar(song, "cowbell")


# bass on the root at chord changes

C, F, G, AM = (0, "maj", 0), (5, "maj", 5), (7, "maj", 7), (9, "min", 9)


def _chords(*spec) -> list[Chord]:
    """Chords of `(root, quality, bass)` one per half bar."""
    return [Chord(i * 8, 8, *c) for i, c in enumerate(spec)]


def test_bass_on_the_root_at_three_of_four_changes():
    chords = _chords(C, AM, F, G)
    bass = _bass([[0, 8, 36, 80],    # C under C
                  [8, 8, 45, 80],    # A under Am
                  [16, 8, 41, 80],   # F under F
                  [24, 8, 38, 80]])  # D under G: not the root
    song = _song(2, [bass])
    assert bass_root_at_changes(song, chords) == 0.75


def test_bass_held_over_a_change_or_struck_within_the_beat():
    chords = _chords(C, G)
    # the C held into the G chord counts (a miss); a note struck later is not looked at
    assert bass_root_at_changes(_song(1, [_bass([[0, 10, 36, 80], [10, 6, 43, 80]])]),
                                chords) == 0.5
    # a rest at the change, then G struck within the beat (4 steps): a hit
    assert bass_root_at_changes(_song(1, [_bass([[0, 6, 36, 80], [10, 6, 43, 80]])]),
                                chords) == 1.0
    # nothing until after the beat: the change is not counted
    assert bass_root_at_changes(_song(1, [_bass([[0, 6, 36, 80], [12, 4, 43, 80]])]),
                                chords) == 1.0
    # the lowest of two sounding notes is the bass
    assert bass_root_at_changes(_song(1, [_bass([[0, 16, 36, 80], [0, 16, 31, 80]])]),
                                chords[:1]) == 0.0


def test_repeated_chords_are_one_change_and_n_is_none():
    chords = [Chord(0, 4, *C), Chord(4, 4, *C), Chord(8, 4, 0, "N", 0), Chord(12, 4, *C)]
    assert [c.onset for c in chord_changes(chords)] == [0, 12]
    # bass C for the first C, D under the C after N: one of two
    song = _song(1, [_bass([[0, 8, 36, 80], [12, 4, 38, 80]])])
    assert bass_root_at_changes(song, chords) == 0.5


def test_bass_root_nan_without_bass_or_chords_and_plan_by_default():
    chords = _chords(C, G)
    assert math.isnan(bass_root_at_changes(_song(1, [_melody([[0, 8, 60, 80]])]), chords))
    assert math.isnan(bass_root_at_changes(_song(1, [_bass([[0, 8, 36, 80]])]), []))
    song = _song(1, [_bass([[0, 8, 36, 80], [8, 8, 43, 80]])], Plan(chords=chords))
    assert bass_root_at_changes(song) == 1.0
    with pytest.raises(ValueError, match="bad chord"):
        bass_root_at_changes(song, [Chord(0, 8, 12, "maj", 0)])


# chord tones per role


def test_role_chord_tone_ratio_reuses_harmony_per_role():
    chords = [Chord(0, BAR, *C)]
    song = _song(1, [_melody([[0, 8, 64, 80], [8, 8, 62, 80]]),  # E fits C, D does not
                     _bass([[0, 16, 36, 80]]), _drums([[0, 1, 37, 100]])])
    assert role_chord_tone_ratio(song, "melody", chords) == 0.5
    assert role_chord_tone_ratio(song, "bass", chords) == 1.0
    assert math.isnan(role_chord_tone_ratio(song, "drums", chords))
    metrics = band_metrics(song, Plan(chords=chords))
    assert metrics["chord_tone_ratio/melody"] == 0.5
    assert metrics["bass_root_at_changes"] == 1.0
    assert metrics["snare_hits_per_bar"] == 1.0
    assert "chord_tone_ratio/drums" not in metrics


# novelty


def _phrase(bars: int, first_pitch: int, offset_bars: int = 0) -> list[list[int]]:
    """A different two-note figure in each bar."""
    rows = []
    for b in range(bars):
        s = (b + offset_bars) * BAR
        rows += [[s, 4, first_pitch + b, 80], [s + 8, 8, first_pitch + 2 * b + 3, 80]]
    return rows


def test_a_track_that_copies_three_bars_of_a_training_song():
    train = _song(8, [_melody(_phrase(8, 60))], Plan(key=Key(0, "major")))
    index = CopyIndex([train])
    # bars 2-4 of the training melody (pitches start at 62), placed at bars 1-3, then new bars
    copied = [r for r in _phrase(8, 60) if 2 * BAR <= r[0] < 5 * BAR]
    copied = [[r[0] - BAR, *r[1:]] for r in copied]
    fresh = [[4 * BAR, 4, 90, 80], [5 * BAR, 4, 91, 80]]
    song = _song(6, [_melody([[0, 4, 30, 80], *copied, *fresh])], Plan(key=Key(0, "major")))
    assert longest_copy_bars(song, "melody", index) == 3.0


def test_a_copy_in_another_key_is_a_copy_and_rests_never_match():
    train = _song(4, [_melody(_phrase(4, 60))], Plan(key=Key(0, "major")))
    index = CopyIndex([train])
    up = [[s, d, p + 2, v] for s, d, p, v in _phrase(4, 60)]
    song = _song(4, [_melody(up)], Plan(key=Key(2, "major")))  # all of it, in D
    assert longest_copy_bars(song, "melody", index) == 4.0
    # the same bars with an empty bar between: two runs of 2, not 5
    gapped = _phrase(2, 60) + [[s + BAR, d, p, v] for s, d, p, v in _phrase(4, 60)[4:]]
    song = _song(5, [_melody(gapped)], Plan(key=Key(0, "major")))
    assert longest_copy_bars(song, "melody", index) == 2.0
    assert math.isnan(longest_copy_bars(song, "bass", index))


def test_copies_are_per_role_and_per_training_song():
    a = _song(2, [_melody(_phrase(2, 60))])
    b = _song(2, [_melody([[0, 4, 40, 80]] + _phrase(1, 61, 1))])
    index = CopyIndex([a, b], roles=["melody"])
    # bar 0 of a, then bar 1 of b: two one-bar copies from different songs, not a two-bar one
    song = _song(2, [_melody(_phrase(1, 60) + _phrase(1, 61, 1))])
    assert bar_contents(song, "melody")[1] == bar_contents(b, "melody")[1]
    assert longest_copy_bars(song, "melody", index) == 1.0
    # the melody played by the bass copies nothing of the melody role
    bass = _song(2, [_bass(_phrase(2, 60))])
    assert longest_copy_bars(bass, "bass", index) == 0.0


def test_drum_bars_match_on_the_reduced_kit():
    train = _song(2, [_drums(_rock_bar(0) + _rock_bar(1))])
    index = CopyIndex([train])
    # the same grooves with 35 for every kick and 44 (pedal) for the closed hats
    swapped = [[s, d, {36: 35, 42: 44}.get(p, p), v] for s, d, p, v in _rock_bar(0)]
    song = _song(2, [_drums(swapped + _rock_bar(1))])
    assert longest_copy_bars(song, "drums", index) == 2.0
