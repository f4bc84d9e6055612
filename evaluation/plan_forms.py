"""Forms of planned songs against real ones, per style (issue 12, point 4).

    .venv/bin/python evaluation/plan_forms.py --planner structdiff/models/weights/band \
        --prepared data/pop909 --prepared data/game [--n 40] [--out FILE.md]
    .venv/bin/python evaluation/plan_forms.py --planner structdiff/models/weights \
        --prepared data/music21 --out evaluation/results/plan_forms_classical.md

For every style that the planner knows and the prepared corpora's test split has: the real
forms (the test songs' plans: human forms for POP909, analyzed ones elsewhere) and `--n`
plans written without `--form`, each as long as a real song of the style (cycling through them,
capped at the planner's longest), plan i with seed i, twice: with the planner's form model
(`forms.json`: a form is drawn first, then the planner writes under it) and with the planner
alone (its own labels, as it wrote them before the form model). A third row draws 10 forms
per real song from the form model alone (no planner): the same distribution as the first row
(the planner keeps a given form), measured with less sampling noise than 40 forms allow. A
row "form model alone, 40 forms, 50 draws" gives the sampling noise of a set of 40: the
median TV of 50 sets of 40 forms (each as long as the first rows' plans) and, in brackets, its
10th and 90th percentiles; the planner keeps a drawn form exactly, so the first row is one such
draw. A last row holds the training split's real forms against the test split's: what the form
model was fit on. Where it misses a bar itself (few test songs, or train and test songs of a style
that differ, as a few string quartets do), no model fit on it can be judged by that bar.

Per set, `structdiff.metrics.structure.form_statistics`: the total-variation distance of the
section lengths to the real ones, the share of bars under a repeated label, distinct labels per
song, the share with an intro and with an outro, sections per song. The bars of the issue:
TV <= 0.15, repeated within 0.1 and labels within 1.5 of the real means, an intro and an outro
in at least half the songs where at least half the real ones have them (and in fewer than half
where fewer do). Five drawn forms beside five real ones per style follow the table.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from structdiff.data.prepare import load_prepared
from structdiff.metrics.plan_metrics import total_variation
from structdiff.metrics.report import publish
from structdiff.metrics.structure import form_statistics
from structdiff.pipeline.forms import form_text
from structdiff.pipeline.plan import generate_plan, load_planner

SHOWN = 5


def real_forms(prepared: list[Path], split: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for folder in prepared:
        for song in load_prepared(folder, split):
            if song.style and song.plan is not None and song.plan.sections:
                out.setdefault(song.style, []).append(song.plan.sections)
    return out


def checks(real: dict, gen: dict) -> list[str]:
    """The issue's bars that `gen` misses against `real` (empty: all met)."""
    missed = []
    tv = total_variation(real["lengths"], gen["lengths"])
    if tv > 0.15:
        missed.append(f"TV {tv:.2f}")
    if abs(gen["repeated"] - real["repeated"]) > 0.1:
        missed.append("repeated")
    if abs(gen["labels"] - real["labels"]) > 1.5:
        missed.append("labels")
    for part in ("intro", "outro"):
        if (real[part] >= 0.5) != (gen[part] >= 0.5):
            missed.append(part)
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planner", type=Path, required=True)
    parser.add_argument("--prepared", type=Path, action="append", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    bundle = load_planner(args.planner)
    if bundle.forms is None:
        raise SystemExit(f"{args.planner} has no forms.json: run `structdiff train forms`")
    alone = replace(bundle, forms=None)
    reals = real_forms(args.prepared, args.split)
    trains = real_forms(args.prepared, "train")
    styles = [s for s in bundle.styles if s in reals]
    cap = bundle.model.cfg.max_bars
    lines = [
        f"# Forms of planned songs against real ones ({args.split} split)",
        "",
        f"`.venv/bin/python evaluation/plan_forms.py --planner {args.planner} "
        + " ".join(f"--prepared {p}" for p in args.prepared) + f" --n {args.n}`",
        "",
        "| style | forms | songs | TV of section lengths | repeated bars | labels | intro | "
        "outro | sections | bars missed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    shown = []
    for style in styles:
        real = reals[style]
        lengths = [min(sum(s.n_bars for s in f), cap) for f in real]
        rs = form_statistics(real)
        sets = {}
        for name, b in (("form model + planner", bundle), ("planner alone", alone)):
            forms = []
            for i in tqdm(range(args.n), desc=f"{style}: {name}", unit="plan"):
                plan, _ = generate_plan(b, n_bars=lengths[i % len(lengths)], style=style,
                                        seed=i, steps=args.steps)
                forms.append(plan.sections)
            sets[name] = forms
        # the form model alone, 10 forms per real song: its distribution with less noise
        rng = np.random.default_rng(0)
        sets["form model alone, 10 per real song"] = [
            bundle.forms.sample(n, style, rng) for n in lengths for _ in range(10)]
        tvs = []
        for rep in range(50):
            draw = np.random.default_rng([rep, 2])
            drawn = [bundle.forms.sample(lengths[i % len(lengths)], style, draw)
                     for i in range(args.n)]
            tvs.append(total_variation(rs["lengths"], form_statistics(drawn)["lengths"]))
        low, mid, high = np.percentile(tvs, [10, 50, 90])
        noise_row = (f"| {style} | form model alone, {args.n} forms, 50 draws | {args.n} x 50 | "
                     f"{mid:.3f} [{low:.3f}, {high:.3f}] | | | | | | "
                     f"{'none' if mid <= 0.15 else f'TV {mid:.2f}'} |")
        if trains.get(style):
            sets["real, training split (what the form model was fit on)"] = trains[style]
        lines.append(f"| {style} | real | {len(real)} | | {rs['repeated']:.2f} | "
                     f"{rs['labels']:.1f} | {rs['intro']:.2f} | {rs['outro']:.2f} | "
                     f"{rs['sections']:.1f} | |")
        for name, forms in sets.items():
            if name.startswith("real, training"):
                lines.append(noise_row)
            gs = form_statistics(forms)
            missed = checks(rs, gs)
            lines.append(
                f"| {style} | {name} | {len(forms)} | "
                f"{total_variation(rs['lengths'], gs['lengths']):.3f} | {gs['repeated']:.2f} | "
                f"{gs['labels']:.1f} | {gs['intro']:.2f} | {gs['outro']:.2f} | "
                f"{gs['sections']:.1f} | {', '.join(missed) or 'none'} |")
        if not trains.get(style):
            lines.append(noise_row)
        shown.append((style, real[:SHOWN], sets["form model + planner"][:SHOWN],
                      sets["planner alone"][:SHOWN]))
    lines += ["", "Bars: TV <= 0.15, repeated within 0.1, labels within 1.5 of real, intro and "
              "outro in at least half the songs where at least half the real ones have them.",
              ""]
    for style, real, drawn, before in shown:
        lines += [f"## {style}", "", "| real | form model + planner | planner alone |",
                  "|---|---|---|"]
        for r, g, b in zip(real, drawn, before):
            lines.append(f"| `{form_text(r)}` | `{form_text(g)}` | `{form_text(b)}` |")
        lines.append("")
    lines.append(f"Real forms per style: {statistics.mean(len(reals[s]) for s in styles):.0f} "
                 f"on average; lengths capped at {cap} bars." if styles else "No style.")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
