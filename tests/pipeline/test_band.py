"""Band songs with the tiny debug band arranger (mono, poly and drum roles): new songs,
accompaniment, regenerating the drums and continuing, through `structdiff generate`."""

import numpy as np
import pytest

from structdiff.cli import main
from structdiff.data.drums import CLASS_NOTES
from structdiff.data.io import read_song
from structdiff.data.midi import write_midi
from structdiff.data.roles import assign_roles
from structdiff.data.song import PITCH, START
from structdiff.pipeline.arrange import arrange, load_arranger
from tests.debug_models import band_song, tiny_band_corpus, train_debug, train_debug_band

pytestmark = pytest.mark.usefixtures("one_thread")

BAND = ["melody", "bass", "keys", "guitar", "strings", "drums"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("band")
    prepared = tiny_band_corpus(root)
    song = band_song(8, shift=2)
    write_midi(song, root / "band.mid")
    melody = band_song(8, shift=2)
    melody.tracks = melody.tracks[:1]
    write_midi(melody, root / "melody.mid")
    return {"arranger": train_debug_band(prepared, root),
            "planner": train_debug("planner", prepared, root), "root": root}


def _run(models, *argv):
    return main([str(a) for a in ["generate", "--planner", models["planner"], "--arranger",
                                  models["arranger"], "--steps", "3", "--no-wav", "--no-png",
                                  *argv]])


def _tracks(path):
    return read_song(path, role_map="band").tracks


def test_new_band_song_has_the_band_roles_in_order(models):
    out = models["root"] / "new" / "song.mid"
    assert _run(models, "--bars", "8", "--seed", "1", "--out", out) == 0
    tracks = _tracks(out)
    roles = [t.role for t in tracks]
    assert roles == [r for r in BAND if r in roles]
    names = {t.role: t.name for t in tracks}
    assert all(names[r].lower().startswith(r) for r in roles)
    for t in tracks:
        assert t.is_drum == (t.role == "drums")
        if t.is_drum:
            assert set(t.notes[:, PITCH].tolist()) <= set(CLASS_NOTES)


def test_accompany_a_melody_keeps_it_and_plays_the_band(models):
    out = models["root"] / "acc" / "song.mid"
    assert _run(models, "--accompany", models["root"] / "melody.mid", "--roles", "band",
                "--out", out) == 0
    before = _tracks(models["root"] / "melody.mid")[0].notes
    tracks = _tracks(out)
    melody = [t for t in tracks if t.role == "melody"]
    assert len(melody) == 1 and np.array_equal(melody[0].notes[:, :3], before[:, :3])


def test_regenerate_drums_keeps_every_other_track(models):
    src = models["root"] / "band.mid"
    out = models["root"] / "regen" / "song.mid"
    assert _run(models, "--regenerate", "drums", "--song", src, "--out", out) == 0
    before = {t.role: t for t in _tracks(src)}
    after = {t.role: t for t in _tracks(out)}
    # the tiny model may play no drums at all; whatever it plays is on the kit
    assert set(after) - {"drums"} == set(before) - {"drums"}
    for role in ("melody", "bass", "keys"):
        assert np.array_equal(after[role].notes[:, :3], before[role].notes[:, :3]), role
    if "drums" in after:
        assert after["drums"].is_drum
        assert set(after["drums"].notes[:, PITCH].tolist()) <= set(CLASS_NOTES)


def test_a_file_with_drums_is_read_with_the_band_map(models, capsys):
    src = models["root"] / "band.mid"
    out = models["root"] / "cont" / "song.mid"
    assert _run(models, "--continue", src, "--bars", "4", "--out", out) == 0
    song = read_song(out, role_map="band")
    assert song.n_bars == 12
    before = {t.role: t.notes for t in _tracks(src)}
    for t in song.tracks:
        old = t.notes[t.notes[:, START] < 128]
        assert np.array_equal(old[:, :3], before[t.role][:, :3]), t.role


def test_arrange_keeps_known_poly_and_drum_parts(models):
    bundle = load_arranger(models["arranger"])
    song = assign_roles(band_song(8), "band")
    notes = arrange(bundle, song, song.plan or _plan(song), ["keys", "drums", "bass"],
                    known_roles=("keys", "drums"), steps=2)
    assert set(notes) == {"bass"}
    assert (notes["bass"][:, PITCH] >= 28).all()


def _plan(song):
    from structdiff.analysis import analyze

    return analyze(song)


def test_band_instruments_by_name_or_default():
    from structdiff.pipeline.generate import parse_instruments

    defaults = {"melody": 80, "bass": 33, "keys": 0, "guitar": 27, "strings": 48, "drums": 0}
    assert parse_instruments(None, BAND, defaults) == defaults
    assert parse_instruments("melody=flute, bass, drums", BAND, defaults) == {
        "melody": 73, "bass": 33, "drums": 0}
    with pytest.raises(ValueError, match="ROLE=INSTRUMENT"):
        parse_instruments("violin", BAND, defaults)
