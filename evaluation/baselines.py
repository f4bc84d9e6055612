"""Ceiling and floors of every metric on the embedded corpus.

- ceiling: the test split of the music21 corpus against (a seeded sample of) its train split;
- floor "shuffled": the same test songs with their bars in random order;
- floor "random pitches": the same test songs with random pitches, rhythm kept.

Every song is scored against a given plan: the analyzed plan of the real song (for the floors,
of the song before it was broken), so that plan-following metrics (form adherence, chord
agreement, chord-tone ratio, ILS) are 1 or near it for real music and drop for the floors.

A metric *separates* when the ceiling's overlapping area (OA) with the train distribution is
higher than both floors' by at least `--margin`. Writes one evaluation (metrics.json,
report.md, plots/) per comparison and `baselines.md`, the table of all three, to `--out`.

    .venv/bin/python evaluation/baselines.py --out out/baselines [--n-train 300] [--n-test 0]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from structdiff.analysis import analyze
from structdiff.data.corpus import music21_corpus_dir, read_split
from structdiff.data.io import read_song
from structdiff.metrics.baselines import random_pitches, shuffle_bars
from structdiff.metrics.evaluate import score_songs, write_evaluation
from structdiff.metrics.report import write_atomic


def _read(item: tuple[str, str]):
    file_id, path = item
    try:
        return file_id, read_song(path), None
    except Exception as e:  # report and go on: one bad file never stops the run
        return file_id, None, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"


def read_ids(ids: list[str], workers: int, desc: str) -> list[tuple[str, object]]:
    root = music21_corpus_dir()
    items = [(i, str(root / i)) for i in ids]
    songs = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for file_id, song, reason in tqdm(pool.map(_read, items, chunksize=2), total=len(items),
                                          desc=desc, unit="file"):
            if song is None:
                print(f"skipped {file_id}: {reason}", file=sys.stderr)
            else:
                songs.append((file_id, song))
    return songs


def sample(ids: list[str], n: int, seed: int) -> list[str]:
    if n <= 0 or n >= len(ids):
        return ids
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(ids, n, replace=False).tolist())


def baseline_table(aggregates: dict[str, dict], margin: float) -> tuple[str, list[str]]:
    """One row per metric: reference mean, each comparison's generated mean and OA, and
    whether the ceiling separates from each floor."""
    ceiling = aggregates["ceiling"]
    rows = [
        "| metric | train (ref) | test: mean, OA | shuffled: mean, OA | random pitches: mean, OA "
        "| vs shuffled | vs random |",
        "|---|---:|---:|---:|---:|:-:|:-:|",
    ]
    not_separating = []
    for name, c in ceiling.items():
        if not c["reference_n"]:
            continue
        cells, oas = [], {}
        for label in ("ceiling", "shuffled", "random_pitches"):
            a = aggregates[label][name]
            oas[label] = a["oa"]
            cells.append(f"{_f(a['generated_mean'])}, {_f(a['oa'], 2)}")
        floors = [f for f in ("shuffled", "random_pitches")
                  if not (oas["ceiling"] - oas[f] >= margin)]
        marks = ["no" if f in floors else "yes" for f in ("shuffled", "random_pitches")]
        if floors:
            not_separating.append(f"{name} ({', '.join(floors)})")
        rows.append(f"| {name} | {_f(c['reference_mean'])} | " + " | ".join(cells + marks)
                    + " |")
    return "\n".join(rows), not_separating


def _f(x, digits=3):
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/baselines"))
    parser.add_argument("--n-train", type=int, default=300,
                        help="train songs in the reference, seeded sample (0: all)")
    parser.add_argument("--n-test", type=int, default=0, help="test songs (0: all)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin", type=float, default=0.05,
                        help="OA by which the ceiling must beat each floor")
    args = parser.parse_args(argv)
    workers = args.workers or 2
    start = time.perf_counter()

    test_ids = sample(read_split("test"), args.n_test, args.seed)
    train_ids = sample(read_split("train"), args.n_train, args.seed)
    test = read_ids(test_ids, workers, "reading test")
    train = read_ids(train_ids, workers, "reading train")
    parsed = time.perf_counter()

    rng = np.random.default_rng(args.seed)
    sets = {
        "ceiling": test,
        "shuffled": [(i, shuffle_bars(s, rng)) for i, s in test],
        "random_pitches": [(i, random_pitches(s, rng)) for i, s in test],
    }
    # Every test song is scored against the plan of the real song as its given plan, as a
    # generated song is against the plan it was made from: the ceiling follows its plan
    # perfectly (form adherence and chord agreement are 1 by construction), the floors do not.
    # The train reference too: its songs follow their own plans, which is what a generator
    # should reach.
    plans = [analyze(s) for _, s in tqdm(test, desc="analyzing test", unit="song")]
    train_plans = [analyze(s) for _, s in tqdm(train, desc="analyzing train", unit="song")]
    reference = score_songs(train, "music21 train", "train", workers, plans=train_plans)
    aggregates, seconds = {}, {}
    for label, songs in sets.items():
        t = time.perf_counter()
        scored = score_songs(songs, f"music21 test ({label})", "test", workers, plans=plans)
        seconds[label] = time.perf_counter() - t
        result = write_evaluation(scored, reference, args.out / label, seconds[label],
                                  title=f"baseline: {label} vs train")
        aggregates[label] = result["aggregate"]

    table, not_separating = baseline_table(aggregates, args.margin)
    total = time.perf_counter() - start
    text = "\n".join([
        "# Baselines on the embedded corpus",
        "",
        f"- reference: {len(train)} train songs; generated: {len(test)} test songs, as they "
        "are (ceiling), with bars shuffled, with random pitches (floors)",
        f"- reading {parsed - start:.0f} s; scoring {len(train)} reference songs and "
        f"3 x {len(test)} songs {total - (parsed - start):.0f} s; {workers} workers",
        f"- a metric separates when the ceiling's OA beats each floor's by >= {args.margin}",
        "",
        table,
        "",
        "Each floor breaks one thing: shuffled bars keep every bar's notes (so pitch and "
        "per-bar rhythm statistics cannot tell it from real music) and break the order; random "
        "pitches keep the rhythm and break harmony and melody.",
        "",
        "Metrics that do not separate the ceiling from a floor: "
        + ("; ".join(not_separating) if not_separating else "none") + ".",
        "",
    ])
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "baselines.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
