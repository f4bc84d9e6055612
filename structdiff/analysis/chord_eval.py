"""Chord recognition measured against expert Roman-numeral analyses.

The reference is the set of Bach chorale analyses in RomanText (`.rntxt`) shipped with
music21 (`bach/choraleAnalyses/riemenschneider*.rntxt`). Each analysis is matched to its
chorale score in the music21 corpus by the BWV number in its header, put on the score's
timeline measure by measure, and compared with `recognize_chords` step by step, so that every
accuracy is weighted by duration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from structdiff.analysis.chords import QUALITY_INTERVALS, recognize_chords
from structdiff.data.song import Chord, Song

# A seventh chord collapsed to its triad, for accuracy at the level of triads.
TRIAD_OF = {"dom7": "maj", "maj7": "maj", "min7": "min", "hdim7": "dim", "dim7": "dim"}
_BWV_RE = re.compile(r"^BWV:\s*(\S+)", re.MULTILINE)
_TITLE_RE = re.compile(r"^Title:\s*(.+?)\s*$", re.MULTILINE)


@dataclass
class ChoraleAccuracy:
    """Duration-weighted agreement of recognized chords with one analysis (fractions of steps)."""

    name: str  # analysis file stem, e.g. riemenschneider001
    score: str  # matched score file name, e.g. bwv269.mxl
    title: str
    steps: int  # analysed steps compared
    root: float
    root_quality: float
    triad_quality: float  # root and quality with sevenths collapsed to their triads
    bass: float
    unaligned_measures: list[int] = field(default_factory=list)  # numbers not found in the score


def analysis_paths() -> list[Path]:
    """The Riemenschneider chorale analyses bundled with music21, sorted by number."""
    from music21 import common

    folder = common.getCorpusFilePath() / "bach" / "choraleAnalyses"
    return sorted(folder.glob("riemenschneider*.rntxt"))


def header_field(path: str | Path, pattern: re.Pattern) -> str | None:
    m = pattern.search(Path(path).read_text(encoding="utf-8", errors="replace"))
    return m.group(1) if m else None


def score_candidates(bwv: str) -> list[str]:
    """Corpus file names a BWV catalogue number may have, most specific first.

    `248(2).12` (part 2, movement 12 of a cycle) is `bwv248.12-2.mxl`; a trailing letter such as
    in `41.6s` marks a variant of `bwv41.6.mxl`.
    """
    m = re.fullmatch(r"(\d+)(?:\((\d+)\))?(?:\.(\d+))?([a-z]*)", bwv.strip())
    if not m:
        return []
    work, part, movement, suffix = m.groups()
    stem = f"bwv{work}.{movement}" if movement else f"bwv{work}"
    names = []
    if part:
        names.append(f"{stem}-{part}")
    if suffix:
        names.append(f"{stem}-{suffix}")
    names.append(stem)
    return [f"{n}.mxl" for n in names]


def find_score(analysis: str | Path) -> Path | None:
    """The chorale score in the music21 corpus that `analysis` analyses, or None."""
    from music21 import common

    bwv = header_field(analysis, _BWV_RE)
    if bwv is None:
        return None
    folder = common.getCorpusFilePath() / "bach"
    for name in score_candidates(bwv):
        if (folder / name).exists():
            return folder / name
    return None


def measure_spans(stream_part) -> dict[int, tuple[float, float, float]]:
    """`{measure number: (offset, duration, left padding)}` in quarter notes, first occurrence."""
    from music21 import stream

    spans: dict[int, tuple[float, float, float]] = {}
    for m in stream_part.getElementsByClass(stream.Measure):
        if m.number not in spans:
            pad = float(m.paddingLeft or 0.0)
            spans[m.number] = (float(m.offset), float(m.duration.quarterLength), pad)
    return spans


def vocabulary_quality(intervals: set[int]) -> str:
    """The quality of our vocabulary nearest to a chord given as intervals above its root.

    Exact matches win; otherwise shared tones count 1 and tones only on one side -1/2 each
    (an It6 or a ninth chord goes to its nearest triad or seventh), ties to the simpler chord.
    """
    best, best_score = "maj", -np.inf
    for quality, ivs in QUALITY_INTERVALS.items():
        tones = set(ivs)
        score = len(tones & intervals) - 0.5 * len(tones ^ intervals)
        if score > best_score:
            best, best_score = quality, score
    return best


def reference_chords(
    analysis: str | Path, score_measures: dict[int, tuple[float, float, float]], spq: int
) -> tuple[list[Chord], list[int]]:
    """The chords of a RomanText analysis on the timeline of its score, in steps of `1/spq` qn.

    Each Roman numeral is placed by its measure number: a measure with a pickup's left padding
    is anchored at the end of the score's measure, any other at its start, so pickups and
    numbering line up even where the two files disagree on the length of a partial measure.
    Returns the chords and the analysis measure numbers missing from the score.
    """
    import music21

    parsed = music21.converter.parse(str(analysis), format="romanText")
    part = parsed.parts[0] if parsed.parts else parsed
    chords, missing = [], []
    for measure in part.getElementsByClass(music21.stream.Measure):
        if measure.number not in score_measures:
            missing.append(measure.number)
            continue
        offset, length, _ = score_measures[measure.number]
        own = float(measure.duration.quarterLength)
        shift = offset + (length - own if float(measure.paddingLeft or 0.0) > 0 else 0.0)
        end = offset + length
        for rn in measure.getElementsByClass(music21.roman.RomanNumeral):
            start = shift + float(rn.offset)
            stop = min(start + float(rn.duration.quarterLength), end)
            onset, finish = round(start * spq), round(stop * spq)
            if finish <= onset:
                continue
            root = rn.root().pitchClass
            intervals = {(pc - root) % 12 for pc in rn.pitchClasses}
            quality = vocabulary_quality(intervals)
            chords.append(Chord(onset, finish - onset, root, quality, rn.bass().pitchClass))
    return chords, missing


def chord_labels(chords: list[Chord], n_steps: int) -> np.ndarray:
    """Per-step labels `[T, 3]` (root, quality index, bass); -1 where no chord is given."""
    from structdiff.analysis.chords import QUALITIES

    labels = np.full((n_steps, 3), -1, dtype=np.int64)
    for c in chords:
        lo, hi = max(c.onset, 0), min(c.onset + c.duration, n_steps)
        labels[lo:hi] = (c.root, QUALITIES.index(c.quality), c.bass)
    return labels


def _triad_index(quality_index: np.ndarray) -> np.ndarray:
    from structdiff.analysis.chords import QUALITIES

    table = np.array([QUALITIES.index(TRIAD_OF.get(q, q)) for q in QUALITIES])
    return np.where(quality_index >= 0, table[np.maximum(quality_index, 0)], -1)


def agreement(reference: list[Chord], predicted: list[Chord], n_steps: int) -> dict[str, float]:
    """Duration-weighted agreement over the steps that `reference` labels.

    Returns `{"steps", "root", "root_quality", "triad_quality", "bass"}` (fractions of steps;
    nan when the reference labels no step).
    """
    ref, pred = chord_labels(reference, n_steps), chord_labels(predicted, n_steps)
    labelled = ref[:, 0] >= 0
    n = int(labelled.sum())
    if n == 0:
        nan = float("nan")
        return {"steps": 0, "root": nan, "root_quality": nan, "triad_quality": nan, "bass": nan}
    ref, pred = ref[labelled], pred[labelled]
    root = ref[:, 0] == pred[:, 0]
    quality = ref[:, 1] == pred[:, 1]
    triad = _triad_index(ref[:, 1]) == _triad_index(pred[:, 1])
    return {
        "steps": n,
        "root": float(root.mean()),
        "root_quality": float((root & quality).mean()),
        "triad_quality": float((root & triad).mean()),
        "bass": float((ref[:, 2] == pred[:, 2]).mean()),
    }


def evaluate_analysis(analysis: str | Path, steps_per_quarter: int = 4) -> ChoraleAccuracy | None:
    """Recognize the chords of the chorale that `analysis` analyses and compare; None if the
    chorale is not in the corpus."""
    import music21

    from structdiff.data.score import song_from_music21

    path = find_score(analysis)
    if path is None:
        return None
    parsed = music21.converter.parse(str(path))
    song: Song = song_from_music21(parsed, steps_per_quarter, source=str(path))
    measures = measure_spans(parsed.parts[0])
    reference, missing = reference_chords(analysis, measures, steps_per_quarter)
    scores = agreement(reference, recognize_chords(song), song.end)
    return ChoraleAccuracy(
        name=Path(analysis).stem,
        score=path.name,
        title=header_field(analysis, _TITLE_RE) or "",
        unaligned_measures=missing,
        **scores,
    )


def overall(results: list[ChoraleAccuracy]) -> dict[str, float]:
    """Accuracies over all chorales together, each step weighing the same."""
    steps = np.array([r.steps for r in results], dtype=np.float64)
    total = steps.sum()
    out: dict[str, float] = {"steps": int(total)}
    for metric in ("root", "root_quality", "triad_quality", "bass"):
        values = np.array([getattr(r, metric) for r in results])
        out[metric] = float((values * steps).sum() / total) if total else float("nan")
    return out


def markdown_table(results: list[ChoraleAccuracy], unmatched: list[str]) -> str:
    """Per-chorale and overall accuracies as a Markdown report."""
    head = (
        "| analysis | score | title | qn | root | root+quality | triad quality | bass |\n"
        "|---|---|---|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    spq = 4
    for r in results:
        rows.append(
            f"| {r.name} | {r.score} | {r.title} | {r.steps / spq:g} | {r.root:.3f} | "
            f"{r.root_quality:.3f} | {r.triad_quality:.3f} | {r.bass:.3f} |"
        )
    o = overall(results)
    rows.append(
        f"| **overall** | {len(results)} chorales | | {o['steps'] / spq:g} | **{o['root']:.3f}** | "
        f"**{o['root_quality']:.3f}** | **{o['triad_quality']:.3f}** | **{o['bass']:.3f}** |"
    )
    notes = []
    if unmatched:
        notes.append("Not matched to a score: " + ", ".join(unmatched) + ".")
    for r in results:
        if r.unaligned_measures:
            notes.append(f"{r.name}: analysis measures not in the score: {r.unaligned_measures}.")
    return head + "\n".join(rows) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")
