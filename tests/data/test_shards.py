import numpy as np
import pytest

from structdiff.data.io import read_song
from structdiff.data.shards import ShardError, read_shard, write_shard
from structdiff.data.song import Chord, Key, Plan, Section, Song, Tempo, TimeSignature, Track


def _song() -> Song:
    rng = np.random.default_rng(0)
    melody = np.stack(
        [np.arange(20) * 4, np.full(20, 4), rng.integers(60, 80, 20), rng.integers(1, 128, 20)],
        axis=1,
    ).astype(np.int32)
    drums = np.array([[0, 1, 36, 100], [2, 1, 42, 90], [4, 1, 38, 110]], dtype=np.int32)
    song = Song(
        tracks=[
            Track("Lead ♪", 73, False, melody, role="melody"),
            Track("", 0, False, np.zeros((0, 4), np.int32), role=None),
            Track("Drums", 0, True, drums, role="drums"),
        ],
        bars=np.array([0, 4, 20, 32, 44, 56, 68], dtype=np.int64),
        end=80,
        time_signatures=[TimeSignature(0, 1, 4), TimeSignature(4, 4, 4), TimeSignature(20, 3, 4)],
        tempos=[Tempo(0, 93.71428571428571), Tempo(20, 140.0)],
        key_signature=Key(9, "minor"),
        steps_per_quarter=4,
        source="/some/where/song.mid",
        fermatas=[16, 44],
        plan=Plan(
            key=Key(0, "major"),
            chords=[Chord(0, 8, 0, "maj", 0), Chord(8, 12, 7, "dom7", 11)],
            sections=[Section(0, 3, "A"), Section(3, 4, "B'")],
            phrase_ends=[2, 6],
        ),
        role_map="band",
    )
    song.style = "string_quartet"
    song.split = "validation"
    return song


def _assert_same(a: Song, b: Song) -> None:
    assert len(a.tracks) == len(b.tracks)
    for ta, tb in zip(a.tracks, b.tracks, strict=True):
        for field in ("name", "program", "is_drum", "role"):
            assert getattr(ta, field) == getattr(tb, field), field
        assert tb.notes.dtype == np.int32 and tb.notes.shape == (len(ta.notes), 4)
        np.testing.assert_array_equal(ta.notes, tb.notes)
    np.testing.assert_array_equal(a.bars, b.bars)
    assert b.bars.dtype == np.int64
    for field in ("end", "time_signatures", "tempos", "key_signature", "steps_per_quarter",
                  "source", "fermatas", "plan", "role_map"):
        assert getattr(a, field) == getattr(b, field), field
    assert getattr(a, "style", None) == b.style
    assert getattr(a, "split", None) == b.split


def test_round_trip_is_exact(tmp_path):
    song = _song()
    plain = _song()
    plain.plan = None
    plain.key_signature = None
    del plain.style, plain.split
    write_shard([song, plain], tmp_path / "a.npz")
    back = read_shard(tmp_path / "a.npz")
    assert len(back) == 2
    _assert_same(song, back[0])
    _assert_same(plain, back[1])
    assert back[0].tempos[0].qpm == 93.71428571428571
    assert back[0].plan.form == "A3 B'4"
    assert back[1].plan is None and back[1].style is None and back[1].split is None


def test_round_trip_of_a_read_midi_file(band_midi, tmp_path):
    song = read_song(band_midi)
    write_shard([song], tmp_path / "band.npz")
    (back,) = read_shard(tmp_path / "band.npz")
    _assert_same(song, back)
    assert back.roles == song.roles == ["melody", "bass", "drums"]


def test_a_shard_read_without_notes_keeps_everything_else(tmp_path):
    song = _song()
    write_shard([song, _song()], tmp_path / "a.npz")
    back = read_shard(tmp_path / "a.npz", notes=False)
    assert len(back) == 2
    assert all(t.n_notes == 0 and t.notes.shape == (0, 4) for t in back[0].tracks)
    assert [t.name for t in back[0].tracks] == [t.name for t in song.tracks]
    assert [t.role for t in back[1].tracks] == [t.role for t in song.tracks]
    np.testing.assert_array_equal(back[1].bars, song.bars)
    for field in ("end", "time_signatures", "plan", "style", "split"):
        assert getattr(back[0], field) == getattr(song, field), field


def test_shard_loads_without_pickle(tmp_path):
    write_shard([_song()], tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
        assert z["note_pitch"].shape == (23,) and z["note_pitch"].dtype == np.uint8
        assert z["chords"].shape == (2, 5)


def test_notes_and_chords_beyond_the_narrow_types_round_trip(tmp_path):
    song = _song()
    song.tracks[0].notes[3] = [2_000_000_000, 70_000, 300, -5]  # no uint8, an onset far away
    song.tracks[0].notes[4, 0] = -2_000_000_000  # 4e9 steps back: no int32 difference
    song.plan.chords.append(Chord(40, 8, 9, "a quality of its own", 4))
    write_shard([song, _song()], tmp_path / "a.npz")
    back = read_shard(tmp_path / "a.npz")
    _assert_same(song, back[0])
    _assert_same(_song(), back[1])
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert z["note_pitch"].dtype == np.uint16 and z["note_velocity"].dtype == np.int16
        assert z["note_duration"].dtype == np.int32 and z["note_onset_step"].dtype == np.int64


def test_format_1_shards_are_still_read(tmp_path):
    """What format 1 wrote: one [N, 4] note array and the chords in the JSON."""
    import json

    song = _song()
    notes = np.concatenate([t.notes for t in song.tracks]).astype(np.int32)
    meta = {"format": 1, "songs": [{
        "source": song.source, "end": song.end, "steps_per_quarter": 4,
        "time_signatures": [[ts.step, ts.numerator, ts.denominator]
                            for ts in song.time_signatures],
        "tempos": [[t.step, t.qpm] for t in song.tempos], "key_signature": [9, "minor"],
        "fermatas": song.fermatas, "role_map": "band", "grid": "file",
        "style": "string_quartet", "split": "validation",
        "plan": {"key": [0, "major"], "chords": [[0, 8, 0, "maj", 0], [8, 12, 7, "dom7", 11]],
                 "sections": [[0, 3, "A"], [3, 4, "B'"]], "phrase_ends": [2, 6]},
        "tracks": [{"name": t.name, "role": t.role} for t in song.tracks]}]}
    np.savez_compressed(
        tmp_path / "old.npz", notes=np.asfortranarray(notes),
        track_n_notes=np.array([t.n_notes for t in song.tracks]),
        track_program=np.array([73, 0, 0], np.int16), track_is_drum=np.array([0, 0, 1], bool),
        bars=song.bars, song_n_bars=np.array([len(song.bars)]),
        meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    (back,) = read_shard(tmp_path / "old.npz")
    _assert_same(song, back)
    (bare,) = read_shard(tmp_path / "old.npz", notes=False)
    assert bare.plan == song.plan and all(t.n_notes == 0 for t in bare.tracks)


def test_empty_shard_and_atomic_write(tmp_path):
    write_shard([], tmp_path / "empty.npz")
    assert read_shard(tmp_path / "empty.npz") == []
    write_shard([_song()], tmp_path / "empty.npz")  # replaced in place
    assert len(read_shard(tmp_path / "empty.npz")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.npz"]


def test_bad_shards_raise_shard_error(tmp_path):
    with pytest.raises(ShardError, match="no such shard"):
        read_shard(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ShardError, match="corrupt shard"):
        read_shard(tmp_path / "junk.npz")
