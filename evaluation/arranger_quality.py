"""Arranger quality against the held-out test split, at several step counts, with `evaluate`.

    .venv/bin/python evaluation/arranger_quality.py [--n 40] [--bars 32] [--steps 10 20 50]
        [--prepared data/music21] [--work out/arranger_quality]
        [--out evaluation/results/arranger_quality.md] [--harmony 2]

Sets, all scored with `structdiff.metrics.evaluate` (MIDI files with `.plan.json` sidecars, so
every song is measured against the plan it was made from):

- real: `--n` songs of the test split of `--prepared` (a seeded draw), cut to their first
  `--bars` bars, each with its analyzed plan;
- arranged S: the same songs' plans (bars, meters, key, chords, sections), style and playing
  roles, arranged by the shipped arranger at S DDIM steps (seed i for song i). What the
  arranger adds to a plan, compared note for note with what the composer wrote;
- generated S: whole new songs from the shipped planner and arranger (`structdiff generate`'s
  pipeline: 4/4, `--bars` bars or `--form`, the style and key of song i, the four SATB
  roles), S steps;
- both with `--harmony` (default 2, as `structdiff generate`: the sampler leaning toward the
  plan's chords), and again at 20 steps with harmony 0, the model alone.

The reference of every comparison is the real set. Reported: the chord-tone ratio (notes
against their plan's chords; real songs against their analyzed plan), the same-label /
different-label bar similarity ratio (`ils_ratio`, with each song's own plan labels), and the
overlapping area (OA) of the distribution of each MusPy metric with the real one. Seconds per
song are the mean arranging time on this machine's CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from structdiff.analysis.schema import analysis_dict
from structdiff.data.midi import write_midi
from structdiff.data.prepare import load_prepared
from structdiff.data.song import Song, crop_bars
from structdiff.metrics.evaluate import evaluate
from structdiff.metrics.report import write_atomic
from structdiff.pipeline.arrange import arrange, load_arranger
from structdiff.pipeline.generate import Options, new_song
from structdiff.pipeline.plan import load_planner

MUSPY = ("pitch_range", "n_pitches_used", "n_pitch_classes_used", "polyphony", "polyphony_rate",
         "pitch_in_scale_rate", "scale_consistency", "pitch_entropy", "pitch_class_entropy",
         "empty_beat_rate", "groove_consistency")
STRUCTURE = ("chord_tone_ratio", "ils_ratio", "si_short", "si_mid", "dissonance_rate",
             "voice_crossing_rate", "onset_synchrony")


def write_song(song: Song, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_midi(song, folder / f"{name}.mid")
    write_atomic(folder / f"{name}.plan.json", json.dumps(analysis_dict(song, song.plan)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--prepared", default="data/music21")
    parser.add_argument("--work", type=Path, default=Path("out/arranger_quality"))
    parser.add_argument("--out", type=Path, default=Path("evaluation/results/arranger_quality.md"))
    parser.add_argument("--arranger", type=Path, default=None)
    parser.add_argument("--form", default=None,
                        help='the form of the generated songs (e.g. "A8 B8 A8 C8"; default: '
                        "the planner's)")
    parser.add_argument("--harmony", type=float, default=2.0,
                        help="--harmony of every set (default 2, generate's); the sets are "
                        "also made at 20 steps with harmony 0, the model alone")
    args = parser.parse_args()

    arranger = load_arranger(args.arranger)
    planner = load_planner()
    songs = [s for s in load_prepared(args.prepared, "test")
             if s.plan is not None and any(r in arranger.roles for r in s.roles)]
    rng = np.random.default_rng(0)
    picks = sorted(rng.choice(len(songs), min(args.n, len(songs)), replace=False).tolist())
    real = [crop_bars(songs[i], args.bars) for i in picks]
    for i, song in enumerate(real):
        write_song(song, args.work / "real", f"song{i:03d}")

    rows, times = {}, {}
    runs = [(steps, args.harmony) for steps in args.steps] + ([(20, 0.0)] if args.harmony else [])
    for steps, harmony in runs:
        for kind in ("arranged", "generated"):
            tag = f"{kind}{steps}" + ("" if harmony == args.harmony else f"h{harmony:g}")
            folder = args.work / tag
            seconds = []
            for i, song in enumerate(tqdm(real, desc=f"{kind} at {steps} steps", unit="song")):
                style = song.style if song.style in arranger.styles else None
                started = time.perf_counter()
                if kind == "arranged":
                    roles = [r for r in song.roles if r in arranger.roles]
                    empty = replace(song, tracks=[])
                    notes = arrange(arranger, empty, song.plan, roles, style=style, seed=i,
                                    steps=steps, harmony=harmony)
                    tracks = [t for t in song.tracks if t.role in notes]
                    out = replace(song, tracks=[replace(t, notes=notes[t.role]) for t in tracks])
                else:
                    key = song.plan.key.name if song.plan.key else None
                    opts = Options(style=style, seed=i, steps=steps, harmony=harmony)
                    out = new_song(planner, arranger, opts, n_bars=None if args.form else args.bars,
                                   form=args.form, key=key)
                seconds.append(time.perf_counter() - started)
                write_song(out, folder, f"song{i:03d}")
            times[tag] = float(np.mean(seconds))
            result = evaluate(folder, args.work / "real", args.work / f"eval_{tag}",
                              progress=False, title=tag)
            rows[tag] = result["aggregate"]

    columns = list(rows)
    lines = [
        "# Arranger quality against the test split",
        "",
        f"`.venv/bin/python evaluation/arranger_quality.py --n {args.n} --bars {args.bars} "
        f"--steps {' '.join(map(str, args.steps))} --harmony {args.harmony:g}"
        + (f' --form "{args.form}"' if args.form else "")
        + f"`: {len(real)} test songs cut to {args.bars} "
        f"bars. Arranged: their plans arranged by the shipped arranger; generated: new "
        f"songs from the planner and arranger. DDIM, torch threads: {torch.get_num_threads()}.",
        "",
        "Means (real | each set), then for MusPy metrics the overlapping area (OA) with the "
        "real distribution.",
        "",
        f"Columns: set and steps, all with `--harmony {args.harmony:g}` but `h0`: the model "
        "alone.",
        "",
        "| metric | real | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    first = rows[columns[0]]
    for name in STRUCTURE + MUSPY:
        if name not in first:
            continue
        cells = []
        for col in columns:
            c = rows[col].get(name, {})
            mean = c.get("generated_mean", float("nan"))
            oa = c.get("oa", float("nan"))
            cells.append(f"{mean:.3f}" + (f" (OA {oa:.2f})" if name in MUSPY else ""))
        lines.append(f"| {name} | {first[name].get('reference_mean', float('nan')):.3f} | "
                     + " | ".join(cells) + " |")
    lines.append("| seconds per song | – | " + " | ".join(f"{times[c]:.2f}" for c in columns)
                 + " |")
    lines.append("")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
