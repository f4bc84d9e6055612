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
    parser.add_argument("--only-qualities", action="store_true",
                        help="fit `degree_qualities` alone (no root-pair table)")
    parser.add_argument("--by-mode", action="store_true",
                        help="one table per mode (major, minor), each fitted to that mode's "
                        "songs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--folder", type=Path, help="write a planner folder with the best "
                        "round's table here")
    args = parser.parse_args()
    args.qualities = args.qualities or args.only_qualities
    source = args.planner or planner_for_style(SHIPPED_DIR, args.style)
    train = [s for s in load_prepared(args.prepared, "train", False)
             if s.style == args.style and s.plan is not None]
    if not train:
        parser.error(f"no training songs of style {args.style} with plans in {args.prepared}")
    modes = ("major", "minor") if args.by_mode else (None,)

    def of_mode(mode):  # the songs (or plans) of a mode; all of them when not by mode
        return lambda key: mode is None or key.mode == mode

    targets = {}
    for mode in modes:
        counts, chords = pair_counts(slot_chords(encode_song_plan(s).x, PlanGrid.from_song(s))
                                     for s in train if of_mode(mode)(s.plan.key))
        targets[mode] = (shares(counts), shares(chords[:, :N_QUALITY]))
        print(f"{mode or 'all'}: {int(counts.sum())} slot pairs; root changes "
              f"{1 - np.trace(counts) / counts.sum():.3f}")
    planner = load_planner(source)
    per_style = planner.meta.setdefault("sampling", {}).setdefault("styles", {})
    settings = per_style.setdefault(args.style, {})
    tables = {m: np.zeros((12, 12)) for m in modes}
    qualities = {m: np.zeros((12, len(QUALITIES))) for m in modes}  # N (no chord) keeps 0

    def as_json(t: dict):
        rounded = {m: v.round(3).tolist() for m, v in t.items()}
        return rounded if args.by_mode else rounded[None]

    rounds = []
    for r in range(args.rounds + 1):
        if not args.only_qualities:
            settings["progression_lean"] = as_json(tables)
        if args.qualities:
            settings["degree_qualities"] = as_json(qualities)
        plans = []
        for i in tqdm(range(args.plans), desc=f"round {r}", leave=False):
            plan, song = generate_plan(planner, args.bars, style=args.style,
                                       seed=args.first_seed + i)
            grid = PlanGrid.from_song(song)
            plans.append((plan.key, slot_chords(encode_plan(plan, grid).x, grid)))
        row = {"round": r, "tv": 0.0, "tv_chords": 0.0, "table": as_json(tables),
               **({"qualities": as_json(qualities)} if args.qualities else {})}
        updates = []
        for mode in modes:
            seqs = [seq for key, seq in plans if of_mode(mode)(key)]
            if not seqs:
                continue
            counts, chords = pair_counts(seqs)
            got, got_q = shares(counts), shares(chords[:, :N_QUALITY])
            target, target_q = targets[mode]
            weight = len(seqs) / len(plans)
            row["tv"] += weight * 0.5 * float(np.abs(got - target).sum())
            row["tv_chords"] += weight * 0.5 * float(np.abs(got_q - target_q).sum())
            updates.append((mode, np.log(target / got), np.log(target_q / got_q)))
        rounds.append(row)
        print(f"round {r}: total variation of root pairs {row['tv']:.3f}, of (root, quality) "
              f"{row['tv_chords']:.3f}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rounds": rounds}, indent=1))
        if r < args.rounds:
            for mode, step, step_q in updates:
                tables[mode] = np.clip(tables[mode] + args.rate * step, -args.clip, args.clip)
                if args.qualities:
                    qualities[mode][:, :N_QUALITY] = np.clip(
                        qualities[mode][:, :N_QUALITY] + args.rate * step_q,
                        -args.clip, args.clip)
    best = min(rounds, key=lambda x: x["tv"] + (x["tv_chords"] if args.qualities else 0))
    print(f"best: round {best['round']} (total variation {best['tv']:.3f}, "
          f"{best['tv_chords']:.3f})")
    if args.folder:
        args.folder.mkdir(parents=True, exist_ok=True)
        for f in Path(source).iterdir():
            if f.name in ("planner.safetensors", "forms.json"):
                shutil.copy(f, args.folder / f.name)
        forms = Path(SHIPPED_DIR) / "forms.json"
        if forms.exists() and not (args.folder / "forms.json").exists():
            shutil.copy(forms, args.folder / "forms.json")
        meta = json.loads((Path(source) / "planner.json").read_text())
        meta.setdefault("sampling", {}).setdefault("styles", {}).setdefault(
            args.style, {})["progression_lean"] = best["table"]
        if args.only_qualities:
            del meta["sampling"]["styles"][args.style]["progression_lean"]
        if args.qualities:
            meta["sampling"]["styles"][args.style]["degree_qualities"] = best["qualities"]
        (args.folder / "planner.json").write_text(json.dumps(meta, indent=1))
        print(f"wrote {args.folder}")


if __name__ == "__main__":
    main()
