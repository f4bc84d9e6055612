"""Steady speed on a shared machine (issue 12, point 5): plans and songs with and without a busy
neighbour, per torch thread count.

    .venv/bin/python evaluation/bench_threads.py [--plans 12] [--songs 3] [--bars 32]
        [--out evaluation/results/threads.md]

For each torch thread count (1, 2) and load (idle; one, then two other processes each keeping a
core busy, as a game beside its music would), it samples `--plans` plans of `--bars` bars
(`generate_plan`, style pop, seeds 0..n-1) and arranges `--songs` songs (`new_song`, the same
models as `structdiff generate`), each timed alone, and reports the median and the slowest. The
bar: under load at most 1.5x the idle time. `structdiff plan`, `generate`, `soundtrack` and
`live` run with the thread count this picks (`--threads`, default 1).

Run it on an otherwise idle machine: the idle rows are the reference.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from pathlib import Path

import torch

from structdiff.metrics.report import write_atomic
from structdiff.models.bundle import set_for_style
from structdiff.pipeline.arrange import load_arranger
from structdiff.pipeline.generate import Options, new_song
from structdiff.pipeline.plan import generate_plan, load_planner

BUDGET = 1.5


def _busy() -> None:
    while True:
        pass


def _times(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=12)
    parser.add_argument("--songs", type=int, default=3)
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("evaluation/results/threads.md"))
    args = parser.parse_args()

    folder = set_for_style("pop")
    planner, arranger = load_planner(folder), load_arranger(folder)

    def plan(i):
        generate_plan(planner, args.bars, style="pop", seed=i)

    steps = int(arranger.meta.get("default_steps", 20))  # as `structdiff generate` does
    harmony = float(arranger.meta.get("default_harmony", 1.0))

    def song(i):
        new_song(planner, arranger, Options(style="pop", seed=i, steps=steps, harmony=harmony),
                 n_bars=args.bars)

    plan(0), song(0)  # warm up
    rows, idle = [], {}
    for load in (0, 1, 2):
        workers = [mp.Process(target=_busy, daemon=True) for _ in range(load)]
        for w in workers:
            w.start()
        time.sleep(0.5)
        try:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                for what, fn, n in (("plan", plan, args.plans), ("song", song, args.songs)):
                    t = _times(fn, n)
                    med, worst = statistics.median(t), max(t)
                    if load == 0:
                        idle[what, threads] = med
                    ratio = med / idle[what, threads]
                    rows.append((what, threads, load, med, worst, ratio))
                    print(f"{what} threads={threads} busy={load}: median {med:.2f} s, "
                          f"slowest {worst:.2f} s, {ratio:.2f}x idle", flush=True)
        finally:
            for w in workers:
                w.terminate()
                w.join()

    lines = [
        "# Plans and songs beside a busy process (issue 12, point 5)",
        "",
        f"`.venv/bin/python evaluation/bench_threads.py --plans {args.plans} --songs "
        f"{args.songs} --bars {args.bars}` on this machine ({mp.cpu_count()} cores), the band "
        f"set (style pop), {args.bars} bars. Busy: that many other processes each keep a core "
        "at 100%. Ratio: the median against the idle median at the same thread count "
        f"(bar: <= {BUDGET}).",
        "",
        "| what | torch threads | busy processes | median s | slowest s | x idle |",
        "|---|---|---|---|---|---|",
    ]
    for what, threads, load, med, worst, ratio in rows:
        lines.append(f"| {what} | {threads} | {load} | {med:.2f} | {worst:.2f} | {ratio:.2f} |")
    write_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
