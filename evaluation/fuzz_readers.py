"""Fuzz the readers with many mutated real files and report what happened (issue 14, point 7).

    .venv/bin/python evaluation/fuzz_readers.py [--cases 2000] [--seed 0] [--out FILE.md]

The cases of `tests/fuzz/harness.py` (real seed files of each format, one to six random byte
edits each, MIDI chunk headers claiming other lengths among them), drawn with numpy from
`--seed`: per format, how many loaded, how many were refused with the typed error, and every
other outcome (an untyped exception or a case past the time limit) with its first line. Also
the slowest case and the process's peak memory. The test suite runs a few hundred such cases
through hypothesis (`tests/fuzz/test_fuzz_readers.py`).
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from structdiff.metrics.report import publish  # noqa: E402
from tests.fuzz.harness import OPS, TIME_LIMIT, mutate, run_case, seeds  # noqa: E402


def random_edits(rng: np.random.Generator) -> list[tuple[str, int, bytes]]:
    return [(OPS[rng.integers(len(OPS))], int(rng.integers(0, 2**31)),
             rng.bytes(int(rng.integers(0, 9)))) for _ in range(int(rng.integers(1, 7)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="cases per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows, found = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (suffix, seed) in seeds(Path(tmp)).items():
            outcomes: collections.Counter = collections.Counter()
            slowest = 0.0
            for _ in tqdm(range(args.cases), desc=kind, unit="case"):
                data = mutate(seed, random_edits(rng))
                began = time.perf_counter()
                try:
                    outcomes[run_case(kind, suffix, data, Path(tmp))] += 1
                except Exception as e:  # a bug found: record it, go on
                    first = (str(e).strip().splitlines() or [""])[0][:120]
                    outcomes["other"] += 1
                    found.append(f"{kind}: {type(e).__name__}: {first}")
                slowest = max(slowest, time.perf_counter() - began)
            rows.append((kind, outcomes, slowest))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "# Fuzzing the readers with mutated real files",
        "",
        f"`.venv/bin/python evaluation/fuzz_readers.py --cases {args.cases} --seed {args.seed}`"
        f": {args.cases} cases per format, one to six random byte edits of a real seed file "
        f"each (`tests/fuzz/harness.py`), {TIME_LIMIT:.0f} s allowed per case.",
        "",
        "| format | cases | loaded | refused (typed error) | other (bugs) | slowest case s |",
        "|---|---|---|---|---|---|",
        *[f"| {k} | {sum(o.values())} | {o['loaded']} | {o['refused']} | {o['other']} | "
          f"{s:.2f} |" for k, o, s in rows],
        "",
        f"Peak memory of the process: {peak:.0f} MB.",
        "",
        "Other outcomes:" if found else "No other outcome: every case loaded or was refused "
        "with its reader's typed error.",
        *[f"- {c} x {f}" for f, c in collections.Counter(found).most_common()],
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
