"""Cold start of the command line against `import torch` (issue 14, point 4).

    .venv/bin/python evaluation/bench_cold_start.py [--repeats 7] [--out FILE.md]

Runs, alternately and each as a fresh process, `python -c "import torch"` and `structdiff
generate --bars 32 --no-png --no-wav` (the shipped models, imports, planning, arranging and
writing the MIDI file included), and reports the median wall seconds of each, their ratio (the
issue's bar: <= 2.2) and, from `python -X importtime` of one generate run, the modules that
cost the most to import. Run it on an idle machine: another busy process inflates both sides.
A first generate run, not timed, warms the file cache and writes structdiff's bytecode (even
where PYTHONDONTWRITEBYTECODE is set), so that both sides import compiled modules, as after any
first run on a user's machine.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from structdiff.metrics.report import publish

CLI = [sys.executable, "-m", "structdiff.cli", "generate", "--bars", "32", "--no-png",
       "--no-wav"]


def wall(cmd: list[str], env: dict | None = None) -> float:
    began = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - began


def caching_env() -> dict:
    """This environment without PYTHONDONTWRITEBYTECODE: the warm-up run caches structdiff's
    bytecode as Python does by default (pip compiled torch's and every other package's at
    install). With the variable set, as in this project's sandbox, each generate would compile
    structdiff's modules anew: 0.3-0.4 s a run, measured, that no user pays twice."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def top_imports(out: Path, n: int = 8) -> list[tuple[str, float]]:
    """The `n` top-level imports (those no other import of the run pulled in) that took longest,
    cumulative seconds, of one `generate` run under `-X importtime`."""
    run = subprocess.run([*CLI[:1], "-X", "importtime", *CLI[1:], "--out", str(out)],
                         capture_output=True, text=True, check=True)
    rows = []
    for line in run.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m:  # top level: no indentation before the name
            rows.append((m.group(2), int(m.group(1)) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch_s, cli_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "song.mid"
        wall([sys.executable, "-c", "import torch"])  # warm the file cache for both
        wall([*CLI, "--out", str(out)], env=caching_env())  # and write structdiff's .pyc
        for _ in range(args.repeats):
            torch_s.append(wall([sys.executable, "-c", "import torch"]))
            cli_s.append(wall([*CLI, "--out", str(out)]))
        imports = top_imports(out)
    t, c = statistics.median(torch_s), statistics.median(cli_s)
    lines = [
        "# Cold start: `structdiff generate` against `import torch`",
        "",
        f"`.venv/bin/python evaluation/bench_cold_start.py --repeats {args.repeats}` on "
        f"{os.cpu_count()} cores, each command a fresh process, run alternately; median wall "
        "seconds. A first generate run (not timed) caches structdiff's bytecode, as any first "
        "run does"
        + (" (this environment sets PYTHONDONTWRITEBYTECODE, which that run leaves out)"
           if "PYTHONDONTWRITEBYTECODE" in os.environ else "") + ".",
        "",
        "| command | median s | runs |",
        "|---|---|---|",
        f"| `python -c \"import torch\"` | {t:.2f} | {', '.join(f'{x:.2f}' for x in torch_s)} |",
        f"| `structdiff generate --bars 32 --no-png --no-wav` | {c:.2f} | "
        f"{', '.join(f'{x:.2f}' for x in cli_s)} |",
        "",
        f"Ratio: **{c / t:.2f}** (bar: <= 2.2).",
        "",
        "Costliest top-level imports of one generate run (`-X importtime`, cumulative s):",
        "",
        *[f"- `{name}`: {s:.2f}" for name, s in imports],
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
