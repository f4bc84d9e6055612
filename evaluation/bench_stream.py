"""Training windows from a prepared corpus, in memory against streamed: peak memory and speed.

    .venv/bin/python evaluation/bench_stream.py data/pop909 [data/game ...] [--windows 4096]
        [--role-map band] [--buffer-shards 4] [--limit N ...] [--out FILE.md]

Each row is a fresh process that builds the arranger's data module (`ArrangeDataModule`) on the
prepared folders, sets it up and draws `--windows` training windows through its DataLoader:

- `memory`: every song of the train split encoded up front (the default), with `--limit N`
  songs per folder and split for each N given, to show how memory grows with the corpus;
- `stream`: `--data.stream true` (`structdiff.training.streaming`): the shards read as the
  windows are drawn, `--buffer-shards` at a time.

Reported: seconds to set up, windows/s, and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from structdiff.metrics.report import publish

RUN = """
import json, resource, sys, time
from structdiff.training.arranger_data import ArrangeDataModule
args = json.loads(sys.argv[1])
t = time.perf_counter()
dm = ArrangeDataModule(args["prepared"], role_map=args["role_map"], batch_size=32,
                       windows_per_epoch=args["windows"], val_windows=64, limit=args["limit"],
                       stream=args["stream"], buffer_shards=args["buffer_shards"])
dm.setup()
setup = time.perf_counter() - t
songs = sum(len(e) for e in dm.examples.values())
t = time.perf_counter()
n = sum(len(batch["style"]) for batch in dm.train_dataloader())
draw = time.perf_counter() - t
print(json.dumps({"setup": setup, "windows": n, "draw": draw, "songs_held": songs,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(prepared: list[str], role_map: str | None, windows: int, limit: int, stream: bool,
        buffer_shards: int) -> dict:
    args = {"prepared": prepared, "role_map": role_map, "windows": windows, "limit": limit,
            "stream": stream, "buffer_shards": buffer_shards}
    out = subprocess.run([sys.executable, "-c", RUN, json.dumps(args)], capture_output=True,
                         text=True, env={"OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled",
                                         "PATH": "/usr/bin:/bin"})
    if out.returncode:
        raise SystemExit(f"bench_stream: a run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prepared", nargs="+", help="prepared corpus folders")
    parser.add_argument("--windows", type=int, default=4096, help="training windows to draw")
    parser.add_argument("--role-map", default="band", help="the arranger's role map")
    parser.add_argument("--buffer-shards", type=int, default=4)
    parser.add_argument("--limit", type=int, action="append", default=[],
                        help="also run in memory with at most N songs per folder and split")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args()
    for folder in args.prepared:
        if not (Path(folder) / "manifest.json").is_file():
            parser.error(f"not a prepared corpus (no manifest.json): {folder}")

    rows = []
    for limit in [*sorted(args.limit), 0]:
        label = f"memory, {limit} songs per folder and split" if limit else "memory, every song"
        rows.append((label, run(args.prepared, args.role_map, args.windows, limit, False, 0)))
    rows.append((f"stream, {args.buffer_shards} shards held",
                 run(args.prepared, args.role_map, args.windows, 0, True, args.buffer_shards)))

    lines = [
        "# Training windows in memory and streamed",
        "",
        f"`.venv/bin/python evaluation/bench_stream.py {' '.join(args.prepared)} --windows "
        f"{args.windows} --role-map {args.role_map} --buffer-shards {args.buffer_shards}"
        + "".join(f" --limit {n}" for n in args.limit) + "`: one process per row, one thread.",
        "",
        "| data module | songs held after setup | setup s | windows/s | peak memory |",
        "|---|---|---|---|---|",
    ]
    for label, r in rows:
        lines.append(f"| {label} | {r['songs_held']:,} | {r['setup']:.1f} | "
                     f"{r['windows'] / r['draw']:.0f} | {r['peak_mb']:.0f} MB |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
