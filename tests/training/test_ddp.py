"""Distributed training through Lightning: two processes on the CPU (DDP over gloo), as the
command line starts them (`--trainer.strategy ddp --trainer.devices 2`)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.debug_models import tiny_corpus

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(("model", "stream"), [("arranger", False), ("planner", False),
                                               ("arranger", True)])
def test_two_processes_train_on_different_data_and_write_one_checkpoint(tmp_path, model,
                                                                        stream):
    # streaming: several shards, each rank reads its own (structdiff.training.streaming)
    prepared = tiny_corpus(tmp_path / "corpus", shard_size=1 if stream else 64)
    extra = ["--data.stream", "true", "--data.buffer_shards", "1"] if stream else []
    probe = tmp_path / "probe"
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled",
           "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "structdiff.cli", "train", model, "--config",
         str(ROOT / "configs" / "debug" / f"{model}.yaml"), "--data.prepared", str(prepared),
         "--model.export_dir", str(tmp_path / "export"), "--trainer.default_root_dir",
         str(run), "--trainer.strategy", "ddp", "--trainer.devices", "2",
         "--trainer.callbacks+=tests.training.ddp_probe.BatchProbe",
         "--trainer.callbacks.folder", str(probe), *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = {p.name: p.read_text().split("\n")[:-1] for p in sorted(probe.glob("rank*.txt"))}
    assert sorted(ranks) == ["rank0.txt", "rank1.txt"]
    assert all(line.startswith("2 ") for lines in ranks.values() for line in lines)
    seen = [set(lines) for lines in ranks.values()]
    assert seen[0] and seen[1] and not seen[0] & seen[1]  # no batch trained on twice
    checkpoints = list(run.rglob("*.ckpt"))
    assert checkpoints and len({c.parent for c in checkpoints}) == 1
    assert (tmp_path / "export" / f"{model}.safetensors").is_file()
