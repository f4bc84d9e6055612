"""What the POP909 evaluations share (`beat_grid.py`, `chord_pop909.py`, `sections_pop909.py`):
their command line (the corpus folder, `--split`, `--out`) and a scoring pass over the songs of
one split (`datasets/pop909/<split>.txt`) that skips and lists a song that fails."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm


def parse_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("pop909", type=Path)
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"))
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def score_split(args: argparse.Namespace, score_song: Callable[[Path], dict], desc: str,
                errors: tuple[type[Exception], ...] = (OSError, ValueError, RuntimeError)
                ) -> tuple[list[dict], list[str]]:
    """`score_song(folder)` of every song of the split, and `id: reason` of the ones that
    raised one of `errors` (also printed to stderr)."""
    ids = [line.split("/")[1].strip() for line in
           Path(f"datasets/pop909/{args.split}.txt").read_text().splitlines() if line.strip()]
    rows, failed = [], []
    for i in tqdm(ids, desc=desc, unit="song"):
        try:
            rows.append(score_song(args.pop909 / i))
        except errors as e:
            failed.append(f"{i}: {e}")
    for line in failed:
        print(f"skipped {line}", file=sys.stderr)
    return rows, failed
