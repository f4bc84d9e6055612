"""Score a set of songs against a reference set: `metrics.json`, `report.md`, plots, W&B.

A set is a folder of music files, or a folder made by `structdiff prepare` (optionally one
split of it). A song's *given plan* (what it was generated from) is read from a sidecar
`NAME.plan.json` beside `NAME.mid`, or from the section markers and chord texts that
`write_midi` embeds; songs without one are scored against their analyzed plan.

`metrics.json` (NaN written as null):

    {"generated": {"source", "split", "n_found", "n_scored", "skipped": [{"file", "reason"}]},
     "reference": {... the same ...},
     "aggregate": {METRIC: {"generated_mean", "generated_std", "generated_n",
                            "reference_mean", "reference_std", "reference_n",
                            "oa", "kl", "value_oa"}},
     "per_file": {"generated": {FILE: {METRIC: value}}, "reference": {...}},
     "seconds": float}
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from structdiff.data.song import MusicFileError, Plan, Song

PLAN_SUFFIX = ".plan.json"


class EvaluateError(ValueError):
    """A set that cannot be evaluated: a missing folder, no music files in it."""


@dataclass
class ScoredSet:
    source: str
    split: str | None = None
    per_file: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    windows: dict[str, np.ndarray] = field(default_factory=dict)  # per file `[W, F]`, if asked

    @property
    def n_found(self) -> int:
        return len(self.per_file) + len(self.skipped)

    def values(self, metric: str) -> np.ndarray:
        return np.array([m.get(metric, math.nan) for m in self.per_file.values()], dtype=float)

    def summary(self) -> dict:
        return {"source": self.source, "split": self.split, "n_found": self.n_found,
                "n_scored": len(self.per_file), "skipped": self.skipped}


def given_plan(song: Song, path: Path | None) -> Plan | None:
    """The plan a song was made from: its `.plan.json` sidecar, else what its MIDI embeds."""
    if path is not None:
        sidecar = path.with_name(path.name.rsplit(".", 1)[0] + PLAN_SUFFIX)
        if sidecar.is_file():
            from structdiff.analysis.schema import read_plan

            return read_plan(sidecar, song.steps_per_quarter)
    return song.plan


def score_song(song: Song, plan: Plan | None = None) -> dict[str, float]:
    from structdiff.metrics import song_metrics

    return song_metrics(song, plan)


def _score(song: Song, plan: Plan | None, windows: bool) -> tuple:
    """`(metrics, None, windows)`: the song's metrics and, when asked, its windows'
    music-theory features (`musicianship`, for `evaluate --classifier`) with their song
    means and per-role line measures among the metrics (`musicianship.named_metrics`)."""
    metrics = score_song(song, plan)
    if not windows:
        return metrics, None, None
    from structdiff.analysis import analyze
    from structdiff.metrics.musicianship import named_metrics, window_features

    features = window_features(song, plan if plan is not None else analyze(song))
    return {**metrics, **named_metrics(song, features)}, None, features


def _score_file(args: tuple[str, str, str, bool]) -> tuple:
    """Worker: `(name, metrics, None, windows)` or `(name, None, reason, None)`; never
    raises."""
    name, path, role_map, windows = args
    from structdiff.data.io import read_song

    try:
        song = read_song(path, role_map=role_map)
        return name, *_score(song, given_plan(song, Path(path)), windows)
    except (MusicFileError, ValueError) as e:
        return name, None, _one_line(e), None
    except Exception as e:  # a bug or a parser's crash on one file must not stop the set
        return name, None, f"{type(e).__name__}: {_one_line(e)}", None


def _score_loaded(args: tuple[str, Song, Plan | None, bool]) -> tuple:
    name, song, plan, windows = args
    try:
        return name, *_score(song, plan, windows)
    except Exception as e:  # as above
        return name, None, f"{type(e).__name__}: {_one_line(e)}", None


def _one_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def score_set(
    source: str | Path, split: str | None = None, workers: int | None = None,
    progress: bool = True, limit: int | None = None, role_map: str = "auto",
    windows: bool = False,
) -> ScoredSet:
    """Score every song of a folder of music files or of a prepared corpus (one `split`);
    the files' tracks are put in roles with `role_map` (a prepared corpus keeps its own).
    `windows`: also describe every song's windows for the classifier test."""
    from structdiff.data.corpus import list_music_files

    folder = Path(source)
    if not folder.is_dir():
        raise EvaluateError(f"not a folder: {folder}")
    scored = ScoredSet(str(folder), split)
    if (folder / "manifest.json").is_file():
        from structdiff.data.prepare import load_prepared

        songs = list(load_prepared(folder, split))[:limit]
        named = [(s.source or f"song{i}", s) for i, s in enumerate(songs)]
        return score_songs(named, str(folder), split, workers, progress, windows=windows)
    else:
        if split is not None:
            raise EvaluateError(f"a split needs a prepared corpus (structdiff prepare): {folder}")
        files = list_music_files(folder)[:limit]
        if not files:
            raise EvaluateError(f"no music files (.mid, .midi, .mxl, .xml, .musicxml, .krn) "
                                f"in {folder}")
        jobs = [(f.relative_to(folder).as_posix(), str(f), role_map, windows) for f in files]
        results = _map(_score_file, jobs, workers, progress, f"scoring {folder.name}")
    return _collect(scored, results)


def score_songs(
    songs: list[tuple[str, Song]], source: str, split: str | None = None,
    workers: int | None = None, progress: bool = True,
    plans: list[Plan | None] | None = None, windows: bool = False,
) -> ScoredSet:
    """Score songs already in memory, `(name, song)` pairs, each against its given plan in
    `plans` (same order; None: against its analyzed plan); `windows` as in `score_set`."""
    plans = plans if plans is not None else [None] * len(songs)
    if len(plans) != len(songs):
        raise ValueError(f"one plan per song: {len(songs)} songs, {len(plans)} plans")
    jobs = [(name, song, plan, windows) for (name, song), plan in zip(songs, plans)]
    results = _map(_score_loaded, jobs, workers, progress, f"scoring {Path(source).name}")
    return _collect(ScoredSet(source, split), results)


def _collect(scored: ScoredSet, results) -> ScoredSet:
    for name, metrics, reason, windows in results:
        if metrics is None:
            scored.skipped.append({"file": name, "reason": reason})
        else:
            scored.per_file[name] = metrics
            if windows is not None:
                scored.windows[name] = windows
    return scored


def _map(fn, jobs: list, workers: int | None, progress: bool, desc: str) -> Iterable:
    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    bar = dict(total=len(jobs), desc=desc, unit="song", disable=not progress, leave=False)
    if workers == 1 or len(jobs) < 4:
        return [fn(j) for j in tqdm(jobs, **bar)]
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_blas_thread) as pool:
        return list(tqdm(pool.map(fn, jobs, chunksize=4), **bar))


def _one_blas_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def compare(generated: ScoredSet, reference: ScoredSet) -> dict[str, dict[str, float]]:
    """`compare_sets` for every metric scored in either set, in a stable order."""
    from structdiff.metrics.distances import compare_sets

    names = _metric_order({k for s in (generated, reference) for m in s.per_file.values()
                           for k in m})
    return {n: compare_sets(generated.values(n), reference.values(n)) for n in names}


def _metric_order(names: set[str]) -> list[str]:
    """Whole-song metrics first, then per-role ones, each group sorted."""
    return sorted(names, key=lambda n: ("/" in n, n.split("/")[-1] if "/" in n else "", n))


def evaluate(
    generated: str | Path, reference: str | Path, out_dir: str | Path,
    split: str | None = None, reference_split: str | None = None, workers: int | None = None,
    use_wandb: bool = False, progress: bool = True, title: str = "structdiff evaluation",
    role_map: str = "auto", classifier: bool = False,
) -> dict:
    """Score `generated` against `reference`; write metrics.json, report.md and plots/ to
    `out_dir` (and log them to W&B with `use_wandb`). Returns the metrics.json content.
    `role_map` puts the tracks of music files in roles (``auto``: `band` for band songs,
    `satb` for voices), for the per-role metrics. `classifier` adds the real-or-generated
    classifier test (`structdiff.metrics.musicianship`)."""
    start = time.perf_counter()
    gen = score_set(generated, split, workers, progress, role_map=role_map, windows=classifier)
    ref = score_set(reference, reference_split, workers, progress, role_map=role_map,
                    windows=classifier)
    return write_evaluation(gen, ref, out_dir, time.perf_counter() - start, use_wandb, title,
                            classifier)


def write_evaluation(
    gen: ScoredSet, ref: ScoredSet, out_dir: str | Path, seconds: float = math.nan,
    use_wandb: bool = False, title: str = "structdiff evaluation", classifier: bool = False,
) -> dict:
    from structdiff.metrics.report import plot_histograms, report_markdown, write_atomic

    out_dir = Path(out_dir)
    aggregate = compare(gen, ref)
    result = {
        "generated": gen.summary(),
        "reference": ref.summary(),
        "aggregate": aggregate,
        "per_file": {"generated": gen.per_file, "reference": ref.per_file},
        "seconds": seconds,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = plot_histograms(gen, ref, aggregate, out_dir / "plots")
    report = report_markdown(result, title, [p.relative_to(out_dir) for p in plots])
    if classifier:
        from structdiff.metrics.musicianship import classifier_markdown, two_sample_test

        if gen.per_file and not gen.windows or ref.per_file and not ref.windows:
            raise EvaluateError("the classifier test needs sets scored with windows=True")
        try:
            result["classifier"] = two_sample_test(list(ref.windows.values()),
                                                   list(gen.windows.values()))
            report += "\n" + classifier_markdown(result["classifier"])
        except ValueError as e:
            raise EvaluateError(str(e)) from None
    write_atomic(out_dir / "metrics.json", json.dumps(_nan_to_none(result), indent=1))
    write_atomic(out_dir / "report.md", report)
    if use_wandb:
        from structdiff.metrics.report import log_to_wandb

        log_to_wandb(result, report, plots, out_dir, title)
    return result


def _nan_to_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
