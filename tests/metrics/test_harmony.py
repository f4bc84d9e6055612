import dataclasses
import math

import numpy as np
import pytest

from structdiff.analysis import analyze
from structdiff.data.song import PITCH, Chord, Song, TimeSignature, Track
from structdiff.metrics.harmony import chord_agreement, chord_tone_ratio, harmony_metrics

BAR = 16


def _song(notes, drums=None) -> Song:
    tracks = [Track("Keys", 0, False, np.asarray(notes, dtype=np.int32).reshape(-1, 4))]
    if drums is not None:
        tracks.append(Track("Drums", 0, True, np.asarray(drums, dtype=np.int32)))
    return Song(tracks, bars=np.arange(2) * BAR, end=2 * BAR,
                time_signatures=[TimeSignature(0, 4, 4)])


C_THEN_G = [Chord(0, BAR, 0, "maj", 0), Chord(BAR, BAR, 7, "dom7", 7)]


@pytest.fixture(scope="module")
def chorale():
    from structdiff.data.io import read_song

    song = read_song("music21:bach/bwv66.6")
    return song, analyze(song)


def test_only_chord_tones_score_one():
    # C E G over C, then G B D F over G7; a drum hit on a "wrong" key number is not counted
    notes = [[0, 16, 48, 80], [0, 8, 64, 80], [8, 8, 67, 80],
             [16, 16, 43, 80], [16, 4, 71, 80], [20, 4, 74, 80], [24, 8, 77, 80]]
    assert chord_tone_ratio(_song(notes, drums=[[0, 1, 37, 100]]), C_THEN_G) == 1.0


def test_half_and_half():
    # C held over both bars is a chord tone of C, not of G7; D is a tone of G7 only
    assert chord_tone_ratio(_song([[0, 32, 60, 80]]), C_THEN_G) == 0.5
    assert chord_tone_ratio(_song([[0, 16, 60, 80], [0, 16, 62, 80]]), C_THEN_G) == 0.5


def test_steps_without_a_chord_are_left_out():
    chords = [Chord(0, BAR, 0, "maj", 0), Chord(BAR, BAR, 0, "N", 0)]
    assert chord_tone_ratio(_song([[0, 16, 60, 80], [16, 16, 61, 80]]), chords) == 1.0
    assert chord_tone_ratio(_song([[0, 16, 60, 80]]), C_THEN_G[:1]) == 1.0


def test_empty_gives_nan():
    assert math.isnan(chord_tone_ratio(_song([]), C_THEN_G))
    assert math.isnan(chord_tone_ratio(_song([[0, 16, 60, 80]]), []))
    assert math.isnan(chord_tone_ratio(_song([[16, 16, 61, 80]]), C_THEN_G[:1]))


def test_chorale_fits_its_chords_and_random_pitches_do_not(chorale):
    song, plan = chorale
    ratio = chord_tone_ratio(song, plan.chords)
    assert ratio > 0.7
    rng = np.random.default_rng(0)
    tracks = []
    for track in song.tracks:
        notes = track.notes.copy()
        notes[:, PITCH] = rng.integers(48, 84, size=len(notes))
        tracks.append(dataclasses.replace(track, notes=notes))
    randomized = dataclasses.replace(song, tracks=tracks)
    assert chord_tone_ratio(randomized, plan.chords) < ratio - 0.4


def test_chord_agreement_is_duration_weighted():
    same_roots = [Chord(0, BAR, 0, "maj", 0), Chord(BAR, BAR, 7, "maj", 7)]
    assert chord_agreement(C_THEN_G, C_THEN_G, 2 * BAR) == {"root": 1.0, "root_quality": 1.0}
    assert chord_agreement(C_THEN_G, same_roots, 2 * BAR) == {"root": 1.0, "root_quality": 0.5}
    short = [Chord(0, 4, 0, "maj", 0)]
    assert chord_agreement(C_THEN_G, short, 2 * BAR)["root"] == pytest.approx(4 / 32)
    assert math.isnan(chord_agreement([], C_THEN_G, 2 * BAR)["root"])
    with pytest.raises(ValueError, match="n_steps"):
        chord_agreement(C_THEN_G, C_THEN_G, -1)


def test_harmony_metrics(chorale):
    song, plan = chorale
    out = harmony_metrics(song, plan, plan, given=True)
    assert set(out) == {"chord_tone_ratio", "chord_agreement_root", "chord_agreement_quality"}
    assert out["chord_agreement_root"] == 1.0 and out["chord_agreement_quality"] == 1.0
    assert out["chord_tone_ratio"] > 0.7
    out = harmony_metrics(song, plan, plan, given=False)
    assert math.isnan(out["chord_agreement_root"]) and math.isnan(out["chord_agreement_quality"])
