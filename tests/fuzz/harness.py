"""Mutated real inputs for the readers (issue 14, point 7): shared by `test_fuzz_readers.py`
(a few hundred cases in the test suite, through hypothesis) and
`evaluation/fuzz_readers.py` (thousands, for the record).

Every reader a user's file reaches is fed mutations of a real seed file of its format: the
MIDI file `write_midi` makes of the debug band song, MusicXML and kern files of the corpus
bundled with music21, the plan JSON `analyze --json` writes for that song, and the shipped
game cue sheet. A case passes when it ends, within `TIME_LIMIT` seconds, in a loaded result or
in the reader's typed error (`MusicFileError`, `PlanError`, `CueError`: each a one-line
message that the CLI turns into exit code 2). Anything else is a bug found.
"""

from __future__ import annotations

import json
import signal
import struct
import tempfile
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

TIME_LIMIT = 10.0  # seconds per case
REPO = Path(__file__).resolve().parents[2]

# edit ops: (op, position, payload); positions are taken modulo the data's length
OPS = ("flip", "set", "insert", "delete", "truncate", "duplicate", "chunk_length")


class CaseTimeout(Exception):
    """A reader ran past TIME_LIMIT on one case."""


@contextmanager
def time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise CaseTimeout(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def mutate(data: bytes, edits: Sequence[tuple[str, int, bytes]]) -> bytes:
    """`data` with `edits` applied in order (module docstring)."""
    out = bytearray(data)
    for op, pos, payload in edits:
        n = len(out)
        at = pos % (n + 1)
        if op == "flip" and n:
            out[at % n] ^= 1 << (pos % 8)
        elif op == "set" and n:
            out[at % n] = payload[0] if payload else 0xFF
        elif op == "insert":
            out[at:at] = payload
        elif op == "delete":
            del out[at:at + 1 + len(payload)]
        elif op == "truncate":
            del out[at:]
        elif op == "duplicate" and n:
            out[at:at] = out[at:at + 64]
        elif op == "chunk_length":
            # a MIDI chunk header claiming another (often huge) length
            heads = [i for i in range(n - 7) if out[i:i + 4] in (b"MThd", b"MTrk")]
            if heads:
                head = heads[pos % len(heads)]
                value = int.from_bytes((payload + b"\xff" * 4)[:4], "big")
                out[head + 4:head + 8] = struct.pack(">I", value)
    return bytes(out)


def seeds(folder: Path) -> dict[str, tuple[str, bytes]]:
    """`{kind: (suffix, bytes)}` of the real seed files (written under `folder` if needed)."""
    import music21

    from structdiff.analysis import song_plan
    from structdiff.analysis.schema import analysis_dict
    from structdiff.data.midi import write_midi
    from tests.debug_models import band_song

    corpus = Path(music21.__file__).parent / "corpus"
    song = band_song(8)
    midi = folder / "seed.mid"
    write_midi(song, midi)
    plan = analysis_dict(song, song_plan(song))
    return {
        "midi": (".mid", midi.read_bytes()),
        "musicxml": (".xml", (corpus / "demos" / "multiple-verses.xml").read_bytes()),
        "kern": (".krn", (corpus / "palestrina" / "Gloria_69_c.krn").read_bytes()),
        "plan": (".json", json.dumps(plan).encode()),
        "cue": (".yaml", (REPO / "configs" / "cues" / "game_level.yaml").read_bytes()),
    }


def readers() -> dict[str, tuple[Callable[[Path], object], type[Exception]]]:
    """`{kind: (read, typed error)}`."""
    from structdiff.analysis.schema import PlanError, read_plan
    from structdiff.data.io import read_song
    from structdiff.data.song import MusicFileError
    from structdiff.pipeline.cue import CueError, load_cue

    return {"midi": (read_song, MusicFileError), "musicxml": (read_song, MusicFileError),
            "kern": (read_song, MusicFileError), "plan": (read_plan, PlanError),
            "cue": (load_cue, CueError)}


def run_case(kind: str, suffix: str, data: bytes, folder: Path | None = None) -> str:
    """Read `data` as a file of `kind`: "loaded" or "refused" (the typed error); any other
    exception, or `CaseTimeout`, propagates."""
    read, error = readers()[kind]
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / f"case{suffix}"
        path.write_bytes(data)
        try:
            with time_limit(TIME_LIMIT):
                read(path)
        except error:
            return "refused"
    return "loaded"
