"""Shared fixtures: MIDI files built in code, no network, CPU only."""

from __future__ import annotations

import os

import mido
import pytest

os.environ.setdefault("WANDB_MODE", "disabled")


def write_mido(path, tracks, ticks_per_beat=480, type=1):
    """Write a MIDI file from lists of mido messages (delta times), one list per track."""
    mf = mido.MidiFile(type=type, ticks_per_beat=ticks_per_beat)
    for msgs in tracks:
        track = mido.MidiTrack()
        track.extend(msgs)
        mf.tracks.append(track)
    mf.save(str(path))
    return path


def note_msgs(notes, channel=0, program=None, name=None):
    """mido messages for notes given as (start_tick, end_tick, pitch, velocity)."""
    events = []
    for s, e, p, v in notes:
        events.append((s, 1, mido.Message("note_on", note=p, velocity=v, channel=channel)))
        off = mido.Message("note_off", note=p, velocity=0, channel=channel)
        events.append((e, 2 if e == s else 0, off))
    events.sort(key=lambda x: (x[0], x[1]))
    msgs = []
    if name:
        msgs.append(mido.MetaMessage("track_name", name=name, time=0))
    if program is not None:
        msgs.append(mido.Message("program_change", program=program, channel=channel, time=0))
    now = 0
    for t, _, m in events:
        msgs.append(m.copy(time=t - now))
        now = t
    return msgs


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """The CLI sets torch's thread count (`--threads`); a test that runs it leaves the count as
    it found it for the tests after it."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: its networks are tiny, and on shared cores a second
    thread only adds waiting. Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def band_midi(tmp_path):
    """A type-1 file: melody (flute), bass, drums on channel 10, tempo and meter changes."""
    meta = [
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
        mido.MetaMessage("key_signature", key="G", time=0),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=4 * 480 * 2),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(140), time=0),
    ]
    melody = [(i * 480, i * 480 + 480, 67 + (i % 3) * 2, 90) for i in range(14)]
    bass = [(i * 960, i * 960 + 900, 43, 80) for i in range(7)]
    drums = [(i * 240, i * 240 + 60, 36 if i % 2 == 0 else 42, 100) for i in range(28)]
    return write_mido(
        tmp_path / "band.mid",
        [
            meta,
            note_msgs(melody, channel=0, program=73, name="Melody"),
            note_msgs(bass, channel=1, program=33, name="Bass"),
            note_msgs(drums, channel=9, name="Drums"),
        ],
    )
