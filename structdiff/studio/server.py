"""`structdiff serve`: the local web studio. Each browser tab gets a live session over a cue
sheet (`structdiff.pipeline.session.Session` on the real clock) through one WebSocket.

The page (`static/`, served from the package, nothing from a CDN) sends JSON commands and gets
the session's timed events back as they are due; it plays them with js-synthesizer (FluidSynth
compiled to WebAssembly, vendored in `static/vendor/` with its licences) through a General MIDI
SoundFont that the server finds on this machine (`soundfont_for_browser`) and serves; without
one the page says so and plays a simple built-in oscillator synth instead.

Messages from the page, each a JSON object with `op`:

- `{"op": "play"}`, `{"op": "stop"}`;
- `{"op": "state", "name": "battle", "at": "bar"|"beat"|"phrase", "transition": "bridge 2"}`
  (`at` and `transition` optional);
- `{"op": "intensity", "value": 0.8}`, `{"op": "stinger", "name": "boss"}`;
- `{"op": "cue", "text": "<cue sheet YAML>"}`: the tab's new cue sheet, checked like the
  command line's (a playing session stops first);
- `{"op": "style", "name": "funk"}`: the whole sheet in another style of the shipped models
  (a playing session starts again in it);
- `{"op": "instrument", "role": "keys", "program": 4}`: a General MIDI program for a role,
  heard at once and kept in the downloads;
- `{"op": "ping"}`.

Messages to the page: `hello` (the session's id, its cue sheet's states, stingers, moods and
meter; sent on connect and after a new cue sheet), `event` (`{"type": "event", "event":
Event.to_dict()}`: notes, programs, bars with their "STATE SECTION CHORDS" text, beats,
markers, underruns),
`status` (playing or not, bars played), `error` (a one-line message; the session goes on), and
`full` (the server already serves `max_sessions` playing tabs: this one may not play).

HTTP besides the page: `/api/sessions/ID/bars` (the bars played: index, state, section,
chords, intensity), `/api/sessions/ID/song.mid`, `/stems.zip` (a MIDI file per track) and
`/song.wav` (when fluidsynth is installed), `/api/status` (sessions, playing, the limit).
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import tempfile
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web

from structdiff.pipeline.cue import CueError, CueSheet, check_cue, load_cue, read_cue
from structdiff.pipeline.session import WHEN, Bar, Session, role_channels, song_of_bars

STATIC = Path(__file__).parent / "static"
DEFAULT_CUE = Path(__file__).parent / "default_cue.yaml"
MAX_MESSAGE = 256 * 1024  # bytes of one message from the page (a cue sheet fits)
MAX_KEPT = 32  # finished sessions whose downloads stay available
MAX_BARS = 4096  # bars a session keeps for its downloads (over an hour at 120 bpm)
SOUNDFONTS = (  # small first: the browser loads the whole file
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)


class BadMessage(ValueError):
    """A message from the page that is not a valid command (one line)."""


def soundfont_for_browser() -> Path | None:
    """The SoundFont the page plays with: `STRUCTDIFF_SOUNDFONT` if set, else the first of
    `SOUNDFONTS` that exists (TimGM6mb, 6 MB, before FluidR3's 140 MB), else None."""
    import os

    places = [os.environ["STRUCTDIFF_SOUNDFONT"]] if os.environ.get("STRUCTDIFF_SOUNDFONT") \
        else []
    for place in [*places, *SOUNDFONTS]:
        if Path(place).is_file():
            return Path(place)
    return None


def _program(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 127:
        raise BadMessage(f'"program" must be a General MIDI program 0-127, got {value!r}')
    return value


def parse_message(text: str) -> dict:
    """The command in a message from the page, checked; BadMessage naming what is wrong."""
    if len(text) > MAX_MESSAGE:
        raise BadMessage(f"message too long ({len(text)} bytes, at most {MAX_MESSAGE})")
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadMessage(f"not JSON: {e.msg} at character {e.pos}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
        raise BadMessage('a message is a JSON object with "op" (play, stop, state, '
                         'intensity, stinger, style, instrument, cue, ping)')
    op = msg["op"]
    if op in ("play", "stop", "ping"):
        return {"op": op}
    if op == "state":
        name, at, transition = msg.get("name"), msg.get("at", "bar"), msg.get("transition")
        if not isinstance(name, str) or not name:
            raise BadMessage('state needs "name", a state of the cue sheet')
        if at not in WHEN:
            raise BadMessage(f'"at" must be one of {", ".join(WHEN)}, got {at!r}')
        if transition is not None and not isinstance(transition, str):
            raise BadMessage(f'"transition" must be text like "bridge 2", got {transition!r}')
        return {"op": op, "name": name, "at": at, "transition": transition}
    if op == "intensity":
        value = msg.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not 0.0 <= float(value) <= 1.0:
            raise BadMessage(f'intensity needs "value", a number in [0, 1], got {value!r}')
        return {"op": op, "value": float(value)}
    if op == "stinger":
        name = msg.get("name")
        if not isinstance(name, str) or not name:
            raise BadMessage('stinger needs "name", a stinger of the cue sheet')
        return {"op": op, "name": name}
    if op == "style":
        name = msg.get("name")
        if not isinstance(name, str) or not name:
            raise BadMessage('style needs "name", a style of the shipped models')
        return {"op": op, "name": name}
    if op == "instrument":
        role = msg.get("role")
        if not isinstance(role, str) or not role:
            raise BadMessage('instrument needs "role", a track role of the session')
        return {"op": op, "role": role, "program": _program(msg.get("program"))}
    if op == "cue":
        text = msg.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadMessage('cue needs "text", a cue sheet in YAML')
        return {"op": op, "text": text}
    raise BadMessage(f"unknown op {op!r} (play, stop, state, intensity, stinger, style, "
                     f"instrument, cue, ping)")


@dataclass
class Tab:
    """One browser tab: its cue sheet, its session while playing, the bars it played."""

    id: str
    cue: CueSheet
    session: Session | None = None
    thread: threading.Thread | None = None
    bars: list[Bar] = field(default_factory=list)
    chosen: dict[str, int] = field(default_factory=dict)  # programs picked on the page

    @property
    def playing(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class Studio:
    """The server's state: the models (loaded once per set), the tabs, the limit."""

    def __init__(self, cue: CueSheet, max_sessions: int = 4, seed: int | None = None,
                 steps: int | None = None, harmony: float | None = None):
        self.cue = cue
        self.max_sessions = max_sessions
        self.seed, self.steps, self.harmony = seed, steps, harmony
        self.tabs: OrderedDict[str, Tab] = OrderedDict()
        self._models: dict[tuple, tuple] = {}
        self._lock = threading.Lock()
        self.models(cue)  # a bad default cue sheet fails at start, not in a tab

    def models(self, cue: CueSheet):
        """The planner and arranger for `cue` (loaded once), after checking the sheet against
        them (CueError)."""
        from structdiff.pipeline.live import cue_styles, session_models

        styles = tuple(cue_styles(cue))
        with self._lock:
            if styles not in self._models:
                self._models[styles] = session_models(cue)
        planner, arranger = self._models[styles]
        check_cue(cue, [s for s in arranger.styles if s in planner.styles], arranger.roles)
        return planner, arranger

    def new_tab(self) -> Tab:
        tab = Tab(secrets.token_urlsafe(8), self.cue)
        self.tabs[tab.id] = tab
        while len(self.tabs) > MAX_KEPT:  # forget the oldest finished tab
            old = next((t for t in self.tabs.values() if not t.playing), None)
            if old is None:
                break
            del self.tabs[old.id]
        return tab

    def playing(self) -> int:
        return sum(t.playing for t in self.tabs.values())

    def programs(self, tab: Tab) -> dict[str, int]:
        """The General MIDI program of each role for `tab`: its models', then its choices."""
        _, arranger = self.models(tab.cue)
        return {**{r: (arranger.programs or {}).get(r, 0) for r in arranger.roles},
                **{r: p for r, p in tab.chosen.items() if r in arranger.roles}}

    def hello(self, tab: Tab) -> dict:
        from structdiff.models.bundle import shipped_styles
        from structdiff.pipeline.generate import gm_program_names

        cue = tab.cue
        styles = [s for names in shipped_styles().values() for s in names]
        return {"type": "hello", "session": tab.id, "source": Path(cue.source).name,
                "style": cue.style, "styles": list(dict.fromkeys(styles)),
                "roles": [{"role": r, "program": p} for r, p in self.programs(tab).items()],
                "program_names": list(gm_program_names()),
                "states": [{"name": n, "intensity": s.intensity, "mood": s.mood}
                           for n, s in cue.states.items()],
                "stingers": list(cue.stingers), "tempo": cue.tempo,
                "meter": list(cue.meter), "start": cue.start or next(iter(cue.states)),
                "max_sessions": self.max_sessions,
                "soundfont": soundfont_for_browser() is not None}

    def start(self, tab: Tab, emit) -> None:
        """Play `tab` on the real clock: every event goes to `emit(dict)` when it is due."""
        planner, arranger = self.models(tab.cue)
        tab.bars = []
        session = Session(tab.cue, planner, arranger, seed=self.seed if self.seed is not None
                          else tab.cue.seed, steps=self.steps, harmony=self.harmony, clock="real",
                          programs=self.programs(tab), on_bar=lambda bar: _keep(tab.bars, bar))
        tab.session = session

        def run() -> None:
            try:
                for ev in session.events():
                    emit({"type": "event", "event": ev.to_dict()})
            except Exception as e:  # a failing session ends with a message, not a crash
                emit({"type": "error", "message": f"the session stopped: {_first_line(e)}"})
            emit({"type": "status", "playing": False, "bars": len(tab.bars)})

        tab.thread = threading.Thread(target=run, name=f"session-{tab.id}", daemon=True)
        tab.thread.start()

    def stop(self, tab: Tab) -> None:
        if tab.session is not None:
            tab.session.stop()
        if tab.thread is not None:
            tab.thread.join(timeout=5)

    def apply(self, tab: Tab, cmd: dict) -> None:
        """A state, intensity or stinger command on a playing tab (ValueError, one line)."""
        if tab.session is None or not tab.playing:
            raise ValueError("press play first: the session is not playing")
        if cmd["op"] == "state":
            tab.session.set_state(cmd["name"], at=cmd["at"], transition=cmd["transition"])
        elif cmd["op"] == "intensity":
            tab.session.set_intensity(cmd["value"])
        elif cmd["op"] == "stinger":
            tab.session.stinger(cmd["name"])


def _keep(bars: list[Bar], bar: Bar) -> None:
    bars.append(bar)
    del bars[:-MAX_BARS]


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- the song of a tab ----------------------------------------------------------------------

def tab_song(tab: Tab):
    """The bars `tab` played as one Song, with a marker per state change."""
    if not tab.bars:
        raise web.HTTPNotFound(text="nothing played yet: press play first\n")
    song, _ = song_of_bars(tab.bars, tab.cue.meter, tab.session.programs)
    starts = song.bars.tolist()
    markers, last = [], None
    for i, bar in enumerate(tab.bars):
        if bar.state != last:
            markers.append((int(starts[i]), f"state:{bar.state}"))
            last = bar.state
    return song, markers


def bar_rows(tab: Tab) -> list[dict]:
    from structdiff.analysis.chords import chord_name

    rows = []
    for bar in tab.bars:
        rows.append({"index": bar.index, "state": bar.state, "section": bar.plan.label,
                     "chords": [chord_name(c.root, c.quality, c.bass, bar.key)
                                for c in bar.plan.chords],
                     "intensity": round(bar.intensity, 3), "underrun": bar.underrun})
    return rows


# -- the web app ------------------------------------------------------------------------------

STUDIO = web.AppKey("studio", Studio)


def make_app(studio: Studio) -> web.Application:
    app = web.Application(client_max_size=MAX_MESSAGE)
    app[STUDIO] = studio
    app.router.add_get("/", _index)
    app.router.add_get("/ws", _websocket)
    app.router.add_get("/soundfont.sf2", _soundfont)
    app.router.add_get("/api/status", _status)
    app.router.add_get("/api/sessions/{id}/bars", _bars)
    app.router.add_get("/api/sessions/{id}/song.mid", _midi)
    app.router.add_get("/api/sessions/{id}/stems.zip", _stems)
    app.router.add_get("/api/sessions/{id}/song.wav", _wav)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    app.on_shutdown.append(_shutdown)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _soundfont(request: web.Request) -> web.StreamResponse:
    found = soundfont_for_browser()
    if found is None:
        raise web.HTTPNotFound(text="no General MIDI SoundFont on this machine (e.g. "
                                    "`apt-get install timgm6mb-soundfont`, or set "
                                    "STRUCTDIFF_SOUNDFONT)\n")
    return web.FileResponse(found, headers={"Cache-Control": "max-age=3600"})


async def _status(request: web.Request) -> web.Response:
    studio: Studio = request.app[STUDIO]
    tabs = [{"session": t.id, "playing": t.playing, "bars": len(t.bars),
             "underruns": len(t.session.underruns) if t.session else 0,
             "write_seconds": round(t.session.write_seconds, 3) if t.session else 0.0,
             "music_seconds": round(t.session.position, 3) if t.session else 0.0}
            for t in studio.tabs.values()]
    return web.json_response({"sessions": len(studio.tabs), "playing": studio.playing(),
                              "max_sessions": studio.max_sessions, "tabs": tabs})


def _tab(request: web.Request) -> Tab:
    tab = request.app[STUDIO].tabs.get(request.match_info["id"])
    if tab is None:
        raise web.HTTPNotFound(text="no such session\n")
    return tab


async def _bars(request: web.Request) -> web.Response:
    tab = _tab(request)
    return web.json_response({"session": tab.id, "playing": tab.playing,
                              "bars": bar_rows(tab)})


def _midi_bytes(song, markers) -> bytes:
    from structdiff.data.midi import write_midi

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "song.mid"
        write_midi(song, path, markers=markers)
        return path.read_bytes()


def _download(body: bytes, name: str, kind: str) -> web.Response:
    return web.Response(body=body, content_type=kind,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _midi(request: web.Request) -> web.Response:
    song, markers = tab_song(_tab(request))
    body = await asyncio.to_thread(_midi_bytes, song, markers)
    return _download(body, "structdiff-session.mid", "audio/midi")


async def _stems(request: web.Request) -> web.Response:
    from dataclasses import replace

    song, markers = tab_song(_tab(request))

    def build() -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for t in song.tracks:
                if t.n_notes:
                    name = (t.role or t.name or "track").replace("/", "-")
                    z.writestr(f"{name}.mid", _midi_bytes(replace(song, tracks=[t]), markers))
        return out.getvalue()

    return _download(await asyncio.to_thread(build), "structdiff-stems.zip", "application/zip")


async def _wav(request: web.Request) -> web.Response:
    from structdiff.data.audio import SynthesizerMissing, render_wav

    song, markers = tab_song(_tab(request))

    def build() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            midi = Path(tmp) / "song.mid"
            midi.write_bytes(_midi_bytes(song, markers))
            return render_wav(midi, Path(tmp) / "song.wav").read_bytes()

    try:
        body = await asyncio.to_thread(build)
    except SynthesizerMissing as e:
        raise web.HTTPServiceUnavailable(text=f"{e}\n") from None
    return _download(body, "structdiff-session.wav", "audio/wav")


async def _websocket(request: web.Request) -> web.WebSocketResponse:
    studio: Studio = request.app[STUDIO]
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    tab = studio.new_tab()

    def emit(message: dict) -> None:  # from the session's thread
        try:
            loop.call_soon_threadsafe(queue.put_nowait, message)
        except RuntimeError:  # the server is shutting down: nobody to tell
            pass

    async def sender() -> None:
        while True:
            message = await queue.get()
            if message is None or ws.closed:
                return
            try:
                await ws.send_str(json.dumps(message))
            except (ConnectionError, RuntimeError):  # the tab went away mid-send
                return

    sending = asyncio.create_task(sender())
    await ws.send_json(studio.hello(tab))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY:
                    emit({"type": "error", "message": "binary messages are not understood"})
                continue
            try:
                cmd = parse_message(msg.data)
                await _handle(studio, tab, cmd, emit)
            except (BadMessage, CueError, ValueError) as e:
                emit({"type": "error", "message": _first_line(e)})
    finally:
        await asyncio.to_thread(studio.stop, tab)
        queue.put_nowait(None)
        await sending
    return ws


async def _handle(studio: Studio, tab: Tab, cmd: dict, emit) -> None:
    op = cmd["op"]
    if op == "ping":
        emit({"type": "status", "playing": tab.playing, "bars": len(tab.bars)})
    elif op == "play":
        if tab.playing:
            return
        if studio.playing() >= studio.max_sessions:
            emit({"type": "full", "message": f"the studio is full: {studio.max_sessions} "
                  f"sessions are playing, as many as this machine writes in real time "
                  f"(structdiff serve --max-sessions); try again when one stops"})
            return
        await asyncio.to_thread(studio.start, tab, emit)
        emit({"type": "status", "playing": True, "bars": 0})
    elif op == "stop":
        await asyncio.to_thread(studio.stop, tab)
    elif op == "style":
        from dataclasses import replace

        cue = replace(tab.cue, style=cmd["name"],
                      states={n: replace(st, style=None) for n, st in tab.cue.states.items()})
        await _switch(studio, tab, cue, emit)
    elif op == "instrument":
        roles = studio.programs(tab)
        if cmd["role"] not in roles:
            raise ValueError(f"no role {cmd['role']!r} here (roles: {', '.join(roles)})")
        tab.chosen[cmd["role"]] = cmd["program"]
        if tab.playing and tab.session is not None:
            tab.session.programs[cmd["role"]] = cmd["program"]
            channel = role_channels(tab.session.programs)[cmd["role"]]
            if channel != 9:
                emit({"type": "event", "event": {"t": tab.session.position, "type": "program",
                                                 "bar": -1, "ch": channel,
                                                 "program": cmd["program"]}})
    elif op == "cue":
        cue = read_cue(cmd["text"], "uploaded cue sheet")
        await _switch(studio, tab, cue, emit, restart=False)
    else:
        studio.apply(tab, cmd)


async def _switch(studio: Studio, tab: Tab, cue: CueSheet, emit, restart: bool = True) -> None:
    """`tab` on the cue sheet `cue` (checked against its models first); a playing session
    starts again on it when `restart`, else stops."""
    await asyncio.to_thread(studio.models, cue)  # CueError before anything changes
    was_playing = tab.playing
    await asyncio.to_thread(studio.stop, tab)
    tab.cue = cue
    emit(studio.hello(tab))
    if restart and was_playing:
        await asyncio.to_thread(studio.start, tab, emit)
        emit({"type": "status", "playing": True, "bars": 0})


async def _shutdown(app: web.Application) -> None:
    studio: Studio = app[STUDIO]
    tabs = list(studio.tabs.values())
    for tab in tabs:
        if tab.session is not None:
            tab.session.stop()
    for tab in tabs:  # every session's thread ends before the server does
        await asyncio.to_thread(studio.stop, tab)


def serve(cue_path: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
          max_sessions: int = 4, seed: int | None = None, steps: int | None = None,
          harmony: float | None = None, print_fn=print) -> None:
    """Run the studio until interrupted (`structdiff serve`)."""
    cue = load_cue(cue_path or DEFAULT_CUE)
    studio = Studio(cue, max_sessions=max_sessions, seed=seed, steps=steps, harmony=harmony)
    where = "this machine only" if host in ("127.0.0.1", "localhost", "::1") else \
        "every machine that can reach this one: there is no login"
    banner = (f"structdiff studio on http://{host}:{port}/ (open to {where}; up to "
              f"{max_sessions} tabs playing; Ctrl-C stops)")
    # aiohttp prints once the port is bound: a port in use is an error without a banner
    web.run_app(make_app(studio), host=host, port=port, print=lambda _: print_fn(banner))


__all__ = ["BadMessage", "Studio", "make_app", "parse_message", "serve"]
