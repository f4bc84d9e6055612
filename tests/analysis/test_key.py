import numpy as np
import pytest

from structdiff.analysis.key import (
    estimate_key,
    key_of_index,
    key_profile_scores,
    signature_candidates,
)
from structdiff.data.song import Key, Song, TimeSignature, Track


def melody_song(pitches: list[int], step: int = 4, key_signature: Key | None = None) -> Song:
    """One track playing `pitches` one after another, `step` steps each, in 4/4."""
    n = len(pitches)
    notes = np.stack(
        [np.arange(n) * step, np.full(n, step), np.asarray(pitches), np.full(n, 80)], axis=1
    ).astype(np.int32)
    end = max(n * step, 1)
    return Song(
        tracks=[Track("melody", 0, False, notes)],
        bars=np.arange(0, end, 16),
        end=end,
        time_signatures=[TimeSignature(0, 4, 4)],
        key_signature=key_signature,
    )


C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60]
A_HARMONIC_MINOR = [69, 72, 76, 74, 72, 71, 68, 69, 64, 65, 64, 62, 60, 59, 56, 57]
G_MAJOR_SCALE = [67, 69, 71, 72, 74, 76, 78, 79, 78, 76, 74, 72, 71, 69, 67]


def test_c_major_scale_is_c_major():
    assert estimate_key(melody_song(C_MAJOR_SCALE)) == Key(0, "major")


def test_a_harmonic_minor_melody_is_a_minor():
    assert estimate_key(melody_song(A_HARMONIC_MINOR)) == Key(9, "minor")


def test_key_signature_breaks_near_ties_but_not_clear_evidence():
    # C D E G A B, once each, fits G major, A minor and C major almost alike
    no_fourth = [60, 62, 64, 67, 69, 71]
    assert estimate_key(melody_song(no_fourth, key_signature=Key(7, "major"))) == Key(7, "major")
    assert estimate_key(melody_song(no_fourth, key_signature=Key(0, "major"))) in (
        Key(0, "major"), Key(9, "minor")
    )
    # a whole G major scale stays G major under a signature without sharps
    assert estimate_key(melody_song(G_MAJOR_SCALE, key_signature=Key(0, "major"))) == Key(
        7, "major"
    )
    minor = estimate_key(melody_song(A_HARMONIC_MINOR, key_signature=Key(0, "major")))
    assert minor == Key(9, "minor")


def test_signature_candidates():
    assert signature_candidates(Key(2, "major")) == (Key(2, "major"), Key(11, "minor"))
    assert signature_candidates(Key(6, "minor")) == (Key(9, "major"), Key(6, "minor"))


def test_empty_song_has_no_key():
    assert estimate_key(melody_song([])) is None
    drums = melody_song([36, 38, 36, 38])
    drums.tracks[0].is_drum = True
    assert estimate_key(drums) is None


def test_key_profile_scores_shapes_and_transposition():
    hist = np.bincount([0, 2, 4, 5, 7, 9, 11, 0, 7, 4], minlength=12).astype(float)
    scores = key_profile_scores(hist)
    assert scores.shape == (24,)
    assert key_of_index(int(np.argmax(scores))) == Key(0, "major")
    batch = key_profile_scores(np.stack([hist, np.roll(hist, 5)]))
    assert batch.shape == (2, 24)
    assert key_of_index(int(np.argmax(batch[1]))) == Key(5, "major")
    np.testing.assert_allclose(batch[1], np.roll(scores.reshape(2, 12), 5, axis=1).ravel())
    assert not key_profile_scores(np.zeros(12)).any()
    with pytest.raises(ValueError, match="12 bins"):
        key_profile_scores(np.ones(7))
    with pytest.raises(ValueError, match="unknown key profile"):
        key_profile_scores(hist, profile="nope")


def test_chorale_in_f_sharp_minor():
    from structdiff.data.io import read_song

    song = read_song("music21:bach/bwv66.6")
    assert estimate_key(song) == Key(6, "minor")
    song.key_signature = None
    assert estimate_key(song) == Key(6, "minor")
