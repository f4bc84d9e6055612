"""Planner quality: how close planner-generated plans lie to real ones, against random plans.

    .venv/bin/python evaluation/planner_quality.py [--model DIR] [--n 100] [--steps 20]
        [--sampler ddim] [--prepared data/music21] [--out FILE.md]

Three sets of plans, measured with `structdiff.metrics.plan_metrics`:

- real: the analyzed plans of every song of the held-out test split of `--prepared`;
- generated: `--n` plans from the planner, each matched to a real test song (a seeded sample
  without replacement; cycling through the songs when `--n` exceeds them): the same number of
  bars (capped at 256 and at the model's `max_bars`), the same style (none when the model does
  not know it) and the same key; plan i uses seed i;
- random: `--n` plans matched the same way, each drawn by putting one uniformly random class in
  every group of the plan tensor (`PLAN_LAYOUT`: label, section start, phrase end, and root,
  quality, bass of every chord slot) on a 4/4 grid of that length and decoding it with
  `decode_plan` in the song's key. It is the floor: what a planner that learnt nothing writes.

Meters: real songs keep their meters (most test songs are in 4/2, some in 3/4, 6/8, ...); the
planner writes 4/4. Metrics count time in beats of each bar's meter (a half note in 4/2, a
dotted quarter in 6/8: the plan tensor's chord slots) and in bars, so a 4/2 bar and a 4/4 bar
both hold four beats and compare directly. Songs whose bars hold other than four beats (triple
meters, 6/8) cannot be matched by a 4/4 plan; the report counts them. Real plans longer than the
cap are measured on their first `cap` bars, as the generated ones are.

Histograms are compared by the total-variation distance and the Jensen-Shannon divergence (bits)
of the pooled distributions (each plan weighing the same); scalars by Yang & Lerch's overlapping
area (OA) and KL of intra-set (real) against inter-set distances (`compare_sets`). Verdict per
metric: generated is closer than random when its JS (histograms) is lower or its OA (scalars)
higher; the report notes when TV or KL disagrees.

Prints the report, or with `--out` writes it there and prints the verdict lines.

Sampling time: the mean seconds per generated plan, and the median of 5 runs (after one warm-up)
of one 64-bar plan at 20 DDIM steps, on the CPU with torch's thread count as reported.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from structdiff.data.plan_tensor import PLAN_LAYOUT, decode_plan, one_hot, uniform_grid
from structdiff.data.prepare import load_prepared
from structdiff.data.song import Plan, Song
from structdiff.metrics.distances import compare_sets
from structdiff.metrics.plan_metrics import (
    HISTOGRAM_BINS,
    STATISTIC_NAMES,
    compare_histograms,
    plan_histograms,
    plan_statistics,
    pool_histograms,
    song_grid,
)
from structdiff.metrics.report import write_atomic
from structdiff.pipeline.plan import PlannerBundle, generate_plan, load_planner

MAX_BARS = 256  # generated and random plans are at most this long; real ones measured up to it
TIMING_BARS = 64
TIMING_STEPS = 20
TIMING_RUNS = 5
TOP_MOTIONS = 5
SETS = ("real", "generated", "random")

MOTION_NAMES = {
    0: "same root", 1: "up m2", 2: "up M2", 3: "up m3", 4: "up M3", 5: "up P4 / down P5",
    6: "tritone", 7: "up P5 / down P4", 8: "down M3", 9: "down m3", 10: "down M2",
    11: "down m2",
}


class PlanSet:
    """Per-plan statistics and histograms of one set of plans."""

    def __init__(self) -> None:
        self.statistics: dict[str, list[float]] = {name: [] for name in STATISTIC_NAMES}
        self.histograms: dict[str, list[np.ndarray]] = {name: [] for name in HISTOGRAM_BINS}

    def add(self, plan: Plan, grid: dict) -> None:
        for name, value in plan_statistics(plan, **grid).items():
            self.statistics[name].append(value)
        for name, hist in plan_histograms(plan, **grid).items():
            self.histograms[name].append(hist)

    def pooled(self, name: str) -> np.ndarray:
        return pool_histograms(np.stack(self.histograms[name]))


def random_plan(n_bars: int, song: Song, rng: np.random.Generator) -> tuple[Plan, dict]:
    """A plan with a uniformly random class in every group of every bar, on a 4/4 grid, in the
    key of `song`'s plan; and its metric grid."""
    grid = uniform_grid(n_bars)
    x = one_hot({g.name: rng.integers(0, g.size, size=n_bars) for g in PLAN_LAYOUT}, n_bars)
    plan = decode_plan(x, grid, song.plan.key)
    return plan, {"bars": grid.bars, "end": grid.end, "steps_per_quarter": grid.steps_per_quarter}


def matched_songs(songs: list[Song], n: int, seed: int = 0) -> list[Song]:
    """`n` of `songs`: a seeded sample without replacement, cycling when `n` exceeds them."""
    order = np.random.default_rng(seed).permutation(len(songs))
    return [songs[i] for i in np.resize(order, n)]


def time_64_bars(bundle: PlannerBundle) -> list[float]:
    """Seconds of each of `TIMING_RUNS` runs (after one warm-up) of one 64-bar plan at 20 DDIM
    steps."""
    times = []
    for k in range(TIMING_RUNS + 1):
        began = time.perf_counter()
        generate_plan(bundle, TIMING_BARS, key="C major", seed=k, steps=TIMING_STEPS,
                      sampler="ddim")
        if k:
            times.append(time.perf_counter() - began)
    return times


def _f(x: float, digits: int = 3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _closer(gen: float, rand: float, lower_is_closer: bool) -> str:
    if not (math.isfinite(gen) and math.isfinite(rand)):
        return "n/a"
    return "yes" if (gen < rand if lower_is_closer else gen > rand) else "no"


def report_markdown(sets: dict[str, PlanSet], info: dict) -> tuple[str, list[str]]:
    """The Markdown report and one verdict line per metric."""
    real, gen, rand = (sets[s] for s in SETS)
    lines = [
        "# Planner quality: generated vs real plans, against random plans",
        "",
        f"Model `{info['model']}`; {info['n']} generated plans ({info['sampler']}, "
        f"{info['steps']} steps) and {info['n']} random plans, matched to songs of the test "
        f"split of `{info['prepared']}` (length capped at {info['cap']} bars, same style and "
        f"key); real: the analyzed plans of all {info['n_real']} test songs. Real songs whose "
        f"bars do not hold 4 beats: {info['not_four_beats']} of {info['n_real']} "
        f"(meters: {info['meters']}). See the script's docstring for the method.",
        "",
        "## Histograms",
        "",
        "TV: total-variation distance, JS: Jensen-Shannon divergence in bits, of the pooled "
        "distributions (0 = same, 1 = disjoint). Verdict by JS.",
        "",
        "| metric | TV gen–real | TV random–real | JS gen–real | JS random–real "
        "| generated closer |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = []
    for name in HISTOGRAM_BINS:
        g = compare_histograms(gen.histograms[name], real.histograms[name])
        r = compare_histograms(rand.histograms[name], real.histograms[name])
        verdict = _closer(g["js"], r["js"], lower_is_closer=True)
        note = "" if _closer(g["tv"], r["tv"], True) == verdict else " (TV disagrees)"
        lines.append(f"| {name} | {_f(g['tv'])} | {_f(r['tv'])} | {_f(g['js'])} | "
                     f"{_f(r['js'])} | {verdict}{note} |")
        verdicts.append(f"{name}: generated closer than random: {verdict}{note}")

    pooled = {s: {name: sets[s].pooled(name) for name in HISTOGRAM_BINS} for s in SETS}
    lines += ["", "### Pooled chord-quality shares (of the plans' beats)", "",
              "| quality | real | generated | random |", "|---|---|---|---|"]
    for k, q in enumerate(HISTOGRAM_BINS["chord_quality"]):
        lines.append(f"| {q} | " + " | ".join(_f(pooled[s]["chord_quality"][k]) for s in SETS)
                     + " |")
    lines += ["", f"### The {TOP_MOTIONS} most common root motions of real plans (share of "
              "motions)", "", "| interval (semitones up) | real | generated | random |",
              "|---|---|---|---|"]
    real_motion = pooled["real"]["root_motion"]
    top = np.argsort(-np.nan_to_num(real_motion), kind="stable")[:TOP_MOTIONS]
    for i in top.tolist():
        lines.append(f"| {i} ({MOTION_NAMES[i]}) | "
                     + " | ".join(_f(pooled[s]["root_motion"][i]) for s in SETS) + " |")
    for s in ("generated", "random"):
        own = np.argsort(-np.nan_to_num(pooled[s]["root_motion"]), kind="stable")[:TOP_MOTIONS]
        lines.append("")
        lines.append(f"Most common in {s}: " + ", ".join(
            f"{i} ({_f(pooled[s]['root_motion'][i], 2)})" for i in own.tolist()))
    lines += ["", "### Pooled harmonic rhythm (share of chords lasting so many beats)", "",
              "| beats | real | generated | random |", "|---|---|---|---|"]
    for k, b in enumerate(HISTOGRAM_BINS["harmonic_rhythm"]):
        lines.append(f"| {b} | "
                     + " | ".join(_f(pooled[s]["harmonic_rhythm"][k]) for s in SETS) + " |")

    lines += [
        "", "## Scalars", "",
        "Mean ± std per set; OA and KL: Yang & Lerch, real intra-set against set–real inter-set "
        "distances (OA 1 and KL 0 = as close as real plans are to each other). Verdict by OA.",
        "",
        "| metric | real | generated | random | OA gen | OA random | KL gen | KL random "
        "| generated closer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in STATISTIC_NAMES:
        g = compare_sets(gen.statistics[name], real.statistics[name])
        r = compare_sets(rand.statistics[name], real.statistics[name])
        verdict = _closer(g["oa"], r["oa"], lower_is_closer=False)
        note = "" if _closer(g["kl"], r["kl"], True) == verdict else " (KL disagrees)"
        cells = [f"{_f(g['reference_mean'])} ± {_f(g['reference_std'])}",
                 f"{_f(g['generated_mean'])} ± {_f(g['generated_std'])}",
                 f"{_f(r['generated_mean'])} ± {_f(r['generated_std'])}",
                 _f(g["oa"]), _f(r["oa"]), _f(g["kl"]), _f(r["kl"]), verdict + note]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        verdicts.append(f"{name}: generated closer than random: {verdict}{note}")

    t64 = info["times_64"]
    lines += [
        "", "## Sampling time", "",
        f"On the CPU: torch threads {info['threads']}, {os.cpu_count()} cores.",
        "",
        f"- mean per generated plan ({info['sampler']}, {info['steps']} steps, mean length "
        f"{info['mean_bars']:.1f} bars): {info['mean_seconds']:.3f} s",
    ]
    if t64:
        lines.append(f"- one {TIMING_BARS}-bar plan at {TIMING_STEPS} DDIM steps (C major, no "
                     f"style): median "
                     f"{statistics.median(t64):.3f} s of {len(t64)} runs after one warm-up "
                     f"({', '.join(f'{t:.3f}' for t in t64)})")
    else:
        lines.append(f"- one {TIMING_BARS}-bar plan: not timed, the model's max_bars is "
                     f"{info['cap']}")
    lines += ["", "## Verdicts", ""] + [f"- {v}" for v in verdicts]
    return "\n".join(lines) + "\n", verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="planner bundle folder (default: shipped)")
    parser.add_argument("--n", type=int, default=100, help="generated and random plans")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps")
    parser.add_argument("--sampler", default="ddim", help="sampler (ddim, ddpm, ...)")
    parser.add_argument("--prepared", type=Path, default=Path("data/music21"),
                        help="prepared corpus whose test split holds the real plans")
    parser.add_argument("--out", type=Path, help="write the Markdown report to this file")
    args = parser.parse_args(argv)
    if args.n < 1:
        print(f"--n must be >= 1, got {args.n}", file=sys.stderr)
        return 2
    if args.steps < 1:
        print(f"--steps must be >= 1, got {args.steps}", file=sys.stderr)
        return 2
    try:
        bundle = load_planner(args.model)
        songs = [s for s in load_prepared(args.prepared, split="test") if s.plan is not None]
    except (ValueError, OSError) as e:
        print(str(e).splitlines()[0], file=sys.stderr)
        return 2
    if not songs:
        print(f"no analyzed song in the test split of {args.prepared}", file=sys.stderr)
        return 2
    cap = min(MAX_BARS, bundle.model.cfg.max_bars)

    sets = {s: PlanSet() for s in SETS}
    meters, not_four = Counter(), 0
    for song in songs:
        grid = song_grid(song, cap)
        sets["real"].add(song.plan, grid)
        ts = song.time_signature_at(0)
        meters[f"{ts.numerator}/{ts.denominator}"] += 1
        beats_per_bar = np.diff(np.append(grid["bars"], grid["end"])) / grid["beat_steps"]
        not_four += Counter(beats_per_bar.round(3).tolist()).most_common(1)[0][0] != 4

    matched = matched_songs(songs, args.n)
    rng = np.random.default_rng(0)
    seconds, lengths = [], []
    try:
        for i, song in enumerate(tqdm(matched, desc="generate", unit="plan", file=sys.stderr)):
            n_bars = min(song.n_bars, cap)
            style = song.style if song.style in bundle.styles else None
            began = time.perf_counter()
            plan, generated = generate_plan(bundle, n_bars, style=style, key=song.plan.key,
                                            seed=i, steps=args.steps, sampler=args.sampler)
            seconds.append(time.perf_counter() - began)
            lengths.append(n_bars)
            sets["generated"].add(plan, song_grid(generated))
            sets["random"].add(*random_plan(n_bars, song, rng))
        times_64 = time_64_bars(bundle) if cap >= TIMING_BARS else []
    except ValueError as e:  # a sampler name or a model that does not fit the request
        print(str(e).splitlines()[0], file=sys.stderr)
        return 2

    info = {
        "model": args.model or "shipped", "n": args.n, "steps": args.steps,
        "sampler": args.sampler, "prepared": args.prepared, "cap": cap, "n_real": len(songs),
        "not_four_beats": not_four,
        "meters": ", ".join(f"{m} {c}" for m, c in meters.most_common()),
        "threads": torch.get_num_threads(), "mean_seconds": float(np.mean(seconds)),
        "mean_bars": float(np.mean(lengths)), "times_64": times_64,
    }
    report, verdicts = report_markdown(sets, info)
    if not args.out:
        print(report, end="")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, report)
    for line in verdicts:
        print(line)
    print(f"mean {info['mean_seconds']:.3f} s per plan; "
          + (f"{TIMING_BARS} bars at {TIMING_STEPS} DDIM steps: median "
             f"{statistics.median(times_64):.3f} s" if times_64 else "64 bars: not timed"))
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
