"""How Bach-like are a planner's chorale plans? (issue 11, session 11)

Compares the analyzed plans of the test-split Bach chorales with a planner's chorale plans
(`--n` plans of `--bars` bars, seeds 0..n-1) on what separated them in session 11: the share of
the time under seventh chords and the root motion down a fifth (`structdiff.metrics.
plan_metrics`' ``chord_quality`` and ``root_motion`` histograms, pooled), the share of chords
that are inverted, the share of one-bar phrases, and the log-likelihood of the chord changes
under a bigram model of the training chorales' analyzed chords (root relative to the tonic,
quality, inverted or not; add-0.1 smoothing), in nats per change; and (session 14) the share
of chord changes that keep the bass's pitch class (a repeated bass note under the arranger)
and of chords whose bass is not one of their tones. Needs the chorales prepared
(`structdiff prepare music21 --out data/music21`).

    .venv/bin/python evaluation/plan_chords.py [--planner DIR] [--guidance 3] [--sampler ddpm]
        [--temperature 0.8]

Session 11 (`evaluation/results/musicianship_arrangers.md`): Bach -2.98, the shipped planner
-4.05.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from structdiff.analysis.chords import CHORD_TONES, QUALITIES, QUALITY_INTERVALS
from structdiff.data.prepare import load_prepared
from structdiff.metrics.plan_metrics import plan_histograms, pool_histograms, song_grid
from structdiff.models.bundle import SHIPPED_DIR, planner_for_style
from structdiff.pipeline.arrange import repeat_chords
from structdiff.pipeline.plan import generate_plan, load_planner

sys.path.insert(0, str(Path(__file__).parent))
from musicianship import chorale_sets  # noqa: E402

SEVENTHS = [QUALITIES.index(q) for q, iv in QUALITY_INTERVALS.items() if len(iv) >= 4]
DOWN_A_FIFTH = 5  # root motion up a fourth, in semitones


def changes(song) -> list[tuple]:
    """The plan's chords as (root from the tonic, quality, inverted), repeats merged."""
    tonic = song.plan.key.tonic if song.plan.key else 0
    out: list[tuple] = []
    for c in song.plan.chords:
        sym = ((c.root - tonic) % 12, c.quality, c.bass != c.root)
        if not out or out[-1] != sym:
            out.append(sym)
    return out


class Bigram:
    def __init__(self, songs):
        self.pairs, self.firsts = Counter(), Counter()
        for song in songs:
            seq = changes(song)
            for a, b in zip(["^"] + seq, seq):
                self.pairs[(a, b)] += 1
                self.firsts[a] += 1
        self.V = len({b for _, b in self.pairs}) + 1

    def loglik(self, seq) -> float:
        return float(np.mean([np.log((self.pairs[(a, b)] + 0.1) / (self.firsts[a] + 0.1 * self.V))
                              for a, b in zip(["^"] + seq, seq)]))


def stats(songs, bigram: Bigram) -> dict:
    histograms = [plan_histograms(s.plan, **song_grid(s)) for s in songs]
    quality = pool_histograms([h["chord_quality"] for h in histograms])
    motion = pool_histograms([h["root_motion"] for h in histograms])
    phrases = [n for s in songs for n in np.diff([-1] + sorted(s.plan.phrase_ends)).tolist()]
    return {
        "time under seventh chords": float(quality[SEVENTHS].sum()),
        "inverted chords": np.mean([c.bass != c.root for s in songs for c in s.plan.chords]),
        "one-bar phrases": np.mean([n == 1 for n in phrases]) if phrases else float("nan"),
        "root down a fifth": float(motion[DOWN_A_FIFTH]),
        "bigram log-likelihood": np.mean([bigram.loglik(q) for s in songs if (q := changes(s))]),
        "bass kept across a change": np.mean([a.bass == b.bass for s in songs
                                              for a, b in zip(s.plan.chords, s.plan.chords[1:])
                                              if "N" not in (a.quality, b.quality)]),
        "bass outside its chord": np.mean([not CHORD_TONES[QUALITIES.index(c.quality), c.root,
                                                           c.bass]
                                           for s in songs for c in s.plan.chords
                                           if c.quality != "N"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planner", type=Path, help="default: the one `generate --style "
                        "chorale` uses")
    parser.add_argument("--prepared", default="data/music21",
                        help="the prepared corpus with the training chorales")
    parser.add_argument("--n", type=int, default=36)
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance on the style "
                        "(default: the bundle's, else 1)")
    parser.add_argument("--temperature", type=float, help="of the planner's logits "
                        "(default: the bundle's, else 1)")
    args = parser.parse_args()
    train = [s for s in load_prepared(args.prepared, "train", False)
             if s.style == "chorale" and s.plan is not None]
    if not train:
        parser.error(f"no training chorales with plans in {args.prepared}")
    bigram = Bigram(train)
    real, _ = chorale_sets(args.n, args.bars, generate=False)
    planner = load_planner(args.planner or planner_for_style(SHIPPED_DIR, "chorale"))
    planned = []
    for i in range(len(real)):
        plan, song = generate_plan(planner, args.bars, style="chorale", seed=i, steps=args.steps,
                                   sampler=args.sampler, guidance_scale=args.guidance,
                                   temperature=args.temperature)
        song.plan = repeat_chords(song, plan)
        planned.append(song)
    rows = {"Bach (test split, analyzed)": stats(real, bigram), "planned": stats(planned, bigram)}
    names = list(next(iter(rows.values())))
    print("| plans | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, row in rows.items():
        print(f"| {label} | " + " | ".join(f"{row[n]:.3f}" for n in names) + " |")


if __name__ == "__main__":
    main()
