"""Band-song quality against the held-out test split of each corpus (issue 9, "Measure").

    .venv/bin/python evaluation/band_quality.py --corpus data/band --corpus data/pop909 \
        --corpus data/game [--n 40] [--bars 32] [--steps 20] [--arranger DIR] [--planner DIR] \
        [--work out/band_quality] [--out evaluation/results/band_quality.md]

For each `--corpus` (a folder written by `structdiff prepare ... --corpus pop909|band|game`),
three sets of `--n` songs (a seeded draw from its test split), written as MIDI with
`.plan.json` sidecars under `--work/CORPUS/{real,arranged,generated}`:

- real: the test songs cut to their first `--bars` whole bars, the plan cut with them;
- arranged: the same plans (bars, meter, key, chords, form), style and tempo arranged anew by
  the arranger, for the roles the real song has that the arranger knows (one track per role,
  with the program of the song's first track of that role); seed i for song i;
- generated: new songs from the planner and arranger (`structdiff generate`'s `new_song`) of
  the same length, meter, key, style, tempo and roles; seed i.

Each written file is read back with the corpus's role map (`structdiff evaluate` guesses the
role map of a file, and takes three program-0 tracks, as POP909's, for voices) and scored by
`structdiff evaluate`'s engine (`score_songs`, `write_evaluation`: metrics.json, report.md and
plots under `--work/CORPUS/eval_{arranged,generated}`) against its plan sidecar. Novelty is the
longest exact copy of a training span, per role, against the train splits of every `--corpus`
(`structdiff.metrics.band.CopyIndex`).

The Markdown table (`--out`) has, per corpus, each metric for the real songs and each set,
marked PASS/FAIL against the issue's targets:

- MusPy's `drum_pattern_consistency`, `groove_consistency`, `empty_beat_rate`, `polyphony` and
  `pitch_class_entropy` per role: overlapping area (OA) with the real songs >= 0.7;
- kick, snare and hi-hat hits per bar within 25% of real;
- bass on the chord's root at chord changes within 0.1 of real;
- chord-tone ratio of the pitched tracks (all, and per role) >= real - 0.05;
- novelty: longest copy in bars per role, mean / max over songs; melody and comping parts
  fail above 2 bars, drum and bass patterns (shared conventions) are reported only;
- seconds per song (arranging, or planning and arranging) on this machine.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from structdiff.data.io import read_song
from structdiff.data.prepare import load_prepared
from structdiff.data.song import Song, Track, crop_bars
from structdiff.metrics.band import CopyIndex, longest_copy_bars
from structdiff.metrics.evaluate import ScoredSet, given_plan, score_songs, write_evaluation
from structdiff.metrics.report import write_atomic
from structdiff.models.bundle import SHIPPED_SETS
from structdiff.pipeline.arrange import DEFAULT_HARMONY, arrange, load_arranger
from structdiff.pipeline.generate import Options, new_song, write_outputs
from structdiff.pipeline.plan import load_planner

SETS = ("real", "arranged", "generated")
OA_METRICS = ("drum_pattern_consistency", "groove_consistency", "empty_beat_rate", "polyphony")
OA_TARGET = 0.7
DRUM_METRICS = ("kick_hits_per_bar", "snare_hits_per_bar", "hihat_hits_per_bar")
DRUM_TOLERANCE = 0.25  # relative to real
BASS_TOLERANCE = 0.1  # absolute
CHORD_TONE_SLACK = 0.05
MAX_COPY_BARS = 2
REPORT_ONLY_ROLES = ("drums", "bass")  # shared conventions: their copies are reported only


@dataclass
class CorpusResult:
    name: str
    folder: str
    n_test: int = 0
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"arranged": [],
                                                                      "generated": []})
    skipped: list[str] = field(default_factory=list)
    aggregate: dict[str, dict] = field(default_factory=dict)  # set -> evaluate's aggregate
    novelty: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # set -> role -> bars
    n_scored: dict[str, int] = field(default_factory=dict)


def role_templates(song: Song, roles: list[str]) -> dict[str, Track]:
    """The first track of each role: its name, program and drum flag go to the new track."""
    return {r: next(t for t in song.tracks if t.role == r) for r in roles}


def arranged_song(arranger, real: Song, roles: list[str], style: str | None, seed: int,
                  steps: int, harmony: float = DEFAULT_HARMONY) -> Song:
    """`real`'s plan arranged anew for `roles`, one track per role."""
    notes = arrange(arranger, replace(real, tracks=[]), real.plan, roles, style=style,
                    seed=seed, steps=steps, harmony=harmony)
    tracks = [replace(t, notes=notes[r]) for r, t in role_templates(real, roles).items()]
    return replace(real, tracks=tracks)


def generated_song(planner, arranger, real: Song, roles: list[str], style: str | None,
                   seed: int, steps: int, harmony: float = DEFAULT_HARMONY,
                   guidance: float | None = None) -> Song:
    """A new song as long as `real`, in its meter, key, style and tempo, for `roles`."""
    templates = role_templates(real, roles)
    instruments = ",".join(f"{r}={t.program}" for r, t in templates.items())
    ts = real.time_signature_at(0)
    key = real.plan.key.name if real.plan is not None and real.plan.key else None
    song = new_song(planner, arranger,
                    Options(style=style, seed=seed, steps=steps, harmony=harmony,
                            guidance=guidance),
                    n_bars=real.n_bars, key=key, meter=(ts.numerator, ts.denominator),
                    instruments=instruments, tempo=real.tempo_qpm)
    # tracks of a drum role are drum tracks, whatever the pipeline's default
    drums = {r for r, t in templates.items() if t.is_drum}
    tracks = [replace(t, is_drum=t.is_drum or t.role in drums) for t in song.tracks]
    return replace(song, tracks=tracks, role_map=real.role_map, style=real.style)


def read_set(folder: Path, names: list[str], role_maps: list[str | None]) -> list[tuple]:
    """`(name, song, plan)` for each written file, read back with its corpus's role map."""
    out = []
    for name, role_map in zip(names, role_maps):
        path = folder / f"{name}.mid"
        song = read_song(path, role_map=role_map or "auto")
        out.append((name, song, given_plan(song, path)))
    return out


def evaluate_corpus(folder: Path, args, planner, arranger, index: CopyIndex) -> CorpusResult:
    result = CorpusResult(folder.name, str(folder))
    tests = [s for s in load_prepared(folder, args.split) if s.plan is not None]
    result.n_test = len(tests)
    rng = np.random.default_rng(args.seed)
    picks = sorted(rng.choice(len(tests), min(args.n, len(tests)), replace=False).tolist())
    work = args.work / folder.name
    written: dict[str, list[str]] = {s: [] for s in SETS}
    role_maps: list[str | None] = []
    style_ok = set(arranger.styles) & set(planner.styles)
    for i in tqdm(picks, desc=f"{folder.name}: arranging and generating", unit="song"):
        real = crop_bars(tests[i], args.bars)
        name = f"song{i:04d}"
        roles = [r for r in real.roles if r in arranger.roles]
        if not roles:
            result.skipped.append(f"{real.source}: no role the arranger knows "
                                  f"({', '.join(real.roles) or 'no tracks'})")
            continue
        style = real.style if real.style in style_ok else None
        songs = {"real": real}
        try:
            for kind in ("arranged", "generated"):
                started = time.perf_counter()
                if kind == "arranged":
                    songs[kind] = arranged_song(arranger, real, roles, style, i, args.steps,
                                                args.harmony)
                else:
                    songs[kind] = generated_song(planner, arranger, real, roles, style, i,
                                                 args.steps, args.harmony)
                result.seconds[kind].append(time.perf_counter() - started)
        except ValueError as e:
            result.skipped.append(f"{real.source}: {str(e).splitlines()[0]}")
            continue
        for kind, song in songs.items():
            write_outputs(song, work / kind / f"{name}.mid", png=False, wav=False)
            written[kind].append(name)
        role_maps.append(real.role_map)

    scored: dict[str, ScoredSet] = {}
    for kind in SETS:
        loaded = read_set(work / kind, written[kind], role_maps)
        scored[kind] = score_songs([(n, s) for n, s, _ in loaded], str(work / kind),
                                   workers=args.workers, progress=True,
                                   plans=[p for _, _, p in loaded])
        result.n_scored[kind] = len(scored[kind].per_file)
        result.skipped += [f"{kind} {s['file']}: {s['reason']}" for s in scored[kind].skipped]
        novelty: dict[str, list[float]] = {}
        for _, song, plan in loaded:
            song = replace(song, plan=plan)
            for role in song.roles:
                novelty.setdefault(role, []).append(longest_copy_bars(song, role, index))
        result.novelty[kind] = novelty
    for kind in ("arranged", "generated"):
        evaluation = write_evaluation(scored[kind], scored["real"], work / f"eval_{kind}",
                                      title=f"{folder.name}: {kind} vs real")
        result.aggregate[kind] = evaluation["aggregate"]
    return result


# -- the table ---------------------------------------------------------------------------------


def _num(x: float, digits: int = 2) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" PASS" if ok else " **FAIL**")


def _stat(aggregate: dict, metric: str, key: str) -> float:
    value = aggregate.get(metric, {}).get(key)
    return math.nan if value is None else float(value)


def metric_rows(result: CorpusResult) -> list[str]:
    """Table rows `| metric | target | real | arranged | generated |` of one corpus."""
    agg = result.aggregate
    ref = agg.get("arranged") or agg.get("generated") or {}
    names = set(ref)
    roles = sorted({n.split("/", 1)[1] for n in names if n.startswith("pitch_class_entropy/")})
    ct_roles = sorted({n.split("/", 1)[1] for n in names if n.startswith("chord_tone_ratio/")})
    rows = []

    def row(metric: str, target: str, check) -> None:
        real = _stat(ref, metric, "reference_mean")
        cells = []
        for kind in ("arranged", "generated"):
            a = agg.get(kind, {})
            value = _stat(a, metric, "generated_mean")
            text, ok = check(a, metric, value, real)
            if math.isfinite(real) and not math.isfinite(value):
                ok = False  # the real songs have it, the set lacks it (a role left out)
            cells.append(text + _mark(ok))
        if all(c.startswith("–") for c in cells) and not math.isfinite(real):
            return
        rows.append(f"| {metric} | {target} | {_num(real)} | {' | '.join(cells)} |")

    def oa(a, metric, value, real):
        score = _stat(a, metric, "oa")
        ok = None if not math.isfinite(score) else score >= OA_TARGET
        return f"{_num(value)} (OA {_num(score)})", ok

    def near(tolerance: float, relative: bool):
        def check(a, metric, value, real):
            if not (math.isfinite(value) and math.isfinite(real)):
                return _num(value), None
            allowed = tolerance * abs(real) if relative else tolerance
            return _num(value), abs(value - real) <= allowed + 1e-9
        return check

    def at_least(a, metric, value, real):
        if not (math.isfinite(value) and math.isfinite(real)):
            return _num(value), None
        return _num(value), value >= real - CHORD_TONE_SLACK - 1e-9

    for metric in (*OA_METRICS, *(f"pitch_class_entropy/{r}" for r in roles)):
        row(metric, f"OA ≥ {OA_TARGET}", oa)
    for metric in DRUM_METRICS:
        row(metric, f"±{DRUM_TOLERANCE:.0%} of real", near(DRUM_TOLERANCE, True))
    row("bass_root_at_changes", f"±{BASS_TOLERANCE} of real",
        near(BASS_TOLERANCE, False))
    for metric in ("chord_tone_ratio", *(f"chord_tone_ratio/{r}" for r in ct_roles)):
        row(metric, f"≥ real − {CHORD_TONE_SLACK}", at_least)
    rows += novelty_rows(result)
    seconds = [_num(float(np.mean(result.seconds[k])) if result.seconds[k] else math.nan)
               for k in ("arranged", "generated")]
    rows.append(f"| seconds per song | – | – | {seconds[0]} | {seconds[1]} |")
    return rows


def novelty_rows(result: CorpusResult) -> list[str]:
    """Longest copy of a training span per role: mean / max over songs, per set."""
    roles = sorted({r for per_role in result.novelty.values() for r in per_role})
    rows = []
    for role in roles:
        report_only = role in REPORT_ONLY_ROLES
        target = "report only" if report_only else f"max ≤ {MAX_COPY_BARS} bars"
        cells = []
        for kind in SETS:
            values = np.asarray(result.novelty.get(kind, {}).get(role, []), dtype=float)
            values = values[np.isfinite(values)]
            if not len(values):
                cells.append("–")
                continue
            text = f"{values.mean():.1f} / {values.max():.0f}"
            ok = None if report_only or kind == "real" else values.max() <= MAX_COPY_BARS
            cells.append(text + _mark(ok))
        rows.append(f"| longest copy/{role} (bars, mean / max) | {target} | "
                    + " | ".join(cells) + " |")
    return rows


def markdown(results: list[CorpusResult], args, index: CopyIndex, arranger_meta: dict) -> str:
    command = ".venv/bin/python evaluation/band_quality.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    lines = [
        "# Band songs against the test split",
        "",
        f"`{command}`",
        "",
        f"Arranger: `{args.arranger or 'shipped band'}` "
        f"(roles {', '.join(arranger_meta['roles'])});"
        f" planner: `{args.planner or 'shipped band'}`; DDIM {args.steps} steps, harmony "
        f"{args.harmony}; torch threads "
        f"{torch.get_num_threads()}. Real: test songs cut to {args.bars} bars; arranged: their "
        f"plans arranged anew; generated: new songs of the same length, meter, key, style, "
        f"tempo and roles. Novelty against the train splits of every corpus "
        f"({index.n_songs} songs). OA: overlapping area with the real songs (Yang & Lerch "
        f"2018). Cells: the set's mean, PASS/FAIL against the target.",
        "",
    ]
    for r in results:
        n = ", ".join(f"{k} {r.n_scored.get(k, 0)}" for k in SETS)
        lines += [
            f"## {r.name}",
            "",
            f"`{r.folder}`: {r.n_test} test songs; scored: {n}.",
            "",
            "| metric | target | real | arranged | generated |",
            "|---|---|---:|---:|---:|",
            *metric_rows(r),
            "",
        ]
        if r.skipped:
            lines += ["Skipped:", ""] + [f"- {s}" for s in r.skipped] + [""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, action="append", required=True, metavar="DIR",
                        help="a prepared corpus folder (repeatable)")
    parser.add_argument("--arranger", type=Path, default=None, metavar="DIR",
                        help="arranger bundle folder (default: the shipped band set)")
    parser.add_argument("--planner", type=Path, default=None, metavar="DIR",
                        help="planner bundle folder (default: the shipped band set)")
    parser.add_argument("--n", type=int, default=40, help="test songs per corpus (default 40)")
    parser.add_argument("--bars", type=int, default=32, help="bars per song (default 32)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps (default 20)")
    parser.add_argument("--harmony", type=float, default=DEFAULT_HARMONY,
                        help=f"lean toward the plan's chords (default {DEFAULT_HARMONY})")
    parser.add_argument("--split", default="test", help="the held-out split (default test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw of test songs")
    parser.add_argument("--workers", type=int, default=1, help="scoring processes (default 1)")
    parser.add_argument("--work", type=Path, default=Path("out/band_quality"))
    parser.add_argument("--out", type=Path, default=Path("evaluation/results/band_quality.md"))
    args = parser.parse_args()
    for folder in args.corpus:
        if not (folder / "manifest.json").is_file():
            parser.error(f"not a prepared corpus (no manifest.json): {folder}")
    if args.n < 1 or args.bars < 1 or args.steps < 1:
        parser.error("--n, --bars and --steps must be >= 1")

    band = SHIPPED_SETS["band"]
    arranger = load_arranger(args.arranger or band)
    planner = load_planner(args.planner or band)
    index = CopyIndex()
    for folder in args.corpus:
        for song in tqdm(load_prepared(folder, "train"), desc=f"{folder.name}: novelty index",
                         unit="song"):
            index.add(song)
    results = [evaluate_corpus(folder, args, planner, arranger, index)
               for folder in args.corpus]
    text = markdown(results, args, index, arranger.meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
