"""Parts per track kind: tokens for mono roles, rolls for poly roles, hits for drums."""

import numpy as np
import pytest

from structdiff.data.drums import CLASS_NOTES, DRUM_CLASSES
from structdiff.data.parts import PartLayout, decode_parts, encode_parts
from structdiff.data.roles import load_role_map
from structdiff.data.song import DURATION, PITCH, START, Track
from tests.debug_models import band_song

BAND = PartLayout.of_role_map(load_role_map("band"))


def _notes(song, role):
    return np.concatenate([t.notes for t in song.tracks if t.role == role])


def _band():
    from structdiff.data.roles import assign_roles

    return assign_roles(band_song(8), "band")


def test_band_layout_kinds():
    assert BAND.roles == ("melody", "bass", "keys", "guitar", "strings", "drums")
    assert BAND.slots("mono") == [0, 1] and BAND.slots("poly") == [2, 3, 4]
    assert BAND.slots("drums") == [5]
    with pytest.raises(ValueError, match="unknown track kind"):
        PartLayout(("a",), ("chords",))


def test_shapes_per_kind():
    parts = encode_parts(_band(), BAND)
    assert parts.tokens.shape == (2, 128)
    assert parts.roll.shape == (3, 128, 48, 2) and parts.roll.dtype == bool
    assert parts.hits.shape == (1, 128, len(DRUM_CLASSES))
    assert not parts.roll[1:].any()  # no guitar, no strings


def test_round_trip_keeps_every_note():
    song = _band()
    notes = decode_parts(encode_parts(song, BAND), BAND)
    for role in ("melody", "bass", "keys", "drums"):
        want = _notes(song, role)[:, :3]
        got = notes[role][:, :3]
        assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, want.tolist())), role
    assert len(notes["guitar"]) == 0 and len(notes["strings"]) == 0


def test_chords_of_a_poly_role_keep_every_voice():
    song = _band()
    keys = decode_parts(encode_parts(song, BAND), BAND)["keys"]
    first_bar = keys[keys[:, START] == 0]
    assert sorted(first_bar[:, PITCH].tolist()) == [60, 64, 67]
    assert (first_bar[:, DURATION] == 16).all()


def test_drums_fold_into_the_reduced_kit():
    song = _band()
    drums = next(t for t in song.tracks if t.role == "drums")
    # a pedal hi-hat (44) and an electric snare (40) become the kit's closed hat and snare
    drums.notes = np.array([[0, 1, 44, 90], [4, 1, 40, 90], [8, 3, 81, 90]])
    notes = decode_parts(encode_parts(song, BAND), BAND)["drums"]
    assert notes[:, PITCH].tolist() == [CLASS_NOTES[2], CLASS_NOTES[1], CLASS_NOTES[7]]
    assert (notes[:, DURATION] == 1).all()


def test_poly_pitches_out_of_range_move_by_octaves():
    song = _band()
    song.tracks.append(Track("Piano 2", 0, False, np.array([[0, 4, 100, 80]]), "keys"))
    keys = decode_parts(encode_parts(song, BAND), BAND)["keys"]
    assert 100 - 24 in keys[:, PITCH].tolist()  # two octaves down into 36..83


def test_window_pads_with_silence():
    parts = encode_parts(_band(), BAND)
    w = parts.window(120, 16)
    assert w.tokens.shape == (2, 16) and (w.tokens[:, 8:] == 0).all()
    assert not w.roll[:, 8:].any() and not w.hits[:, 8:].any()
    assert w.hits[:, :8].any()
