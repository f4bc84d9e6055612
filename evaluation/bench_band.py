"""Band-song generation speed and memory against DESIGN.md's budgets (issue 9), on this CPU.

    .venv/bin/python evaluation/bench_band.py [--repeats 5] [--steps 20] [--threads 1 2]
        [--arranger DIR] [--planner DIR] [--style pop] [--form "i4 A8 B8 A8 o4"]

- song: a 32-bar song (form `--form`, default i4 A8 B8 A8 o4) on every role of the arranger,
  6 tracks for the band model (melody, bass, keys, guitar, strings, drums): plan, arrangement
  and MIDI, with the models loaded once; the median of `--repeats` seeds after one warm-up,
  per torch thread count. Budget: <= 2 s.
- cold CLI: `structdiff generate` of the same song as a fresh process (imports and model
  loading included), its wall seconds and peak resident memory (ru_maxrss of the child).
  Budget: peak <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from structdiff.data.midi import write_midi
from structdiff.data.roles import load_role_map
from structdiff.models.bundle import SHIPPED_SETS
from structdiff.pipeline.arrange import load_arranger
from structdiff.pipeline.generate import DEFAULT_INSTRUMENTS, Options, new_song
from structdiff.pipeline.plan import load_planner

SONG_BUDGET_S = 2.0
MEMORY_BUDGET_MB = 1536
MAX_TRACKS = 6


def instruments(arranger) -> str:
    """`role=program,...` for the arranger's first 6 roles: its own default programs, else
    those of the band role map when its roles are band roles, else the string quartet's (a
    drum role's program is ignored)."""
    band = load_role_map("band")
    defaults = band.programs if set(arranger.roles) <= set(band.roles) else DEFAULT_INSTRUMENTS
    defaults = {**defaults, **arranger.programs}
    return ",".join(f"{r}={defaults.get(r, 0)}" for r in arranger.roles[:MAX_TRACKS])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--arranger", type=Path, default=None, metavar="DIR",
                        help="default: the shipped band set")
    parser.add_argument("--planner", type=Path, default=None, metavar="DIR",
                        help="default: the shipped band set")
    parser.add_argument("--style", default=None, help="a style of both models (default: any)")
    parser.add_argument("--form", default="i4 A8 B8 A8 o4", help="the form (32 bars)")
    args = parser.parse_args()
    band = SHIPPED_SETS["band"]
    planner = load_planner(args.planner or band)
    arranger = load_arranger(args.arranger or band)
    playing = instruments(arranger)
    tmp = Path(tempfile.mkdtemp())
    print(f"form {args.form}, instruments {playing}; DDIM {args.steps} steps; medians of "
          f"{args.repeats} after one warm-up")
    for threads in args.threads:
        torch.set_num_threads(threads)
        times = []
        for seed in range(args.repeats + 1):
            opts = Options(style=args.style, seed=seed, steps=args.steps)
            started = time.perf_counter()
            song = new_song(planner, arranger, opts, form=args.form, instruments=playing)
            write_midi(song, tmp / "song.mid")
            if seed:
                times.append(time.perf_counter() - started)
        n_tracks = sum(1 for t in song.tracks if t.n_notes)
        median = statistics.median(times)
        verdict = "PASS" if median <= SONG_BUDGET_S else "FAIL"
        print(f"threads {threads}: {song.n_bars}-bar {n_tracks}-track song {median:.2f} s "
              f"(budget {SONG_BUDGET_S:g} s) {verdict}")

    command = [str(Path(sys.executable).with_name("structdiff")), "generate", "--form",
               args.form, "--instruments", playing, "--steps", str(args.steps), "--no-png",
               "--no-wav", "--out", str(tmp / "cli.mid")]
    for flag, value in (("--arranger", args.arranger), ("--planner", args.planner),
                        ("--style", args.style)):
        if value is not None:
            command += [flag, str(value)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    verdict = "PASS" if peak_mb <= MEMORY_BUDGET_MB else "FAIL"
    print(f"cold CLI (fresh process, default threads): {wall:.1f} s wall, peak memory "
          f"{peak_mb:.0f} MB (budget {MEMORY_BUDGET_MB} MB) {verdict}")


if __name__ == "__main__":
    main()
