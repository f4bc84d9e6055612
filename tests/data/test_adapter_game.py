"""The game-music adapter, and the WAD reader of its rebuild recipe (datasets/game/rebuild.py)."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import mido
import pytest

from structdiff.data.adapters import game
from structdiff.data.corpus import split_of

from ..conftest import note_msgs, write_mido

GAME = Path("/work/shared/data/game")
REBUILD = Path(__file__).resolve().parents[2] / "datasets" / "game" / "rebuild.py"


def load_rebuild():
    spec = importlib.util.spec_from_file_location("game_rebuild", REBUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_wad(lumps: list[tuple[str, bytes]], ident: bytes = b"PWAD") -> bytes:
    """A WAD file: header, the lumps' bytes, then the directory."""
    body, entries, offset = b"", b"", 12
    for name, data in lumps:
        entries += struct.pack("<ii8s", offset + len(body), len(data), name.encode())
        body += data
    return ident + struct.pack("<ii", len(lumps), 12 + len(body)) + body + entries


def test_wad_reader_finds_midi_music_lumps_and_names_mus_ones():
    rebuild = load_rebuild()
    midi = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60" + b"MTrk\x00\x00\x00\x04\x00\xff\x2f\x00"
    mus = b"MUS\x1a" + bytes(12)
    wad = make_wad([("MAP01", b"level"), ("D_RUNNIN", midi), ("D_E1M1", mus), ("DEMO1", b"x")])
    assert [name for name, _ in rebuild.read_wad_lumps(wad)] == ["MAP01", "D_RUNNIN", "D_E1M1",
                                                                 "DEMO1"]
    found, skipped = rebuild.music_lumps(wad)
    assert found == {"D_RUNNIN": midi}
    assert skipped == ["D_E1M1"]


def test_wad_reader_rejects_other_files_and_a_bad_directory():
    rebuild = load_rebuild()
    with pytest.raises(rebuild.WadError, match="not a WAD"):
        rebuild.read_wad_lumps(b"MThd" + bytes(20))
    truncated = make_wad([("D_X", b"MThd")])[:-4]
    with pytest.raises(rebuild.WadError, match="directory"):
        rebuild.read_wad_lumps(truncated)


def test_ids_keep_the_collection_folder_whichever_level_is_the_root(tmp_path):
    for name in ("freedoom/freedoom1_D_E1M1.mid", "simutrans/01-Theme.mid"):
        path = tmp_path / "game" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mido(path, [note_msgs([(0, 480, 60, 90)], program=0, name="Piano")])
    whole = game.list_entries(tmp_path / "game")
    assert [e.id for e in whole] == ["game/freedoom/freedoom1_D_E1M1.mid",
                                     "game/simutrans/01-Theme.mid"]
    assert all(e.style == "game" and e.split == split_of(e.id) for e in whole)
    (one,) = game.list_entries(tmp_path / "game" / "simutrans")
    assert one == whole[1]


def test_a_drum_named_track_on_a_pitched_channel_becomes_drums(tmp_path):
    write_mido(tmp_path / "techno.mid", [
        note_msgs([(0, 480, 48, 90)], channel=0, program=33, name="Bass"),
        note_msgs([(i * 240, i * 240 + 60, 42, 90) for i in range(8)], channel=1, program=24,
                  name="DrumR"),
        note_msgs([(0, 480, 72, 90)], channel=2, program=114, name="Steel Drums"),
    ])
    entry = game.list_entries(tmp_path)[0]
    song = game.read_entry(entry, 4, 0)
    roles = {t.name: (t.role, t.is_drum) for t in song.tracks}
    assert roles == {"Bass": ("bass", False), "DrumR": ("drums", True),
                     "Steel Drums": ("keys", False)}
    assert song.plan is None and song.style == "game" and song.role_map == "band"


@pytest.mark.parametrize("name, expected", [
    ("simutrans/16-Midnight-Express2.mid",
     {"Bass": "bass", "Drums": "drums", "Piano": "keys", "Guitar": "guitar", "Melody": "melody",
      "Solo": "melody"}),
    ("freedoom/freedoom1_D_E1M8.mid",  # GM programs: Deep Voice 91 (a choir pad), Falsetto 52
     {"Drums": "drums", "Bass": "bass", "Rhodes Piano": "keys", "Pad": "strings",
      "Deep Voice": "melody", "Falsetto": "strings"}),
])
def test_real_game_files_get_band_roles(name, expected):
    if not (GAME / name).is_file():
        pytest.skip(f"the game corpus is not at {GAME}")
    entries = game.list_entries(GAME / name.split("/")[0])
    entry = next(e for e in entries if e.id == f"game/{name}")
    song = game.read_entry(entry, 4, 0)
    roles = {t.name.strip(): t.role for t in song.tracks if t.n_notes}
    assert roles == expected
    assert song.style == "game" and song.source == entry.id and song.plan is None


def test_setup_bar_and_restated_meter_are_no_bar_lines(tmp_path):
    meta = [  # a 1/8 setup bar at 60 qpm, then 4/4 at 120 restated one beat into bar 2
        mido.MetaMessage("time_signature", numerator=1, denominator=8, time=0),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=240),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=5 * 480),
    ]
    kicks = [(240 + i * 1920, 240 + i * 1920 + 120, 36, 100) for i in range(4)]
    write_mido(tmp_path / "setup.mid", [meta, note_msgs(kicks, channel=9, name="Drums")])
    song = game.read_entry(game.list_entries(tmp_path)[0], 4, 0)
    assert song.bars.tolist() == [0, 16, 32, 48]
    assert song.tracks[0].notes[:, 0].tolist() == [0, 16, 32, 48]  # every kick on a downbeat
    assert [(t.step, round(t.qpm)) for t in song.tempos] == [(0, 120)]
    assert [(t.step, t.numerator, t.denominator) for t in song.time_signatures] == [(0, 4, 4)]
