import mido
import numpy as np
import pytest

from structdiff.data.io import read_song
from structdiff.data.midi import decode_text, read_midi, write_midi
from structdiff.data.song import Chord, Key, MusicFileError, Plan, Section

from ..conftest import note_msgs, write_mido


def test_type1_tracks_drums_tempo_meter_changes(band_midi):
    song = read_song(band_midi)
    names = [t.name for t in song.tracks]
    assert names == ["Melody", "Bass", "Drums"]
    drums = song.tracks[2]
    assert drums.is_drum and drums.role == "drums" and drums.n_notes == 28
    assert song.tracks[0].program == 73 and song.tracks[0].role == "melody"
    assert song.tracks[1].role == "bass"
    assert [(t.step, round(t.qpm)) for t in song.tempos] == [(0, 100), (32, 140)]
    assert [(t.step, t.numerator) for t in song.time_signatures] == [(0, 4), (32, 3)]
    # two 4/4 bars, then 3/4 bars
    assert song.bars[:4].tolist() == [0, 16, 32, 44]
    assert song.key_signature == Key(7, "major")
    # quarter notes at 480 ticks/quarter are 4 steps on the 16th grid
    assert song.tracks[0].notes[:2].tolist() == [[0, 4, 67, 90], [4, 4, 69, 90]]


def test_type0_is_split_by_channel(tmp_path):
    events = [
        mido.Message("program_change", program=33, channel=1, time=0),
        mido.Message("note_on", note=60, velocity=80, channel=0, time=0),
        mido.Message("note_on", note=40, velocity=80, channel=1, time=0),
        mido.Message("note_on", note=36, velocity=80, channel=9, time=0),
        mido.Message("note_off", note=60, velocity=0, channel=0, time=480),
        mido.Message("note_off", note=40, velocity=0, channel=1, time=0),
        mido.Message("note_off", note=36, velocity=0, channel=9, time=0),
    ]
    path = write_mido(tmp_path / "type0.MID", [events], type=0)
    song = read_song(path)
    kinds = sorted((t.program, t.is_drum) for t in song.tracks)
    assert kinds == [(0, False), (0, True), (33, False)]
    assert {t.role for t in song.tracks} == {"keys", "bass", "drums"}


def test_odd_but_valid_notes_load(tmp_path):
    notes = [
        (0, 480, 60, 80),
        (240, 720, 60, 80),  # overlaps the note before, same pitch
        (960, 960, 64, 80),  # zero length
        (480 * 4 * 5 + 240, 480 * 4 * 5 + 480, 67, 80),  # after the last bar line
    ]
    meta = [mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)]
    empty = [mido.MetaMessage("track_name", name="Empty", time=0)]
    path = write_mido(tmp_path / "odd.midi", [meta, note_msgs(notes, name="Piano"), empty])
    song = read_song(path)
    piano = next(t for t in song.tracks if t.name == "Piano")
    assert piano.n_notes == 4
    zero = piano.notes[piano.notes[:, 2] == 64]
    assert zero[:, 1].tolist() == [1]  # zero-length notes last one grid step
    last_end = int((piano.notes[:, 0] + piano.notes[:, 1]).max())
    assert song.end >= last_end and song.bars[-1] <= last_end - 1
    assert song.n_bars == 6


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"hello, not music", "not a MIDI file"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x00\x40\x00\xff", "truncated"),
    ],
)
def test_bad_midi_files_raise_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(MusicFileError, match=message) as info:
        read_song(path)
    assert "\n" not in str(info.value)


def test_not_a_music_file(tmp_path):
    path = tmp_path / "song.txt"
    path.write_text("C D E F G")
    with pytest.raises(MusicFileError, match="not a music file"):
        read_song(path)


def test_write_then_read_returns_the_same_song(band_midi, tmp_path):
    song = read_song(band_midi)
    song.plan = Plan(
        key=Key(7, "major"),
        chords=[Chord(0, 8, 7, "maj", 7), Chord(8, 8, 2, "dom7", 6), Chord(16, 16, 4, "min", 4)],
        sections=[Section(0, 2, "A"), Section(2, song.n_bars - 2, "B")],
    )
    out = tmp_path / "out" / "song.mid"
    write_midi(song, out)
    back = read_song(out)
    assert [(t.name, t.program, t.is_drum, t.role) for t in back.tracks] == [
        (t.name, t.program, t.is_drum, t.role) for t in song.tracks
    ]
    for a, b in zip(song.tracks, back.tracks):
        assert np.array_equal(a.notes, b.notes)
    assert back.tempos == song.tempos
    assert back.time_signatures == song.time_signatures
    assert back.bars.tolist() == song.bars.tolist()
    assert back.key_signature == Key(7, "major")
    assert back.plan.sections == song.plan.sections
    assert [(c.onset, c.root, c.quality, c.bass) for c in back.plan.chords] == [
        (c.onset, c.root, c.quality, c.bass) for c in song.plan.chords
    ]
    # drums on channel 10, every channel message of a track on one channel
    mf = mido.MidiFile(str(out))
    channels = [
        {m.channel for m in t if hasattr(m, "channel")} for t in mf.tracks[1:]
    ]
    assert channels == [{0}, {1}, {9}]
    texts = [m.text for m in mf.tracks[0] if m.type == "text"]
    markers = [m.text for m in mf.tracks[0] if m.type == "marker"]
    assert texts == ["G", "D7/F#", "Em"] and markers == ["A", "B"]


def test_corpus_chorale_survives_midi_round_trip(tmp_path):
    song = read_song("music21:bach/bwv66.6")
    out = tmp_path / "bwv66.6.mid"
    write_midi(song, out)
    back = read_song(out)
    assert [t.role for t in back.tracks] == ["soprano", "alto", "tenor", "bass"]
    for a, b in zip(song.tracks, back.tracks):
        assert np.array_equal(a.notes[:, :3], b.notes[:, :3])


def test_more_than_15_programs_is_refused(tmp_path, band_midi):
    song = read_song(band_midi)
    from dataclasses import replace

    song.tracks = [replace(song.tracks[0], program=p, name=f"t{p}") for p in range(16)]
    with pytest.raises(ValueError, match="distinct programs"):
        write_midi(song, tmp_path / "x.mid")
    assert not (tmp_path / "x.mid").exists()


@pytest.mark.parametrize("name, raw", [
    ("Spår 1", "Spår 1".encode("latin-1")),  # a legacy 8-bit name (Windows-1252 / Latin-1)
    ("Spår 1", "Spår 1".encode()),
    ("ピアノ", "ピアノ".encode()),  # nothing 8-bit can hold
])
def test_track_names_in_any_encoding_survive_a_round_trip(tmp_path, name, raw):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("track_name", name=raw.decode("latin-1")))  # these bytes
    for k in range(4):
        track.append(mido.Message("note_on", note=60 + k, velocity=80, time=0))
        track.append(mido.Message("note_off", note=60 + k, time=480))
    mid.save(tmp_path / "in.mid")
    song = read_midi(tmp_path / "in.mid")
    assert song.tracks[0].name == name
    write_midi(song, tmp_path / "out.mid")  # wrote 'latin-1' codec errors before
    assert read_midi(tmp_path / "out.mid").tracks[0].name == name
    assert decode_text(raw) == name


def test_bars_cut_short_travel_through_midi_as_meter_changes(tmp_path):
    from structdiff.data.song import Song, TimeSignature, Track

    notes = np.array([[0, 4, 67, 80], [4, 16, 65, 80], [20, 12, 64, 80], [32, 4, 62, 80],
                      [36, 12, 60, 80]], dtype=np.int32)
    # a pickup, a 3/4 bar, a pickup again, then a last bar of three beats
    bars = np.array([0, 4, 20, 32, 36], dtype=np.int64)
    song = Song([Track("Melody", 0, False, notes)], bars, 48, [TimeSignature(0, 4, 4)])
    write_midi(song, tmp_path / "pickup.mid")
    back = read_midi(tmp_path / "pickup.mid")
    assert back.bars.tolist() == bars.tolist() and back.end == 48
    meters = [(t.step, t.numerator, t.denominator) for t in back.time_signatures]
    # the short last bar keeps the meter (a continuation goes on in 4/4)
    assert meters == [(0, 1, 4), (4, 4, 4), (20, 3, 4), (32, 1, 4), (36, 4, 4)]
    # bars that follow their meter are written with the meter alone
    plain = Song([Track("Melody", 0, False, notes)], np.arange(3, dtype=np.int64) * 16, 48,
                 [TimeSignature(0, 4, 4)])
    write_midi(plain, tmp_path / "plain.mid")
    assert [(t.step, t.numerator) for t in read_midi(tmp_path / "plain.mid").time_signatures] == [
        (0, 4)]
