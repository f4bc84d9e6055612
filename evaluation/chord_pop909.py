"""Chord recognition on real pop MIDI against POP909's chord annotations (issue 12, point 3).

    .venv/bin/python evaluation/chord_pop909.py /path/to/POP909 [--split test]
        [--out evaluation/results/chord_pop909.md]

Each song of the split (`datasets/pop909/<split>.txt`) is read as a user's file would be
(`read_midi`, so on the beat grid `structdiff.analysis.beats` finds) and its chords recognized
(`recognize_chords`); for comparison, also on the file's own grid. The chords go back to seconds
through the file's tempo map and are scored against `chord_midi.txt` on frames every 0.05 s where
the annotation is not `N`:

- root: the same root pitch class;
- root+triad: also the same triad class (maj: maj, 7, maj7, maj6; min: min, min7, min6; dim: dim,
  hdim7, dim7; aug; sus2; sus4). Our `sus` is a suspended fourth {X, X+5, X+7}; a suspended
  second {Y, Y+2, Y+7} is the same pitch classes on X = Y+7, so a sus2 frame counts as right
  when ours is the sus chord of those pitch classes (root and triad both).

Also the bass isn't scored: POP909's inversions (`maj/3`) are rare.

A third row scores our grid with every note weighing 1 (`LINE_WEIGHT` = 1, as before melodic
lines over an accompaniment were given less weight), to show what that weighting does.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
import symusic

from structdiff.analysis import chords
from structdiff.analysis.beats import Grid, _seconds, find_grid
from structdiff.analysis.chords import recognize_chords
from structdiff.data.midi import song_from_symusic
from structdiff.data.song import PITCH_CLASS_NAMES
from structdiff.metrics.report import publish

sys.path.insert(0, str(Path(__file__).parent))
from pop909_split import parse_args, score_split  # noqa: E402

FRAME = 0.05
_TRIAD = {"maj": "maj", "7": "maj", "maj7": "maj", "maj6": "maj", "9": "maj", "maj9": "maj",
          "min": "min", "min7": "min", "min6": "min", "minmaj7": "min", "min9": "min",
          "dim": "dim", "hdim7": "dim", "dim7": "dim", "aug": "aug",
          "sus2": "sus2", "sus4": "sus4", "sus4(b7)": "sus4"}
_OURS = {"maj": "maj", "dom7": "maj", "maj7": "maj", "min": "min", "min7": "min",
         "dim": "dim", "hdim7": "dim", "dim7": "dim", "aug": "aug", "sus": "sus4"}
_NAMES = {n: i for i, n in enumerate(PITCH_CLASS_NAMES)} | {
    "Db": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10, "Cb": 11, "Fb": 4, "E#": 5, "B#": 0}


def parse_label(label: str) -> tuple[int, str] | None:
    """(root pitch class, triad class) of an annotation like `C#:min7/b3`; None for `N` or a
    quality outside the triad classes."""
    if label == "N" or ":" not in label:
        return None
    root, quality = label.split(":", 1)
    triad = _TRIAD.get(quality.split("/")[0])
    if root not in _NAMES or triad is None:
        return None
    return _NAMES[root], triad


def _frames(truth: list[tuple[float, float, str]]) -> tuple[np.ndarray, list]:
    times, labels = [], []
    for start, end, label in truth:
        parsed = parse_label(label)
        if parsed is None:
            continue
        t = np.arange(start, end, FRAME)
        times.append(t)
        labels += [parsed] * len(t)
    return (np.concatenate(times) if times else np.zeros(0)), labels


def _ours_at(score, song, shift: int, frames: np.ndarray) -> list:
    """Our (root, triad class) at each frame time, None where no chord."""
    chords = recognize_chords(song)
    tpq, spq = int(score.ticks_per_quarter), song.steps_per_quarter
    onsets = _seconds(score, np.array([c.onset for c in chords]) * tpq // spq - shift)
    index = np.searchsorted(onsets, frames, side="right") - 1
    out = []
    for i in index:
        if i < 0:
            out.append(None)
            continue
        c = chords[i]
        out.append(None if c.quality == "N" else (int(c.root), _OURS[c.quality]))
    return out


def _right(truth: tuple[int, str], ours: tuple[int, str] | None) -> tuple[bool, bool]:
    if ours is None:
        return False, False
    if truth[1] == "sus2" and ours[1] == "sus4" and ours[0] == (truth[0] + 7) % 12:
        return True, True  # the same pitch classes
    root = ours[0] == truth[0]
    return root, root and ours[1] == truth[1]


def score_song(folder: Path) -> dict:
    score = symusic.Score(str(folder / f"{folder.name}.mid"))
    truth = []
    for line in (folder / "chord_midi.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            truth.append((float(parts[0]), float(parts[1]), parts[2]))
    frames, labels = _frames(truth)
    out = {"frames": len(frames)}
    grid = find_grid(score)
    for name, g in (("file", Grid()), ("ours", grid), ("unweighted", grid)):
        # ours: the song `read_midi` gives (shifted onto the beats found, bars and all)
        song = song_from_symusic(score, 4, source=str(folder), find_beats=name != "file")
        weight = chords.LINE_WEIGHT
        try:
            if name == "unweighted":
                chords.LINE_WEIGHT = 1.0
            ours = _ours_at(score, song, g.shift, frames)
        finally:
            chords.LINE_WEIGHT = weight
        right = np.array([_right(t, o) for t, o in zip(labels, ours)]).reshape(-1, 2)
        out[name] = right.mean(axis=0) if len(right) else np.array([np.nan, np.nan])
    return out


def main() -> None:
    args = parse_args(__doc__)
    rows, failed = score_split(args, score_song, "recognizing chords")

    def mean(name, k):  # frame-weighted over the split
        w = [r["frames"] for r in rows]
        return float(np.average([r[name][k] for r in rows], weights=w))

    lines = [
        f"# Chords of POP909's MIDI files ({args.split} split, {len(rows)} songs)",
        "",
        f"`.venv/bin/python evaluation/chord_pop909.py POP909 --split {args.split}`: "
        "`recognize_chords` against `chord_midi.txt`, frames every 0.05 s where it is not N, "
        f"{sum(r['frames'] for r in rows):,} frames (sus2 and sus4 as such, module docstring).",
        "",
        "| beat grid | root | root+triad |",
        "|---|---|---|",
        f"| the file's own | {mean('file', 0):.3f} | {mean('file', 1):.3f} |",
        f"| `find_grid` (what `read_midi` uses) | {mean('ours', 0):.3f} | "
        f"{mean('ours', 1):.3f} |",
        f"| `find_grid`, every note weighing 1 (no `LINE_WEIGHT`) | {mean('unweighted', 0):.3f} "
        f"| {mean('unweighted', 1):.3f} |",
        "",
        f"Per song, root accuracy on our grid: median "
        f"{statistics.median(r['ours'][0] for r in rows):.3f}, lowest "
        f"{min(r['ours'][0] for r in rows):.3f}. Skipped: {len(failed)}.",
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
