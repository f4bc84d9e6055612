import numpy as np
import pytest

from structdiff.data.io import read_song
from structdiff.data.song import Song, Track
from structdiff.data.tokens import (
    HOLD,
    REST,
    decode_tokens,
    encode_tokens,
    fold_into_range,
    vocab_size,
)

VOICES = ["soprano", "alto", "tenor", "bass"]


@pytest.mark.parametrize("ref", ["music21:bach/bwv66.6", "music21:bach/bwv4.8"])
def test_chorale_voices_come_back_exactly(ref):
    song = read_song(ref)
    tokens = encode_tokens(song, VOICES)
    assert tokens.shape == (4, song.end) and tokens.dtype == np.int64
    assert tokens.min() >= 0 and tokens.max() < vocab_size(54)
    decoded = decode_tokens(tokens, VOICES)
    for t in song.tracks:
        assert np.array_equal(decoded[t.role][:, :3], t.notes[:, :3]), t.role


def _song(notes, role="melody", end=16):
    arr = np.asarray(notes, dtype=np.int32).reshape(-1, 4)
    return Song([Track("t", 0, False, arr, role=role)], bars=np.array([0]), end=end)


def test_tokens_of_a_melody_with_a_repeated_note():
    song = _song([[0, 2, 60, 80], [2, 1, 60, 80], [4, 3, 62, 80]], end=8)
    assert encode_tokens(song, ["melody"])[0].tolist() == [29, HOLD, 29, REST, 31, HOLD, HOLD, REST]


def test_window_start_inside_a_note_gets_an_onset():
    song = _song([[0, 6, 60, 80], [6, 4, 64, 80], [10, 6, 67, 80]])
    tokens = encode_tokens(song, ["melody"], start=4, end=12)
    assert tokens[0].tolist() == [29, HOLD, 33, HOLD, HOLD, HOLD, 36, HOLD]
    notes = decode_tokens(tokens, ["melody"], start=4)["melody"]
    assert notes[:, :3].tolist() == [[4, 2, 60], [6, 4, 64], [10, 2, 67]]


def test_polyphony_is_reduced_to_the_top_voice():
    # a C major chord held 8 steps, its top note G released at step 4: E takes over with an
    # onset; a B struck at step 6 above the still-sounding C and E becomes the top
    song = _song([[0, 8, 60, 80], [0, 8, 64, 80], [0, 4, 67, 80], [6, 2, 71, 80]], end=10)
    tokens = encode_tokens(song, ["melody"])
    assert tokens[0].tolist() == [36, HOLD, HOLD, HOLD, 33, HOLD, 40, HOLD, REST, REST]
    notes = decode_tokens(tokens, ["melody"])["melody"]
    assert notes[:, :3].tolist() == [[0, 4, 67], [4, 2, 64], [6, 2, 71]]


def test_tracks_sharing_a_role_merge_to_the_top_voice_and_other_roles_stay_apart():
    song = Song(
        [
            Track("a", 0, False, np.array([[0, 4, 60, 80]], np.int32), role="melody"),
            Track("b", 0, False, np.array([[2, 4, 65, 80]], np.int32), role="melody"),
            Track("c", 0, False, np.array([[0, 6, 40, 80]], np.int32), role="bass"),
        ],
        bars=np.array([0]),
        end=6,
    )
    tokens = encode_tokens(song, ["melody", "bass", "alto"])
    assert tokens.tolist() == [
        [29, HOLD, 34, HOLD, HOLD, HOLD],
        [9, HOLD, HOLD, HOLD, HOLD, HOLD],
        [REST] * 6,
    ]


def test_notes_outside_the_range_fold_by_octaves():
    assert fold_into_range(np.array([20, 21, 33, 86, 87, 100, 127]), 33, 54).tolist() == [
        44,
        33,
        33,
        86,
        75,
        76,
        79,
    ]
    song = _song([[0, 2, 20, 80], [2, 2, 100, 80]], end=4)
    notes = decode_tokens(encode_tokens(song, ["melody"]), ["melody"])["melody"]
    assert notes[:, :3].tolist() == [[0, 2, 44], [2, 2, 76]]


def test_hold_with_no_note_to_continue_reads_as_rest():
    tokens = np.array([[HOLD, HOLD, 29, HOLD, REST, HOLD, HOLD, 31]])
    notes = decode_tokens(tokens, ["melody"], velocity=64)["melody"]
    assert notes.tolist() == [[2, 2, 60, 64], [7, 1, 62, 64]]


def test_zero_length_notes_and_an_empty_slot():
    song = _song([[0, 0, 60, 80]], end=4)
    tokens = encode_tokens(song, ["melody"])
    assert tokens.tolist() == [[REST] * 4]
    assert decode_tokens(tokens, ["melody"])["melody"].shape == (0, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start": 8, "end": 8}, "end must be > start"),
        ({"start": -1}, "start must be >= 0"),
        ({"n_pitches": 6}, "n_pitches must be >= 12"),
        ({"pitch_low": 100}, "pitch_low \\+ n_pitches must be <= 128"),
        ({"pitch_low": -3}, "pitch_low must be in 0..127"),
    ],
)
def test_encode_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        encode_tokens(_song([[0, 2, 60, 80]]), ["melody"], **kwargs)


def test_encode_rejects_repeated_roles():
    with pytest.raises(ValueError, match="roles must be distinct"):
        encode_tokens(_song([[0, 2, 60, 80]]), ["melody", "melody"])


@pytest.mark.parametrize(
    "tokens, kwargs, match",
    [
        (np.zeros((2, 4), np.int64), {}, "tokens must be \\[K=1, T\\]"),
        (np.zeros(4, np.int64), {}, "tokens must be \\[K=1, T\\]"),
        (np.zeros((1, 4)), {}, "tokens must be integers"),
        (np.array([[-1, 0]]), {}, "tokens must be in 0..96"),
        (np.array([[2 + 95]]), {}, "tokens must be in 0..96"),
        (np.array([[2]]), {"velocity": 0}, "velocity must be in 1..127"),
        (np.array([[2]]), {"pitch_low": 128}, "pitch_low must be in 0..127"),
    ],
)
def test_decode_rejects_bad_arguments(tokens, kwargs, match):
    with pytest.raises(ValueError, match=match):
        decode_tokens(tokens, ["melody"], **kwargs)


def test_vocab_size():
    assert vocab_size(54) == 56
    with pytest.raises(ValueError, match="n_pitches must be >= 1"):
        vocab_size(0)
