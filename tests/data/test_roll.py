import numpy as np
import pytest

from structdiff.data.io import read_song
from structdiff.data.roles import load_role_map
from structdiff.data.roll import decode_roll, encode_roll, normalize_for_roll
from structdiff.data.song import Song, Track


@pytest.mark.parametrize(
    "ref", ["music21:bach/bwv66.6", "music21:haydn/opus74no1/movement3",
            "music21:monteverdi/madrigal.3.1"]
)
def test_encode_decode_returns_the_same_notes_on_real_scores(ref):
    song = read_song(ref)
    roles = load_role_map(song.role_map).roles
    roll = encode_roll(song, roles)
    assert roll.shape == (len(roles), song.end, 128, 2)
    decoded = decode_roll(roll, roles)
    for role in roles:
        tracks = [t.notes for t in song.tracks if t.role == role]
        expected = normalize_for_roll(np.concatenate(tracks)) if tracks else np.zeros((0, 4))
        assert np.array_equal(decoded[role], expected), role


def test_chorale_voices_come_back_exactly():
    song = read_song("music21:bach/bwv66.6")
    roles = ["soprano", "alto", "tenor", "bass"]
    decoded = decode_roll(encode_roll(song, roles), roles)
    for t in song.tracks:
        assert np.array_equal(decoded[t.role][:, :3], t.notes[:, :3])


def _song(notes, drum=False, role="keys"):
    arr = np.asarray(notes, dtype=np.int32)
    return Song([Track("t", 0, drum, arr, role=role)], bars=np.array([0]), end=32)


def test_repeated_notes_stay_apart_and_window_start_gets_an_onset():
    song = _song([[0, 4, 60, 80], [4, 4, 60, 80], [8, 8, 64, 80]])
    roll = encode_roll(song, ["keys"], start=2, end=12)
    notes = decode_roll(roll, ["keys"], start=2)["keys"]
    assert notes[:, :3].tolist() == [[2, 2, 60], [4, 4, 60], [8, 4, 64]]


def test_drums_are_onset_only_hits():
    song = _song([[0, 3, 36, 100], [4, 2, 42, 100]], drum=True, role="drums")
    roll = encode_roll(song, ["drums"])
    assert not roll[..., 1].any()
    assert decode_roll(roll, ["drums"])["drums"][:, :3].tolist() == [[0, 1, 36], [4, 1, 42]]


def test_pitch_window_and_bad_shapes():
    song = _song([[0, 4, 20, 80], [0, 4, 60, 80]])
    roll = encode_roll(song, ["keys"], pitch_low=33, n_pitches=54)
    assert decode_roll(roll, ["keys"], pitch_low=33)["keys"][:, 2].tolist() == [60]
    with pytest.raises(ValueError, match="roll must be"):
        decode_roll(np.zeros((2, 4, 128)), ["keys"])
