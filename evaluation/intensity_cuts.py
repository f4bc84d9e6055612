"""Measure the intensity cut points (`structdiff.data.arrange_tensor.INTENSITY_CUTS`, and
`BAND_INTENSITY_CUTS` for the band models): the terciles of the note density of every section of
the training split of one or more prepared corpora.

    .venv/bin/python evaluation/intensity_cuts.py [--prepared data/music21]
    .venv/bin/python evaluation/intensity_cuts.py --prepared data/band data/pop909 data/groove \
        data/game
"""

from __future__ import annotations

import argparse

import numpy as np

from structdiff.data.arrange_tensor import BAND_INTENSITY_CUTS, INTENSITY_CUTS, note_density
from structdiff.data.prepare import load_prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", nargs="+", default=["data/music21"])
    args = parser.parse_args()
    densities = []
    songs = (song for folder in args.prepared for song in load_prepared(folder, "train"))
    for song in songs:
        if song.plan is None:
            continue
        ends = song.bar_ends
        for s in song.plan.sections:
            last = min(s.start_bar + s.n_bars, song.n_bars) - 1
            if last >= s.start_bar:
                densities.append(note_density(song, int(song.bars[s.start_bar]), int(ends[last])))
    d = np.asarray(densities)
    cuts = np.quantile(d, [1 / 3, 2 / 3])
    print(f"{len(d)} sections; density quantiles 1/3, 2/3: {cuts[0]:.2f}, {cuts[1]:.2f} "
          f"(in use: {INTENSITY_CUTS}, band {BAND_INTENSITY_CUTS})")


if __name__ == "__main__":
    main()
