"""Judge songs already written (MIDI folders, e.g. what `evaluation/musicianship_arrangers.py
--songs-out` wrote) by the same protocol, without writing them again: the classifier
two-sample test against the first `--n` test-split Bach chorales, the rows of issue 11's
table within its bar, and MusPy OA. The plans the ruler measures off-chord notes against come
from the files (structdiff writes each song's chords and sections into its MIDI); a file
without them is analyzed.

    .venv/bin/python evaluation/musicianship_judge.py --songs "shipped=out/exp/songs/shipped"

Prints one table row per folder (the columns of `musicianship_arrangers.py`'s) and writes
every feature's means to `--out` (JSON) if given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from structdiff.metrics.musicianship import two_sample_test

sys.path.insert(0, str(Path(__file__).parent))
from musicianship import chorale_sets, features, song_folder  # noqa: E402
from musicianship_arrangers import ROWS, muspy_oa, table_row, within  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", action="append", required=True,
                        help="LABEL=FOLDER of MIDI files (repeatable)")
    parser.add_argument("--n", type=int, default=36, help="test chorales (default 36)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    real, _ = chorale_sets(args.n, 32, generate=False)
    fr = features(real)
    results = {}
    for spec in args.songs:
        try:
            label, folder, songs = song_folder(spec)
        except ValueError as error:
            parser.error(str(error))
        test = two_sample_test(fr, features(songs))
        means = test["means"]
        rows_ok = sum(within(means[r]["reference"], means[r]["generated"]) for r in ROWS)
        oa, each, interval = muspy_oa(real, songs)
        results[label] = {"folder": folder, "songs": len(songs), "logistic": test["logistic"],
                          "trees": test["trees"], "shuffled": test["shuffled"],
                          "means": means, "rows_within": rows_ok, "muspy_oa": oa,
                          "muspy_oa_each": each, "muspy_oa_ci": interval}
        print(table_row(label, test, rows_ok, oa), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
