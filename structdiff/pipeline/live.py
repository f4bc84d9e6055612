"""`structdiff live`: a session played to a MIDI port or as JSON lines, driven by commands.

Commands are lines (`state battle`, `state battle beat`, `state victory bar bridge 2`,
`intensity 0.8`, `stinger boss`, `quit`; on the simulated clock `@8 state battle` lands on bar
8) from stdin or, with python-osc, OSC messages (`/structdiff/state battle [at] [transition]`,
`/structdiff/intensity 0.8`, `/structdiff/stinger boss`). A bad command is reported on stderr
and the music goes on.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from structdiff.pipeline.arrange import ArrangerBundle
from structdiff.pipeline.cue import CueSheet
from structdiff.pipeline.plan import PlannerBundle
from structdiff.pipeline.session import WHEN, Event, Session

SIMULATED_BARS = 16  # a simulated session without --bars plays this many


@dataclass
class Command:
    method: str  # set_state | set_intensity | stinger | quit
    args: tuple
    kwargs: dict
    bar: int | None = None  # @BAR: land on this bar (simulated clock)


def parse_command(line: str) -> Command | None:
    """A command line -> Command (None for a blank line or a # comment). Raises ValueError
    with a one-line message naming what is wrong."""
    words = line.split("#", 1)[0].split()
    if not words:
        return None
    bar = None
    if words[0].startswith("@"):
        try:
            bar = int(words[0][1:])
        except ValueError:
            raise ValueError(f"@BAR needs a bar number, got {words[0]!r}") from None
        if bar < 0:
            raise ValueError(f"@BAR must be >= 0, got {bar}")
        words = words[1:]
        if not words:
            raise ValueError("@BAR needs a command after it")
    verb, rest = words[0].lower(), words[1:]
    if verb == "state":
        if not rest:
            raise ValueError("state needs a name, e.g. `state battle`")
        at, transition = "bar", None
        more = rest[1:]
        if more and more[0] in WHEN:
            at, more = more[0], more[1:]
        if more:
            transition = " ".join(more)
        kwargs = {"at": at}
        if transition:
            kwargs["transition"] = transition
        return Command("set_state", (rest[0],), kwargs, bar)
    if verb == "intensity":
        if len(rest) != 1:
            raise ValueError("intensity needs one number in [0, 1], e.g. `intensity 0.8`")
        try:
            value = float(rest[0])
        except ValueError:
            raise ValueError(f"intensity must be a number in [0, 1], got {rest[0]!r}") from None
        return Command("set_intensity", (value,), {}, bar)
    if verb == "stinger":
        if len(rest) != 1:
            raise ValueError("stinger needs a name, e.g. `stinger boss`")
        return Command("stinger", (rest[0],), {}, bar)
    if verb in ("quit", "stop", "exit"):
        return Command("quit", (), {}, bar)
    raise ValueError(f"unknown command {verb!r} (state, intensity, stinger, quit)")


def apply_command(session: Session, cmd: Command) -> None:
    """Hand `cmd` to the session (now, or on its bar when it has one)."""
    if cmd.method == "quit":
        session.stop()
    elif cmd.bar is not None:
        session.at_bar(cmd.bar, cmd.method, *cmd.args, **cmd.kwargs)
    else:
        getattr(session, cmd.method)(*cmd.args, **cmd.kwargs)


def cue_styles(cue: CueSheet) -> list[str]:
    """The styles a cue sheet names, the sheet's first, then its states' (with repeats)."""
    return [s for s in [cue.style] + [st.style for st in cue.states.values()] if s]


def session_models(cue: CueSheet) -> tuple[PlannerBundle, ArrangerBundle]:
    """The shipped set that knows the cue sheet's styles (the first set without any), with its
    planner and arranger for the cue sheet's style when all of it is one style the set has its
    own for."""
    from structdiff.models.bundle import (
        BundleError,
        arranger_for_style,
        planner_for_style,
        set_for_style,
        shipped_sets,
    )
    from structdiff.pipeline.arrange import load_arranger
    from structdiff.pipeline.cue import CueError
    from structdiff.pipeline.plan import load_planner

    styles = cue_styles(cue)
    try:
        folder = set_for_style(styles[0]) if styles else next(iter(shipped_sets().values()))
    except BundleError as e:
        path = "style" if cue.style else "states"
        raise CueError(f"{cue.source}: {path}: {e}") from None
    # one arranger plays every state: the set's own for a cue sheet of one style that has one
    style = styles[0] if len(set(styles)) == 1 else None
    return (load_planner(planner_for_style(folder, style)),
            load_arranger(arranger_for_style(folder, style)))


def list_ports() -> list[str]:
    """The MIDI output ports mido sees (needs the python-rtmidi backend)."""
    import mido

    try:
        return list(mido.get_output_names())
    except (ImportError, OSError) as e:
        raise ValueError(f"MIDI ports need mido's python-rtmidi backend "
                         f"(pip install python-rtmidi): {e}") from None


def _open_port(name: str):
    import mido

    names = list_ports()
    matches = [n for n in names if name.lower() in n.lower()]
    if not matches:
        raise ValueError(f"no MIDI output port matches {name!r} (ports: "
                         f"{', '.join(names) or 'none'})")
    return mido.open_output(matches[0])


def _message(ev: Event):
    import mido

    if ev.type == "note_on":
        return mido.Message("note_on", channel=ev.channel, note=ev.note, velocity=ev.velocity)
    if ev.type == "note_off":
        return mido.Message("note_off", channel=ev.channel, note=ev.note, velocity=0)
    if ev.type == "program":
        return mido.Message("program_change", channel=ev.channel, program=ev.program)
    return None


def _read_commands(session: Session, stream: TextIO, err: TextIO, stop_at_end: bool) -> None:
    for line in stream:
        try:
            cmd = parse_command(line)
            if cmd is not None:
                apply_command(session, cmd)
        except ValueError as e:
            print(f"structdiff live: {line.strip()!r}: {str(e).splitlines()[0]}", file=err,
                  flush=True)
    if stop_at_end:
        session.stop()


def _serve_osc(session: Session, port: int, err: TextIO):
    try:
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import ThreadingOSCUDPServer
    except ImportError:
        raise ValueError("--osc needs python-osc (pip install python-osc)") from None

    def handler(address: str, *values) -> None:
        line = address.rsplit("/", 1)[-1] + " " + " ".join(str(v) for v in values)
        try:
            cmd = parse_command(line)
            if cmd is not None:
                apply_command(session, cmd)
        except ValueError as e:
            print(f"structdiff live: OSC {address}: {e}", file=err, flush=True)

    dispatcher = Dispatcher()
    for name in ("state", "intensity", "stinger", "quit"):
        dispatcher.map(f"/structdiff/{name}", handler)
    server = ThreadingOSCUDPServer(("127.0.0.1", port), dispatcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"structdiff live: OSC on 127.0.0.1:{port} (/structdiff/state NAME, "
          f"/structdiff/intensity X, /structdiff/stinger NAME)", file=err, flush=True)
    return server


def run_live(cue: CueSheet, planner: PlannerBundle, arranger: ArrangerBundle, *,
             state: str | None = None, clock: str = "real", bars: int | None = None,
             lookahead: int = 1, out: Path | None = None, port: str | None = None,
             osc: int | None = None, seed: int | None = None, steps: int | None = None,
             harmony: float | None = None, stdin: TextIO | None = None,
             stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Play a session until `bars` bars, `quit`, the end of input (real clock) or Ctrl-C;
    every note is ended before it returns 0."""
    from structdiff.pipeline.cue import check_cue

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    check_cue(cue, [s for s in arranger.styles if s in planner.styles], arranger.roles)
    session = Session(cue, planner, arranger, state=state, clock=clock,
                      seed=cue.seed if seed is None else seed, steps=steps, harmony=harmony,
                      lookahead=lookahead)
    midi = _open_port(port) if port else None
    sink = open(out, "w") if out else stdout  # noqa: SIM115 - closed below
    server = _serve_osc(session, osc, stderr) if osc is not None else None
    if clock == "simulated":
        bars = bars or SIMULATED_BARS
        if not stdin.isatty():  # the whole script first: @BAR lines land on their bars
            _read_commands(session, stdin, stderr, stop_at_end=False)
    else:
        threading.Thread(target=_read_commands, args=(session, stdin, stderr, True),
                         daemon=True).start()
    sounding: set[tuple[int, int]] = set()
    last = 0.0
    try:
        for ev in session.events(n_bars=bars):
            last = ev.time
            if ev.type == "note_on":
                sounding.add((ev.channel, ev.note))
            elif ev.type == "note_off":
                sounding.discard((ev.channel, ev.note))
            _send(ev, midi, sink)
    except KeyboardInterrupt:
        session.stop()
    finally:
        for channel, note in sorted(sounding):  # all notes off, whatever stopped us
            _send(Event(last, "note_off", -1, channel, note, 0), midi, sink)
        if midi is not None:
            import mido

            for channel in range(16):
                midi.send(mido.Message("control_change", channel=channel, control=123))
            midi.close()
        if server is not None:
            server.shutdown()
        if out:
            sink.close()
        else:
            sink.flush()
    if session.underruns:
        print(f"structdiff live: {len(session.underruns)} underruns (bars "
              f"{', '.join(map(str, session.underruns[:10]))})", file=stderr)
    return 0


def _send(ev: Event, midi, sink: TextIO) -> None:
    if midi is not None:
        msg = _message(ev)
        if msg is not None:
            midi.send(msg)
    sink.write(json.dumps(ev.to_dict()) + "\n")
    if ev.type in ("bar", "marker"):
        sink.flush()
