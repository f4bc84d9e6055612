import math

import muspy
import numpy as np
import pytest

from structdiff.data.io import read_song
from structdiff.data.midi import write_midi
from structdiff.data.song import Key, Song, Tempo, TimeSignature, Track, bar_grid, sort_notes
from structdiff.metrics.musical import (
    DRUM_METRICS,
    METRICS,
    PITCH_METRICS,
    RHYTHM_METRICS,
    musical_metrics,
    to_muspy,
)

KEY = Key(2, "major")


def _part(rng, low, span, regions, chord_prob=0.0, rest_prob=0.15, drum=False):
    """Random notes `[N, 4]` on the grid, one after another inside each (start, end) region;
    with `chord_prob` a second, different pitch sounds with a note."""
    notes = []
    for start, end in regions:
        t = start
        while t < end:
            d = min(int(rng.integers(1, 9)), end - t)
            if rng.random() >= rest_prob:
                p = low + int(rng.integers(0, span))
                notes.append((t, 1 if drum else d, p, 90))
                if rng.random() < chord_prob:
                    notes.append((t, d, p + int(rng.integers(3, 8)), 70))
            t += d
    return sort_notes(np.asarray(notes, dtype=np.int32))


def _song(tracks, numerator=4, denominator=4):
    end = max(int((t.notes[:, 0] + t.notes[:, 1]).max()) for t in tracks)
    ts = [TimeSignature(0, numerator, denominator)]
    return Song(
        tracks=tracks, bars=bar_grid(ts, end, 4), end=end, time_signatures=ts,
        tempos=[Tempo(0, 100.0)], key_signature=KEY,
    )


def _voices_song():
    """Four voices over 8 bars of 4/4, bars 5 and 6 silent (MusPy counts a note ending on a
    bar line in the next bar too, so bar 6 is the empty one), two-note chords in the alto."""
    rng = np.random.default_rng(7)
    regions = [(0, 64), (96, 128)]
    voices = [("Soprano", 62, 0.0), ("Alto", 55, 0.3), ("Tenor", 48, 0.0), ("Bass", 38, 0.0)]
    return _song([
        Track(name, 52, False, _part(rng, low, 14, regions, chord_prob))
        for name, low, chord_prob in voices
    ])


def _band_song(numerator, denominator):
    """Melody, keys (chords), bass and drums over 8 bars (drums 9); hits on and off the beat."""
    rng = np.random.default_rng(numerator)
    bar = 16 * numerator // denominator
    regions = [(0, 8 * bar)]
    return _song(
        [
            Track("Melody", 73, False, _part(rng, 67, 12, regions)),
            Track("Piano", 0, False, _part(rng, 55, 12, regions, chord_prob=0.8)),
            Track("Bass", 33, False, _part(rng, 36, 12, [(0, 7 * bar)])),
            # a bar longer than the rest: MusPy's polyphony_rate would count that bar
            Track("Drums", 0, True, _part(rng, 36, 10, [(0, 9 * bar)], rest_prob=0.3, drum=True)),
        ],
        numerator, denominator,
    )


def _muspy_reference(path, numerator, denominator, key, meter):
    """MusPy's own values for a MIDI file: read at its 480 ticks a quarter, pitch metrics
    without the drum tracks, groove consistency on the 16th grid (its value depends on it)."""
    music = muspy.read_midi(path)
    assert music.resolution == 480
    coarse = muspy.read_midi(path).adjust_resolution(4)
    measure = 480 * 4 * numerator // denominator
    pitched = muspy.Music(resolution=480, tracks=[t for t in music.tracks if not t.is_drum])

    def values(names):
        def keep(m):
            return muspy.Music(
                resolution=m.resolution, tracks=[t for t in m.tracks if t.name in names]
            )

        out = {
            "empty_beat_rate": muspy.empty_beat_rate(keep(music)),
            "empty_measure_rate": muspy.empty_measure_rate(keep(music), measure),
            "groove_consistency": muspy.groove_consistency(
                keep(coarse), 4 * 4 * numerator // denominator
            ),
        }
        m = keep(pitched)
        if any(t.notes for t in m.tracks):
            out.update({
                "pitch_range": muspy.pitch_range(m),
                "n_pitches_used": muspy.n_pitches_used(m),
                "n_pitch_classes_used": muspy.n_pitch_classes_used(m),
                "polyphony": muspy.polyphony(m),
                "polyphony_rate": muspy.polyphony_rate(m),
                "pitch_in_scale_rate": muspy.pitch_in_scale_rate(m, key.tonic, key.mode),
                "scale_consistency": muspy.scale_consistency(m),
                "pitch_entropy": muspy.pitch_entropy(m),
                "pitch_class_entropy": muspy.pitch_class_entropy(m),
            })
        m = keep(music)
        if any(t.notes for t in m.tracks if t.is_drum):
            out["drum_in_pattern_rate"] = muspy.drum_in_pattern_rate(m, meter)
            out["drum_pattern_consistency"] = muspy.drum_pattern_consistency(m)
        return out

    return values({t.name for t in music.tracks}), values


def _check_agreement(song, tmp_path, meter):
    path = tmp_path / "song.mid"
    write_midi(song, path)
    read = read_song(path)
    ts = song.time_signatures[0]
    whole, per_names = _muspy_reference(path, ts.numerator, ts.denominator, KEY, meter)
    ours = musical_metrics(read, key=KEY)
    assert {k: ours[k] for k in whole} == pytest.approx(whole)
    for role in read.roles:
        names = {t.name for t in read.tracks if t.role == role}
        expected = per_names(names)
        got = {k.split("/")[0]: v for k, v in ours.items() if k.endswith(f"/{role}")}
        assert got == pytest.approx(expected), role
    return read, ours


def test_values_agree_with_muspy_on_a_four_voice_file(tmp_path):
    read, ours = _check_agreement(_voices_song(), tmp_path, meter="duple")
    assert read.roles == ["soprano", "alto", "tenor", "bass"]
    assert set(ours) == set(METRICS) | {
        f"{name}/{role}" for role in read.roles for name in PITCH_METRICS + RHYTHM_METRICS
    }
    # the fixture exercises what it should: chords, rests, a silent bar, some off-key notes
    assert ours["polyphony_rate"] > 0 and ours["polyphony/alto"] > 1
    assert 0 < ours["empty_measure_rate"] <= ours["empty_measure_rate/soprano"] < 1
    assert 0 < ours["pitch_in_scale_rate"] < 1
    assert all(math.isnan(ours[name]) for name in DRUM_METRICS)


@pytest.mark.parametrize("numerator, denominator, meter", [(4, 4, "duple"), (6, 8, "triple")])
def test_values_agree_with_muspy_on_a_file_with_drums(tmp_path, numerator, denominator, meter):
    read, ours = _check_agreement(_band_song(numerator, denominator), tmp_path, meter)
    assert set(read.roles) == {"melody", "keys", "bass", "drums"}
    assert "drum_in_pattern_rate/drums" in ours and "pitch_range/drums" not in ours
    assert "drum_in_pattern_rate/melody" not in ours
    assert 0 < ours["drum_in_pattern_rate"] <= 1
    # the triple pattern keeps only the quarter-note steps of the 16th grid
    assert ours["drum_pattern_consistency"] == 1.0
    if meter == "triple":
        assert ours["drum_in_pattern_rate"] < 1


def test_muspy_functions_on_to_muspy_give_the_same_values():
    song = _band_song(4, 4)
    song.tracks[0].role, song.tracks[3].role = "melody", "drums"
    music = to_muspy(song)
    assert music.resolution == 4 and [t.name for t in music.tracks][-1] == "Drums"
    assert music.tracks[3].is_drum and music.tracks[2].program == 33
    assert music.key_signatures[0].root == KEY.tonic
    assert (music.time_signatures[0].numerator, music.tempos[0].qpm) == (4, 100.0)
    ours = musical_metrics(song)
    assert muspy.groove_consistency(music, 16) == pytest.approx(ours["groove_consistency"])
    assert muspy.polyphony(music) == pytest.approx(ours["polyphony"])
    assert muspy.drum_pattern_consistency(music) == ours["drum_pattern_consistency/drums"]
    only = to_muspy(song, roles=["melody"])
    assert [t.name for t in only.tracks] == ["Melody"]
    assert muspy.pitch_entropy(only) == pytest.approx(ours["pitch_entropy/melody"])


def test_key_scale_and_known_values():
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    notes = np.array([[4 * i, 4, p, 80] for i, p in enumerate(scale)], dtype=np.int32)
    song = _song([Track("Flute", 73, False, notes, role="melody")])
    c_major = musical_metrics(song, key=Key(0, "major"))
    assert c_major["pitch_in_scale_rate"] == 1.0 and c_major["scale_consistency"] == 1.0
    assert c_major["pitch_range"] == 12 and c_major["n_pitch_classes_used"] == 7
    assert c_major["pitch_entropy"] == pytest.approx(3.0)  # 8 equally likely pitches
    assert c_major["polyphony"] == 1.0 and c_major["polyphony_rate"] == 0.0
    assert c_major["empty_beat_rate"] == 0.0
    assert musical_metrics(song, key=Key(1, "major"))["pitch_in_scale_rate"] == pytest.approx(
        3 / 8  # C (B#), F and the upper C are in C# major
    )
    assert math.isnan(musical_metrics(song)["pitch_in_scale_rate"])


def test_drums_only_and_empty_songs_give_nan_not_errors():
    hits = np.array([[0, 1, 36, 100], [2, 1, 42, 100], [4, 1, 38, 100]], dtype=np.int32)
    drums = _song([Track("Drums", 0, True, hits, role="drums")])
    values = musical_metrics(drums, key=KEY)
    # MusPy's own pitch_range of a drums-only song is -127: drums are left out here
    assert all(math.isnan(values[name]) for name in PITCH_METRICS)
    assert values["drum_in_pattern_rate"] == 1.0
    assert values["drum_pattern_consistency/drums"] == 1.0
    assert values["empty_beat_rate"] == 0.0

    empty = Song([Track("Piano", 0, False, role="keys")], bars=np.array([0]), end=16)
    assert all(math.isnan(v) for v in musical_metrics(empty, key=KEY).values())
    assert set(musical_metrics(empty)) == set(METRICS)
    nothing = Song([], bars=np.array([0]), end=16)
    assert all(math.isnan(v) for v in musical_metrics(nothing).values())
