import json
import math

import pytest

from structdiff.analysis import analyze
from structdiff.analysis.schema import analysis_dict
from structdiff.cli import main
from structdiff.data.io import read_song
from structdiff.data.midi import write_midi
from structdiff.metrics.evaluate import EvaluateError, evaluate

CHORALES = ["bach/bwv66.6", "bach/bwv1.6", "bach/bwv10.7", "bach/bwv101.7", "bach/bwv102.7"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """generated/: three chorales as MIDI (one with a plan sidecar) and a broken file;
    reference/: two other chorales as MIDI."""
    root = tmp_path_factory.mktemp("eval")
    gen, ref = root / "generated", root / "reference"
    gen.mkdir()
    ref.mkdir()
    for i, name in enumerate(CHORALES):
        song = read_song(f"music21:{name}")
        folder = gen if i < 3 else ref
        path = folder / f"{name.split('/')[1]}.mid"
        write_midi(song, path)
        if i == 0:  # a plan given with the song: here, its own analysis as MIDI
            written = read_song(path)
            sidecar = path.with_name(path.stem + ".plan.json")
            sidecar.write_text(json.dumps(analysis_dict(written, analyze(written))))
    (gen / "broken.mid").write_bytes(b"MThd\x00\x00")
    return gen, ref


def test_evaluate_writes_metrics_report_and_plots(folders, tmp_path):
    gen, ref = folders
    out = tmp_path / "out"
    result = evaluate(gen, ref, out, workers=1, progress=False)
    assert result["generated"]["n_scored"] == 3 and result["reference"]["n_scored"] == 2
    [skipped] = result["generated"]["skipped"]
    assert skipped["file"] == "broken.mid"
    assert skipped["reason"].startswith("truncated or corrupt MIDI file")
    text = (out / "metrics.json").read_text()
    assert "NaN" not in text
    data = json.loads(text)
    assert set(data) == {"generated", "reference", "aggregate", "per_file", "seconds"}
    for name in ("pitch_range", "pitch_class_entropy", "groove_consistency", "si_short",
                 "ils_ratio", "chord_tone_ratio", "tonal_distance", "dissonance_rate",
                 "pitch_range/soprano"):
        assert name in data["aggregate"], name
        assert set(data["aggregate"][name]) >= {"generated_mean", "reference_mean", "oa", "kl"}
    per_file = data["per_file"]["generated"]
    # the sidecar plan is a given plan: form adherence is scored for that song only
    assert per_file["bwv66.6.mid"]["form_adherence"] == pytest.approx(1.0)
    assert per_file["bwv1.6.mid"]["form_adherence"] is None
    report = (out / "report.md").read_text()
    assert "| pitch_range |" in report and "broken.mid" in report
    assert (out / "plots" / "whole_song.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "plots" / "per_role.png").is_file()


def test_metric_values_match_scoring_one_song(folders, tmp_path):
    from structdiff.metrics import song_metrics

    gen, ref = folders
    result = evaluate(gen, ref, tmp_path / "o", workers=1, progress=False)
    direct = song_metrics(read_song(ref / "bwv101.7.mid"))
    scored = result["per_file"]["reference"]["bwv101.7.mid"]
    for name, value in direct.items():
        if math.isnan(value):
            assert math.isnan(scored[name])
        else:
            assert scored[name] == pytest.approx(value), name


def test_evaluate_cli_and_its_errors(folders, tmp_path, capsys):
    gen, ref = folders
    out = tmp_path / "cli"
    assert main(["evaluate", str(gen), "--reference", str(ref), "--out", str(out),
                 "--workers", "1"]) == 0
    assert "scored 3 generated and 2 reference songs (1 skipped)" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty), "--reference", str(ref), "--out", str(out)]) == 2
    assert "no music files" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope"), "--reference", str(ref), "--out",
                 str(out)]) == 2
    with pytest.raises(EvaluateError, match="split needs a prepared corpus"):
        evaluate(gen, ref, out, split="test", workers=1, progress=False)


def test_wandb_offline_run_is_written(folders, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    gen, ref = folders
    out = tmp_path / "wb"
    evaluate(gen, ref, out, workers=1, progress=False, use_wandb=True)
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))


def test_score_songs_with_given_plans():
    from structdiff.metrics.baselines import shuffle_bars
    from structdiff.metrics.evaluate import score_songs

    song = read_song("music21:bach/bwv10.7")
    plan = analyze(song)
    broken = shuffle_bars(song, __import__("numpy").random.default_rng(1))
    scored = score_songs([("real", song), ("shuffled", broken)], "memory", workers=1,
                         progress=False, plans=[plan, plan])
    real, shuffled = scored.per_file["real"], scored.per_file["shuffled"]
    assert real["form_adherence"] == 1.0 and real["chord_agreement_root"] == 1.0
    assert shuffled["chord_agreement_root"] < 0.8 and shuffled["chord_tone_ratio"] < real[
        "chord_tone_ratio"]
    with pytest.raises(ValueError, match="one plan per song"):
        score_songs([("a", song)], "memory", plans=[])


def test_role_map_for_music_files(tmp_path):
    from dataclasses import replace as _replace

    from structdiff.data.midi import write_midi
    from structdiff.metrics.evaluate import score_set
    from tests.debug_models import band_song

    song = band_song(4)
    # program 0 everywhere, plain names and no drums, which `auto` reads as voices
    tracks = [_replace(t, program=0, name=f"Track {i}")
              for i, t in enumerate(song.tracks) if not t.is_drum]
    write_midi(_replace(song, tracks=tracks), tmp_path / "a.mid")
    auto = score_set(tmp_path, progress=False, workers=1)
    band = score_set(tmp_path, progress=False, workers=1, role_map="band")
    assert any(k.endswith("/keys") for k in band.per_file["a.mid"])
    assert any(k.endswith("/soprano") for k in auto.per_file["a.mid"])
    assert not any(k.endswith("/soprano") for k in band.per_file["a.mid"])
