"""The Groove MIDI adapter: style families, the TD-11 to GM table, phrase ends, real files."""

from __future__ import annotations

import csv
from pathlib import Path

import miditoolkit
import numpy as np
import pytest

from structdiff.data.adapters import groove
from structdiff.data.adapters.styles import GROOVE_FAMILIES, groove_family
from structdiff.data.prepare import CorpusEntry, PrepareError
from structdiff.data.song import PITCH, START, MusicFileError

GROOVE = Path("/work/shared/data/groove")
TPQ = 480
BAR = 4 * TPQ


def write_drums(path: Path, hits: list[tuple[int, int]], bpm: float = 120.0) -> Path:
    """A one-track drum MIDI file (TD-11 style: track "MIDI", channel 10) of (tick, pitch) hits."""
    midi = miditoolkit.MidiFile(ticks_per_beat=TPQ)
    midi.tempo_changes = [miditoolkit.TempoChange(bpm, 0)]
    midi.time_signature_changes = [miditoolkit.TimeSignature(4, 4, 0)]
    kit = miditoolkit.Instrument(program=0, is_drum=True, name="MIDI")
    kit.notes = [miditoolkit.Note(100, pitch, tick, tick + 60) for tick, pitch in hits]
    midi.instruments.append(kit)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.dump(str(path))
    return path


def entry_for(path: Path, style: str = "rock", split: str = "train") -> CorpusEntry:
    return CorpusEntry(f"groove/{path.stem}", str(path), style, split)


def test_groove_family_maps_styles_and_meters():
    assert groove_family("funk/groove1") == "funk"
    assert groove_family("jazz") == "swing"
    assert groove_family("jazz/funk") == "funk"
    assert groove_family("afrocuban/bembe") == "latin"
    assert groove_family("latin/brazilian-bossa") == "bossa"
    assert groove_family("neworleans/secondline") == "funk"
    assert groove_family("rock/shuffle") == "blues"
    assert groove_family("gospel") == "soul"
    assert groove_family("pop/soft") == "ballad"
    assert groove_family("rock", "4-4") == "rock"
    assert groove_family("jazz", "3-4") == "waltz"  # the meter decides first
    assert groove_family("rock", "6-8") == "ballad"
    assert groove_family("rock/prog", "5-4") == "rock"
    with pytest.raises(ValueError, match="polka"):
        groove_family("polka")


def test_families_are_unique_and_cover_every_mapping():
    assert len(set(GROOVE_FAMILIES)) == len(GROOVE_FAMILIES)
    from structdiff.data.adapters import styles

    targets = {*styles._STYLE_FAMILIES.values(), *styles._TOP_FAMILIES.values(),
               *styles._METER_FAMILIES.values()}
    assert targets <= set(GROOVE_FAMILIES)


def test_read_entry_renames_td11_notes_to_general_midi(tmp_path):
    td11 = [22, 26, 58, 50, 47, 55, 52, 59, 36, 38, 40, 44, 53]
    hits = [(i * TPQ // 4, p) for i, p in enumerate(td11)]
    path = write_drums(tmp_path / "1_rock_120_beat_4-4.mid", hits)
    song = groove.read_entry(entry_for(path), 4, 0)
    (track,) = song.tracks
    assert track.is_drum and track.role == "drums" and song.role_map == "band"
    by_step = dict(zip(track.notes[:, START].tolist(), track.notes[:, PITCH].tolist()))
    assert [by_step[i] for i in range(len(td11))] == [
        42, 46, 43, 48, 45, 49, 57, 51, 36, 38, 40, 44, 53]
    assert song.plan.key is None and song.plan.chords == []


def test_fill_phrase_end_is_the_fill_bar_not_its_landing(tmp_path):
    groove_bar = [(i * TPQ // 2, 42) for i in range(8)] + [(0, 36), (2 * TPQ, 38)]
    fill = [(BAR + i * TPQ // 4, 48 if i < 8 else 43) for i in range(16)]
    landing = [(2 * BAR, 49), (2 * BAR, 36)]
    path = write_drums(tmp_path / "5_funk_120_fill_4-4.mid", groove_bar + fill + landing)
    song = groove.read_entry(entry_for(path), 4, 0)
    assert song.n_bars == 3
    assert song.plan.phrase_ends == [1]
    assert [(s.start_bar, s.n_bars, s.label) for s in song.plan.sections] == [(0, 3, "A")]
    no_landing = write_drums(tmp_path / "6_funk_120_fill_4-4.mid", groove_bar + fill)
    assert groove.read_entry(entry_for(no_landing), 4, 0).plan.phrase_ends == [1]


def test_beat_phrase_ends_every_fourth_bar_and_meter_from_the_name(tmp_path):
    hits = [(b * 3 * TPQ + i * TPQ, 36 if i == 0 else 42) for b in range(9) for i in range(3)]
    path = write_drums(tmp_path / "7_jazz_120_beat_3-4.mid", hits)  # the file itself says 4/4
    song = groove.read_entry(entry_for(path, "waltz"), 4, 0)
    assert [(ts.numerator, ts.denominator) for ts in song.time_signatures] == [(3, 4)]
    assert song.n_bars == 9 and np.all(np.diff(song.bars) == 12)
    assert song.plan.phrase_ends == [3, 7]


def test_read_entry_rejects_a_file_name_without_beat_type(tmp_path):
    path = write_drums(tmp_path / "drums.mid", [(0, 36)])
    with pytest.raises(MusicFileError, match="Groove MIDI file name"):
        groove.read_entry(entry_for(path), 4, 0)


def test_list_entries_takes_ids_splits_and_families_from_info_csv(tmp_path):
    rows = [
        ("drummer1/session1/1", "funk/groove1", "beat", "4-4", "test"),
        ("drummer1/session1/2", "jazz", "fill", "3-4", "validation"),
        ("drummer1/session1/3", "rock", "beat", "4-4", "train"),  # its MIDI file is missing
    ]
    with (tmp_path / "info.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["drummer", "session", "id", "style", "bpm", "beat_type", "time_signature",
                    "midi_filename", "audio_filename", "duration", "split"])
        for i, (id_, style, beat, ts, split) in enumerate(rows):
            name = f"{id_}_{style.replace('/', '-')}_120_{beat}_{ts}.mid"
            if i < 2:
                write_drums(tmp_path / name, [(0, 36)])
            w.writerow(["drummer1", "drummer1/session1", id_, style, 120, beat, ts, name, "",
                        1.0, split])
    entries = groove.list_entries(tmp_path)
    assert [(e.id, e.style, e.split) for e in entries] == [
        ("groove/drummer1/session1/1", "funk", "test"),
        ("groove/drummer1/session1/2", "waltz", "validation"),
    ]
    with pytest.raises(PrepareError, match="info.csv"):
        groove.list_entries(tmp_path / "drummer1")


@pytest.fixture(scope="module")
def real_entries():
    if not (GROOVE / "info.csv").is_file():
        pytest.skip(f"the Groove MIDI Dataset is not at {GROOVE}")
    return {e.id: e for e in groove.list_entries(GROOVE)}


def test_real_groove_files(real_entries):
    assert len(real_entries) == 1150
    beat = real_entries["groove/drummer1/eval_session/1"]  # funk/groove1, 138 bpm, beat, test
    assert (beat.style, beat.split) == ("funk", "test")
    song = groove.read_entry(beat, 4, 0)
    (track,) = song.tracks
    assert track.role == "drums" and song.source == beat.id
    assert song.tempo_qpm == pytest.approx(138, abs=0.5)
    first_beat = track.notes[track.notes[:, START] < 4]
    assert 36 in first_beat[:, PITCH]  # a kick on beat 1
    assert song.plan.phrase_ends[:2] == [3, 7]

    fills = [e for e in real_entries.values() if e.path.endswith("_fill_4-4.mid")][:2]
    for entry in fills:
        song = groove.read_entry(entry, 4, 0)
        assert len(song.plan.phrase_ends) == 1
        assert song.plan.phrase_ends[0] in (song.n_bars - 1, song.n_bars - 2)
        assert set(song.tracks[0].notes[:, PITCH].tolist()).isdisjoint(groove.TD11_TO_GM)
