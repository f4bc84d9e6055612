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

from structdiff.analysis.chords import (
    QUALITIES,
    QUALITY_INTERVALS,
    pitch_class_segments,
    recognize_chords,
)
from structdiff.data.song import Chord, Song

# A seventh chord collapsed to its triad, for accuracy at the level of triads.
TRIAD_OF = {"dom7": "maj", "maj7": "maj", "min7": "min", "hdim7": "dim", "dim7": "dim"}
_HEADER_RE = re.compile(r"^([A-Za-z][A-Za-z ]*?):\s*(.*?)\s*$")


@dataclass
class ChoraleAccuracy:
    """Duration-weighted agreement of recognized chords with one analysis (fractions of steps)."""

    name: str  # analysis file stem, e.g. riemenschneider001
    score: str  # matched score file name, e.g. bwv269.mxl
    title: str
    quarter_notes: float  # analysed duration compared
    transposition: int  # semitones from the analysis to the score's key
    root: float
    root_quality: float
    triad_quality: float  # root and quality with sevenths collapsed to their triads
    bass: float
    unaligned_measures: list[int] = field(default_factory=list)  # placed on no score measure
    skipped_score_measures: int = 0  # score measures the analysis does not cover


def analysis_paths() -> list[Path]:
    """The Riemenschneider chorale analyses bundled with music21, sorted by number."""
    from music21 import common

    folder = common.getCorpusFilePath() / "bach" / "choraleAnalyses"
    return sorted(folder.glob("riemenschneider*.rntxt"))


def analysis_header(path: str | Path) -> dict[str, str]:
    """The metadata lines of a RomanText file (`Title`, `BWV`, `Analyst`, ...) before its first
    measure, the first value of each key."""
    header: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if re.match(r"^m\d", line):
            break
        m = _HEADER_RE.match(line)
        if m:
            header.setdefault(m.group(1).strip(), m.group(2))
    return header


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

    bwv = analysis_header(analysis).get("BWV")
    if not bwv:
        return None
    folder = common.getCorpusFilePath() / "bach"
    for name in score_candidates(bwv):
        if (folder / name).exists():
            return folder / name
    return None


def vocabulary_quality(intervals: set[int]) -> str:
    """The quality of our vocabulary nearest to a chord given as intervals above its root.

    Exact matches win; otherwise shared tones count 1 and tones on one side only -1/2 each
    (an It6 or a ninth chord goes to its nearest triad or seventh), ties to the simpler chord.
    """
    best, best_score = "maj", -np.inf
    for quality, ivs in QUALITY_INTERVALS.items():
        tones = set(ivs)
        score = len(tones & intervals) - 0.5 * len(tones ^ intervals)
        if score > best_score:
            best, best_score = quality, score
    return best


@dataclass
class RomanMeasure:
    """One measure of a RomanText analysis, chords relative to the measure's start."""

    number: int
    length: float  # quarter notes, as the analysis has it
    pickup: bool  # begins with left padding: its chords are anchored at the measure end
    # (offset qn in the measure, duration qn, root, quality, bass)
    chords: list[tuple[float, float, int, str, int]]


@dataclass
class ScoreMeasure:
    """A measure of the score; consecutive pieces with one number (a split bar) are one."""

    number: int
    offset: float  # quarter notes from the start of the score
    length: float


def read_roman_analysis(path: str | Path) -> list[RomanMeasure]:
    """The measures of a RomanText file with their chords mapped onto our vocabulary."""
    import music21

    parsed = music21.converter.parse(str(path), format="romanText")
    part = parsed.parts[0] if parsed.parts else parsed
    measures = []
    for measure in part.getElementsByClass(music21.stream.Measure):
        chords = []
        for rn in measure.getElementsByClass(music21.roman.RomanNumeral):
            root = rn.root().pitchClass
            quality = vocabulary_quality({(pc - root) % 12 for pc in rn.pitchClasses})
            chords.append(
                (float(rn.offset), float(rn.quarterLength), root, quality, rn.bass().pitchClass)
            )
        measures.append(
            RomanMeasure(
                number=int(measure.number),
                length=float(measure.duration.quarterLength),
                pickup=float(measure.paddingLeft or 0.0) > 0,
                chords=chords,
            )
        )
    return measures


def score_measures(score) -> list[ScoreMeasure]:
    """The measures of the first part of a music21 score, split bars joined."""
    from music21 import stream

    part = score.parts[0] if score.parts else score
    out: list[ScoreMeasure] = []
    for m in part.getElementsByClass(stream.Measure):
        offset, length = float(m.offset), float(m.duration.quarterLength)
        joins = out and out[-1].number == m.number
        if joins and abs(out[-1].offset + out[-1].length - offset) < 1e-6:
            out[-1].length += length
        else:
            out.append(ScoreMeasure(int(m.number), offset, length))
    return out


def lowest_pitch_classes(song: Song) -> np.ndarray:
    """Pitch class `[T]` of the lowest note sounding at each step, -1 where none sounds."""
    bounds = np.arange(song.end + 1)
    _, bass = pitch_class_segments(song, bounds)
    return np.where(bass.any(axis=1), bass.argmax(axis=1), -1)


def _placement(measure: RomanMeasure, slot: ScoreMeasure) -> float:
    """Start (qn) of the analysis measure when it is put on the score measure `slot`."""
    return slot.offset + (slot.length - measure.length if measure.pickup else 0.0)


def _measure_bass(measure: RomanMeasure, slot: ScoreMeasure, spq: int) -> tuple[int, np.ndarray]:
    """First step and bass pitch classes `[n]` (-1 unlabelled) of `measure` placed on `slot`."""
    start = _placement(measure, slot)
    lo, hi = round(slot.offset * spq), round((slot.offset + slot.length) * spq)
    bass = np.full(max(hi - lo, 0), -1, dtype=np.int64)
    for offset, duration, _, _, pc in measure.chords:
        a = max(round((start + offset) * spq), lo)
        b = min(round((start + offset + duration) * spq), hi)
        bass[a - lo : max(b, a) - lo] = pc
    return lo, bass


@dataclass
class Alignment:
    pairs: list[tuple[int, int]]  # (analysis measure index, score measure index)
    transposition: int  # semitones to add to the analysis to reach the score's key
    unmatched: list[int]  # numbers of analysis measures placed nowhere


def align_analysis(
    measures: list[RomanMeasure], slots: list[ScoreMeasure], lowest: np.ndarray, spq: int
) -> Alignment:
    """Put the analysis measures on score measures, in order, and find the transposition.

    Measure numbers alone fail where the score has measures the analysis lacks (a written-out
    repeat, instrumental interludes) or is printed in another key. So each analysis measure is
    placed on one score measure, monotonically, maximizing the steps on which the analysis bass
    agrees with the lowest sounding note (minus those on which it disagrees), for each of the 12
    transpositions; equal measure numbers break ties. Score measures may be left out freely;
    leaving out an analysis measure costs more than any placement.
    `lowest` is `[T]` from `lowest_pitch_classes`.
    """
    n_a, n_s = len(measures), len(slots)
    gain = np.zeros((12, n_a, n_s))
    for i, measure in enumerate(measures):
        for j, slot in enumerate(slots):
            lo, bass = _measure_bass(measure, slot, spq)
            seen = lowest[lo : lo + len(bass)]
            bass = bass[: len(seen)]
            labelled = bass >= 0
            for t in range(12):
                agree = int(((bass[labelled] + t) % 12 == seen[labelled]).sum())
                gain[t, i, j] = 2 * agree - int(labelled.sum())
            gain[:, i, j] += 0.5 * (measure.number == slot.number)
    skip_slot = 0.1
    best: Alignment | None = None
    best_total = -np.inf
    for t in range(12):
        skip_measure = [-(1.0 + spq * m.length) for m in measures]
        total = np.full((n_a + 1, n_s + 1), -np.inf)
        move = np.zeros((n_a + 1, n_s + 1), dtype=np.int8)  # 1 match, 2 skip slot, 3 skip measure
        total[0, 0] = 0.0
        for i in range(n_a + 1):
            for j in range(n_s + 1):
                if i == 0 and j == 0:
                    continue
                options = [
                    (total[i - 1, j - 1] + gain[t, i - 1, j - 1] if i and j else -np.inf, 1),
                    (total[i, j - 1] - skip_slot if j else -np.inf, 2),
                    (total[i - 1, j] + skip_measure[i - 1] if i else -np.inf, 3),
                ]
                total[i, j], move[i, j] = max(options)
        if total[n_a, n_s] > best_total:
            pairs, unmatched, i, j = [], [], n_a, n_s
            while i or j:
                if move[i, j] == 1:
                    pairs.append((i - 1, j - 1))
                    i, j = i - 1, j - 1
                elif move[i, j] == 2:
                    j -= 1
                else:
                    unmatched.append(measures[i - 1].number)
                    i -= 1
            best_total = total[n_a, n_s]
            best = Alignment(pairs[::-1], t, unmatched[::-1])
    assert best is not None
    return best


def reference_chords(
    measures: list[RomanMeasure], slots: list[ScoreMeasure], alignment: Alignment, spq: int
) -> list[Chord]:
    """The analysis chords on the score's timeline, in steps of `1 / spq` quarter notes.

    A measure that begins with a pickup's padding is anchored at the end of its score measure,
    any other at its start; chords are cut at the end of the score measure.
    """
    t = alignment.transposition
    chords = []
    for i, j in alignment.pairs:
        measure, slot = measures[i], slots[j]
        start, end = _placement(measure, slot), slot.offset + slot.length
        for offset, duration, root, quality, bass in measure.chords:
            onset = max(round((start + offset) * spq), round(slot.offset * spq))
            finish = min(round((start + offset + duration) * spq), round(end * spq))
            if finish > onset:
                root_t, bass_t = (root + t) % 12, (bass + t) % 12
                chords.append(Chord(onset, finish - onset, root_t, quality, bass_t))
    return chords


def chord_labels(chords: list[Chord], n_steps: int) -> np.ndarray:
    """Per-step labels `[T, 3]` (root, quality index, bass); -1 where no chord is given."""
    labels = np.full((n_steps, 3), -1, dtype=np.int64)
    for c in chords:
        lo, hi = max(c.onset, 0), min(c.onset + c.duration, n_steps)
        labels[lo:hi] = (c.root, QUALITIES.index(c.quality), c.bass)
    return labels


def _triad_index(quality_index: np.ndarray) -> np.ndarray:
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
    """Recognize the chords of the chorale that `analysis` analyses and compare them with it.

    None when the chorale is not in the corpus.
    """
    import music21

    from structdiff.data.score import song_from_music21

    path = find_score(analysis)
    if path is None:
        return None
    spq = steps_per_quarter
    parsed = music21.converter.parse(str(path))
    # the analyses follow the score as printed, repeats not written out
    song: Song = song_from_music21(parsed, spq, source=str(path), expand_repeats=False)
    measures, slots = read_roman_analysis(analysis), score_measures(parsed)
    alignment = align_analysis(measures, slots, lowest_pitch_classes(song), spq)
    reference = reference_chords(measures, slots, alignment, spq)
    scores = agreement(reference, recognize_chords(song), song.end)
    return ChoraleAccuracy(
        name=Path(analysis).stem,
        score=path.name,
        title=analysis_header(analysis).get("Title", ""),
        quarter_notes=scores.pop("steps") / spq,
        transposition=alignment.transposition,
        unaligned_measures=alignment.unmatched,
        skipped_score_measures=len(slots) - len(alignment.pairs),
        **scores,
    )


def overall(results: list[ChoraleAccuracy]) -> dict[str, float]:
    """Accuracies over all chorales together, each quarter note weighing the same."""
    weights = np.array([r.quarter_notes for r in results], dtype=np.float64)
    total = weights.sum()
    out: dict[str, float] = {"quarter_notes": float(total)}
    for metric in ("root", "root_quality", "triad_quality", "bass"):
        values = np.array([getattr(r, metric) for r in results])
        out[metric] = float((values * weights).sum() / total) if total else float("nan")
    return out


def markdown_table(results: list[ChoraleAccuracy], unmatched: list[str]) -> str:
    """Per-chorale and overall accuracies (duration-weighted) as a Markdown report."""
    lines = [
        "| analysis | score | title | transposed | qn | root | root+quality | triad quality "
        "| bass |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.score} | {r.title} | {r.transposition:+d} | {r.quarter_notes:g} | "
            f"{r.root:.3f} | {r.root_quality:.3f} | {r.triad_quality:.3f} | {r.bass:.3f} |"
        )
    o = overall(results)
    lines.append(
        f"| **overall** | {len(results)} chorales | | | {o['quarter_notes']:g} | "
        f"**{o['root']:.3f}** | **{o['root_quality']:.3f}** | **{o['triad_quality']:.3f}** | "
        f"**{o['bass']:.3f}** |"
    )
    notes = []
    if unmatched:
        notes.append("Not matched to a score: " + ", ".join(unmatched) + ".")
    for r in results:
        if r.unaligned_measures:
            notes.append(f"{r.name}: analysis measures placed on no score measure: "
                         f"{r.unaligned_measures}.")
        if r.skipped_score_measures:
            notes.append(f"{r.name} ({r.score}): {r.skipped_score_measures} score measures "
                         "not analysed (written-out repeats, interludes).")
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")
