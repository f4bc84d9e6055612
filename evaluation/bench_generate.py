"""Generation speed and memory against DESIGN.md's budgets, on this machine's CPU.

    .venv/bin/python evaluation/bench_generate.py [--repeats 5] [--steps 20] [--threads 1 2]

- song: a 32-bar, 4-track song (form A8 B8 A8 C8, chorale), plan + arrangement + MIDI, with the
  shipped models loaded once; the median of `--repeats` seeds after one warm-up, per torch
  thread count. Budget: <= 5 s.
- stream: 4 more bars of that song (the planner continues its plan, the arranger its notes, the
  32 bars known); real-time factor = seconds / the 8 s the 4 bars play at 120 bpm. Budget:
  <= 0.1.
- cold CLI: `structdiff generate --bars 32 --no-png --no-wav` as a fresh process (imports and
  model loading included), wall seconds and its peak resident memory (ru_maxrss of the child).
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
from structdiff.pipeline.arrange import load_arranger
from structdiff.pipeline.generate import Options, continue_song, new_song
from structdiff.pipeline.plan import load_planner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    planner, arranger = load_planner(), load_arranger()
    tmp = Path(tempfile.mkdtemp())
    print(f"steps {args.steps}, DDIM; medians of {args.repeats} after one warm-up")
    for threads in args.threads:
        torch.set_num_threads(threads)
        song_times, stream_times = [], []
        for seed in range(args.repeats + 1):
            opts = Options(style="chorale", seed=seed, steps=args.steps)
            started = time.perf_counter()
            song = new_song(planner, arranger, opts, form="A8 B8 A8 C8")
            write_midi(song, tmp / "song.mid")
            mid = time.perf_counter()
            continue_song(planner, arranger, song, 4, opts)
            done = time.perf_counter()
            if seed:
                song_times.append(mid - started)
                stream_times.append(done - mid)
        s, c = statistics.median(song_times), statistics.median(stream_times)
        print(f"threads {threads}: 32-bar 4-track song {s:.2f} s (budget 5 s); "
              f"4 more bars {c:.2f} s, real-time factor {c / 8.0:.3f} at 120 bpm (budget 0.1)")

    exe = Path(sys.executable).with_name("structdiff")
    started = time.perf_counter()
    subprocess.run([str(exe), "generate", "--bars", "32", "--no-png", "--no-wav",
                    "--out", str(tmp / "cli.mid")], check=True, capture_output=True)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"cold CLI (fresh process, default threads): {wall:.1f} s wall, "
          f"peak memory {peak_mb:.0f} MB (budget 1536 MB)")


if __name__ == "__main__":
    main()
