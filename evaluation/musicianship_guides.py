"""Experiment (issue 11): does the harmony guide make the chorales tell-apart? Two variants of
the classical set's default (`--harmony 2`, every off-chord tone penalized on every step):

- `relaxed`: off-chord tones cost a quarter as much off the beat, and the chord's minor
  seventh costs nothing (room for passing and neighbour tones and seventh chords);
- `h0`: no guide at all (`--harmony 0`).

    OMP_NUM_THREADS=1 .venv/bin/python evaluation/musicianship_guides.py relaxed|h0

Prints the classifier section for `evaluation/musicianship.py`'s chorale set (36 songs a
side). Results and verdict: evaluation/results/musicianship_guides.md. The relaxed guide lives
here only: it did not move the classifier, so it is not in the library.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import structdiff.pipeline.arrange as arrange_module
from structdiff.analysis.chords import CHORD_TONES, QUALITIES
from structdiff.metrics.musicianship import classifier_markdown, two_sample_test

sys.path.insert(0, str(Path(__file__).parent))
from musicianship import chorale_sets, features  # noqa: E402


def relaxed_bias(sp, vocab: int, pitch_low: int, strength: float,
                 n_special: int = arrange_module.N_SPECIAL, weak: float = 0.25) -> np.ndarray:
    """`harmony_bias` with a quarter of the penalty off the beat and the minor seventh free."""
    bias = np.zeros((sp.n_steps, vocab), dtype=np.float32)
    if strength == 0.0:
        return bias
    has = (sp.root < 12) & (sp.quality != QUALITIES.index("N"))
    pcs = (pitch_low + np.arange(vocab - n_special)) % 12
    tones = CHORD_TONES[sp.quality[has], sp.root[has]][:, pcs]
    tones = tones | (pcs[None, :] == ((sp.root[has] + 10) % 12)[:, None])
    penalty = np.where(sp.beat_start[has], strength, strength * weak)[:, None]
    bias[has, n_special:] = np.where(tones, 0.0, -penalty)
    return bias


def main() -> None:
    variant = sys.argv[1] if len(sys.argv) > 1 else "relaxed"
    if variant not in ("relaxed", "h0"):
        sys.exit(f"variant must be relaxed or h0, got {variant!r}")
    if variant == "relaxed":
        arrange_module.harmony_bias = relaxed_bias
    real, generated = chorale_sets(36, 32, harmony=0.0 if variant == "h0" else None)
    result = two_sample_test(features(real), features(generated))
    print(classifier_markdown(result, f"chorale, harmony guide: {variant}"))


if __name__ == "__main__":
    main()
