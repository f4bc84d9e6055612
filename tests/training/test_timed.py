"""`python -m structdiff.training.timed`: a time-budgeted run of a `structdiff train` config
(no LightningCLI), its learning-rate factor, and its errors."""

import json

import pytest

from structdiff.training.timed import build, cosine_factor, main
from tests.debug_models import CONFIGS, tiny_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cosine_factor_warms_up_by_step_then_decays_by_time():
    assert cosine_factor(0.0, 60.0, 0, 4) == pytest.approx(0.25)
    assert cosine_factor(100.0, 60.0, 3, 4) == pytest.approx(1.0)  # warm-up is by steps
    assert cosine_factor(0.0, 60.0, 10, 4) == pytest.approx(1.0)
    assert cosine_factor(30.0, 60.0, 10, 4) == pytest.approx(0.5)
    assert cosine_factor(60.0, 60.0, 10, 4) == pytest.approx(0.0)
    assert cosine_factor(90.0, 60.0, 10, 4) == pytest.approx(0.0)


def test_build_links_the_datas_ranges_to_the_models():
    module, data = build("arranger", {"model": {"d_model": 32, "n_pitches": 50},
                                      "data": {"prepared": "nowhere"}})
    assert data.layout.n_pitches == 50 and module.hparams.n_pitches == 50
    with pytest.raises(ValueError, match="data.n_pitches and model.n_pitches differ"):
        build("arranger", {"model": {"n_pitches": 50}, "data": {"n_pitches": 54}})


def test_a_timed_run_stops_on_its_budget_and_exports(tmp_path):
    prepared = tiny_corpus(tmp_path / "corpus")
    export = tmp_path / "bundle"
    code = main(["arranger", str(CONFIGS / "arranger.yaml"), "--minutes", "0.05",
                 "--accelerator", "cpu", "--log-dir", str(tmp_path / "run"),
                 "--set", f"data.prepared={prepared}", "--set", f"model.export_dir={export}",
                 "--set", "model.sample_every_n_epochs=0"])
    assert code == 0
    meta = json.loads((export / "arranger.json").read_text())
    assert meta["training"]["steps"] >= 1 and meta["config"]["d_model"] == 32
    assert meta["training"]["seconds"] < 60
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    logs = list((tmp_path / "run").rglob("metrics.csv"))
    assert logs and "train/lr" in logs[0].read_text().splitlines()[0]


@pytest.mark.parametrize("extra, message", [
    (["--set", "model.d_model"], "--set wants BLOCK.KEY=VALUE"),
    (["--set", "optim.lr=1"], "--set wants BLOCK.KEY=VALUE"),
    (["--minutes", "0"], "--minutes must be positive"),
    (["--set", "model.no_such_option=1"], "no_such_option"),
])
def test_bad_options_are_one_line_errors(extra, message, capsys):
    args = ["arranger", str(CONFIGS / "arranger.yaml"), "--minutes", "1", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_an_unreadable_config_is_an_error(tmp_path, capsys):
    assert main(["arranger", str(tmp_path / "none.yaml"), "--minutes", "1"]) == 2
    assert "cannot read" in capsys.readouterr().err
