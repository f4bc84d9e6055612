"""Live sessions and written scores with the shipped band models (few denoising steps, so the
suite stays fast): states land where asked, transitions do what they say, controls change the
music, the same seed writes the same notes, memory stays flat, and the CLI holds its promises."""

import io
import json

import numpy as np
import pytest

from structdiff.cli import main
from structdiff.data.midi import read_midi
from structdiff.models.bundle import SHIPPED_SETS
from structdiff.pipeline.arrange import load_arranger
from structdiff.pipeline.cue import parse_cue
from structdiff.pipeline.live import parse_command, run_live
from structdiff.pipeline.plan import load_planner
from structdiff.pipeline.session import Session, layers_for
from structdiff.pipeline.soundtrack import render_soundtrack

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = 2

SHEET = {
    "tempo": 300, "key": "C major", "style": "pop", "seed": 3,
    "states": {
        "explore": {"intensity": 0.2, "layers": ["melody", "keys", "bass"]},
        "battle": {"intensity": 0.9, "mode": "minor"},
        "quiet": {"intensity": 0.1},
        "loud": {"intensity": 0.9},
    },
    "stingers": {"boss": {"bars": 1}},
}


@pytest.fixture(scope="module")
def models():
    folder = SHIPPED_SETS["band"]
    return load_planner(folder), load_arranger(folder)


def _cue(**changes):
    return parse_cue({**SHEET, **changes}, "test.yaml")


def _session(models, cue=None, **kw):
    planner, arranger = models
    kw.setdefault("clock", "simulated")
    return Session(cue or _cue(), planner, arranger, steps=STEPS, **kw)


def _notes(bar):
    return sum(len(n) for n in bar.notes.values())


def test_the_same_seed_writes_the_same_bars(models):
    a = [b.notes for b in _session(models, seed=5).bars(5)]
    b = [b.notes for b in _session(models, seed=5).bars(5)]
    c = [b.notes for b in _session(models, seed=6).bars(5)]
    assert all(x.keys() == y.keys() and all(np.array_equal(x[r], y[r]) for r in x)
               for x, y in zip(a, b))
    assert any(not np.array_equal(x[r], y[r]) for x, y in zip(a, c) for r in x if r in y)


def test_a_scheduled_change_lands_on_its_bar_with_a_marker(models):
    s = _session(models, state="explore")
    s.at_bar(3, "set_state", "battle")
    bars = list(s.bars(6))
    assert [b.state for b in bars] == ["explore"] * 3 + ["battle"] * 3
    assert (0, "state:battle") in bars[3].markers
    assert bars[3].key.mode == "minor" and bars[0].key.mode == "major"
    assert set(bars[0].roles) <= {"melody", "keys", "bass"}  # explore's own layers


def test_a_change_made_before_a_bar_plays_lands_on_that_bar(models):
    def on_bar(bar):
        if bar.index == 2 and bar.state == "explore":
            session.set_state("battle")

    session = _session(models, state="explore", on_bar=on_bar)
    states = [b.state for b in session.bars(4)]
    assert states == ["explore", "explore", "battle", "battle"]


def test_a_bridge_ends_on_the_new_first_chord_or_its_dominant(models):
    s = _session(models, state="explore")
    s.at_bar(2, "set_state", "battle", transition="bridge 2")
    bars = list(s.bars(6))
    assert [b.transition for b in bars[2:4]] == ["bridge", "bridge"]
    assert bars[4].state == "battle" and (0, "state:battle") in bars[4].markers
    target = bars[4].plan.chords[0].root
    assert bars[3].plan.chords[-1].root in (target, (target + 7) % 12)


def test_a_crossfade_lets_layers_leave_and_enter(models):
    s = _session(models, state="explore")
    s.at_bar(2, "set_state", "battle", transition="crossfade 3")
    bars = list(s.bars(7))
    fade = bars[2:5]
    assert [b.transition for b in fade] == ["crossfade"] * 3
    new = set(layers_for(None, 0.9, models[1].roles))
    assert "drums" in new and "drums" not in bars[1].notes
    assert "drums" in bars[5].notes  # entered by the end
    # entering layers ramp up in velocity over the crossfade
    vel = [int(b.notes["drums"][:, 3].max()) for b in fade if len(b.notes.get("drums", []))]
    assert vel == sorted(vel) and len(vel) >= 2


def test_intensity_raises_density_velocity_and_layers(models):
    low = list(_session(models, state="quiet", seed=1).bars(8))
    high = list(_session(models, state="loud", seed=1).bars(8))
    density = [sum(_notes(b) for b in bars) for bars in (low, high)]
    velocity = [np.mean([n[:, 3].mean() for b in bars for n in b.notes.values() if len(n)])
                for bars in (low, high)]
    layers = [len(set().union(*(b.notes for b in bars))) for bars in (low, high)]
    assert density[1] >= 1.5 * density[0]
    assert velocity[1] > velocity[0]
    assert layers[1] > layers[0]


def test_set_intensity_changes_the_next_bars(models):
    s = _session(models, state="quiet")
    s.at_bar(2, "set_intensity", 0.9)
    bars = list(s.bars(4))
    assert bars[1].intensity == pytest.approx(0.1) and bars[2].intensity == pytest.approx(0.9)
    assert len(bars[2].notes) > len(bars[1].notes)


def test_a_stinger_plays_over_the_music(models):
    s = _session(models, state="battle")
    s.at_bar(1, "stinger", "boss")
    bars = list(s.bars(3))
    assert (0, "stinger:boss") in bars[1].markers
    assert bars[1].extra and all(t.name.startswith("Stinger boss") for t in bars[1].extra)
    assert not bars[0].extra and not bars[2].extra


def test_bad_commands_are_one_line_errors(models):
    s = _session(models)
    with pytest.raises(ValueError, match="unknown state 'bos'"):
        s.set_state("bos")
    with pytest.raises(ValueError, match=r"intensity must be a number in \[0, 1\]"):
        s.set_intensity(1.5)
    with pytest.raises(ValueError, match="unknown stinger 'x'"):
        s.stinger("x")
    with pytest.raises(ValueError, match="at must be one of"):
        s.set_state("battle", at="soon")


def test_an_endless_session_keeps_memory_flat_and_writes_new_sections(models):
    cue = _cue(states={"calm": {"intensity": 0.5}})
    s = _session(models, cue)
    labels = []
    kept = []
    for bar in s.bars(48):
        labels.append((bar.plan.stream, bar.plan.label))
        kept.append(len(s._bars))
    assert max(kept) <= s.composer.context_bars + s.lookahead + s.chunk + 2
    assert s._stream.song.n_bars <= 64  # the state's plan is cut as it grows
    assert len({lab for _, lab in labels}) >= 3  # new sections keep coming


def test_events_are_timed_and_end_with_every_note_off(models):
    s = _session(models, state="battle")
    events = list(s.events(n_bars=3))
    times = [e.time for e in events]
    assert times == sorted(times)
    bars = [e for e in events if e.type == "bar"]
    assert [e.time for e in bars] == pytest.approx([0.0, 0.8, 1.6])  # 4/4 at 300 bpm
    on = {}
    for e in events:
        if e.type == "note_on":
            on[(e.channel, e.note)] = on.get((e.channel, e.note), 0) + 1
        elif e.type == "note_off" and on.get((e.channel, e.note)):
            on[(e.channel, e.note)] -= 1
    assert not any(on.values())
    assert any(e.channel == 9 for e in events if e.type == "note_on")  # drums on channel 10


def test_a_real_clock_session_follows_a_command_from_another_thread(models):
    import threading

    seen = []

    def on_bar(bar):
        seen.append(bar)
        if bar.index == 1:
            threading.Timer(0.05, session.set_state, args=("battle",)).start()

    session = _session(models, state="explore", clock="real", on_bar=on_bar)
    list(session.events(n_bars=5))
    states = [b.state for b in seen]
    first = states.index("battle")
    assert first in (2, 3)  # the next bar, or the one after when it came too late to write
    assert all(s == "battle" for s in states[first:])


def test_parse_command():
    assert parse_command("state battle").kwargs == {"at": "bar"}
    cmd = parse_command("@8 state victory beat crossfade 2")
    assert (cmd.bar, cmd.args, cmd.kwargs) == (8, ("victory",),
                                               {"at": "beat", "transition": "crossfade 2"})
    assert parse_command("intensity 0.8").args == (0.8,)
    assert parse_command("  # a comment") is None
    with pytest.raises(ValueError, match="unknown command 'jump'"):
        parse_command("jump 3")
    with pytest.raises(ValueError, match="intensity must be a number"):
        parse_command("intensity loud")


def test_run_live_simulated_reads_a_script_and_reports_bad_lines(models):
    planner, arranger = models
    out, err = io.StringIO(), io.StringIO()
    script = io.StringIO("@2 state battle\n@3 stinger boss\nwhat now\n")
    assert run_live(_cue(), planner, arranger, state="explore", clock="simulated", bars=4,
                    steps=STEPS, stdin=script, stdout=out, stderr=err) == 0
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    markers = [(e["bar"], e["text"]) for e in events if e["type"] == "marker"]
    assert (2, "state:battle") in markers and (3, "stinger:boss") in markers
    assert "unknown command 'what'" in err.getvalue()


def test_live_cli_rejects_a_bad_cue_sheet_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("states:\n  calm: {intensity: loud}\n")
    assert main(["live", "--cue", str(bad), "--clock", "simulated"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "states.calm.intensity" in err


def test_soundtrack_writes_score_loops_stems_and_picture(models, tmp_path):
    sheet = tmp_path / "cue.yaml"
    sheet.write_text(
        "tempo: 140\nkey: A minor\nstyle: pop\nseed: 2\n"
        "states:\n  explore: {intensity: 0.3}\n  battle: {intensity: 0.9}\n"
        "  victory: {mood: heroic}\n"
        "stingers:\n  boss: {}\n"
        "timeline:\n  - {state: explore, bars: 4}\n"
        "  - {state: battle, bars: 5, transition: bridge 1, stinger: boss}\n"
        "  - {state: victory, bars: 4, transition: crossfade 2}\n")
    out = tmp_path / "score.mid"
    assert main(["soundtrack", str(sheet), "--out", str(out), "--steps", str(STEPS),
                 "--no-wav"]) == 0
    song = read_midi(out)
    assert song.n_bars == 13
    import symusic

    markers = {m.text: m.time for m in symusic.Score(str(out), ttype="quarter").markers}
    assert markers["state:explore"] == 0 and markers["state:battle"] == 5 * 4
    assert markers["state:victory"] == 9 * 4 and markers["stinger:boss"] == 5 * 4
    for name in ("explore", "battle", "victory"):
        assert (tmp_path / f"score.{name}.loop.mid").exists()
    assert (tmp_path / "score.drums.stem.mid").exists()
    assert (tmp_path / "score.png").stat().st_size > 10_000
    plan = json.loads((tmp_path / "score.plan.json").read_text())
    assert [s["state"] for s in plan["states"]] == ["explore", "battle", "victory"]
    assert set(plan["loops"]) == {"explore", "battle", "victory"}


def test_render_soundtrack_is_reproducible(models):
    planner, arranger = models
    cue = _cue(timeline=[{"state": "explore", "bars": 3}, {"state": "battle", "bars": 3}])
    a = render_soundtrack(cue, planner, arranger, steps=STEPS, loops=False)
    b = render_soundtrack(cue, planner, arranger, steps=STEPS, loops=False)
    assert all(np.array_equal(x.notes, y.notes) for x, y in zip(a.song.tracks, b.song.tracks))
    assert [s for _, _, s in a.bands] == ["explore", "battle"]


def test_soundtrack_without_timeline_says_so(tmp_path, capsys):
    sheet = tmp_path / "cue.yaml"
    sheet.write_text("states:\n  calm: {}\n")
    assert main(["soundtrack", str(sheet), "--out", str(tmp_path / "x.mid")]) == 2
    assert "timeline: empty" in capsys.readouterr().err


def test_osc_messages_change_the_state(models):
    pytest.importorskip("pythonosc", reason="python-osc is not installed (pip install "
                        "python-osc): OSC commands are optional")
    import socket
    import threading

    from pythonosc.udp_client import SimpleUDPClient

    from structdiff.pipeline.live import _serve_osc

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = io.StringIO()
    session = _session(models, state="explore")
    server = _serve_osc(session, port, err)
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        client.send_message("/structdiff/state", ["battle"])
        client.send_message("/structdiff/intensity", ["loud"])  # a bad value: reported
        received = threading.Event()
        for _ in range(100):
            with session._lock:
                if session._commands:
                    received.set()
                    break
            threading.Event().wait(0.02)
        assert received.is_set()
        states = [b.state for b in session.bars(2)]
        assert states[-1] == "battle"
        for _ in range(50):
            if "intensity must be a number" in err.getvalue():
                break
            threading.Event().wait(0.02)
        assert "intensity must be a number" in err.getvalue()
    finally:
        server.shutdown()


def test_a_missing_midi_backend_is_one_line(monkeypatch, capsys):
    import mido

    def no_backend():
        raise ImportError("No module named 'rtmidi'")

    monkeypatch.setattr(mido, "get_output_names", no_backend)
    assert main(["live", "--cue", "configs/cues/game_level.yaml", "--port", "list"]) == 2
    assert "python-rtmidi" in capsys.readouterr().err


def test_a_change_at_beat_cuts_the_playing_bar_on_its_next_beat(models):
    s = _session(models, state="explore")
    played = s.bars(4)
    next(played)
    bar1 = next(played)  # bar 1 is playing; say 0.3 s into it (4/4 at 300 bpm: 0.2 s a beat)
    s._position = s._bar_times[1] + 0.3
    s.set_state("battle", at="beat")
    rest = list(played)
    assert bar1.steps == 8 and all(n[:, 0].max(initial=0) < 8 for n in bar1.notes.values())
    assert rest[0].index == 2 and rest[0].state == "battle"


def test_a_change_at_phrase_waits_for_the_next_four_bar_phrase(models):
    session = _session(models, state="explore")
    bars = []
    for bar in session.bars(6):
        bars.append(bar)
        if bar.index == 1:
            session.set_state("battle", at="phrase")
    assert [b.state for b in bars] == ["explore"] * 4 + ["battle"] * 2


def test_a_stinger_survives_a_state_change_on_its_bar(models):
    s = _session(models, state="explore")
    s.at_bar(2, "stinger", "boss")
    bars = []
    for bar in s.bars(4):
        bars.append(bar)
        if bar.index == 1:
            s.set_state("battle")  # lands on bar 2: its bars are written anew
    assert bars[2].state == "battle"
    assert (0, "stinger:boss") in bars[2].markers and bars[2].extra
