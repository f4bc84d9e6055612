"""Fit a planner's progression lean (`sampling.styles.STYLE.progression_lean`, issue 11) to its
training corpus: how many nats a chord slot on root b gets after one on root a (both relative
to the tonic), so that the plans it writes move between scale degrees, and hold them, as
often as the training split's analyzed plans do.

Iterative scaling, as `fit_interval_lean.py` does for the arranger: each round writes `--plans`
plans of `--bars` bars (seeds from `--first-seed`, never the protocol's 0..107), counts the
pairs of consecutive used chord slots' roots (a, b) (slots without a chord left out), and
moves each entry by `--rate` x log(training share / plans' share), both shares smoothed by
half a count per pair, entries within +-`--clip`; with `--qualities` the same for each slot's
(root, quality) (`degree_qualities`: nats for quality q on root r). Prints the total
variation between the two pair distributions and the share of slots that change root, per
round; writes every round's
table to `--out` (JSON), and with `--folder DIR` a planner folder (the planner's files, the
set's form model, the best round's table in its meta) that `--planner DIR` of
`plan_chords.py`, `musicianship_arrangers.py` and `generate` take.

    .venv/bin/python evaluation/fit_progression_lean.py --rounds 6 --out out/prog.json \\
        --folder out/exp/planner_prog
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from structdiff.analysis.chords import QUALITIES
from structdiff.data.plan_tensor import (
    MAX_SLOTS,
    SLOT_FEATURES,
    SLOT_OFFSET,
    PlanGrid,
    encode_plan,
    encode_song_plan,
)
from structdiff.data.prepare import load_prepared
from structdiff.models.bundle import SHIPPED_DIR, planner_for_style
from structdiff.pipeline.plan import generate_plan, load_planner

N_QUALITY = QUALITIES.index("N")


def slot_chords(x: np.ndarray, grid: PlanGrid) -> list[tuple[int, int] | None]:
    """Each used slot's (root relative to the tonic, quality) in time order; None for a slot
    with no chord."""
    bar_idx, slot_idx, _ = grid.flat_slots()
    slots = x[:, SLOT_OFFSET:].reshape(len(x), MAX_SLOTS, SLOT_FEATURES)[bar_idx, slot_idx]
    roots = slots[:, :12].argmax(1)
    quality = slots[:, 12 : 12 + len(QUALITIES)].argmax(1)
    return [None if q == N_QUALITY else (int(r), int(q)) for r, q in zip(roots, quality)]


def pair_counts(sequences) -> tuple[np.ndarray, np.ndarray]:
    """Counts `[12, 12]` of consecutive (a, b) roots in the sequences of `slot_chords` (pairs
    with a slot without a chord left out), and `[12, N_QUALITIES]` of (root, quality)."""
    pairs, chords = np.zeros((12, 12)), np.zeros((12, len(QUALITIES)))
    for seq in sequences:
        for c in seq:
            if c is not None:
                chords[c] += 1
        for a, b in zip(seq, seq[1:]):
            if a is not None and b is not None:
                pairs[a[0], b[0]] += 1
    return pairs, chords


def shares(counts: np.ndarray, smooth: float = 0.5) -> np.ndarray:
    c = counts + smooth
    return c / c.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planner", type=Path, help="default: the one `generate --style "
                        "chorale` uses")
    parser.add_argument("--style", default="chorale")
    parser.add_argument("--prepared", default="data/music21")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--plans", type=int, default=64)
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--first-seed", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=0.8)
    parser.add_argument("--clip", type=float, default=3.0)
    parser.add_argument("--qualities", action="store_true",
                        help="fit the qualities on each root too (`degree_qualities`)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--folder", type=Path, help="write a planner folder with the best "
                        "round's table here")
    args = parser.parse_args()
    source = args.planner or planner_for_style(SHIPPED_DIR, args.style)
    train = [s for s in load_prepared(args.prepared, "train", False)
             if s.style == args.style and s.plan is not None]
    if not train:
        parser.error(f"no training songs of style {args.style} with plans in {args.prepared}")
    target_counts, target_chords = pair_counts(
        slot_chords(encode_song_plan(s).x, PlanGrid.from_song(s)) for s in train)
    target, target_q = shares(target_counts), shares(target_chords[:, :N_QUALITY])
    print(f"{len(train)} training songs, {int(target_counts.sum())} slot pairs; "
          f"root changes {1 - np.trace(target_counts) / target_counts.sum():.3f}")
    planner = load_planner(source)
    per_style = planner.meta.setdefault("sampling", {}).setdefault("styles", {})
    settings = per_style.setdefault(args.style, {})
    table = np.zeros((12, 12))
    qualities = np.zeros((12, len(QUALITIES)))  # N (no chord) keeps 0
    rounds = []
    for r in range(args.rounds + 1):
        settings["progression_lean"] = table.round(3).tolist()
        if args.qualities:
            settings["degree_qualities"] = qualities.round(3).tolist()
        seqs = []
        for i in tqdm(range(args.plans), desc=f"round {r}", leave=False):
            plan, song = generate_plan(planner, args.bars, style=args.style,
                                       seed=args.first_seed + i)
            grid = PlanGrid.from_song(song)
            seqs.append(slot_chords(encode_plan(plan, grid).x, grid))
        counts, chords = pair_counts(seqs)
        got, got_q = shares(counts), shares(chords[:, :N_QUALITY])
        tv = 0.5 * float(np.abs(got - target).sum())
        tv_q = 0.5 * float(np.abs(got_q - target_q).sum())
        change = 1 - np.trace(counts) / counts.sum()
        rounds.append({"round": r, "tv": tv, "tv_chords": tv_q, "root_changes": float(change),
                       "table": table.round(3).tolist(),
                       **({"qualities": qualities.round(3).tolist()} if args.qualities else {})})
        print(f"round {r}: total variation of root pairs {tv:.3f}, of (root, quality) "
              f"{tv_q:.3f}; root changes {change:.3f}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"target_root_changes": float(
            1 - np.trace(target_counts) / target_counts.sum()), "rounds": rounds}, indent=1))
        if r < args.rounds:
            table = np.clip(table + args.rate * np.log(target / got), -args.clip, args.clip)
            if args.qualities:
                qualities[:, :N_QUALITY] = np.clip(
                    qualities[:, :N_QUALITY] + args.rate * np.log(target_q / got_q),
                    -args.clip, args.clip)
    best = min(rounds, key=lambda x: x["tv"] + (x["tv_chords"] if args.qualities else 0))
    print(f"best: round {best['round']} (total variation {best['tv']:.3f}, "
          f"{best['tv_chords']:.3f})")
    if args.folder:
        args.folder.mkdir(parents=True, exist_ok=True)
        for f in Path(source).iterdir():
            if f.is_file() and f.name != "planner.json":
                shutil.copy(f, args.folder / f.name)
        forms = Path(SHIPPED_DIR) / "forms.json"
        if forms.exists() and not (args.folder / "forms.json").exists():
            shutil.copy(forms, args.folder / "forms.json")
        meta = json.loads((Path(source) / "planner.json").read_text())
        meta.setdefault("sampling", {}).setdefault("styles", {}).setdefault(
            args.style, {})["progression_lean"] = best["table"]
        if args.qualities:
            meta["sampling"]["styles"][args.style]["degree_qualities"] = best["qualities"]
        (args.folder / "planner.json").write_text(json.dumps(meta, indent=1))
        print(f"wrote {args.folder}")


if __name__ == "__main__":
    main()
