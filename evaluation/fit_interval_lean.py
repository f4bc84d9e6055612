"""Fit a masked arranger's interval lean (bundle key `interval_lean`) to its training corpus
(issue 11): how many nats each voice's melodic intervals get so that the voices of planned
songs move by step, third, leap or repeat as often as the training split's do.

The lean (`structdiff.pipeline.voice_leading.interval_bias`) multiplies the arranger's
sampled lines by exp(table[interval]) per interval. Starting from the bundle's own table (or
none), each round writes `--songs` planned songs (`generate --style chorale`, seeds from
`--first-seed`, never the protocol's 0..71), counts each voice's intervals (voices read from
the top, as `structdiff.metrics.musicianship` does), and moves every entry by `--rate` times
the log ratio of the training split's share of that interval to the songs' (both shares
smoothed alike, `shares`; entries kept within +-`--clip`). Iterative scaling: each round
brings the shares nearer, the network still choosing every note. Only the training split is
read (the test split judges the result, `evaluation/musicianship_arrangers.py`).

    .venv/bin/python evaluation/fit_interval_lean.py --rounds 3 \\
        --out out/exp/interval_lean.json

writes each round's table, shares and distance (total variation, per voice) to `--out`;
`--write` puts the last table in the arranger's `arranger.json` (`interval_lean`).
"""

from __future__ import annotations

import argparse
import json
import os
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from structdiff.data.io import read_song
from structdiff.models.bundle import SHIPPED_DIR, arranger_for_style, planner_for_style
from structdiff.pipeline.voice_leading import INTERVALS

N_BINS = 2 * INTERVALS + 2
VOICES = ("soprano", "alto", "tenor", "bass")


def voices(song) -> list:
    """The song's four voices from the top: the tracks named (or given the role of) soprano,
    alto, tenor and bass where all four are (a chorale's instruments doubling them, its horns
    and timpani, are left out), else its pitched parts by mean pitch if there are four; none
    otherwise."""
    pitched = [t for t in song.tracks if not t.is_drum and t.n_notes]
    for key in (lambda t: (t.name or "").strip().lower(), lambda t: t.role):
        named = {key(t): t for t in reversed(pitched)}
        if all(v in named for v in VOICES):
            return [named[v] for v in VOICES]
    if len(pitched) == len(VOICES):
        return sorted(pitched, key=lambda t: -float(t.notes[:, 2].mean()))
    return []


def voice_intervals(song) -> list[np.ndarray]:
    """The melodic intervals of the song's `voices` as `interval_bias` table indices."""
    parts = voices(song)
    out = []
    for t in parts:
        n = t.notes[np.argsort(t.notes[:, 0], kind="stable")]
        iv = np.diff(n[:, 2].astype(int))
        out.append(np.where(np.abs(iv) > INTERVALS, N_BINS - 1, iv + INTERVALS))
    return out


def counts(songs) -> np.ndarray:
    """Interval counts `[4, N_BINS]` per voice, from the top."""
    c = np.zeros((len(VOICES), N_BINS))
    for song in songs:
        for k, idx in enumerate(voice_intervals(song)):
            c[k] += np.bincount(idx, minlength=N_BINS)
    return c


def shares(c: np.ndarray, prior: float = 3.0 / 3000) -> np.ndarray:
    """Each voice's share of each interval, with `prior` of the mass spread evenly over the
    bins (the same for every set whatever its size): an interval rare in both sets gets a
    ratio near 1, not one made of a count or two."""
    p = c / np.maximum(c.sum(-1, keepdims=True), 1)
    return (p + prior) / (1 + N_BINS * prior)


def _write_songs(job):
    """Worker: planned chorales for `seeds` with the interval lean `table` (one thread)."""
    import torch

    from structdiff.pipeline.arrange import load_arranger
    from structdiff.pipeline.generate import Options, new_song
    from structdiff.pipeline.plan import load_planner

    torch.set_num_threads(1)
    arranger_dir, table, seeds, bars = job
    planner = load_planner(planner_for_style(SHIPPED_DIR, "chorale"))
    arranger = load_arranger(arranger_dir)
    arranger.meta["interval_lean"] = table
    harmony = float(arranger.meta.get("default_harmony", 2.0))  # what `generate` uses
    return counts([new_song(planner, arranger, Options(style="chorale", seed=s, harmony=harmony),
                            n_bars=bars)
                   for s in seeds])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arranger", type=Path,
                        default=arranger_for_style(SHIPPED_DIR, "chorale"))
    parser.add_argument("--split", type=Path, default=Path("datasets/music21/train.txt"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--songs", type=int, default=24)
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.8)
    parser.add_argument("--clip", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--start", default="zero",
                        help="the table to start from: `zero` (none, default), `bundle` (the "
                        "arranger's `interval_lean`) or a JSON file of one (role -> entries)")
    parser.add_argument("--write", action="store_true",
                        help="put the last round's table in the arranger's arranger.json")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.first_seed < 72:
        parser.error("--first-seed must be >= 72: seeds 0..71 are the protocol's songs")

    names = [n.strip() for n in args.split.read_text().splitlines()
             if n.strip().startswith("bach/")]
    target = np.zeros((len(VOICES), N_BINS))
    skipped = []
    for name in tqdm(names, desc="reading the training chorales", unit="song"):
        try:
            song = read_song(f"music21:{name}")
        except Exception as error:  # a corpus run skips a bad file and says so
            skipped.append(f"{name} ({error})")
            continue
        if not voices(song):
            skipped.append(f"{name} (no four voices)")
            continue
        target += counts([song])
    if skipped:
        print(f"skipped {len(skipped)} of {len(names)}: " + "; ".join(skipped))
    meta = json.loads((args.arranger / "arranger.json").read_text())
    start = (None if args.start == "zero" else meta.get("interval_lean")
             if args.start == "bundle" else json.loads(Path(args.start).read_text()))
    table = np.zeros((len(VOICES), N_BINS))
    for k, v in enumerate(VOICES):
        if start and v in start:
            table[k] = start[v]
    rounds = []
    seeds = list(range(args.first_seed, args.first_seed + args.songs))
    chunks = [seeds[i:: args.workers] for i in range(args.workers)]
    with get_context("spawn").Pool(args.workers) as pool:
        for r in range(args.rounds + 1):
            lean = {v: table[k].round(3).tolist() for k, v in enumerate(VOICES)}
            got = sum(tqdm(pool.imap(_write_songs, [(args.arranger, lean, c, args.bars)
                                                    for c in chunks]),
                           total=len(chunks), desc=f"round {r}", unit="batch"))
            ratio = np.log(shares(target)) - np.log(shares(got))
            tv = 0.5 * np.abs(shares(target) - shares(got)).sum(-1)
            rounds.append({"table": lean, "shares": shares(got).round(4).tolist(),
                           "total_variation": tv.round(4).tolist()})
            print(f"round {r}: total variation per voice (S A T B) "
                  + " ".join(f"{x:.3f}" for x in tv), flush=True)
            if r < args.rounds:
                table = np.clip(table + args.rate * ratio, -args.clip, args.clip)
    best = min(rounds, key=lambda x: sum(x["total_variation"]))
    result = {"target": shares(target).round(4).tolist(), "skipped": skipped,
              "rounds": rounds, "best": best,
              "args": {k: str(v) for k, v in vars(args).items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    if args.write:
        meta["interval_lean"] = best["table"]
        path = args.arranger / "arranger.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, path)
        print(f"wrote the interval lean of round {rounds.index(best)} to {path}")


if __name__ == "__main__":
    main()
