"""Section analysis against POP909's two human form labellings (issue 12, point 2).

    .venv/bin/python evaluation/sections_pop909.py /path/to/POP909 [--split test]
        [--out evaluation/results/sections_pop909.md]

Each song of the split is read with its annotated beats (`read_pop909`: bars on the true grid,
cut to the human form's bars), its plan removed, and its sections found by `segment` (its
MELODY track makes that `melody_sections`, whose few weights were tuned with `--split train`;
`recognize_chords` gives the chords the other path would use). Per-bar labels are scored
against each annotator's form (`human_label1.txt`, `human_label2.txt`, as written: upper
case melodic phrases, lower case non-melodic spans, `i`/`o` intro and outro):

- pairwise F1: pairs of bars sharing a label (`structdiff.metrics.structure.form_adherence`);
- boundary F1: section starts within +-1 bar (`mir_eval.segment.detection`, first and last
  boundary left out).

Beside ours: the trivial references (one label for every bar; a boundary every 4 bars) and the
two annotators against each other, the ceiling. Means over songs and both annotators. A song
whose human form `read_pop909` cannot place on its MIDI is skipped and listed (about a third:
the adapter's melody alignment is strict).
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace
from pathlib import Path

import mir_eval
import numpy as np

from structdiff.analysis.chords import recognize_chords
from structdiff.analysis.sections import labels_per_bar, segment
from structdiff.data.adapters.pop909 import Pop909Error, read_forms, read_pop909
from structdiff.data.song import MusicFileError, Section
from structdiff.metrics.report import publish
from structdiff.metrics.structure import form_adherence

sys.path.insert(0, str(Path(__file__).parent))
from pop909_split import parse_args, score_split  # noqa: E402


def _intervals(labels: list[str]) -> np.ndarray:
    """Section intervals `[S, 2]` in bars of per-bar labels (a new section where it changes)."""
    starts = [0] + [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    ends = starts[1:] + [len(labels)]
    return np.array(list(zip(starts, ends)), dtype=float)


def boundary_f1(reference: list[str], estimate: list[str]) -> float:
    ref, est = _intervals(reference), _intervals(estimate)
    if len(ref) < 2 and len(est) < 2:
        return 1.0
    return mir_eval.segment.detection(ref, est, window=1.0, trim=True)[2]


def _labels(sections: list[Section], n_bars: int) -> list[str]:
    return labels_per_bar(sections)[:n_bars]


def score_song(folder: Path) -> dict:
    song = read_pop909(folder)
    forms = read_forms(folder)
    n = min([song.n_bars] + [sum(s.n_bars for s in f) for f in forms])
    humans = [_labels(f, n) for f in forms]
    bare = replace(song, plan=None)
    sections, _ = segment(bare, recognize_chords(bare))
    candidates = {
        "ours": _labels(sections, n),
        "one label": ["A"] * n,
        "a boundary every 4 bars": [f"S{i // 4}" for i in range(n)],
    }
    out = {name: (np.mean([form_adherence(h, labels) for h in humans]),
                  np.mean([boundary_f1(h, labels) for h in humans]))
           for name, labels in candidates.items()}
    out["the other annotator"] = (form_adherence(humans[0], humans[1]),
                                  boundary_f1(humans[0], humans[1]))
    out["sections"] = len(_intervals(candidates["ours"]))
    out["human sections"] = statistics.mean(len(_intervals(h)) for h in humans)
    return out


def main() -> None:
    args = parse_args(__doc__)
    rows, failed = score_split(args, score_song, "finding sections",
                               (OSError, ValueError, Pop909Error, MusicFileError))
    names = ("ours", "one label", "a boundary every 4 bars", "the other annotator")
    lines = [
        f"# Sections of POP909 songs against the human forms ({args.split} split, "
        f"{len(rows)} songs)",
        "",
        f"`.venv/bin/python evaluation/sections_pop909.py POP909 --split {args.split}` "
        "(bars on the annotated beats; the means over songs and both annotators).",
        "",
        "| labelling | pairwise F1 | boundary F1 (+-1 bar) |",
        "|---|---|---|",
    ]
    for name in names:
        lines.append(f"| {name} | {statistics.mean(r[name][0] for r in rows):.3f} | "
                     f"{statistics.mean(r[name][1] for r in rows):.3f} |")
    lines += ["", f"Sections per song: ours {statistics.mean(r['sections'] for r in rows):.1f}, "
              f"human {statistics.mean(r['human sections'] for r in rows):.1f}. "
              f"Skipped: {len(failed)}."]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
