import math

import numpy as np
import pytest

from structdiff.data.song import Song, TimeSignature, Track, bar_grid
from structdiff.metrics.coordination import (
    METRICS,
    beat_starts,
    coordination_metrics,
    voice_pairs,
)
from structdiff.metrics.musical import musical_metrics


def _song(parts, role_map="satb", meter=(4, 4), pickup=0):
    """A song from `{role: [(start, duration, pitch), ...]}`; the role `drums` is a drum track."""
    tracks = [
        Track(role, 0, role == "drums", np.array([(*n, 80) for n in notes], dtype=np.int32),
              role=role)
        for role, notes in parts.items()
    ]
    end = max(s + d for notes in parts.values() for s, d, _ in notes)
    ts = [TimeSignature(0, *meter)]
    return Song(tracks, bars=bar_grid(ts, end, 4, pickup), end=end, time_signatures=ts,
                role_map=role_map)


def _line(pitches, dur=4, start=0):
    return [(start + i * dur, dur, p) for i, p in enumerate(pitches)]


def _chords(chords, dur=4):
    return [(i * dur, dur, p) for i, chord in enumerate(chords) for p in chord]


def test_parallel_octaves_are_consonant_uncrossed_and_tonally_identical():
    melody = [72, 74, 76, 77, 79, 77, 76, 74]
    song = _song({"soprano": _line(melody), "bass": _line([p - 24 for p in melody])})
    m = coordination_metrics(song)
    assert m["dissonance_rate"] == 0.0
    assert m["voice_crossing_rate"] == 0.0
    assert m["tonal_distance"] == pytest.approx(0.0, abs=1e-12)
    assert m["onset_synchrony"] == 1.0


def test_minor_second_cluster_is_all_dissonant():
    song = _song({"soprano": _line([61, 73]), "alto": _line([60, 72]), "tenor": _line([59, 71])})
    # per step: C#-C (m2), C-B (m2), C#-B (M2 = 2 semitones): every pair dissonant
    assert coordination_metrics(song)["dissonance_rate"] == 1.0


def test_dissonance_counts_pairs_per_step():
    # C-E-G (3 consonant pairs) for 4 steps, then C-D-G (C-D dissonant, D-G and C-G not)
    song = _song({"soprano": _line([67, 67]), "alto": _line([64, 62]), "bass": _line([48, 48])})
    assert coordination_metrics(song)["dissonance_rate"] == pytest.approx(1 / 6)


def test_crossing_rate_counts_steps_where_both_voices_sound():
    soprano = [(0, 4, 67), (4, 4, 67), (8, 4, 60), (12, 4, 67), (16, 4, 67)]
    alto = [(0, 16, 64)]  # under the soprano except steps 8-11; silent in steps 16-19
    song = _song({"soprano": soprano, "alto": alto})
    assert coordination_metrics(song)["voice_crossing_rate"] == pytest.approx(4 / 16)


def test_crossing_pairs_follow_the_role_map():
    parts = {"bass": _line([48]), "tenor": _line([67]), "soprano": _line([72]),
             "alto": _line([60]), "quintus": _line([62])}
    song = _song(parts)
    assert voice_pairs(song, list(parts)) == [
        ("soprano", "alto"), ("alto", "quintus"), ("quintus", "tenor"), ("tenor", "bass")
    ]
    # alto under quintus under tenor: 2 of the 4 adjacent pairs cross
    assert coordination_metrics(song)["voice_crossing_rate"] == pytest.approx(2 / 4)
    band = _song({"melody": _line([50]), "keys": _line([72]), "bass": _line([55])}, "band")
    assert voice_pairs(band, ["melody", "keys", "bass"]) == [("melody", "bass")]
    assert coordination_metrics(band)["voice_crossing_rate"] == 1.0
    no_bass = _song({"melody": _line([50]), "keys": _line([72])}, "band")
    assert math.isnan(coordination_metrics(no_bass)["voice_crossing_rate"])


def test_onset_synchrony():
    together = _song({"soprano": _line([72] * 4), "alto": _line([67] * 4)})
    offset = _song({"soprano": _line([72] * 4), "alto": _line([67] * 4, start=2)})
    half = _song({"soprano": _line([72] * 4), "alto": _line([67] * 8, dur=2)})
    assert coordination_metrics(together)["onset_synchrony"] == 1.0
    assert coordination_metrics(offset)["onset_synchrony"] == 0.0
    # soprano: 4 of 4 onsets shared; alto: 4 of 8
    assert coordination_metrics(half)["onset_synchrony"] == pytest.approx(0.75)


def test_tonal_distance_known_values_and_ordering():
    def distance(a, b):
        return coordination_metrics(_song({"soprano": a, "alto": b}))["tonal_distance"]

    # single pitch classes a tritone apart: opposite on the circles of fifths and of minor
    # thirds (radius 1), together on the circle of major thirds: sqrt(2^2 + 2^2)
    assert distance(_line([72]), _line([66])) == pytest.approx(math.sqrt(8))
    c, g, f_sharp = [60, 64, 67], [67, 71, 74], [66, 70, 73]
    assert distance(_chords([c]), _chords([c])) == pytest.approx(0.0, abs=1e-12)
    assert distance(_chords([c]), _chords([f_sharp])) > distance(_chords([c]), _chords([g])) > 0


def test_tonal_distance_averages_over_beats_where_both_sound():
    # the alto sounds only on beat 1, in unison; the soprano's other beats are not compared
    song = _song({"soprano": _line([72, 61, 66, 70]), "alto": _line([60])})
    assert coordination_metrics(song)["tonal_distance"] == pytest.approx(0.0, abs=1e-12)


def test_beats_follow_meter_and_bar_lines():
    assert beat_starts(_song({"soprano": [(0, 24, 60)]}, meter=(6, 8))).tolist() == [0, 6, 12, 18]
    assert beat_starts(_song({"soprano": [(0, 12, 60)]}, meter=(3, 4))).tolist() == [0, 4, 8]
    pickup = _song({"soprano": [(0, 22, 60)]}, pickup=2)  # bars at 0, 2, 18
    assert beat_starts(pickup).tolist() == [0, 2, 6, 10, 14, 18]


def test_not_applicable_gives_nan_and_drums_are_left_out():
    solo = _song({"melody": _line([60, 62]), "drums": [(0, 1, 36), (4, 1, 38)]}, "band")
    assert all(math.isnan(coordination_metrics(solo)[name]) for name in METRICS)
    apart = _song({"soprano": _line([72]), "alto": _line([60], start=4)})
    values = coordination_metrics(apart)
    assert math.isnan(values["dissonance_rate"]) and math.isnan(values["tonal_distance"])
    assert math.isnan(values["voice_crossing_rate"]) and values["onset_synchrony"] == 0.0
    # a drum hit sounding with the melody is not a dissonance
    with_drums = _song({"melody": _line([60]), "bass": _line([48]), "drums": [(0, 1, 49)]},
                       "band")
    assert coordination_metrics(with_drums)["dissonance_rate"] == 0.0


def test_drum_metrics_need_drums():
    melody = _song({"melody": _line([60, 62, 64]), "bass": _line([48])}, "band")
    values = musical_metrics(melody)
    assert math.isnan(values["drum_in_pattern_rate"])
    assert math.isnan(values["drum_pattern_consistency"])
    hits = [(0, 1, 36), (2, 1, 42), (4, 1, 38), (7, 1, 42)]
    with_drums = _song({"melody": _line([60, 62, 64]), "drums": hits}, "band", meter=(3, 4))
    values = musical_metrics(with_drums)
    assert values["drum_in_pattern_rate"] == pytest.approx(2 / 4)  # on quarters: 0 and 4
    assert values["drum_pattern_consistency/drums"] == 1.0
