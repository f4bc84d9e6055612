"""Beats and bars of real MIDI: the file's own grid where it is credible, else one found from
the notes.

A MIDI file's ticks put beats at multiples of its ticks per quarter note, and its time
signature puts bars on them. Files exported from a performance or an audio transcription are
often off that grid: POP909's files follow their tempo maps exactly, but every true beat sits at
one fixed tick phase away from the file's beats (a median 0.22 quarter), and 617 of its 909 files
declare 1/4, which makes every beat a bar.

`find_grid` keeps the file's tempo map (the beat period) and asks the notes two questions:

- **Beat phase.** Every onset votes for its position within the quarter note, weighted by the
  note's length (long notes start on beats) and by being low (bass notes do too); the phase with
  the most weight near it is the beat. The file's phase is kept unless another one carries
  clearly more (`PHASE_MARGIN`).
- **Meter and downbeat.** Where the file's meter is one or two beats a bar (not a credible bar
  for sections) or the beat phase moved, bars of 3 and 4 beats at each possible first downbeat
  are scored by what starts bars in real music: the harmony changes (the pitch classes of a beat
  against the beat before), long and low notes begin. 4/4 is preferred unless 3/4 is clearly
  better (`TRIPLE_MARGIN`).

The answer is a `Grid`: where it came from (`file` or `notes`) and, for `notes`, the shift that
puts the beats on the file's quarter-note ticks, the beats per bar and the first downbeat.
`structdiff.data.midi.read_midi` applies it, and `Song.grid` says which was used.
`evaluation/beat_grid.py` measures both grids against POP909's annotated beats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PHASES = 24  # candidate beat phases per quarter note
PHASE_TOLERANCE = 1  # an onset votes for phases within this many candidates (1/24 quarter)
PHASE_MARGIN = 1.6  # another phase must carry this many times the file phase's weight
# (tuned on POP909's training split and the game soundtracks: 1.3 moved 2 on-grid game files
# by half a beat and a quarter, 1.6 none, at beat F 0.984 against 0.990 on POP909)
TRIPLE_MARGIN = 1.15  # 3/4 must score this many times 4/4's best to be chosen
CHANGE_WEIGHT, STRENGTH_WEIGHT = 1.0, 0.25  # harmony change, onset strength (tuned on
# POP909's training split: downbeat F 0.705, against 0.699 for 1, 0.5 and 0.665 for change alone)
MIN_ONSETS = 16  # fewer onsets than this: keep the file's grid, there is nothing to go on
MIN_BEATS = 16  # a shorter file keeps its beat phase (a drum fill says little of the beat)
MIN_PHASE_MOVE = 1  # candidates (1/24 quarter) off the file's beat that count as a move


@dataclass(frozen=True)
class Grid:
    """A file's beat and bar grid. `source` is "file" (its own ticks and meter) or "notes"
    (found from them): then `shift` ticks (0 <= shift < ticks per quarter) move the true beats
    onto the file's quarter-note ticks, bars have `beats_per_bar` quarter-note beats, and the
    first bar line is at beat `downbeat` (0 <= downbeat < beats_per_bar) after the shift: the
    beats before it are a pickup."""

    source: str = "file"
    shift: int = 0
    beats_per_bar: int = 4
    downbeat: int = 0

    def describe(self, tpq: int = 480) -> str:
        """One line, e.g. `notes: beats 0.72 quarter late, 4/4, first downbeat on beat 3`."""
        if self.source == "file":
            return "file"
        late = (tpq - self.shift) % tpq / tpq
        return (f"notes: beats {late:.2f} quarter after the file's, {self.beats_per_bar}/4, "
                f"first downbeat on beat {self.downbeat + 1}")


def _onsets(score) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Onset ticks, durations, pitches and drum flags of every note of a symusic score."""
    times, durations, pitches, drums = [], [], [], []
    for t in score.tracks:
        arr = t.notes.numpy()
        if not len(arr["time"]):
            continue
        times.append(arr["time"])
        durations.append(arr["duration"])
        pitches.append(arr["pitch"])
        drums.append((len(arr["time"]), bool(t.is_drum)))
    if not times:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=bool)
    counts, flags = zip(*drums)
    return (np.concatenate(times).astype(np.int64), np.concatenate(durations).astype(np.int64),
            np.concatenate(pitches).astype(np.int64), np.repeat(np.array(flags, bool), counts))


def _onset_weight(durations: np.ndarray, pitches: np.ndarray, tpq: int) -> np.ndarray:
    """How much a pitched onset says of where the beat is: long and low notes start on it."""
    return np.clip(durations / tpq, 0.25, 2.0) + (pitches < 55) * 0.5


def phase_weights(times: np.ndarray, durations: np.ndarray, pitches: np.ndarray,
                  tpq: int) -> np.ndarray:
    """`[PHASES]`: the weight of pitched onsets near each candidate beat phase (in 1/PHASES
    quarter)."""
    from structdiff.analysis import kernels

    # each onset votes for its position, weighted as `_onset_weight` says; the votes are
    # spread over a triangle of PHASE_TOLERANCE candidates: no ties between neighbours
    return kernels.phase_weights(np.asarray(times, dtype=np.int64),
                                 np.asarray(durations, dtype=np.int64),
                                 np.asarray(pitches, dtype=np.int64), int(tpq), PHASES,
                                 PHASE_TOLERANCE)


def _phase(times: np.ndarray, durations: np.ndarray, pitches: np.ndarray, tpq: int) -> int:
    """The beat's tick phase (0 <= phase < tpq): the best candidate of `phase_weights`, refined
    to the weighted mean position of the onsets near it."""
    from structdiff.analysis import kernels

    centre = int(np.argmax(phase_weights(times, durations, pitches, tpq))) * tpq / PHASES
    # the weighted (`_onset_weight`) mean offset of the onsets within 1.5 candidates of it
    centre = kernels.phase_refined(np.asarray(times, dtype=np.int64),
                                   np.asarray(durations, dtype=np.int64),
                                   np.asarray(pitches, dtype=np.int64), int(tpq), float(centre),
                                   1.5 * tpq / PHASES)
    return int(round(centre)) % tpq


def _bar_scores(times: np.ndarray, durations: np.ndarray, pitches: np.ndarray,
                drums: np.ndarray, tpq: int, shift: int, meters=(3, 4)) -> dict:
    """{(beats_per_bar, downbeat): score}: how much more starts on the candidate bar lines
    than on other beats (harmony changes, long notes, low notes), after shifting by `shift`."""
    from structdiff.analysis import kernels

    if len(times) and int(times.min()) + shift < 0:
        raise ValueError("onsets before tick 0")
    evidence = kernels.bar_evidence(times.astype(np.int64), durations.astype(np.int64),
                                    pitches.astype(np.int64), drums.astype(np.bool_), int(tpq),
                                    int(shift), CHANGE_WEIGHT, STRENGTH_WEIGHT)
    scores = {}
    for m in meters:  # bar lines every m beats from beat d, against the other beats
        for d, contrast in enumerate(kernels.residue_contrasts(evidence, m).tolist()):
            if contrast == contrast:  # not NaN: enough beats of both kinds
                scores[m, d] = contrast
    return scores


def find_grid(score) -> Grid:
    """The grid of a symusic `Score` in ticks: the file's own where its beat phase and meter
    are credible, else the one the notes say (module docstring)."""
    tpq = int(score.ticks_per_quarter)
    times, durations, pitches, drums = _onsets(score)
    if len(times) < MIN_ONSETS:
        return Grid()
    signatures = sorted((ts for ts in score.time_signatures if ts.numerator > 0),
                        key=lambda ts: ts.time)
    # the file's beats count from each meter change (a 1/8 pickup bar moves the ones after it)
    starts = np.array([0] + [int(ts.time) for ts in signatures])
    since = times - starts[np.searchsorted(starts, times, side="right") - 1]
    # drums don't vote on the phase: a syncopated groove (baiao, second line) accents off-beats,
    # and drum-only files come from a click (the Groove corpus); pitched notes decide
    pitched = ~drums
    file_weights = phase_weights(since[pitched], durations[pitched], pitches[pitched], tpq)
    best_file = int(np.argmax(file_weights))
    off = min(best_file, PHASES - best_file)  # candidates from the file's beat
    long_enough = (int(pitched.sum()) >= MIN_ONSETS
                   and int(times.max() - times.min()) >= MIN_BEATS * tpq)
    phase_moved = (off >= MIN_PHASE_MOVE and long_enough
                   and file_weights[best_file] > PHASE_MARGIN * file_weights[0])
    beats_in_bar, denominator = _main_meter(signatures, int(times.max()))
    # bars of one or two quarter (or half) notes are no bars for sections; 5/8, 7/16 are real
    meter_credible = beats_in_bar >= 3 or denominator > 4
    if not phase_moved and meter_credible:
        return Grid()
    shift = (-_phase(times[pitched], durations[pitched], pitches[pitched], tpq)) % tpq \
        if phase_moved else 0
    # a credible meter of whole beats is kept (only its downbeat is found); else 3/4 or 4/4
    kept = round(beats_in_bar) if meter_credible and beats_in_bar == round(beats_in_bar) else 0
    scores = _bar_scores(times, durations, pitches, drums, tpq, shift, (kept,) if kept else (3, 4))
    if kept:
        return Grid("notes", shift, kept, max(((v, d) for (_, d), v in scores.items()),
                                               default=(0.0, 0))[1])
    four = max(((v, d) for (m, d), v in scores.items() if m == 4), default=(0.0, 0))
    three = max(((v, d) for (m, d), v in scores.items() if m == 3), default=None)
    if three is not None and three[0] > TRIPLE_MARGIN * four[0] and three[0] > 0:
        return Grid("notes", shift, 3, three[1])
    return Grid("notes", shift, 4, four[1])


def _main_meter(signatures, end: int) -> tuple[float, int]:
    """Quarter notes per bar and the denominator of the time signature that lasts longest
    (4/4 without one)."""
    if not signatures:
        return 4.0, 4
    spans = [(min(end, nxt) - int(ts.time), ts.numerator * 4 / ts.denominator, ts.denominator)
             for ts, nxt in zip(signatures, [int(t.time) for t in signatures[1:]] + [end])]
    return max(spans)[1:]


def grid_beats(score, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The beat and downbeat times in seconds `([B], [D])` that `grid` puts on the score (its
    tempo map), from the first note's beat to the last note's end; for measuring."""
    tpq = int(score.ticks_per_quarter)
    times, durations, _, _ = _onsets(score)
    if not len(times):
        return np.zeros(0), np.zeros(0)
    start, end = int(times.min()), int((times + durations).max())
    if grid.source == "file":
        first = start - start % tpq
        beats = np.arange(first, end + 1, tpq)
        signatures = [ts for ts in score.time_signatures if ts.numerator > 0]
        per_bar = (max(1, round(signatures[0].numerator * 4 / signatures[0].denominator))
                   if signatures else 4)
        downbeats = beats[(beats // tpq) % per_bar == 0]
    else:
        offset = (tpq - grid.shift) % tpq  # the true beats' tick phase in the file
        first = start - (start - offset) % tpq
        beats = np.arange(first, end + 1, tpq)
        index = (beats + grid.shift) // tpq
        downbeats = beats[(index - grid.downbeat) % grid.beats_per_bar == 0]
    return _seconds(score, beats), _seconds(score, downbeats)


def _seconds(score, ticks: np.ndarray) -> np.ndarray:
    """Seconds of ticks through the score's tempo map."""
    tpq = int(score.ticks_per_quarter)
    tempos = sorted(((int(t.time), t.mspq / 1e6) for t in score.tempos), key=lambda x: x[0])
    if not tempos or tempos[0][0] > 0:
        tempos.insert(0, (0, tempos[0][1] if tempos else 0.5))
    starts = np.array([t for t, _ in tempos])
    spq = np.array([s for _, s in tempos])
    at = np.concatenate([[0.0], np.cumsum(np.diff(starts) / tpq * spq[:-1])])
    i = np.maximum(np.searchsorted(starts, ticks, side="right") - 1, 0)  # before 0: 1st tempo
    return at[i] + (ticks - starts[i]) / tpq * spq[i]
