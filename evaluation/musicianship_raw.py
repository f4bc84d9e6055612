"""A classifier of another make than the ruler (issue 11: "our own classifier of a different
make is run on your output too; tuning to one feature list will not pass it").

The ruler (`structdiff.metrics.musicianship`) describes each 4-bar window by features a
music theorist would name. This one names nothing: each window is raw histograms of every
voice's melodic intervals (-12..12 semitones, clipped) and note durations (1..16 steps,
clipped), of the interval classes between each pair of voices at every onset, and of the
onsets' positions in the beat. Logistic regression (standardized, C 0.5) and gradient-boosted
trees, 5-fold cross-validation grouped by song, balanced accuracy; the logistic model's
largest coefficients say what it reads. Real: the first `--n` Bach chorales of the test split
(`evaluation/musicianship.py`'s set); generated: the MIDI files of each `--generated` folder
(`evaluation/musicianship_arrangers.py --songs-out` writes them).

    .venv/bin/python evaluation/musicianship_raw.py \\
        --generated "shipped=out/exp/songs/shipped" --out out/exp/raw.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from musicianship import chorale_sets, song_folder  # noqa: E402

VOICES, BARS = 4, 4


def window_histograms(song) -> np.ndarray:
    """One row of raw histograms per 4-bar window `[windows, 318]` (module docstring); the
    song's four highest pitched parts by mean pitch, missing ones left zero."""
    parts = sorted((t.notes for t in song.tracks if not t.is_drum and t.n_notes),
                   key=lambda n: -float(n[:, 2].mean()))[:VOICES]
    out = []
    for w in range(0, song.n_bars - BARS + 1, BARS):
        lo = int(song.bars[w])
        hi = int(song.bars[w + BARS]) if w + BARS < song.n_bars else int(song.end)
        feats, lines = [], []
        onset = np.zeros(hi - lo, bool)
        for n in parts:
            n = n[(n[:, 0] >= lo) & (n[:, 0] < hi)]
            n = n[np.argsort(n[:, 0], kind="stable")]
            iv = np.clip(np.diff(n[:, 2]), -12, 12)
            feats.append(np.bincount(iv + 12, minlength=25) / max(1, len(iv)))
            du = np.clip(n[:, 1], 1, 16)
            feats.append(np.bincount(du - 1, minlength=16) / max(1, len(du)))
            line = np.full(hi - lo, -1)
            for s, d, p, _ in n.tolist():
                line[s - lo: s - lo + d] = p
            lines.append(line)
            onset[n[:, 0] - lo] = True
        feats += [np.zeros(25), np.zeros(16)] * (VOICES - len(parts))
        for i in range(VOICES):
            for j in range(i + 1, VOICES):
                if j >= len(lines):
                    feats.append(np.zeros(12))
                    continue
                a, b = lines[i][onset], lines[j][onset]
                ok = (a >= 0) & (b >= 0)
                feats.append(np.bincount(np.abs(a[ok] - b[ok]) % 12, minlength=12)
                             / max(1, ok.sum()))
        beat = np.flatnonzero(onset) % 4
        feats.append(np.bincount(beat, minlength=4) / max(1, len(beat)))
        out.append(np.concatenate(feats))
    return np.array(out).reshape(-1, VOICES * 41 + 6 * 12 + 4)


def feature_names() -> list[str]:
    out = []
    for v in range(VOICES):
        out += [f"voice {v} interval {i - 12:+d}" for i in range(25)]
        out += [f"voice {v} duration {d + 1}" for d in range(16)]
    for i in range(VOICES):
        for j in range(i + 1, VOICES):
            out += [f"voices {i}-{j} interval class {c}" for c in range(12)]
    return out + [f"onsets at beat step {k}" for k in range(4)]


BLOCKS = ("intervals", "durations", "vertical", "beat")


def block_of(name: str) -> str:
    """Which of `BLOCKS` a feature (by `feature_names`) belongs to."""
    return ("intervals" if " interval " in name and name.startswith("voice ") else
            "durations" if " duration " in name else
            "vertical" if name.startswith("voices ") else "beat")


def logistic():
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=5000,
                                                              class_weight="balanced"))


def trees():
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05,
                                          class_weight="balanced", random_state=0)


def raw_test(real: list[np.ndarray], generated: list[np.ndarray], without: tuple = ()
             ) -> dict:
    """Balanced accuracy of both classifiers (song-grouped 5-fold CV) and the logistic
    model's eight largest coefficients: (feature, coefficient, real mean, generated mean).
    `without`: blocks of `BLOCKS` left out (what the classifier reads without them)."""
    names = feature_names()
    keep = np.array([block_of(n) not in without for n in names])
    names = [n for n, k in zip(names, keep) if k]
    real, generated = [a[:, keep] for a in real], [a[:, keep] for a in generated]
    sets = [a for a in real + generated if len(a)]
    X = np.concatenate(sets)
    y = np.concatenate([np.full(len(a), float(i >= len(real))) for i, a in
                        enumerate(real + generated) if len(a)])
    groups = np.concatenate([np.full(len(a), i) for i, a in enumerate(sets)])
    out = {}
    for name, make in (("logistic", logistic), ("trees", trees)):
        pred = np.zeros(len(y))
        for train, test in GroupKFold(5).split(X, y, groups):
            pred[test] = make().fit(X[train], y[train]).predict(X[test])
        out[name] = float(balanced_accuracy_score(y, pred))
    coef = logistic().fit(X, y)[-1].coef_[0]
    out["telling"] = [(names[i], round(float(coef[i]), 2), round(float(X[y == 0, i].mean()), 3),
                       round(float(X[y == 1, i].mean()), 3))
                      for i in np.argsort(-np.abs(coef))[:8]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generated", action="append", required=True,
                        help="LABEL=FOLDER of generated MIDI files (repeatable)")
    parser.add_argument("--n", type=int, default=36, help="test chorales (default 36)")
    parser.add_argument("--without", action="append", choices=BLOCKS, default=[],
                        help="leave a block of histograms out (repeatable): what gives the "
                        "songs away without it")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    real, _ = chorale_sets(args.n, 32, generate=False)
    fr = [window_histograms(s) for s in real]
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for spec in args.generated:
        try:
            label, folder, songs = song_folder(spec)
        except ValueError as error:
            parser.error(str(error))
        fg = [window_histograms(song) for song in songs]
        if args.without:
            label = f"{label} without {', '.join(args.without)}"
        results[label] = {"folder": folder, "songs": len(fg),
                          **raw_test(fr, fg, tuple(args.without))}
        r = results[label]
        print(f"{label}: logistic {r['logistic']:.2f}, trees {r['trees']:.2f}; reads "
              + "; ".join(f"{n} ({real_mean} vs {gen_mean})"
                          for n, _, real_mean, gen_mean in r["telling"][:4]), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
