"""A training run killed by SIGKILL in the middle resumes from its last checkpoint and ends
exactly where a run that was never killed ends: the same steps, the same weights."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.debug_models import tiny_corpus

ROOT = Path(__file__).parents[2]
EPOCHS = 8


def _command(model: str, prepared: Path, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "structdiff.cli", "train", model, "--config",
            str(ROOT / "configs" / "debug" / f"{model}.yaml"), "--data.prepared", str(prepared),
            "--model.export_dir", str(root / "export"), "--trainer.default_root_dir",
            str(root / "run"), "--trainer.max_epochs", str(EPOCHS),
            "--model.sample_every_n_epochs", "0", *extra]


ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("model", ["arranger", "planner"])
def test_a_killed_run_resumes_to_the_same_weights(tmp_path, model):
    prepared = tiny_corpus(tmp_path / "corpus")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_command(model, prepared, straight), env=ENV, check=True,
                   capture_output=True, timeout=600)

    proc = subprocess.Popen(_command(model, prepared, killed), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        end = time.time() + 300
        while time.time() < end and proc.poll() is None:
            ckpts = list((killed / "run").rglob("last.ckpt"))
            if ckpts:  # killed after its first checkpoint, mid-run, with any child it has
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "export").exists()
    subprocess.run(_command(model, prepared, killed, "--ckpt_path", "last"), env=ENV,
                   check=True, capture_output=True, timeout=600)

    meta = [json.loads((d / "export" / f"{model}.json").read_text())["training"]
            for d in (straight, killed)]
    assert meta[0]["steps"] == meta[1]["steps"] and meta[0]["epochs"] == meta[1]["epochs"]
    a, b = (load_file(d / "export" / f"{model}.safetensors") for d in (straight, killed))
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst < 1e-5, f"resumed weights differ by {worst}"


def test_a_killed_prepare_resumes_without_redoing_finished_shards(tmp_path):
    from structdiff.data.midi import write_midi
    from structdiff.data.prepare import load_prepared, prepare
    from tests.debug_models import band_song

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(48):
        write_midi(band_song(8, shift=i % 12), corpus / f"song{i:02d}.mid")
    out = tmp_path / "out"
    code = (f"from structdiff.data.prepare import prepare; prepare({str(corpus)!r}, "
            f"{str(out)!r}, workers=1, shard_size=4, progress=False)")
    # its own process group, killed whole (the main process and its worker), as a scheduler
    # or a terminal kills a job
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, start_new_session=True)
    try:
        end = time.time() + 300
        while time.time() < end and proc.poll() is None:
            if len(list(out.glob("shard-*.json"))) >= 2:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(30)
        time.sleep(0.5)  # the worker dies with its group
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL, "prepare ended before it could be killed"
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")
                if p.suffix in (".npz", ".json")}
    report = prepare(corpus, out, workers=1, shard_size=4, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    reused = [s for s in manifest["shards"]
              if s["name"].replace(".npz", ".json") in finished]
    assert report["shards"]["reused"] == len(reused) >= 2
    assert report["files_parsed"] == 48 - sum(s["files"] for s in reused)
    for name, stamp in finished.items():  # finished shards were not rewritten
        if (out / name).exists() and name.endswith(".json"):
            assert (out / name).stat().st_mtime_ns == stamp
    assert len(list(load_prepared(out))) == 48 and report["loaded"] == 48
    assert not list(out.glob(".shard-*"))  # no half-written temp files left
