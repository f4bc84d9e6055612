"""Experiment (issue 11, part 2): which arranger and sampler make chorales a classifier can't
tell from Bach's? Each variant writes the same 36 plans' songs (`generate --style chorale`,
seeds 0..35, 32 bars: `evaluation/musicianship.py`'s chorale set) and is judged against the 36
test-split Bach chorales by the classifier two-sample test and by MusPy's metrics (overlapping
area, OA, of the whole-song pitch and rhythm metrics).

    OMP_NUM_THREADS=1 .venv/bin/python evaluation/musicianship_arrangers.py \\
        --variant "gaussian (shipped before)|structdiff/models/weights|20|2|" \\
        --variant "masked, confidence|out/exp/arranger_masked|20|2|confidence" \\
        --out out/exp/musicianship_arrangers.json

A variant is `label|arranger folder|steps|harmony|order|resample|temperature|guidance|plans|
top_p|resample_rate|shape_from|voice_leading|voice_leading_direct|dissonance|extra` (one
string); order, resample (Gibbs rounds), temperature, top_p, resample_rate, shape_from,
voice_leading, voice_leading_direct (1 or 0) and dissonance set a masked arranger's unmasking
(`structdiff.diffusion.masked.sample_masked`), empty for the bundle's own; extra sets any
other bundle key as `key=JSON;key=JSON` (e.g. `lean_keeps_onsets=true`); guidance is the
classifier-free guidance scale on the style (`generate --guidance`, default: the planner's own,
none on the arranger); plans is
`planned` (default: the planner's, 32 bars), `length` (the planner's, as many bars as the test
chorale of the same index), `real` (each test chorale's own analyzed plan, arranged anew in
all four voices: what the arranger alone gives away) or `chords` (each test chorale's own
grid, key, form and phrase ends, its chords written anew by the planner: `infill_chords` over
every bar, with the variant's guidance), `cadences` (the same, but the two beats that end
each phrase at a fermata keep Bach's chords) or `midphrase` (the control: two beats halfway
through each phrase keep Bach's chords instead). Prints
one table row per variant as it goes and writes them all, with every feature's means, to
`--out` (JSON). The verdicts are in `evaluation/results/musicianship_arrangers.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from structdiff.data.midi import write_midi
from structdiff.data.plan_tensor import MAX_SLOTS, PlanGrid
from structdiff.metrics.evaluate import compare, score_songs
from structdiff.metrics.musical import PITCH_METRICS, RHYTHM_METRICS
from structdiff.metrics.musicianship import two_sample_test
from structdiff.models.bundle import SHIPPED_DIR, planner_for_style
from structdiff.pipeline.arrange import load_arranger
from structdiff.pipeline.generate import Options, new_song
from structdiff.pipeline.plan import infill_chords, load_planner

sys.path.insert(0, str(Path(__file__).parent))
from musicianship import chorale_sets, features  # noqa: E402

# the rows of issue 11's table (and its "also" list), in its order
ROWS = ("thin_chords", "bass_steps", "bass_repeats", "seventh_chords", "passing_neighbour",
        "parallel_octaves", "direct_outer", "voice_crossing", "quarters", "eighths")
PLANS = ("", "planned", "length", "real", "chords", "cadences", "midphrase")
ALSO = ("step_motion", "bare_dyads", "shared_pitch", "parallel_fifths", "leap_recovery",
        "silent_gaps")


def within(real: float, generated: float) -> bool:
    """Issue 11's bar for a row: within 25% of real (relative) or 2 points, the larger."""
    return abs(generated - real) <= max(0.25 * abs(real), 0.02)


def table_row(label: str, test: dict, rows_ok: int, oa: float) -> str:
    """One variant's row of the printed table: the classifiers, the rows within the bar,
    MusPy OA, then the generated means of `ROWS` and `ALSO`."""
    lg, tr, means = test["logistic"], test["trees"], test["means"]
    cells = " | ".join(f"{means[r]['generated']:.3f}" for r in ROWS + ALSO)
    return (f"| {label} | {lg['balanced_accuracy']:.2f} [{lg['balanced_accuracy_ci'][0]:.2f}, "
            f"{lg['balanced_accuracy_ci'][1]:.2f}] | {lg['auc']:.2f} | "
            f"{tr['balanced_accuracy']:.2f} | {rows_ok}/{len(ROWS)} | {oa:.3f} | {cells} |")


def muspy_oa(real, generated, bootstraps: int = 200
             ) -> tuple[float, dict[str, float], list[float]]:
    """The mean overlapping area of MusPy's pitch and rhythm metrics, each one's, and a 95%
    interval of the mean from `bootstraps` resamplings of both sets' songs (seeded)."""
    from structdiff.metrics.distances import compare_sets

    names = PITCH_METRICS + RHYTHM_METRICS
    ref = score_songs([(f"r{i}", s) for i, s in enumerate(real)], "real", workers=1,
                      progress=False)
    gen = score_songs([(f"g{i}", s) for i, s in enumerate(generated)], "gen", workers=1,
                      progress=False)
    table = compare(gen, ref)
    each = {n: float(table[n]["oa"]) for n in names
            if n in table and np.isfinite(table[n]["oa"])}
    rng = np.random.default_rng(0)
    g_values = {n: gen.values(n) for n in each}
    r_values = {n: ref.values(n) for n in each}
    means = []
    for _ in range(bootstraps):
        gi = rng.integers(0, len(gen.per_file), len(gen.per_file))
        ri = rng.integers(0, len(ref.per_file), len(ref.per_file))
        oa = [compare_sets(g_values[n][gi], r_values[n][ri])["oa"] for n in each]
        means.append(float(np.nanmean(oa)))
    interval = [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]
    return float(np.mean(list(each.values()))), each, interval


def phrase_slots(song, where: str) -> np.ndarray:
    """Chord slots `[bars, MAX_SLOTS]` of `song`, two beats per phrase: the beat under each
    fermata and the beat before it (`cadences`: the cadence), or the two beats halfway between
    the fermata and the one before (`midphrase`: as many slots, away from the cadences)."""
    grid = PlanGrid.from_song(replace(song, plan=None))
    bar_idx, slot_idx, bounds = grid.flat_slots()
    ends = sorted({int(np.searchsorted(bounds, f - 1, side="right")) - 1
                   for f in song.fermatas if 0 < f <= grid.end})
    chosen: set[int] = set()
    previous = -1
    for k in ends:
        last = k if where == "cadences" else (previous + 1 + k) // 2
        chosen |= {j for j in (last - 1, last) if previous < j <= k}
        previous = k
    keep = np.zeros((grid.n_bars, MAX_SLOTS), dtype=bool)
    for j in chosen:
        keep[bar_idx[j], slot_idx[j]] = True
    return keep


def given_plan(real_song, plans: str, planner, seed: int, steps: int,
               guidance: float | None):
    """The song whose plan a variant arranges: the test chorale's own (`real`), the same with
    its chords written anew by the planner (`chords`; `cadences` or `midphrase`: all but two
    beats per phrase, `phrase_slots`), or None (the planner's own plans)."""
    if plans == "real":
        return replace(real_song, tracks=[])
    if plans in ("chords", "cadences", "midphrase"):
        song = replace(real_song, tracks=[])
        keep = None if plans == "chords" else phrase_slots(real_song, plans)
        return replace(song, plan=infill_chords(planner, song, real_song.plan,
                                                range(song.n_bars), style="chorale",
                                                seed=seed, steps=steps,
                                                guidance_scale=guidance, keep=keep))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True,
                        help="label|arranger folder|steps|harmony|order|resample|temperature|"
                        "guidance|plans|top_p|resample_rate")
    parser.add_argument("--planner", type=Path,
                        help="the planner of the 'planned' variants (default: the one "
                        "`generate --style chorale` uses)")
    parser.add_argument("--n", type=int, default=36)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the planned songs' seeds are FIRST..FIRST+n-1 (default 0): another "
                        "draw of songs, to see how much a row moves with the draw")
    parser.add_argument("--bars", type=int, default=32,
                        help="bars of each generated song (0: as long as `generate` makes them "
                        "without --bars, a length the style's songs have; default 32)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--songs-out", type=Path,
                        help="write each variant's songs as MIDI to SONGS_OUT/<label>/ (for "
                        "evaluation/musicianship_raw.py, the classifier of another make)")
    args = parser.parse_args()
    real, _ = chorale_sets(args.n, args.bars, generate=False)
    fr = features(real)
    planner_dir = args.planner or planner_for_style(SHIPPED_DIR, "chorale")
    planner = load_planner(planner_dir)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for spec in args.variant:
        if spec.count("|") > 15:
            parser.error(f"a variant has at most 16 fields, got {spec.count('|') + 1}: {spec!r}")
        (label, folder, steps, harmony, order, resample, temperature, guidance, plans, top_p,
         resample_rate, shape_from, voice_leading, direct, dissonance, extra) = (
             spec.split("|") + [""] * 16)[:16]
        if plans not in PLANS:
            parser.error(f"plans must be one of {', '.join(PLANS[1:])}, got {plans!r}")
        arranger = load_arranger(folder)
        for key, value in (("order", order), ("resample", resample and int(resample)),
                           ("temperature", temperature and float(temperature)),
                           ("top_p", top_p and float(top_p)),
                           ("resample_rate", resample_rate and float(resample_rate)),
                           ("shape_from", shape_from and int(shape_from)),
                           ("voice_leading", voice_leading and float(voice_leading)),
                           ("voice_leading_direct", direct and bool(int(direct))),
                           ("dissonance", dissonance and float(dissonance))):
            if value != "":
                arranger.meta[key] = value
        for item in filter(None, extra.split(";")):  # any other bundle key: key=JSON value
            key, _, value = item.partition("=")
            arranger.meta[key.strip()] = json.loads(value)
        started = time.perf_counter()
        scale = float(guidance) if guidance else None  # None: the planner's own
        generated = [new_song(planner, arranger, Options(style="chorale",
                                                         seed=args.first_seed + i,
                                                         steps=int(steps),
                                                         harmony=float(harmony),
                                                         guidance=scale),
                              n_bars=real[i].n_bars if plans == "length" else (args.bars or None),
                              plan_song=given_plan(real[i], plans, planner, i, int(steps),
                                                   scale))
                     for i in tqdm(range(len(real)), desc=label, unit="song")]
        seconds = time.perf_counter() - started
        if args.songs_out:
            song_dir = args.songs_out / "".join(c if c.isalnum() else "_" for c in label)
            song_dir.mkdir(parents=True, exist_ok=True)
            for i, song in enumerate(generated):
                write_midi(song, song_dir / f"{args.first_seed + i:03d}.mid")
        test = two_sample_test(fr, features(generated))
        means = test["means"]
        rows_ok = sum(within(means[r]["reference"], means[r]["generated"]) for r in ROWS)
        result = {
            "label": label, "arranger": folder, "steps": int(steps), "harmony": float(harmony),
            "order": arranger.meta.get("order"), "resample": arranger.meta.get("resample"),
            "resample_rate": arranger.meta.get("resample_rate"),
            "temperature": arranger.meta.get("temperature"), "top_p": arranger.meta.get("top_p"),
            "shape_from": arranger.meta.get("shape_from", 0),
            "voice_leading": arranger.meta.get("voice_leading", 0.0),
            "voice_leading_direct": arranger.meta.get("voice_leading_direct", False),
            "dissonance": arranger.meta.get("dissonance", 0.0),
            "extra": extra,
            "guidance": scale,
            "plans": plans or "planned",
            "planner": str(planner_dir),
            "first_seed": args.first_seed,
            "seconds": round(seconds, 1),
            "logistic": test["logistic"], "trees": test["trees"], "shuffled": test["shuffled"],
            "means": means, "rows_within": rows_ok,
            "telling": [t["feature"] for t in test["telling"]][:5],
        }
        result["muspy_oa"], result["muspy_oa_each"], result["muspy_oa_ci"] = muspy_oa(
            real, generated)
        results[label] = result
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=float))
        print(table_row(label, test, rows_ok, result["muspy_oa"]), flush=True)
    cells = " | ".join(f"{next(iter(results.values()))['means'][r]['reference']:.3f}"
                       for r in ROWS + ALSO)
    print(f"| Bach (test split) | | | | | | {cells} |")


if __name__ == "__main__":
    main()
