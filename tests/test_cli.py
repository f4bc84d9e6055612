import json
import subprocess
import sys

import pytest

from structdiff.cli import main

SCHEMA_KEYS = {"source", "grid", "n_bars", "time_signatures", "tempo_qpm", "key", "tracks",
               "chords", "sections", "phrase_ends"}


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_json_schema_on_a_chorale(capsys):
    code, out, err = run(capsys, "analyze", "music21:bach/bwv66.6", "--json")
    assert code == 0, err
    data = json.loads(out)
    # BWV 66.6 starts on a one-beat pickup: its bar lines come with the schema's keys
    assert set(data) == SCHEMA_KEYS | {"bar_onsets_qn", "end_qn"}
    assert data["bar_onsets_qn"][:3] == [0.0, 1.0, 5.0] and data["end_qn"] == 36.0
    assert data["n_bars"] == 10 == len(data["bar_onsets_qn"])
    assert data["time_signatures"] == [{"onset_qn": 0.0, "numerator": 4, "denominator": 4}]
    assert set(data["key"]) == {"tonic", "mode"} and data["key"]["mode"] in ("major", "minor")
    assert [t["role"] for t in data["tracks"]] == ["soprano", "alto", "tenor", "bass"]
    assert set(data["tracks"][0]) == {"name", "role", "program", "is_drum", "n_notes"}
    chords = data["chords"]
    assert set(chords[0]) == {"onset_qn", "dur_qn", "root", "quality", "bass"}
    assert chords[0]["onset_qn"] == 0.0
    ends = [c["onset_qn"] + c["dur_qn"] for c in chords]
    assert all(abs(e - c["onset_qn"]) < 1e-9 for e, c in zip(ends, chords[1:]))
    assert sum(s["n_bars"] for s in data["sections"]) == data["n_bars"]
    assert set(data["sections"][0]) == {"start_bar", "n_bars", "label"}
    # a chorale's phrases end at its fermatas: bars from 0, the last one among them
    assert data["phrase_ends"] and all(0 <= b < data["n_bars"] for b in data["phrase_ends"])


def test_a_planned_songs_phrase_ends_travel_with_its_plan_file(capsys, tmp_path):
    from structdiff.analysis.schema import read_plan

    out = tmp_path / "plan.json"
    code, _, err = run(capsys, "plan", "--bars", "8", "--style", "chorale", "--seed", "1",
                       "--out", str(out))
    assert code == 0, err
    written = json.loads(out.read_text())["phrase_ends"]
    assert written and read_plan(out).phrase_ends == written
    old = {k: v for k, v in json.loads(out.read_text()).items() if k != "phrase_ends"}
    out.write_text(json.dumps(old))  # a plan file written before session 15
    assert read_plan(out).phrase_ends == []


def test_analyze_text_and_midi_input(capsys, band_midi):
    code, out, err = run(capsys, "analyze", str(band_midi))
    assert code == 0, err
    assert "form:" in out and "Melody" in out and "drums" in out


def test_render_writes_png_and_midi(capsys, tmp_path):
    png, mid = tmp_path / "a" / "song.png", tmp_path / "a" / "song.mid"
    code, out, err = run(capsys, "render", "music21:bach/bwv66.6", "--png", str(png),
                         "--midi", str(mid))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert mid.read_bytes()[:4] == b"MThd"


TRUNCATED = b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x01\x00\x00\x90"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.mid", None, "no such file"),
        ("empty.mid", b"", "empty file"),
        ("notes.txt", b"hi", "not a music file"),
        ("fake.mid", b"hello world", "not a MIDI"),
        ("cut.mid", TRUNCATED, "truncated"),
        ("broken.xml", b"<score-partwise><part", "cannot parse score"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(capsys, "analyze", str(path), "--json")
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["analyze", "music21:bach/bwv66.6", "--bogus"], "unrecognized arguments"),
        (["render", "music21:bach/bwv66.6"], "needs --png"),
        (["render", "music21:bach/bwv66.6", "--png", "x.jpg"], "must end in .png"),
        (["analyze", "music21:bach/bwv66.6", "--grid", "0"], "--grid"),
        (["analyze", "music21:bach/bwv66.6", "--roles", "nope"], "unknown role map"),
        (["prepare", "/no/such/folder", "--out", "x"], "must be a folder"),
        (["plan", "--bars", "8", "--out", "x.json", "--threads", "0"], "--threads must be"),
        (["generate", "--bars", "8", "--out", "x.mid", "--threads", "99"], "--threads must be"),
        ([], "required"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_console_script_help_and_error_without_traceback(tmp_path):
    exe = [sys.executable, "-m", "structdiff.cli"]
    assert subprocess.run(exe + ["analyze", "--help"], capture_output=True).returncode == 0
    bad = tmp_path / "x.mid"
    bad.write_bytes(b"garbage")
    res = subprocess.run(exe + ["render", str(bad), "--png", str(tmp_path / "x.png")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert not (tmp_path / "x.png").exists()


def test_analyze_json_reads_back_as_the_same_plan(capsys, tmp_path):
    from structdiff.analysis import analyze
    from structdiff.analysis.schema import read_plan
    from structdiff.data.io import read_song

    code, out, _ = run(capsys, "analyze", "music21:bach/bwv66.6", "--json")
    path = tmp_path / "plan.json"
    path.write_text(out)
    plan = read_plan(path)
    expected = analyze(read_song("music21:bach/bwv66.6"))
    assert plan.chords == expected.chords and plan.sections == expected.sections
    assert plan.key == expected.key


def test_render_wav_without_a_synthesizer_says_how_to_get_one(capsys, tmp_path, monkeypatch):
    from structdiff.data import audio

    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    code, out, err = run(capsys, "render", "music21:bach/bwv66.6", "--wav",
                         str(tmp_path / "a.wav"), "--midi", str(tmp_path / "a.mid"))
    assert code == 0 and "wrote" in out and "install fluidsynth" in err
    assert (tmp_path / "a.mid").exists() and not (tmp_path / "a.wav").exists()
