"""A large corpus prepared and iterated: files/s per core and peak memory (issue 14, point 2).

    .venv/bin/python evaluation/bench_corpus.py ../shared/data --files 20000 [--workers 2]
        [--no-analyze] [--out FILE.md]

Real multi-track MIDI files (every .mid under the given folders: POP909, the game soundtracks,
the Groove drums) are linked into a scratch folder under new names until there are `--files`
of them (real files repeated when there are fewer; hard links, so no copy is made), then:

- `prepare` on `--workers` processes (with analysis unless `--no-analyze`): wall seconds,
  files/s, files/s per worker, and the peak resident memory of the main process and of the
  largest worker;
- iterating the prepared corpus (`load_prepared`, every song of every shard, notes counted):
  songs/s and the peak memory of that pass (a fresh process, so it is its own).

The scratch folder is removed at the end unless `--keep DIR` names one.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from structdiff.metrics.report import publish

ITERATE = """
import resource, sys, time
from structdiff.data.prepare import load_prepared
t = time.perf_counter(); n = notes = 0
for song in load_prepared(sys.argv[1]):
    n += 1; notes += sum(t.n_notes for t in song.tracks)
s = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:  # ru_maxrss carries the forking parent's size across exec; VmHWM is this program's own
    peak = next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(n, notes, s, peak)
"""


def link_corpus(sources: list[Path], folder: Path, n: int) -> int:
    """`n` files in `folder`, hard links (copies across devices) to the real MIDI files under
    `sources`, cycled; how many distinct real files there were."""
    real = sorted(p for src in sources for p in src.rglob("*") if p.suffix.lower() in
                  (".mid", ".midi") and p.is_file())
    if not real:
        raise SystemExit(f"no MIDI files under {', '.join(map(str, sources))}")
    for i in range(n):
        src = real[i % len(real)]
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        dst = sub / f"{i:06d}-{src.name}"
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    return len(real)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-analyze", action="store_true")
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from structdiff.data.prepare import prepare

    scratch = Path(tempfile.mkdtemp(prefix="bench_corpus_"))
    try:
        corpus, out = scratch / "in", args.keep or scratch / "out"
        corpus.mkdir()
        distinct = link_corpus(args.sources, corpus, args.files)
        began = time.perf_counter()
        report = prepare(corpus, out, workers=args.workers, analyze=not args.no_analyze,
                         progress=True)
        seconds = time.perf_counter() - began
        main_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        run = subprocess.run([sys.executable, "-c", ITERATE, str(out)], capture_output=True,
                             text=True, check=True)
        songs, notes, iter_s, iter_rss = run.stdout.split()
        songs, notes, iter_s, iter_rss = int(songs), int(notes), float(iter_s), int(iter_rss)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    rate = report["found"] / seconds
    step = "no analysis" if args.no_analyze else "with key, chord and section analysis"
    lines = [
        "# A large corpus, prepared and iterated",
        "",
        f"`.venv/bin/python evaluation/bench_corpus.py {' '.join(map(str, args.sources))} "
        f"--files {args.files} --workers {args.workers}"
        f"{' --no-analyze' if args.no_analyze else ''}`: {args.files:,} files linked from "
        f"{distinct:,} real MIDI files (repeated), on {os.cpu_count()} cores.",
        "",
        "| step | files or songs | seconds | per second | per second per worker | "
        "peak memory |",
        "|---|---|---|---|---|---|",
        f"| prepare ({step}) | {report['found']:,} found, {report['loaded']:,} loaded, "
        f"{report['skipped']} skipped | {seconds:.0f} | {rate:.1f} | "
        f"{rate / args.workers:.1f} | main {main_rss:.0f} MB, largest worker "
        f"{child_rss:.0f} MB |",
        f"| iterate (`load_prepared`, {notes:,} notes) | {songs:,} songs | {iter_s:.1f} | "
        f"{songs / iter_s:.0f} | {songs / iter_s:.0f} (one process) | {iter_rss / 1024:.0f} MB |",
        "",
        f"Shards: {report['shards']['total']}.",
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
