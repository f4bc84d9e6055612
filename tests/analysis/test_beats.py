"""Beats and bars of real MIDI: the file's grid where credible, else the one the notes say."""

import mido
import numpy as np
import pytest
import symusic

from structdiff.analysis.beats import Grid, find_grid, grid_beats
from structdiff.data.midi import read_midi
from structdiff.data.song import PITCH, START

TPQ = 480
# four bars of I-IV-V-I in C (bass on the downbeat, a chord each beat, a melody note per beat)
CHORDS = [(48, (60, 64, 67)), (53, (60, 65, 69)), (55, (59, 62, 67)), (48, (60, 64, 67))]
MELODY = [72, 74, 76, 77]


def _events(beats_per_bar=4, bars=16, offset=0, chords=CHORDS):
    """(tick, duration, pitch) of a song whose beats lie at offset + k * TPQ."""
    out = []
    for bar in range(bars):
        bass, triad = chords[bar % len(chords)]
        lo = offset + bar * beats_per_bar * TPQ
        out.append((lo, beats_per_bar * TPQ - 10, bass))  # bass held through the bar
        for b in range(beats_per_bar):
            at = lo + b * TPQ
            dur = TPQ // 2 if b else TPQ - 10  # the first beat's chord is held longer
            out += [(at, dur, p) for p in triad]
            out.append((at, TPQ // 2, MELODY[b % len(MELODY)]))
            out.append((at + TPQ // 2, TPQ // 2 - 10, MELODY[(b + 1) % len(MELODY)]))
    return out


def _midi(path, notes, numerator=1, drums=False):
    mid = mido.MidiFile(ticks_per_beat=TPQ)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=4))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)))
    channel = 9 if drums else 0
    msgs = []
    for start, dur, pitch in notes:
        msgs.append((start, 1, mido.Message("note_on", note=pitch, velocity=80, channel=channel)))
        msgs.append((start + dur, 0, mido.Message("note_off", note=pitch, channel=channel)))
    now = 0
    for tick, _, msg in sorted(msgs, key=lambda m: (m[0], m[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.save(path)
    return path


def test_a_file_on_its_grid_keeps_it(tmp_path):
    path = _midi(tmp_path / "on.mid", _events(), numerator=4)
    assert find_grid(symusic.Score(str(path))) == Grid()
    assert read_midi(path).grid == "file"


@pytest.mark.parametrize("offset", [0.3, 0.7])
def test_beats_off_the_file_grid_and_one_beat_bars_are_found(tmp_path, offset):
    ticks = int(offset * TPQ)
    path = _midi(tmp_path / "off.mid", _events(offset=ticks), numerator=1)
    grid = find_grid(symusic.Score(str(path)))
    assert grid.source == "notes" and grid.beats_per_bar == 4
    assert abs((ticks + grid.shift) % TPQ) <= TPQ // 24 or TPQ - (ticks + grid.shift) % TPQ <= 20
    song = read_midi(path)
    assert song.grid.startswith("notes: beats") and "4/4" in song.grid
    assert song.time_signatures[0].numerator == 4
    # every note now starts on the 16th grid where it was written relative to the beat, and
    # every bar starts with the bass note of its chord
    bass = sorted(n[START] for t in song.tracks for n in t.notes if n[PITCH] < 58)
    bars = set(song.bars.tolist())
    assert all(b in bars for b in bass)
    assert len(bass) == 16


def test_three_beat_bars_are_told_from_four(tmp_path):
    path = _midi(tmp_path / "waltz.mid", _events(beats_per_bar=3, offset=150), numerator=1)
    grid = find_grid(symusic.Score(str(path)))
    assert grid.source == "notes" and grid.beats_per_bar == 3


def test_a_pickup_before_the_first_downbeat_is_found(tmp_path):
    # one beat of melody before the first bar: the downbeat is the second beat
    notes = [(150, TPQ // 2, 71)] + _events(offset=150 + TPQ)
    path = _midi(tmp_path / "pickup.mid", notes, numerator=1)
    grid = find_grid(symusic.Score(str(path)))
    assert grid.beats_per_bar == 4
    song = read_midi(path)
    first_bass = min(n[START] for t in song.tracks for n in t.notes if n[PITCH] < 58)
    assert first_bass in set(song.bars.tolist()) and song.bars[1] == first_bass


def test_drums_do_not_move_the_beat(tmp_path):
    # a syncopated groove: most hits on the off-beat eighths
    hits = [(k * TPQ + TPQ // 2, 60, 38) for k in range(64)] + [(k * 4 * TPQ, 60, 36)
                                                                 for k in range(16)]
    path = _midi(tmp_path / "groove.mid", hits, numerator=4, drums=True)
    assert find_grid(symusic.Score(str(path))) == Grid()


def test_grid_beats_put_the_found_grid_on_the_annotated_times(tmp_path):
    ticks = int(0.3 * TPQ)
    path = _midi(tmp_path / "off.mid", _events(offset=ticks), numerator=1)
    score = symusic.Score(str(path))
    beats, downbeats = grid_beats(score, find_grid(score))
    truth = (ticks + np.arange(64) * TPQ) / TPQ * (60 / 90)  # 90 bpm
    assert np.abs(beats[:64] - truth).max() < 0.02
    assert np.allclose(np.diff(downbeats), 4 * 60 / 90, atol=0.01)
    file_beats, _ = grid_beats(score, Grid())
    assert np.abs(file_beats[:64] - truth).min() > 0.1  # the file's own beats are off
