"""A tiny prepared corpus (five chorales) and the debug models trained on it, for tests."""

from __future__ import annotations

from pathlib import Path

from structdiff.cli import main
from structdiff.data.corpus import split_of
from structdiff.data.io import read_song
from structdiff.data.midi import write_midi
from structdiff.data.prepare import prepare

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


def tiny_corpus(root: Path) -> Path:
    """The five chorales as MIDI under `root/midi`, prepared into `root/prepared`."""
    midi = root / "midi"
    midi.mkdir(parents=True, exist_ok=True)
    for ref, name in zip(CHORALES, names_with_splits()):
        write_midi(read_song(f"music21:{ref}"), midi / name)
    prepare(midi, root / "prepared", workers=1, progress=False)
    return root / "prepared"


def train_debug(model: str, prepared: Path, root: Path) -> Path:
    """Train `configs/debug/MODEL.yaml` on `prepared`; the folder of its exported bundle."""
    export = root / model
    code = main(["train", model, "--config", str(CONFIGS / f"{model}.yaml"),
                 "--data.prepared", str(prepared), "--model.export_dir", str(export),
                 "--trainer.default_root_dir", str(root / f"run_{model}")])
    assert code == 0
    return export
