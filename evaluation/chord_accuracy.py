"""Chord recognition against the 20 expert Roman-numeral analyses of Bach chorales in music21.

    .venv/bin/python evaluation/chord_accuracy.py [--out FILE.md]

Prints a Markdown table of duration-weighted root, root+quality, triad-level quality and bass
accuracy per chorale and overall; writes it to FILE.md when given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from structdiff.analysis.chord_eval import (
    analysis_paths,
    evaluate_analysis,
    markdown_table,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the Markdown report to this file")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    results, unmatched = [], []
    for path in analysis_paths():
        result = evaluate_analysis(path)
        if result is None:
            unmatched.append(path.name)
        else:
            results.append(result)
    if not results:
        print("no analysis could be matched to a chorale score", file=sys.stderr)
        return 2
    report = markdown_table(results, unmatched)
    report += f"\n{len(results)} chorales in {time.perf_counter() - began:.1f} s.\n"
    print(report, end="")
    if args.out:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(report, encoding="utf-8")
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
