"""Live sessions against issue 10's budgets, with the shipped band models on this CPU.

    .venv/bin/python evaluation/bench_session.py [--parts rtf load latency memory controls]
        [--bars 64] [--changes 100] [--minutes 30] [--out evaluation/results/session.md]

- rtf: a simulated session (all six band layers, a state change every 8 bars) at 120 bpm:
  seconds spent writing ÷ seconds of music, and the longest single write against one bar's
  length, per torch thread count. Budget: <= 0.05.
- load: the same while two other processes keep both cores busy (a game beside its music).
  Budget: <= 0.15.
- latency: a real-clock session with `--changes` state changes from another thread at random
  moments: from `set_state` to the first note of the new state, and how far that is past the
  next bar line (the quantization); underruns over the whole run.
- memory: a simulated session of `--minutes` minutes of music at 120 bpm with a change every
  16 bars: resident memory every 100 bars.
- controls: on both example cue sheets, the first state at intensity 0.1 and 0.9 (same seed):
  notes, mean velocity, layers; each mood's chord vocabulary; each loop's seam against the
  state's typical bar-to-bar similarity; each bridge's last chord.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import shlex
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from structdiff.metrics.report import write_atomic
from structdiff.models.bundle import SHIPPED_SETS
from structdiff.pipeline.arrange import load_arranger
from structdiff.pipeline.cue import MOODS, State, load_cue
from structdiff.pipeline.plan import generate_plan, load_planner
from structdiff.pipeline.session import Session
from structdiff.pipeline.soundtrack import render_soundtrack

CUES = (Path("configs/cues/game_level.yaml"), Path("configs/cues/film_scene.yaml"))
RTF_BUDGET, LOAD_BUDGET = 0.05, 0.15


def _busy() -> None:
    while True:
        pass


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rtf(models, bars: int, threads: int, every: int = 8) -> dict:
    planner, arranger = models
    torch.set_num_threads(threads)
    cue = load_cue(CUES[0])
    cue = replace(cue, tempo=120.0)
    session = Session(cue, planner, arranger, state="battle", clock="simulated", seed=1)
    names = list(cue.states)
    for k, bar in enumerate(range(every, bars, every) if every else []):
        session.at_bar(bar, "set_state", names[k % len(names)])
    writes: list[float] = []
    orig = session._write_more

    def timed():
        t = time.perf_counter()
        out = orig()
        writes.append(time.perf_counter() - t)
        return out

    session._write_more = timed
    started = time.perf_counter()
    music = 0.0
    for bar in session.bars(bars):
        music += bar.steps * 60.0 / bar.tempo / 4
    wall = time.perf_counter() - started
    return {"threads": threads, "bars": bars, "every": every, "music_s": music, "wall_s": wall,
            "rtf": wall / music, "max_write_s": max(writes), "bar_s": 2.0,
            "bars_written": session.composer.n_written}


def latency(models, changes: int, threads: int) -> dict:
    planner, arranger = models
    torch.set_num_threads(threads)
    cue = replace(load_cue(CUES[0]), tempo=120.0)
    names = list(cue.states)
    rng = random.Random(0)
    issued: list[tuple[float, str]] = []
    session = Session(cue, planner, arranger, state=names[0], clock="real", seed=2)
    done = threading.Event()

    def driver():
        while session._origin is None and not done.is_set():
            time.sleep(0.01)
        current = names[0]
        for _ in range(changes):
            time.sleep(rng.uniform(2.0, 5.0))
            if done.is_set():
                return
            current = rng.choice([n for n in names if n != current])
            issued.append((session._now(), current))
            session.set_state(current)
        time.sleep(5.0)
        session.stop()

    threading.Thread(target=driver, daemon=True).start()
    bar_state: dict[int, str] = {}
    bar_time: dict[int, float] = {}
    first_note: dict[int, float] = {}
    for ev in session.events():
        if ev.type == "bar":
            bar_state[ev.bar] = ev.text.split()[0]
            bar_time[ev.bar] = ev.time
        elif ev.type == "note_on" and ev.bar not in first_note:
            first_note[ev.bar] = ev.time
    done.set()
    rows = []
    order = sorted(bar_state)
    for t, state in issued:
        later = [b for b in order if bar_time[b] > t and bar_state[b] == state]
        if not later:
            continue
        b = later[0]
        nxt = min((bar_time[x] for x in order if bar_time[x] > t), default=bar_time[b])
        note = first_note.get(b, bar_time[b])
        rows.append({"latency_ms": 1000 * (note - t), "past_quantization_ms":
                     1000 * (bar_time[b] - nxt), "bars_late": order.index(b)
                     - order.index(next(x for x in order if bar_time[x] == nxt))})
    return {"threads": threads, "changes": len(issued), "measured": len(rows),
            "underruns": len(session.underruns), "rows": rows,
            "urgent_steps": Counter(session.urgent_steps),
            "minutes": max(bar_time.values(), default=0) / 60}


def memory(models, minutes: float) -> dict:
    planner, arranger = models
    cue = replace(load_cue(CUES[0]), tempo=120.0)
    names = list(cue.states)
    bars = int(minutes * 60 / 2.0)
    session = Session(cue, planner, arranger, state=names[0], clock="simulated", seed=3)
    for k, bar in enumerate(range(16, bars, 16)):
        session.at_bar(bar, "set_state", names[(k + 1) % len(names)])
    samples = []
    started = time.perf_counter()
    for bar in session.bars(bars):
        if bar.index % 100 == 0:
            samples.append((bar.index, _rss_mb()))
    samples.append((bars, _rss_mb()))
    return {"bars": bars, "samples": samples, "wall_s": time.perf_counter() - started}


def longest_repeat(bars) -> int:
    """The longest run of bars played twice note for note (every role), in bars."""
    keys = [hash(tuple((r, n.tobytes()) for r, n in sorted(b.notes.items()) if len(n)))
            for b in bars]
    best = 0
    run = np.zeros(len(keys) + 1, dtype=np.int64)
    for i in range(1, len(keys)):
        new = np.zeros_like(run)
        for j in range(i):
            if keys[i] == keys[j]:
                new[j + 1] = run[j] + 1
        best = max(best, int(new.max()))
        run = new
    return best


def endless(models, minutes: float) -> dict:
    """One state, no timeline: new sections keep coming, never a long verbatim loop."""
    planner, arranger = models
    cue = replace(load_cue(CUES[0]), tempo=120.0, timeline=[])
    bars = int(minutes * 60 / 2.0)
    session = Session(cue, planner, arranger, state="battle", clock="simulated", seed=5)
    played = list(session.bars(bars))
    sections = {(b.plan.stream, b.plan.label, b.plan.position) for b in played
                if b.plan.section_start}
    return {"bars": bars, "longest_repeat_bars": longest_repeat(played),
            "sections": len(sections)}


def controls(models) -> dict:
    planner, arranger = models
    out = {"intensity": [], "moods": {}, "seams": [], "bridges": []}
    for path in CUES:
        cue = load_cue(path)
        first = cue.timeline[0].state
        row = {"cue": path.name, "state": first}
        for x in (0.1, 0.9):
            state = replace(cue.states[first], intensity=x, layers=None)
            sheet = replace(cue, states={**cue.states, first: state})
            bars = list(Session(sheet, planner, arranger, state=first, clock="simulated",
                                seed=4).bars(16))
            notes = [n for b in bars for n in b.notes.values() if len(n)]
            row[x] = {"notes": sum(len(n) for n in notes),
                      "velocity": float(np.mean(np.concatenate([n[:, 3] for n in notes]))),
                      "layers": len({r for b in bars for r, n in b.notes.items() if len(n)})}
        out["intensity"].append(row)
        track = render_soundtrack(cue, planner, arranger)
        for state, seam in track.seams.items():
            out["seams"].append({"cue": path.name, "state": state, **seam})
        for i, bar in enumerate(track.bars):
            if bar.transition == "bridge" and (i + 1 < len(track.bars)
                                               and track.bars[i + 1].transition != "bridge"):
                target = track.bars[i + 1].plan.chords[0]
                last = bar.plan.chords[-1]
                out["bridges"].append({"cue": path.name, "bar": bar.index,
                                       "last": last.name, "target": target.name,
                                       "ok": last.root in (target.root, (target.root + 7) % 12)})
    for mood in [None, *MOODS]:
        counts: Counter = Counter()
        state = State("probe", mood=mood)
        for seed in range(8):
            plan, _ = generate_plan(planner, 16, style="pop", key=f"C {state.mode or 'major'}",
                                    seed=seed, steps=10, chord_bias=state.qualities or None)
            counts.update(c.quality for c in plan.chords)
        total = sum(counts.values())
        out["moods"][mood or "(none)"] = {q: counts[q] / total for q in counts}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["rtf", "load", "latency", "memory",
                                                        "endless", "controls"])
    parser.add_argument("--bars", type=int, default=64)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=Path("evaluation/results/session.md"))
    args = parser.parse_args()
    folder = SHIPPED_SETS["band"]
    models = (load_planner(folder), load_arranger(folder))
    lines = ["# Live sessions: speed, latency, memory, controls, seams", "",
             f"`.venv/bin/python evaluation/bench_session.py {shlex.join(sys.argv[1:])}`", "",
             f"Shipped band models, DDIM {models[1].meta.get('default_steps')} steps, "
             f"{mp.cpu_count()} CPU cores; 4/4 at 120 bpm (a bar is 2 s).", ""]
    if "rtf" in args.parts or "load" in args.parts:
        lines += ["## Real-time factor (writing seconds ÷ music seconds)", "",
                  "A simulated session of `battle` (all six layers), with a state change every "
                  "8 bars (16 s) or none.", "",
                  "| load | state changes | torch threads | bars | music s | wall s | RTF | "
                  "longest write s | budget |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for part, budget in (("rtf", RTF_BUDGET), ("load", LOAD_BUDGET)):
            if part not in args.parts:
                continue
            busy = [mp.Process(target=_busy, daemon=True) for _ in range(2)] if part == "load" \
                else []
            for p in busy:
                p.start()
            try:
                for threads, every in ((1, 0), (1, 8), (2, 0), (2, 8)):
                    r = rtf(models, args.bars, threads, every)
                    print(part, r, flush=True)
                    lines.append(f"| {'2 busy processes' if busy else 'idle'} | "
                                 f"{'every 8 bars' if every else 'none'} | {threads} | "
                                 f"{r['bars']} | {r['music_s']:.0f} | {r['wall_s']:.1f} | "
                                 f"{r['rtf']:.3f} | {r['max_write_s']:.2f} | "
                                 f"{'PASS' if r['rtf'] <= budget else 'FAIL'} (≤ {budget}) |")
            finally:
                for p in busy:
                    p.terminate()
        lines.append("")
    if "latency" in args.parts:
        r = latency(models, args.changes, 1)
        rows = r["rows"]
        lat = [x["latency_ms"] for x in rows]
        past = [x["past_quantization_ms"] for x in rows]
        late = Counter(x["bars_late"] for x in rows)
        lines += ["## State changes on the real clock", "",
                  f"{r['changes']} changes at random moments (2-5 s apart) over "
                  f"{r['minutes']:.1f} minutes, 1 torch thread; {r['measured']} measured.", "",
                  "| | median | p90 | max |", "|---|---:|---:|---:|",
                  f"| set_state → first note of the new state (ms) | {statistics.median(lat):.0f}"
                  f" | {np.percentile(lat, 90):.0f} | {max(lat):.0f} |",
                  f"| past the next bar line (ms) | {statistics.median(past):.0f} | "
                  f"{np.percentile(past, 90):.0f} | {max(past):.0f} |", "",
                  "Landed on the next bar: " + ", ".join(
                      f"{k} bar(s) later {v}×" if k else f"on it {v}×"
                      for k, v in sorted(late.items())) + f". Underruns: {r['underruns']}.",
                  "", "The bar after a change (or a new intensity) is written alone, in as "
                  "many denoising steps as the time left allows (at least 4, at most the "
                  "model's 10): " + ", ".join(f"{k} steps {v}×" for k, v in
                                              sorted(r["urgent_steps"].items(), reverse=True))
                  + ".", ""]
        print("latency", {k: v for k, v in r.items() if k != "rows"}, flush=True)
    if "memory" in args.parts:
        r = memory(models, args.minutes)
        rss = [m for _, m in r["samples"]]
        lines += ["## Memory over a long simulated session", "",
                  f"{r['bars']} bars ({args.minutes:.0f} minutes of music) in "
                  f"{r['wall_s']:.0f} s; resident memory (MB) at bars "
                  + ", ".join(f"{b}: {m:.0f}" for b, m in r["samples"][:: max(1, len(rss) // 10)])
                  + f"; first {rss[0]:.0f}, last {rss[-1]:.0f}, max {max(rss):.0f}.", ""]
        print("memory", r, flush=True)
    if "endless" in args.parts:
        r = endless(models, 10.0)
        lines += ["## Endless play in one state", "",
                  f"{r['bars']} bars (10 minutes) of `battle` with no timeline: "
                  f"{r['sections']} sections written; the longest stretch played twice note "
                  f"for note is {r['longest_repeat_bars']} bars "
                  f"({2 * r['longest_repeat_bars']} s).", ""]
        print("endless", r, flush=True)
    if "controls" in args.parts:
        r = controls(models)
        lines += ["## Controls", "", "| cue | state | intensity | notes (16 bars) | mean "
                  "velocity | layers |", "|---|---|---:|---:|---:|---:|"]
        for row in r["intensity"]:
            for x in (0.1, 0.9):
                v = row[x]
                lines.append(f"| {row['cue']} | {row['state']} | {x} | {v['notes']} | "
                             f"{v['velocity']:.0f} | {v['layers']} |")
            ratio = row[0.9]["notes"] / max(row[0.1]["notes"], 1)
            lines.append(f"| | | density ratio | {ratio:.2f}× "
                         f"{'PASS' if ratio >= 1.5 else 'FAIL'} (≥ 1.5) | | |")
        qualities = sorted({q for m in r["moods"].values() for q in m})
        lines += ["", "Chord qualities the planner writes per mood (share of chords, 8 "
                  "16-bar plans each, style pop, key C in the mood's mode):", "",
                  "| mood | " + " | ".join(qualities) + " |",
                  "|---|" + "---:|" * len(qualities)]
        for mood, shares in r["moods"].items():
            lines.append(f"| {mood} | " + " | ".join(f"{shares.get(q, 0):.2f}"
                                                     for q in qualities) + " |")
        lines += ["", "## Seams", "", "| cue | loop | bars | seam similarity | typical bar "
                  "to bar | |", "|---|---|---:|---:|---:|---|"]
        for s in r["seams"]:
            lines.append(f"| {s['cue']} | {s['state']} | {int(s['bars'])} | {s['seam']:.2f} | "
                         f"{s['typical']:.2f} | {'PASS' if s['seam'] >= s['typical'] else 'FAIL'}"
                         " |")
        lines += ["", "Bridges: " + "; ".join(
            f"{b['cue']} bar {b['bar']}: ends on {b['last']} before {b['target']} "
            f"{'PASS' if b['ok'] else 'FAIL'}" for b in r["bridges"]), ""]
        print("controls", r, flush=True)
    write_atomic(args.out, "\n".join(lines) + "\n")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wrote {args.out}; peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
