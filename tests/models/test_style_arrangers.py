"""A set's arranger for one of its styles: the shipped chorale arranger, and the fallback."""

import json

import pytest

from structdiff.cli import main
from structdiff.models.bundle import SHIPPED_DIR, arranger_for_style, set_for_style
from structdiff.pipeline.arrange import load_arranger


def test_chorales_take_their_own_arranger_and_other_styles_the_sets():
    folder = set_for_style("chorale")
    assert folder == SHIPPED_DIR
    own = arranger_for_style(folder, "chorale")
    assert own == SHIPPED_DIR / "styles" / "chorale"
    bundle = load_arranger(own)
    assert bundle.model.cfg.diffusion == "masked" and bundle.meta["default_harmony"] == 0.0
    assert bundle.model.cfg.pitch_classes
    # measured best (session 17): the nucleus trims pitches only, parallels leaned against
    assert bundle.meta["shape_from"] == 2 and bundle.meta["voice_leading"] > 0
    # fitted to the training split's lines (session 18): an interval lean for the four voices
    lean = bundle.meta["interval_lean"]
    assert set(lean) == {"soprano", "alto", "tenor", "bass"}
    assert all(len(row) == 26 and max(map(abs, row)) <= 3.0 for row in lean.values())
    # steps are favoured over thirds up, and the bass's repeated notes are leaned against
    assert all(row[12 + 2] > row[12 + 4] and row[12 - 1] > row[12 + 3] for row in lean.values())
    assert lean["bass"][12] < -1.0
    # and each voice's compass, Bach's range in the training split (C2 to E4 for the bass)
    assert bundle.meta["compass"]["bass"] == [36, 64]
    assert set(bundle.meta["compass"]) == set(lean)
    assert bundle.roles == load_arranger(folder).roles  # the set's voices
    for style in ("string_quartet", "renaissance_mass", None):
        assert arranger_for_style(folder, style) == folder


def test_a_style_arranger_folder_without_a_bundle_is_ignored(tmp_path):
    (tmp_path / "styles" / "pop").mkdir(parents=True)
    assert arranger_for_style(tmp_path, "pop") == tmp_path
    (tmp_path / "styles" / "pop" / "arranger.json").write_text(json.dumps({}))
    assert arranger_for_style(tmp_path, "pop") == tmp_path / "styles" / "pop"


@pytest.mark.usefixtures("one_thread")
def test_generate_style_chorale_writes_with_the_chorale_arranger(tmp_path, capsys):
    out = tmp_path / "song.mid"
    assert main(["generate", "--style", "chorale", "--bars", "8", "--seed", "2", "--steps", "4",
                 "--no-png", "--no-wav", "--out", str(out)]) == 0
    assert out.stat().st_size > 200 and "4 tracks" in capsys.readouterr().out
    # the chorale arranger ships with Gibbs rounds after its unmasking; --gibbs 0 skips them
    assert load_arranger(arranger_for_style(SHIPPED_DIR, "chorale")).meta["resample"] > 0
    fast = tmp_path / "fast.mid"
    assert main(["generate", "--style", "chorale", "--bars", "8", "--seed", "2", "--steps", "4",
                 "--gibbs", "0", "--no-png", "--no-wav", "--out", str(fast)]) == 0
    assert fast.read_bytes() != out.read_bytes()
    assert main(["generate", "--style", "chorale", "--gibbs", "-1", "--out",
                 str(tmp_path / "bad.mid")]) == 2
    assert "--gibbs must be >= 0" in capsys.readouterr().err
    assert main(["generate", "--style", "chorale", "--voice-leading", "-1", "--out",
                 str(tmp_path / "bad.mid")]) == 2
    assert "--voice-leading must be in 0..100" in capsys.readouterr().err
    assert main(["generate", "--style", "chorale", "--interval-lean", "5", "--out",
                 str(tmp_path / "bad.mid")]) == 2
    assert "--interval-lean must be in 0..4" in capsys.readouterr().err
    assert main(["generate", "--style", "chorale", "--dissonance", "-0.5", "--out",
                 str(tmp_path / "bad.mid")]) == 2
    assert "--dissonance must be in 0..100" in capsys.readouterr().err
    # --dissonance 0 turns the lean off: other notes
    plain = tmp_path / "plain.mid"
    assert main(["generate", "--style", "chorale", "--bars", "8", "--seed", "2", "--steps", "4",
                 "--dissonance", "0", "--no-png", "--no-wav", "--out", str(plain)]) == 0
    leaned = tmp_path / "leaned.mid"
    assert main(["generate", "--style", "chorale", "--bars", "8", "--seed", "2", "--steps", "4",
                 "--dissonance", "3", "--no-png", "--no-wav", "--out", str(leaned)]) == 0
    assert plain.read_bytes() != leaned.read_bytes()
    assert main(["generate", "--style", "chorale", "--completeness", "101", "--out",
                 str(tmp_path / "bad.mid")]) == 2
    assert "--completeness must be in 0..100" in capsys.readouterr().err
    # --completeness 0 turns the lean toward complete chords off: other notes
    hollow = tmp_path / "hollow.mid"
    assert main(["generate", "--style", "chorale", "--bars", "8", "--seed", "2", "--steps", "4",
                 "--dissonance", "0", "--completeness", "6", "--no-png", "--no-wav", "--out",
                 str(hollow)]) == 0
    assert hollow.read_bytes() != plain.read_bytes()


def test_a_chorale_cue_sheet_plays_with_the_chorale_arranger(monkeypatch):
    from structdiff.pipeline.cue import parse_cue
    from structdiff.pipeline.live import session_models

    chorale = parse_cue({"style": "chorale", "states": {"calm": {"intensity": 0.3}},
                         "timeline": [{"state": "calm", "bars": 4}]})
    planner, arranger = session_models(chorale)
    assert arranger.model.cfg.pitch_classes  # the chorale arranger
    # a bar is due: a live session skips the Gibbs rounds the chorale arranger ships with
    from structdiff.pipeline import session as session_module

    calls = []
    arrange = session_module.arrange

    def spy(*args, **kwargs):
        calls.append(kwargs.get("resample"))
        return arrange(*args, **kwargs)

    monkeypatch.setattr(session_module, "arrange", spy)
    bars = list(session_module.Session(chorale, planner, arranger, steps=2,
                                       clock="simulated").bars(2))
    assert len(bars) == 2 and calls and set(calls) == {0}
    quartet = parse_cue({"style": "string_quartet", "states": {"calm": {"intensity": 0.3}},
                         "timeline": [{"state": "calm", "bars": 4}]})
    _, arranger = session_models(quartet)
    assert not arranger.model.cfg.pitch_classes  # the set's own


def test_a_style_planner_is_taken_when_a_set_ships_one_and_keeps_the_sets_forms(tmp_path):
    import shutil

    from structdiff.models.bundle import planner_for_style
    from structdiff.pipeline.plan import load_planner

    for name in ("planner.json", "planner.safetensors", "forms.json"):
        shutil.copy(SHIPPED_DIR / name, tmp_path / name)
    own = tmp_path / "styles" / "chorale"
    own.mkdir(parents=True)
    assert planner_for_style(tmp_path, "chorale") == tmp_path
    for name in ("planner.json", "planner.safetensors"):
        shutil.copy(SHIPPED_DIR / name, own / name)
    assert planner_for_style(tmp_path, "chorale") == own
    assert planner_for_style(tmp_path, "madrigal") == tmp_path
    assert planner_for_style(tmp_path, None) == tmp_path
    assert load_planner(own).forms is not None  # the set's form model, read from two up
    (tmp_path / "forms.json").unlink()
    assert load_planner(own).forms is None
