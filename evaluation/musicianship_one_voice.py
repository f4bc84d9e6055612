"""Experiment (issue 11, part 2): can the arranger place one voice against three real ones?

For each of the 36 test-split Bach chorales (`evaluation/musicianship.py`'s chorale set), the
alto is written anew by an arranger with soprano, tenor and bass known (`generate
--regenerate alto`, on the chorale's analyzed plan), and the chords' texture is measured
against the real alto's: if the network had learned how voices fill a chord together, the
new alto would complete the chords the other three leave open.

    OMP_NUM_THREADS=1 .venv/bin/python evaluation/musicianship_one_voice.py \\
        "gaussian|structdiff/models/weights|20|0" "masked|out/exp/arranger_masked|20|0|random"

An argument is `label|arranger folder|steps|harmony[|order|resample]` (the last two: a masked
arranger's unmasking order and Gibbs rounds). Prints one row per arranger.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from structdiff.metrics.musicianship import FEATURE_NAMES
from structdiff.pipeline.arrange import arrange, load_arranger

sys.path.insert(0, str(Path(__file__).parent))
from musicianship import chorale_sets, features  # noqa: E402

SHOWN = ("thin_chords", "bare_dyads", "shared_pitch", "voice_crossing", "parallel_octaves",
         "step_motion")


def _means(feats) -> list[float]:
    rows = np.concatenate([f for f in feats if len(f)])
    return [float(np.nanmean(rows[:, FEATURE_NAMES.index(n)])) for n in SHOWN]


def main() -> None:
    real, _ = chorale_sets(36, 32, generate=False)
    real = [s for s in real if {"soprano", "alto", "tenor", "bass"} <= set(s.roles)]
    print(f"| alto written by | {' | '.join(SHOWN)} |")
    print(f"| Bach's own alto ({len(real)} chorales) | "
          f"{' | '.join(f'{v:.3f}' for v in _means(features(real)))} |")
    for spec in sys.argv[1:]:
        label, folder, steps, harmony, order, resample = (spec.split("|") + [""] * 6)[:6]
        bundle = load_arranger(folder)
        if order:
            bundle.meta["order"] = order
        if resample:
            bundle.meta["resample"] = int(resample)
        new = []
        for i, song in enumerate(real):
            roles = [r for r in bundle.roles if r in song.roles]
            notes = arrange(bundle, song, song.plan, roles, seed=i, steps=int(steps),
                            harmony=float(harmony),
                            known_roles=tuple(r for r in roles if r != "alto"))
            tracks = [replace(t, notes=notes["alto"]) if t.role == "alto" else t
                      for t in song.tracks]
            new.append(replace(song, tracks=tracks))
        print(f"| {label} | {' | '.join(f'{v:.3f}' for v in _means(features(new)))} |",
              flush=True)


if __name__ == "__main__":
    main()
