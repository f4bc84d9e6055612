"""The studio server through its WebSocket and HTTP API (aiohttp's test client; the shipped band
models on the real clock, a fast cue sheet so that bars last half a second)."""

import asyncio
import io
import json
import zipfile

import mido
import pytest
from aiohttp.test_utils import TestClient, TestServer

from structdiff.pipeline.cue import read_cue
from structdiff.studio.server import BadMessage, Studio, make_app, parse_message

FAST_CUE = """
tempo: 400
meter: 4/4
key: C major
style: pop
seed: 3
states:
  calm: {intensity: 0.3, layers: [keys, bass]}
  battle: {intensity: 0.9, mode: minor}
stingers:
  hit: {bars: 1}
"""

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def studio():
    return Studio(read_cue(FAST_CUE, "fast.yaml"), max_sessions=1)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def _client(studio) -> TestClient:
    """aiohttp's test client of a studio app: `async with` starts and closes its server."""
    return TestClient(TestServer(make_app(studio)))


async def _next(ws, kind, pred=lambda m: True):
    while True:
        msg = json.loads((await ws.receive()).data)
        if msg["type"] == kind and pred(msg):
            return msg


def _bar(msg):
    return msg["event"]["type"] == "bar"


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"), ("[1]", 'JSON object with "op"'), ('{"op": "dance"}', "unknown op"),
    ('{"op": "intensity", "value": 2}', "number in [0, 1]"),
    ('{"op": "state"}', 'state needs "name"'), ('{"op": "state", "name": "a", "at": "now"}',
                                                '"at" must be one of'),
    ('{"op": "cue", "text": ""}', "cue needs"), ("x" * 300_000, "message too long")])
def test_bad_messages_are_named(text, message):
    with pytest.raises(BadMessage, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_message(text)


def test_a_state_change_reaches_the_next_bars_and_the_downloads_are_valid(studio):
    async def go():
        async with _client(studio) as client:
            ws = await client.ws_connect("/ws")
            hello = await _next(ws, "hello")
            assert [s["name"] for s in hello["states"]] == ["calm", "battle"]
            await ws.send_str("not json")
            assert "not JSON" in (await _next(ws, "error"))["message"]
            await ws.send_json({"op": "state", "name": "battle"})
            assert "press play" in (await _next(ws, "error"))["message"]
            await ws.send_json({"op": "play"})
            first = await _next(ws, "event", _bar)
            assert first["event"]["text"].startswith("calm ")
            await ws.send_json({"op": "state", "name": "nowhere"})
            assert "nowhere" in (await _next(ws, "error"))["message"]
            await ws.send_json({"op": "state", "name": "battle"})
            # lands on the next bar line it can: within a few bars, and stays
            for _ in range(6):
                bar = await _next(ws, "event", _bar)
                if bar["event"]["text"].startswith("battle "):
                    break
            else:
                pytest.fail("no bar of the new state")
            await ws.send_json({"op": "stinger", "name": "hit"})
            await _next(ws, "event", _bar)
            await ws.send_json({"op": "stop"})
            await _next(ws, "status", lambda m: not m["playing"])
            session = hello["session"]
            rows = (await (await client.get(f"/api/sessions/{session}/bars")).json())["bars"]
            states = [r["state"] for r in rows]
            assert states[0] == "calm" and states[-1] == "battle"
            assert states == sorted(states, key=lambda s: s == "battle")  # calm, then battle
            midi = await (await client.get(f"/api/sessions/{session}/song.mid")).read()
            song = mido.MidiFile(file=io.BytesIO(midi))
            texts = [m.text for t in song.tracks for m in t if m.type == "marker"]
            assert "state:calm" in texts and "state:battle" in texts
            assert sum(m.type == "note_on" for t in song.tracks for m in t) > 0
            stems = await (await client.get(f"/api/sessions/{session}/stems.zip")).read()
            names = zipfile.ZipFile(io.BytesIO(stems)).namelist()
            assert names and all(n.endswith(".mid") for n in names)
            wav = await client.get(f"/api/sessions/{session}/song.wav")
            assert wav.status in (200, 503)
            if wav.status == 200:
                assert (await wav.read())[:4] == b"RIFF"
            assert (await client.get("/api/sessions/nope/bars")).status == 404
            await ws.close()

    run(go())


def test_past_the_limit_a_tab_is_refused_and_the_first_plays_on(studio):
    async def go():
        async with _client(studio) as client:
            one, two = await client.ws_connect("/ws"), await client.ws_connect("/ws")
            await _next(one, "hello")
            await _next(two, "hello")
            await one.send_json({"op": "play"})
            await _next(one, "event", _bar)
            await two.send_json({"op": "play"})
            full = await _next(two, "full")
            assert "full" in full["message"] and "--max-sessions" in full["message"]
            await _next(one, "event", _bar)  # the first goes on
            status = await (await client.get("/api/status")).json()
            assert (status["playing"], status["max_sessions"]) == (1, 1)
            assert sum(t["playing"] for t in status["tabs"]) == 1
            await one.close()
            await two.close()

    run(go())


def test_an_uploaded_cue_sheet_is_checked_like_the_command_lines(studio):
    async def go():
        async with _client(studio) as client:
            ws = await client.ws_connect("/ws")
            await _next(ws, "hello")
            await ws.send_json({"op": "cue", "text": "states: {a: {intensity: 3}}"})
            error = await _next(ws, "error")
            assert "intensity" in error["message"] and "\n" not in error["message"]
            await ws.send_json({"op": "cue", "text": "style: baroque\nstates: {a: {}}"})
            assert "baroque" in (await _next(ws, "error"))["message"]
            good = FAST_CUE.replace("battle", "boss")
            await ws.send_json({"op": "cue", "text": good})
            hello = await _next(ws, "hello")
            assert [s["name"] for s in hello["states"]] == ["calm", "boss"]
            await ws.close()

    run(go())


def test_the_page_and_its_files_are_served_from_the_package(studio):
    async def go():
        async with _client(studio) as client:
            page = await (await client.get("/")).text()
            assert "structdiff" in page and "http://" not in page and "https://" not in page
            for src in ("/static/studio.js", "/static/studio.css",
                        "/static/vendor/js-synthesizer.min.js",
                        "/static/vendor/libfluidsynth-2.4.6.js"):
                assert src in page
                assert (await client.get(src)).status == 200
            assert (await client.get("/static/../server.py")).status in (403, 404)

    run(go())


def test_style_and_instrument_choices(studio):
    async def go():
        async with _client(studio) as client:
            ws = await client.ws_connect("/ws")
            hello = await _next(ws, "hello")
            assert "pop" in hello["styles"] and hello["style"] == "pop"
            roles = {r["role"]: r["program"] for r in hello["roles"]}
            assert "keys" in roles and len(hello["program_names"]) == 128
            await ws.send_json({"op": "instrument", "role": "kazoo", "program": 3})
            assert "kazoo" in (await _next(ws, "error"))["message"]
            await ws.send_json({"op": "instrument", "role": "keys", "program": 200})
            assert "0-127" in (await _next(ws, "error"))["message"]
            await ws.send_json({"op": "play"})
            await _next(ws, "event", _bar)
            await ws.send_json({"op": "instrument", "role": "keys", "program": 4})
            change = await _next(ws, "event", lambda m: m["event"]["type"] == "program"
                                 and m["event"]["program"] == 4)
            assert change["event"]["ch"] != 9
            await ws.send_json({"op": "style", "name": "baroque"})
            assert "baroque" in (await _next(ws, "error"))["message"]
            await ws.send_json({"op": "style", "name": "funk"})
            hello = await _next(ws, "hello")
            assert hello["style"] == "funk"
            assert {r["role"]: r["program"] for r in hello["roles"]}["keys"] == 4
            await _next(ws, "status", lambda m: m["playing"])  # playing again, in funk
            await ws.send_json({"op": "stop"})
            await ws.close()

    run(go())


@pytest.mark.parametrize("args, message", [
    (["--port", "0"], "--port must be between 1 and 65535"),
    (["--max-sessions", "0"], "--max-sessions must be >= 1"),
    (["--cue", "no-such-cue.yaml"], "no-such-cue.yaml: no such file"),
    (["--threads", "0"], "--threads must be between 1 and 64")])
def test_serve_bad_options_are_one_line_errors(args, message, capsys):
    from structdiff.cli import main

    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_serve_on_a_port_in_use_is_a_one_line_error_without_a_banner(capsys):
    import socket

    from structdiff.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    out = capsys.readouterr()
    assert "address already in use" in out.err and out.err.count("\n") == 1
    assert "structdiff studio on" not in out.out
