import numpy as np
import pytest

from structdiff.data.drums import (
    CLASS_NOTES,
    DRUM_CLASSES,
    class_index,
    class_note,
    drum_class,
)


def test_gm_keys_fall_in_their_class():
    expected = {
        35: "kick", 36: "kick", 37: "snare", 38: "snare", 39: "snare", 40: "snare",
        42: "closed_hat", 44: "closed_hat", 46: "open_hat", 41: "tom", 43: "tom", 45: "tom",
        47: "tom", 48: "tom", 50: "tom", 49: "crash", 52: "crash", 55: "crash", 57: "crash",
        51: "ride", 53: "ride", 59: "ride", 54: "perc", 56: "perc", 70: "perc", 0: "perc",
        # the Groove MIDI Dataset's non-GM edge keys
        22: "closed_hat", 26: "open_hat", 58: "tom",
    }
    for key, name in expected.items():
        assert DRUM_CLASSES[drum_class(key)] == name, key


def test_drum_class_is_vectorized_and_keeps_shape():
    keys = np.array([[36, 38], [42, 81]])
    assert drum_class(keys).tolist() == [[0, 1], [2, 7]]
    assert isinstance(drum_class(36), int)
    assert drum_class(np.zeros(0, dtype=int)).shape == (0,)


def test_each_class_note_reads_back_as_its_class():
    assert len(CLASS_NOTES) == len(DRUM_CLASSES)
    assert [drum_class(n) for n in CLASS_NOTES] == list(range(len(DRUM_CLASSES)))
    assert class_note(np.arange(len(DRUM_CLASSES))).tolist() == list(CLASS_NOTES)
    assert class_note(0) == 36


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="0-127"):
        drum_class(128)
    with pytest.raises(ValueError, match="0-127"):
        drum_class(np.array([36, -1]))
    with pytest.raises(ValueError, match="drum class"):
        class_note(8)
    with pytest.raises(ValueError, match="choose from"):
        class_index("cymbal")
    assert class_index("ride") == 6
