"""Prepare a corpus: parse every music file once, in parallel worker processes, into shards.

Each file goes to one of `buckets` shards by a hash of its id (its path in the corpus), so
adding files rewrites only the shards they fall in. The bucket count is a power of two with
about `shard_size` files per shard, chosen when a folder is first prepared and kept in its
manifest for later runs of the same settings. Bucket b becomes the shard
``shard-{b:05d}-{hash}.npz`` (see `structdiff.data.shards`) with a sidecar
``shard-{b:05d}-{hash}.json`` holding each member file's status. The hash covers the settings
(grid, role map, analysis, input), the version of the code that reads and analyzes files
(`code_version`) and each member's id, size and modification time, so a rerun skips every
shard whose sidecar exists, a changed file, setting or reading code rewrites its shard, and
shards of other settings are removed rather than mixed in.

A large corpus splits across machines: ``prepare(..., shard=(i, n))`` (``structdiff prepare
--shard i/n``) prepares only the buckets b with b % n == i and writes
``manifest.part-i-of-n.json``; `merge_prepared` (``structdiff prepare --merge --out DIR``) joins
the parts found in one folder into ``manifest.json`` and the report, and names any part that
is missing or was prepared with other settings.

A bad file never stops the run: the worker records ``{file, reason}`` and goes on. Each worker
slot is its own process pool of one, so a worker that dies (a crash inside a parser, the
out-of-memory killer) costs only its chunk, which is then redone file by file, each file in a
fresh process, to pin the crash on a file.

``out_dir`` receives the shards, ``manifest.json`` (settings and shards), ``report.json`` and a
human ``report.md``. Songs of the embedded music21 corpus carry ``song.style`` and
``song.split``; songs of a folder carry ``song.split`` by the same hash rule on their relative
path (and ``song.style`` None).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
import warnings
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from structdiff.data.corpus import (
    SPLITS,
    corpus_style,
    list_music_files,
    music21_corpus,
    split_of,
)
from structdiff.data.io import MUSIC_SUFFIXES
from structdiff.data.shards import SHARD_FORMAT, read_shard, write_shard
from structdiff.data.song import MusicFileError, Plan, Song

MUSIC21 = "music21"
PREPARE_FORMAT = 2  # 2: shards by a hash of the file id (1: by position in the file list)
MAX_REASON_CHARS = 300
_SHARD_FILE = re.compile(r"^\.?shard-(\d{5})-[0-9a-f]{10}\.(npz|json)(\.tmp\d+)?$")
_PART_FILE = re.compile(r"^manifest\.part-(\d+)-of-(\d+)\.json$")
_CRASH_REASON = "the worker process died reading this file (a crash in a parser, or killed)"


class PrepareError(ValueError):
    """Bad input to `prepare` or `load_prepared`: a missing folder, an unprepared out_dir."""


@dataclass(frozen=True)
class CorpusEntry:
    """One song of a corpus to prepare: what a corpus adapter's `list_entries` returns."""

    id: str  # unique and stable: a path relative to the corpus folder, or e.g. "pop909/001"
    path: str  # what the reader needs (a file, or a song's folder for an adapter)
    style: str | None
    split: str


@dataclass(frozen=True)
class _Job:
    index: int
    name: str  # shard file stem
    entries: tuple[CorpusEntry, ...]
    out_dir: str
    steps_per_quarter: int
    role_map: str | None
    analyze: bool
    from_music21: bool
    corpus: str | None = None  # a corpus adapter's name (structdiff.data.adapters)
    seed: int = 0


def prepare(
    input: str | Path,
    out_dir: str | Path,
    workers: int | None = None,
    role_map: str | None = "auto",
    steps_per_quarter: int = 4,
    analyze: bool = True,
    shard_size: int = 64,
    progress: bool = True,
    corpus: str | None = None,
    seed: int = 0,
    shard: tuple[int, int] | None = None,
) -> dict:
    """Parse every music file of `input` (a folder, or ``music21``) into shards in `out_dir`.

    ``music21`` means the embedded corpus (write ``./music21`` for a folder of that name).
    `workers` defaults to the number of cores; `role_map` is a role-map name, ``auto`` or None.
    `corpus` names a corpus adapter (`structdiff.data.adapters`: ``pop909``, ``groove``,
    ``game``, ``band``) that lists and reads `input` its own way, with its annotations as the
    plan and its own splits and styles (`role_map` is then the adapter's); `seed` is passed to
    it (the band corpus draws its grooves from it). `shard` ``(i, n)``: prepare only part i of n
    (module docstring); join the parts with `merge_prepared`.

    Returns the report also written to ``out_dir/report.json``: counts of files ``found``,
    ``loaded`` and ``skipped``, ``skipped_files`` (each with a one-line reason),
    ``analysis_errors``, shards written and reused, counts per split (and per style for the
    music21 corpus), ``seconds`` and ``files_per_s``.
    """
    started = time.perf_counter()
    if steps_per_quarter < 1:
        raise ValueError(f"steps_per_quarter must be >= 1, got {steps_per_quarter}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {shard[0]}/{shard[1]}")
    if corpus is not None:
        from structdiff.data.adapters import get_adapter

        adapter = get_adapter(corpus)  # raises PrepareError for an unknown name
        role_map = adapter.ROLE_MAP
        entries, ignored, source = _list_adapter_input(adapter, corpus, input, seed)
    role_map_digest = _role_map_digest(role_map)  # raises RoleMapError for an unknown map
    if corpus is None:
        entries, ignored, source = _list_input(input)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    settings = {
        "source": source,
        "steps_per_quarter": steps_per_quarter,
        "role_map": role_map,
        "analyze": analyze,
    }
    adapter_digest = None
    if corpus is not None:
        settings.update(corpus=corpus, seed=seed)
        # an edited adapter (or a file it reads its rules from) rewrites the shards
        h = hashlib.sha256(Path(adapter.__file__).read_bytes())
        for extra in getattr(adapter, "DIGEST_FILES", ()):
            h.update(Path(extra).read_bytes())
        adapter_digest = h.hexdigest()
    salt = json.dumps(
        {**settings, "role_map_digest": role_map_digest, "adapter_digest": adapter_digest,
         "format": PREPARE_FORMAT, "shard_format": SHARD_FORMAT, "code": code_version()},
        sort_keys=True,
    )
    salt_digest = hashlib.sha256(salt.encode("utf-8")).hexdigest()[:16]
    buckets = _known_buckets(out_dir, salt_digest) or bucket_count(len(entries), shard_size)
    by_bucket: dict[int, list[CorpusEntry]] = {}
    for e in entries:
        by_bucket.setdefault(bucket_of(e.id, buckets), []).append(e)
    part, parts = shard if shard is not None else (0, 1)
    jobs = [_make_job(b, by_bucket[b], salt, out_dir, settings)
            for b in sorted(by_bucket) if b % parts == part]
    statuses: dict[str, list[dict]] = {}
    todo = []
    for job in jobs:
        done = _finished_statuses(out_dir, job)
        if done is None:
            todo.append(job)
        else:
            statuses[job.name] = done
    files_parsed = sum(len(job.entries) for job in todo)
    if todo:
        from tqdm.auto import tqdm

        with tqdm(
            total=len(entries),
            initial=len(entries) - files_parsed,
            unit="file",
            desc="prepare",
            disable=not progress,
        ) as bar:
            for job, job_statuses in _run_jobs(todo, min(workers, len(todo))):
                statuses[job.name] = job_statuses
                bar.update(len(job.entries))

    seconds = time.perf_counter() - started
    ordered = [s for job in jobs for s in statuses[job.name]]
    manifest = {
        "format": PREPARE_FORMAT,
        "settings": settings,
        "salt": salt_digest,
        "buckets": buckets,
        "shard_size": shard_size,
        "part": [part, parts],
        "ignored": ignored,
        "shards": [
            {"name": f"{job.name}.npz", "files": len(job.entries),
             "songs": sum(s["loaded"] for s in statuses[job.name])}
            for job in jobs
        ],
    }
    name = "manifest.json" if shard is None else f"manifest.part-{part}-of-{parts}.json"
    _write_json(out_dir / name, manifest)
    # only now: until the new manifest is in place, the old one and its shards stay consistent
    removed = _remove_stale(out_dir, {job.name for job in jobs}, part, parts)
    report = _report(
        ordered, settings, out_dir, ignored, seconds, files_parsed,
        shards={"total": len(jobs), "written": len(todo), "reused": len(jobs) - len(todo),
                "removed_stale": removed},
    )
    if shard is not None:
        report["part"] = [part, parts]
        return report
    _write_json(out_dir / "report.json", report)
    _write_text(out_dir / "report.md", report_markdown(report))
    return report


def merge_prepared(out_dir: str | Path) -> dict:
    """Join the parts prepared into `out_dir` (``prepare(..., shard=(i, n))``, each on any
    machine, their files copied into one folder) into its ``manifest.json`` and report.
    PrepareError when a part is missing or parts disagree on settings, code or buckets."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    parts = {}
    for path in sorted(out_dir.glob("manifest.part-*-of-*.json")):
        m = _PART_FILE.match(path.name)
        if m:
            parts[(int(m.group(1)), int(m.group(2)))] = json.loads(path.read_text("utf-8"))
    if not parts:
        raise PrepareError(f"no parts to merge in {out_dir} (manifest.part-I-of-N.json, "
                           f"written by `structdiff prepare --shard I/N`)")
    counts = {n for _, n in parts}
    if len(counts) != 1:
        raise PrepareError(f"parts of different splits in {out_dir}: of "
                           f"{', '.join(str(n) for n in sorted(counts))}")
    n = counts.pop()
    missing = [f"{i}/{n}" for i in range(n) if (i, n) not in parts]
    if missing:
        raise PrepareError(f"cannot merge {out_dir}: part {', '.join(missing)} is missing "
                           f"(run `structdiff prepare ... --shard I/{n}` for it)")
    first = parts[(0, n)]
    for (i, _), m in parts.items():
        if (m["salt"], m["buckets"]) != (first["salt"], first["buckets"]):
            raise PrepareError(f"cannot merge {out_dir}: part {i}/{n} was prepared with other "
                               f"settings or another version of the code than part 0/{n}; "
                               f"prepare it again")
    shards = sorted((s for m in parts.values() for s in m["shards"]),
                    key=lambda s: s["name"])
    statuses = []
    for s in shards:
        sidecar = out_dir / s["name"].replace(".npz", ".json")
        statuses += json.loads(sidecar.read_text(encoding="utf-8"))["files"]
    manifest = {**{k: v for k, v in first.items() if k != "part"}, "part": [0, 1],
                "shards": shards}
    _write_json(out_dir / "manifest.json", manifest)
    # every part lists the whole input, so each counts the same ignored files
    report = _report(statuses, first["settings"], out_dir, first.get("ignored", 0),
                     time.perf_counter() - started, 0,
                     shards={"total": len(shards), "written": 0, "reused": len(shards),
                             "removed_stale": 0, "merged_parts": n})
    _write_json(out_dir / "report.json", report)
    _write_text(out_dir / "report.md", report_markdown(report))
    return report


def bucket_count(n_files: int, shard_size: int) -> int:
    """Buckets for a corpus of `n_files`: the power of two that gives shards of about
    `shard_size` files (at least 1)."""
    need = max(1, -(-n_files // shard_size))
    return 1 << (need - 1).bit_length()


def bucket_of(file_id: str, buckets: int) -> int:
    """The bucket (shard index) of a file id: fixed by a hash of the id."""
    return int(hashlib.sha256(file_id.encode("utf-8")).hexdigest()[:12], 16) % buckets


def code_version() -> str:
    """A digest of the code that reads, analyzes and stores files (`structdiff.data`,
    `structdiff.analysis`, the role maps): shards written by other code are rebuilt."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for folder in ("data", "analysis"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _known_buckets(out_dir: Path, salt_digest: str) -> int | None:
    """The bucket count an earlier run of the same settings and code used in `out_dir`."""
    for path in [out_dir / "manifest.json", *sorted(out_dir.glob("manifest.part-*.json"))]:
        try:
            m = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if m.get("salt") == salt_digest and isinstance(m.get("buckets"), int):
            return m["buckets"]
    return None


def load_prepared(out_dir: str | Path, split: str | None = None,
                  notes: bool = True) -> Iterator[Song]:
    """The songs prepared in `out_dir`, shard by shard; only those of `split` when given;
    without their notes when `notes` is False (`read_shard`)."""
    out_dir = Path(out_dir)
    names = prepared_shards(out_dir)
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} or None, got {split!r}")
    return _iter_songs(out_dir, names, split, notes)


def prepared_shards(out_dir: str | Path) -> list[str]:
    """The shard file names of the corpus prepared in `out_dir`, in its manifest's order."""
    manifest_path = Path(out_dir) / "manifest.json"
    if not manifest_path.is_file():
        raise PrepareError(f"not a prepared corpus (no manifest.json): {out_dir}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return [s["name"] for s in manifest["shards"]]


def training_splits(prepared: str | Path | list, limit: int = 0,
                    notes: bool = True) -> dict[str, list[Song]]:
    """The train and validation songs of a prepared corpus, or of several (a list of folders),
    at most `limit` each per corpus (0: all), for training (without notes when `notes` is
    False); a missing corpus raises ValueError saying how to prepare it."""
    folders = prepared_folders(prepared)
    out: dict[str, list[Song]] = {"train": [], "validation": []}
    for folder in folders:
        for split in out:
            songs = itertools.islice(load_prepared(folder, split, notes), limit or None)
            out[split] += list(songs)
    return out


def prepared_folders(prepared: str | Path | list) -> list[Path]:
    """The folders of `prepared` (one, or a list); a missing corpus raises ValueError saying
    how to prepare it."""
    folders = [prepared] if isinstance(prepared, (str, Path)) else list(prepared)
    for folder in folders:
        if not (Path(folder) / "manifest.json").is_file():
            raise ValueError(f"no prepared corpus at {folder}: run `structdiff prepare` first "
                             f"(datasets/README.md says how for each corpus)")
    return [Path(f) for f in folders]


def _iter_songs(out_dir: Path, names: list[str], split: str | None,
                notes: bool = True) -> Iterator[Song]:
    for name in names:
        for song in read_shard(out_dir / name, notes):
            if split is None or song.split == split:
                yield song


# -- listing and jobs --------------------------------------------------------------------------


def _list_input(input: str | Path) -> tuple[list[CorpusEntry], int, str]:
    """The entries to prepare, how many non-music files were ignored, and the source name."""
    if str(input) == MUSIC21:
        pairs = music21_corpus()
        entries = [CorpusEntry(i, str(p), corpus_style(i), split_of(i)) for i, p in pairs]
        return entries, 0, MUSIC21
    folder = Path(input)
    if not folder.exists():
        raise PrepareError(f"no such folder: {folder} (or use {MUSIC21!r} for the embedded corpus)")
    if not folder.is_dir():
        raise PrepareError(f"not a folder: {folder}")
    folder = folder.resolve()
    files = list_music_files(folder)
    entries = []
    for path in files:
        file_id = path.relative_to(folder).as_posix()
        entries.append(CorpusEntry(file_id, str(path), None, split_of(file_id)))
    ignored = sum(
        1
        for root, dirs, names in os.walk(folder)
        if not any(part.startswith(".") for part in Path(root).relative_to(folder).parts)
        for name in names
        if not name.startswith(".") and Path(name).suffix.lower() not in MUSIC_SUFFIXES
    )
    return entries, ignored, str(folder)


def _list_adapter_input(adapter, name: str, input: str | Path,
                        seed: int) -> tuple[list[CorpusEntry], int, str]:
    import inspect

    root = Path(input)
    if not root.is_dir():
        raise PrepareError(f"no such folder: {root}")
    root = root.resolve()
    # an adapter that draws labels at random (the band corpus's grooves) takes the seed
    takes_seed = "seed" in inspect.signature(adapter.list_entries).parameters
    entries = adapter.list_entries(root, seed=seed) if takes_seed else adapter.list_entries(root)
    if not entries:
        raise PrepareError(f"no songs of the {name} corpus under {root}")
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise PrepareError(f"the {name} adapter listed an id twice under {root}")
    return sorted(entries, key=lambda e: e.id), 0, str(root)


def _make_job(index: int, entries: list[CorpusEntry], salt: str, out_dir: Path,
              settings: dict) -> _Job:
    h = hashlib.sha256(salt.encode("utf-8"))
    for e in entries:
        try:
            st = os.stat(e.path)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"\n{e.id}\t{stamp}".encode())
    return _Job(
        index=index,
        name=f"shard-{index:05d}-{h.hexdigest()[:10]}",
        entries=tuple(entries),
        out_dir=str(out_dir),
        steps_per_quarter=settings["steps_per_quarter"],
        role_map=settings["role_map"],
        analyze=settings["analyze"],
        from_music21=settings["source"] == MUSIC21,
        corpus=settings.get("corpus"),
        seed=settings.get("seed", 0),
    )


def _role_map_digest(role_map: str | None) -> str | None:
    """A hash of the role-map files in use, so an edited map rewrites the shards."""
    if role_map is None:
        return None
    from structdiff.data.roles import load_role_map

    names = ["satb", "band"] if role_map == "auto" else [role_map]
    h = hashlib.sha256()
    for name in names:
        h.update(Path(load_role_map(name).path).read_bytes())
    return h.hexdigest()


def _finished_statuses(out_dir: Path, job: _Job) -> list[dict] | None:
    """The statuses of a shard finished by an earlier run, or None if it must be (re)made."""
    sidecar = out_dir / f"{job.name}.json"
    if not (sidecar.is_file() and (out_dir / f"{job.name}.npz").is_file()):
        return None
    try:
        statuses = json.loads(sidecar.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if [s.get("file") for s in statuses] != [e.id for e in job.entries]:
        return None
    return statuses


def _remove_stale(out_dir: Path, keep: set[str], part: int = 0, parts: int = 1) -> int:
    """Remove shards of this part's buckets (and temp files of killed runs) that the current
    job list does not name; other parts' shards stay."""
    removed = 0
    for path in out_dir.iterdir():
        name = path.name
        m = _SHARD_FILE.match(name)
        if m is None or int(m.group(1)) % parts != part:
            continue
        if name.startswith(".") or name.split(".")[0] not in keep:
            path.unlink(missing_ok=True)
            removed += name.endswith(".npz")
    return removed


# -- running -----------------------------------------------------------------------------------


def _run_jobs(jobs: list[_Job], workers: int) -> Iterator[tuple[_Job, list[dict]]]:
    """Run jobs on `workers` one-process pools; yield `(job, statuses)` as they finish.

    One pool per slot means a dying process breaks only the pool of its own job.
    """
    pending = deque(jobs)
    analyze = any(job.analyze for job in jobs)
    if analyze:  # loaded once here, the workers forked from this process start with it
        _load_kernels()
    slots = [_worker_pool(analyze) for _ in range(workers)]
    running = {}  # future -> (slot, job)

    def submit(slot: int) -> None:
        job = pending.popleft()
        running[slots[slot].submit(_prepare_chunk, job)] = (slot, job)

    try:
        for slot in range(workers):
            submit(slot)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                slot, job = running.pop(future)
                try:
                    statuses = future.result()
                except BrokenProcessPool:
                    slots[slot].shutdown(wait=False, cancel_futures=True)
                    slots[slot] = _worker_pool(analyze)
                    statuses = _finished_statuses(Path(job.out_dir), job)
                    if statuses is None:
                        statuses = _prepare_chunk_isolated(job)
                yield job, statuses
                if pending:
                    submit(slot)
    finally:
        for pool in slots:
            pool.shutdown(wait=True, cancel_futures=True)


def _worker_pool(analyze: bool = False) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, initializer=_init_worker, initargs=(analyze,))


def _init_worker(analyze: bool = False) -> None:
    _die_with_parent()
    _limit_blas_threads()
    _settle_imports(analyze)


def _settle_imports(analyze: bool) -> None:
    """Import what reading (and analysis) will use, then freeze what exists: Python's cycle
    collector then never scans the hundreds of thousands of module objects (numba's among
    them) again, only what a chunk allocates; 7% faster with analysis (measured in-process,
    4.33 against 4.64 ms a file, medians of 4 alternating runs on the real set)."""
    import gc

    from structdiff.data import io  # noqa: F401  (the readers)

    if analyze:
        _load_kernels()
    gc.freeze()


_kernels_loaded = False


def _load_kernels() -> None:
    """Load numba's compiler state and the compiled kernels of reading and analysis by reading
    and analyzing a small song made here (0.6 s; the first time on a machine it compiles them,
    ~10 s). Done in `prepare`'s own process before it starts its workers, so that workers
    forked from it (Linux) have them already: each worker, and each one restarted after a
    crash, saves the 0.6 s. Never raises: a broken analysis is reported per file, later. Once
    per process: a worker forked after it has run does nothing."""
    global _kernels_loaded
    if _kernels_loaded:
        return
    _kernels_loaded = True
    import symusic

    from structdiff.analysis import song_plan
    from structdiff.data.midi import song_from_symusic

    def warm_up(offset: int, tune: bool) -> None:
        """A C major arpeggio in quarters, 16 bars, from tick `offset`, with or without a tune
        in halves over it (the melody's kernels)."""
        score = symusic.Score(480)
        tracks = [symusic.Track("warm-up", 0, False), symusic.Track("warm-up tune", 0, False)]
        for i in range(64):
            tracks[0].notes.append(symusic.Note(offset + i * 480, 480, (60, 64, 67, 72)[i % 4], 80))
            if tune and i % 2 == 0:
                tracks[1].notes.append(symusic.Note(offset + i * 480, 960,
                                                    (76, 77, 79, 77)[i % 8 // 2], 90))
        score.tracks.extend(tracks if tune else tracks[:1])
        song = song_from_symusic(score, find_beats=True)
        if tune:
            song.tracks[1].role = "melody"
        song_plan(song)

    try:
        warm_up(0, tune=True)
        warm_up(200, tune=False)  # off the file's beat: the beat finder's own kernels too
    except Exception:  # only a warm-up: each file's own analysis says what is wrong
        pass


def _die_with_parent() -> None:
    """On Linux, the kernel kills this worker when the process that started it dies (a killed
    `prepare` leaves no worker behind to finish a shard on its own); elsewhere nothing."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _limit_blas_threads() -> None:
    """One BLAS thread per worker: the workers already fill the cores, and the analysis's
    small matrix products on 2 threads per worker halved throughput (measured, 2 workers).
    A forked worker has its BLAS loaded already, so an environment variable comes too late:
    threadpoolctl sets the limit through the libraries' own APIs."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _prepare_chunk(job: _Job) -> list[dict]:
    """Worker: read each file of the chunk, write its shard and sidecar, return the statuses.

    Python's cycle collector is paused for the chunk: reading and analysis make hundreds of
    small objects a file and almost no cycles, and the collector's passes over them cost 1-2%
    (interleaved chunks, real set); what cycles there are go when the chunk is done."""
    import gc

    songs, statuses = [], []
    paused = gc.isenabled()
    gc.disable()
    try:
        for entry in job.entries:
            song, status = _read_entry(entry, job)
            statuses.append(status)
            if song is not None:
                songs.append(song)
        _write_chunk(job, songs, statuses)
    finally:
        if paused:
            gc.enable()
    return statuses


def _prepare_chunk_isolated(job: _Job) -> list[dict]:
    """Redo a chunk whose worker died: each file in a fresh process until one dies."""
    songs, statuses = [], []
    pool = _worker_pool(job.analyze)
    try:
        for entry in job.entries:
            try:
                song, status = pool.submit(_read_entry, entry, job).result()
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _worker_pool(job.analyze)
                song, status = None, _status(entry, reason=_CRASH_REASON)
            statuses.append(status)
            if song is not None:
                songs.append(song)
    finally:
        pool.shutdown(wait=True)
    _write_chunk(job, songs, statuses)
    return statuses


def _read_entry(entry: CorpusEntry, job: _Job) -> tuple[Song | None, dict]:
    """Read one file; never raises for a bad file (the reason goes into the status)."""
    from structdiff.data.io import read_song

    try:
        with warnings.catch_warnings():  # music21's warnings on odd scores would flood stderr
            warnings.simplefilter("ignore")
            if job.corpus is not None:
                from structdiff.data.adapters import get_adapter

                song = get_adapter(job.corpus).read_entry(entry, job.steps_per_quarter, job.seed)
            else:
                song = read_song(entry.path, job.steps_per_quarter, job.role_map)
    except Exception as e:  # any parser error (music21 raises many types) skips the file only
        return None, _status(entry, reason=_one_line(e, entry.path))
    if job.from_music21:
        song.source = f"{MUSIC21}:{entry.id}"
    song.style = entry.style
    song.split = entry.split
    analysis_error = None
    if job.analyze and song.plan is None:  # an adapter's annotated plan is kept
        try:
            song.plan = _analyzed_plan(song)
        except Exception as e:  # an analysis bug must not drop the song
            analysis_error = _one_line(e, entry.path)
    return song, _status(entry, loaded=True, analysis_error=analysis_error)


def _analyzed_plan(song: Song) -> Plan:
    """The analyzed plan; parts the file itself carries (our own MIDI's chords, markers) win."""
    from structdiff.analysis import song_plan

    return song_plan(song)


def _status(
    entry: CorpusEntry, loaded: bool = False, reason: str | None = None,
    analysis_error: str | None = None,
) -> dict:
    status = {"file": entry.id, "loaded": loaded, "style": entry.style, "split": entry.split}
    if reason is not None:
        status["reason"] = reason
    if analysis_error is not None:
        status["analysis_error"] = analysis_error
    return status


def _one_line(e: Exception, path: str) -> str:
    """A one-line reason without the file's path (the report names the file)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = text.replace(f" in {path}", "").replace(f" {path}:", ":").replace(f": {path}", "")
    text = text.replace(path, "<file>")
    if not isinstance(e, MusicFileError):
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text[:MAX_REASON_CHARS]


def _write_chunk(job: _Job, songs: list[Song], statuses: list[dict]) -> None:
    """The shard first, then its sidecar: a sidecar means a finished shard."""
    out_dir = Path(job.out_dir)
    write_shard(songs, out_dir / f"{job.name}.npz")
    _write_json(out_dir / f"{job.name}.json", {"shard": f"{job.name}.npz", "files": statuses})


# -- report ------------------------------------------------------------------------------------


def _report(
    statuses: list[dict], settings: dict, out_dir: Path, ignored: int, seconds: float,
    files_parsed: int, shards: dict,
) -> dict:
    skipped = [{"file": s["file"], "reason": s["reason"]} for s in statuses if not s["loaded"]]
    analysis_errors = [
        {"file": s["file"], "reason": s["analysis_error"]}
        for s in statuses if s.get("analysis_error")
    ]
    report = {
        "source": settings["source"],
        "out_dir": str(out_dir),
        "settings": settings,
        "found": len(statuses),
        "loaded": len(statuses) - len(skipped),
        "skipped": len(skipped),
        "other_files_ignored": ignored,
        "skip_reasons": dict(Counter(s["reason"] for s in skipped).most_common()),
        "skipped_files": skipped,
        "analysis_errors": analysis_errors,
        "by_split": _counts(statuses, "split"),
        "shards": shards,
        "files_parsed": files_parsed,
        "seconds": round(seconds, 3),
        "files_per_s": round(files_parsed / seconds, 2) if files_parsed and seconds > 0 else None,
    }
    if settings["source"] == MUSIC21 or settings.get("corpus"):
        report["by_style"] = _counts(statuses, "style")
    return report


def _counts(statuses: list[dict], field: str) -> dict:
    counts: dict[str, dict[str, int]] = {}
    for s in statuses:
        c = counts.setdefault(str(s[field]), {"found": 0, "loaded": 0})
        c["found"] += 1
        c["loaded"] += int(s["loaded"])
    return dict(sorted(counts.items()))


def report_markdown(report: dict, max_listed: int = 200) -> str:
    """The human-readable report of a `prepare` run."""
    s = report["settings"]
    lines = [
        "# Prepared corpus",
        "",
        f"- source: `{report['source']}`",
        f"- grid: {s['steps_per_quarter']} steps per quarter; role map: `{s['role_map']}`; "
        f"analysis: {'on' if s['analyze'] else 'off'}",
        f"- files found: {report['found']}, loaded: {report['loaded']}, "
        f"skipped: {report['skipped']}"
        + (f" (other files ignored: {report['other_files_ignored']})"
           if report["other_files_ignored"] else ""),
        f"- shards: {report['shards']['total']} ({report['shards']['written']} written, "
        f"{report['shards']['reused']} reused from an earlier run)",
        f"- time: {report['seconds']:.1f} s for {report['files_parsed']} files parsed"
        + (f" ({report['files_per_s']:.1f} files/s)" if report["files_per_s"] else ""),
        "",
    ]
    for field in ("by_split", "by_style"):
        if field in report:
            title = field.replace("by_", "").capitalize()
            lines += [f"| {title} | found | loaded |", "|---|---:|---:|"]
            lines += [f"| {k} | {v['found']} | {v['loaded']} |" for k, v in report[field].items()]
            lines.append("")
    if report["skip_reasons"]:
        lines += ["## Why files were skipped", "", "| files | reason |", "|---:|---|"]
        lines += [f"| {n} | {_md(r)} |" for r, n in list(report["skip_reasons"].items())[:20]]
        lines += ["", "## Skipped files", ""]
        listed = report["skipped_files"]
        lines += [f"- `{x['file']}`: {_md(x['reason'])}" for x in listed[:max_listed]]
        if len(listed) > max_listed:
            lines.append(f"- … and {len(listed) - max_listed} more (see report.json)")
        lines.append("")
    if report["analysis_errors"]:
        reasons = Counter(x["reason"] for x in report["analysis_errors"])
        lines += [
            "## Analysis errors (songs kept without an analyzed plan)", "",
            "| files | reason |", "|---:|---|",
        ]
        lines += [f"| {n} | {_md(r)} |" for r, n in reasons.most_common(20)]
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _write_json(path: Path, value: dict) -> None:
    _write_text(path, json.dumps(value, indent=1, ensure_ascii=False) + "\n")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
