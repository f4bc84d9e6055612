"""Train the debug planner on a tiny prepared corpus, then plan with it (CPU, seconds)."""

import json
from pathlib import Path

import pytest
import torch

from structdiff.cli import main
from structdiff.data.plan_tensor import MAX_SLOTS, PLAN_LAYOUT
from structdiff.training.planner_module import group_cross_entropy
from tests.debug_models import tiny_corpus, train_debug, two_style_splits

DEBUG = str(Path(__file__).parents[2] / "configs" / "debug" / "planner.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("planner")
    return train_debug("planner", tiny_corpus(root), root)


def test_training_writes_a_loadable_bundle(trained):
    meta = json.loads((trained / "planner.json").read_text())
    assert meta["kind"] == "planner" and meta["training"]["steps"] >= 1
    assert (trained / "planner.safetensors").stat().st_size > 10_000
    assert sum(meta["key_counts"][""]) == 4  # the four train songs' keys


def test_only_styles_keeps_the_plans_and_keys_of_those_styles(trained, monkeypatch):
    from structdiff.training.planner_data import PlanDataModule

    prepared = trained.parent / "prepared"
    splits = two_style_splits(prepared, monkeypatch, notes=False)
    every = PlanDataModule(str(prepared))
    every.setup()
    chorales = PlanDataModule(str(prepared), only_styles=["chorale"])
    chorales.setup()
    for split, songs in splits.items():
        want = sum(1 for s in songs if s.style == "chorale" and s.plan is not None)
        assert len(chorales.examples[split]) == want <= len(every.examples[split])
        assert {ex.style for ex in chorales.examples[split]} == {"chorale"}
    assert len(chorales.examples["train"]) < len(every.examples["train"])
    assert set(chorales.key_counts) == {"chorale"} and set(every.key_counts) == {"chorale",
                                                                                 "madrigal"}
    with pytest.raises(ValueError, match="no train songs with plans of the styles quartet"):
        PlanDataModule(str(prepared), only_styles=["quartet"]).setup()
    with pytest.raises(ValueError, match="at least one style"):
        PlanDataModule(str(prepared), only_styles=[])


def test_plan_keeps_what_the_user_fixed_and_repeats_with_a_seed(trained, tmp_path, capsys):
    out = tmp_path / "plan.json"
    argv = ["plan", "--model", str(trained), "--form", "A4 B2 A4", "--chords", "C G | Am F",
            "--key", "C major", "--seed", "3", "--steps", "4", "--out", str(out)]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert data["n_bars"] == 10
    assert [(s["label"], s["n_bars"]) for s in data["sections"]] == [("A", 4), ("B", 2),
                                                                      ("A", 4)]
    assert data["key"] == {"tonic": 0, "mode": "major"}
    first = [(c["onset_qn"], c["root"], c["quality"]) for c in data["chords"][:4]]
    assert first == [(0.0, 0, "maj"), (2.0, 7, "maj"), (4.0, 9, "min"), (6.0, 5, "maj")]
    assert main(argv) == 0
    assert json.loads(out.read_text()) == data
    for sampler in ("ddpm", "dpmsolver++"):
        assert main(argv[:-2] + ["--sampler", sampler, "--out", str(out)]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--bars", "0"], "--bars must be >= 1"),
        (["--bars", "12", "--form", "A4 B4"], "form has 8 bars, --bars is 12"),
        (["--bars", "4", "--chords", "C H"], "unknown chord symbol 'H'"),
        (["--bars", "4", "--style", "jazz"], "unknown style 'jazz'"),
        (["--bars", "4", "--key", "X major"], "key"),
        (["--bars", "4", "--steps", "0"], "--steps must be >= 1"),
        (["--bars", "4", "--meter", "4-4"], "--meter"),
        (["--form", "A4 B"], "bad form token"),
    ],
)
def test_plan_bad_values_exit_2(trained, tmp_path, capsys, extra, message):
    out = tmp_path / "plan.json"
    code = main(["plan", "--model", str(trained), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


def test_group_cross_entropy_ignores_padding_and_unused_slots():
    B, L = 1, 2
    one_hot = torch.zeros(B, L, PLAN_LAYOUT[-1].offset + PLAN_LAYOUT[-1].size)
    for g in PLAN_LAYOUT:
        one_hot[..., g.offset] = 1
    perfect = one_hot * 50 - 25
    pad = torch.tensor([[False, True]])
    slot_valid = torch.zeros(B, L, MAX_SLOTS, dtype=torch.bool)
    slot_valid[0, 0, :4] = True
    assert group_cross_entropy(perfect, one_hot, pad, slot_valid) < 1e-6
    wrong = perfect.clone()
    wrong[0, 1] = -perfect[0, 1]  # the padding bar is wrong: no effect
    wrong[0, 0, PLAN_LAYOUT[-1].slice] *= -1  # an unused slot is wrong: no effect
    assert group_cross_entropy(wrong, one_hot, pad, slot_valid) < 1e-6
    wrong[0, 0, PLAN_LAYOUT[3].slice] *= -1  # slot 0 is used: counts
    assert group_cross_entropy(wrong, one_hot, pad, slot_valid) > 0.5
    # a masked planner counts its masked groups only
    only = torch.zeros(B, L, len(PLAN_LAYOUT), dtype=torch.bool)
    only[0, 0, 4] = True  # slot 0's quality, right
    assert group_cross_entropy(wrong, one_hot, pad, slot_valid, only=only) < 1e-6
    only[0, 0, 3] = True  # slot 0's root, wrong
    assert group_cross_entropy(wrong, one_hot, pad, slot_valid, only=only) > 10


def test_a_masked_planner_trains_and_keeps_what_the_user_fixed(trained, tmp_path):
    from structdiff.pipeline.plan import load_planner

    bundle = train_debug("planner", trained.parent / "prepared", tmp_path,
                         "--model.diffusion", "masked", name="masked")
    assert json.loads((bundle / "planner.json").read_text())["config"]["diffusion"] == "masked"
    assert load_planner(bundle).model.cfg.diffusion == "masked"
    out = tmp_path / "plan.json"
    argv = ["plan", "--model", str(bundle), "--form", "A4 B2 A4", "--chords", "C G | Am F",
            "--key", "D minor", "--seed", "3", "--steps", "6", "--guidance", "2",
            "--out", str(out)]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert [(s["label"], s["n_bars"]) for s in data["sections"]] == [("A", 4), ("B", 2),
                                                                      ("A", 4)]
    first = [(c["onset_qn"], c["root"], c["quality"]) for c in data["chords"][:4]]
    assert first == [(0.0, 0, "maj"), (2.0, 7, "maj"), (4.0, 9, "min"), (6.0, 5, "maj")]
    assert data["key"] == {"tonic": 2, "mode": "minor"}
    assert main(argv) == 0 and json.loads(out.read_text()) == data
    # a temperature divides the logits: far below 1 the draws are the network's surest
    from structdiff.pipeline.plan import generate_plan

    planner = load_planner(bundle)
    sure = generate_plan(planner, 8, key="C", seed=0, temperature=1e-4)[0].chords
    assert sure != generate_plan(planner, 8, key="C", seed=0)[0].chords
    with pytest.raises(ValueError, match="temperature must be > 0"):
        generate_plan(planner, 8, temperature=0)


def test_an_unknown_diffusion_is_a_one_line_error(capsys):
    assert main(["train", "planner", "--config", DEBUG, "--model.diffusion", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "diffusion must be one of gaussian, masked" in err and err.count("\n") == 1


def test_training_resumes_from_the_last_checkpoint(trained):
    run = trained.parent / "run_planner"
    last = next(run.rglob("last.ckpt"))
    steps = json.loads((trained / "planner.json").read_text())["training"]["steps"]
    export = trained.parent / "export2"
    code = main(["train", "planner", "--config", DEBUG, "--data.prepared",
                 str(trained.parent / "prepared"), "--model.export_dir", str(export),
                 "--trainer.default_root_dir", str(run), "--trainer.max_epochs", "2",
                 "--ckpt_path", str(last)])
    assert code == 0
    # the second epoch continues from the first: twice the steps, not a fresh start
    assert json.loads((export / "planner.json").read_text())["training"]["steps"] == 2 * steps


def test_train_option_errors_are_one_line(capsys):
    assert main(["train", "planner", "--config", "no-such-config.yaml"]) == 2
    err = capsys.readouterr().err
    assert "no-such-config.yaml" in err and err.count("\n") == 1
    assert main(["train", "planner", "--config", DEBUG, "--bogus", "1"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_a_nan_loss_stops_training_with_one_line_and_writes_nothing(tmp_path, capsys,
                                                                    monkeypatch):
    from structdiff.training.planner_module import PlannerModule

    real = PlannerModule._loss

    def broken(self, model, batch, generator=None):
        loss = real(self, model, batch, generator)
        return loss * float("nan") if self.training else loss

    monkeypatch.setattr(PlannerModule, "_loss", broken)
    prepared = tiny_corpus(tmp_path)
    export = tmp_path / "export"
    code = main(["train", "planner", "--config", DEBUG, "--data.prepared", str(prepared),
                 "--model.export_dir", str(export), "--trainer.default_root_dir",
                 str(tmp_path / "run")])
    assert code == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "structdiff: error" in ln]
    assert len(err) == 1 and "the loss is nan at step 0" in err[0]
    assert not export.exists()  # no bundle exported from a broken run
    assert not list((tmp_path / "run").rglob("*.ckpt"))  # and no checkpoint


class _Payload:
    """Unpickled, it would create the file `path` (a checkpoint crafted to run code)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.mark.parametrize("where", ["file", "url"])
def test_a_malicious_checkpoint_runs_nothing_and_is_a_one_line_error(tmp_path, capsys, where):
    import pickle

    ran = tmp_path / "code-ran"
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": {}, "x": _Payload(ran)}))
    ckpt = str(evil) if where == "file" else "https://example.invalid/evil.ckpt"
    code = main(["train", "planner", "--config", DEBUG, "--data.prepared", str(tmp_path),
                 "--trainer.default_root_dir", str(tmp_path / "run"), "--ckpt_path", ckpt])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert ("loads safely" if where == "file" else "URL") in err
    assert not ran.exists()
    assert not (tmp_path / "run").exists()
