"""Tiny prepared corpora (five chorales; five band songs built in code) and the debug models
trained on them, for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structdiff.cli import main
from structdiff.data.corpus import split_of
from structdiff.data.io import read_song
from structdiff.data.midi import write_midi
from structdiff.data.prepare import prepare
from structdiff.data.song import Song, Tempo, TimeSignature, Track, sort_notes

CHORALES = ["bach/bwv66.6", "bach/bwv1.6", "bach/bwv10.7", "bach/bwv101.7", "bach/bwv102.7"]
CONFIGS = Path(__file__).parents[1] / "configs" / "debug"


def names_with_splits() -> list[str]:
    """File names whose hash puts four in train and one in validation."""
    want = {"train": 4, "validation": 1}
    names = []
    i = 0
    while any(want.values()):
        name = f"song{i}.mid"
        split = split_of(name)
        if want.get(split, 0):
            want[split] -= 1
            names.append(name)
        i += 1
    return names


def tiny_corpus(root: Path, shard_size: int = 64) -> Path:
    """The five chorales as MIDI under `root/midi`, prepared into `root/prepared` (in shards
    of about `shard_size` songs: 1 gives several shards)."""
    midi = root / "midi"
    midi.mkdir(parents=True, exist_ok=True)
    for ref, name in zip(CHORALES, names_with_splits()):
        write_midi(read_song(f"music21:{ref}"), midi / name)
    prepare(midi, root / "prepared", workers=1, progress=False, shard_size=shard_size)
    return root / "prepared"


def train_debug(model: str, prepared: Path, root: Path, *extra: str, name: str | None = None
                ) -> Path:
    """Train `configs/debug/MODEL.yaml` on `prepared` (with `extra` command-line overrides);
    the folder of its exported bundle, `root/NAME` (default MODEL)."""
    export = root / (name or model)
    code = main(["train", model, "--config", str(CONFIGS / f"{model}.yaml"),
                 "--data.prepared", str(prepared), "--model.export_dir", str(export),
                 "--trainer.default_root_dir", str(root / f"run_{name or model}"), *extra])
    assert code == 0
    return export


# -- a tiny band ----------------------------------------------------------------------------

BAND_CHORDS = ((0, 4, 7), (7, 11, 2), (9, 0, 4), (5, 9, 0))  # C G Am F, one a bar


def band_song(n_bars: int = 8, shift: int = 0) -> Song:
    """A 4/4 band song built in code: melody (chord tones in quarters), bass (roots on beats 1
    and 3), keys (the triad held a bar) and drums (kick 1 and 3, snare 2 and 4, closed hi-hat
    eighths), over C G Am F moved up by `shift` semitones; 16 steps a bar."""
    melody, bass, keys, drums = [], [], [], []
    for bar in range(n_bars):
        lo = 16 * bar
        chord = [(pc + shift) % 12 for pc in BAND_CHORDS[bar % 4]]
        for beat in range(4):
            melody.append((lo + 4 * beat, 4, 72 + chord[beat % 3], 90))
            drums.append((lo + 4 * beat, 1, 36 if beat % 2 == 0 else 38, 100))
        for half in range(2):
            bass.append((lo + 8 * half, 8, 36 + chord[0], 90))
        for pc in chord:
            keys.append((lo, 16, 60 + pc, 70))
        for eighth in range(8):
            drums.append((lo + 2 * eighth, 1, 42, 80))
    tracks = [Track("Melody", 80, False, sort_notes(np.array(melody))),
              Track("Bass", 33, False, sort_notes(np.array(bass))),
              Track("Piano", 0, False, sort_notes(np.array(keys))),
              Track("Drums", 0, True, sort_notes(np.array(drums)))]
    return Song(tracks, np.arange(n_bars, dtype=np.int64) * 16, 16 * n_bars,
                [TimeSignature(0, 4, 4)], [Tempo(0, 110.0)], source="band song")


def tiny_band_corpus(root: Path) -> Path:
    """Five band songs (in five keys) as MIDI under `root/band_midi`, prepared with the band
    role map into `root/band_prepared`."""
    midi = root / "band_midi"
    midi.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names_with_splits()):
        write_midi(band_song(8, shift=i), midi / name)
    prepare(midi, root / "band_prepared", workers=1, role_map="band", progress=False)
    return root / "band_prepared"


def train_debug_band(prepared: Path, root: Path) -> Path:
    """Train `configs/debug/arranger_band.yaml` on `prepared`; its exported bundle's folder."""
    export = root / "arranger_band"
    code = main(["train", "arranger", "--config", str(CONFIGS / "arranger_band.yaml"),
                 "--data.prepared", str(prepared), "--model.export_dir", str(export),
                 "--trainer.default_root_dir", str(root / "run_arranger_band")])
    assert code == 0
    return export


def two_style_splits(prepared: Path, monkeypatch, notes: bool = True) -> dict:
    """The prepared corpus's training splits with every other song relabelled `madrigal` (the
    rest `chorale`), served to the data modules in their place; returns the splits."""
    from structdiff.data import prepare as prepare_module

    splits = prepare_module.training_splits(prepared, notes=notes)
    for songs in splits.values():
        for i, song in enumerate(songs):
            song.style = "chorale" if i % 2 == 0 else "madrigal"
    monkeypatch.setattr(prepare_module, "training_splits", lambda *a, **k: splits)
    return splits
