"""Harmony metrics: how well the notes of a song fit its chords, and how well the chords heard
in it agree with the chords it was given.

Pure functions in the manner of MusPy's metrics: a float (or a flat dict of floats), `nan`
where a metric does not apply, a `ValueError` naming the argument for bad input.
"""

from __future__ import annotations

import math

import numpy as np

from structdiff.analysis.chord_eval import agreement, chord_labels
from structdiff.analysis.chords import CHORD_TONES, QUALITIES
from structdiff.data.song import DURATION, PITCH, START, Chord, Plan, Song

_NO_CHORD = QUALITIES.index("N")


def chord_tone_ratio(song: Song, chords: list[Chord]) -> float:
    """Share of the sounding duration of pitched notes (drums excluded; counted in grid steps)
    whose pitch class is a tone of the chord sounding at that step.

    Only steps under a chord count: steps where no chord is given or the chord is `N` (no
    harmony, e.g. an unaccompanied line) are left out of both the numerator and the
    denominator, so the ratio reads "of what sounds against a chord, how much belongs to it".
    Notes are cut at the song's end. `nan` when no note sounds under a chord.
    """
    n_steps = int(song.end)
    notes = song.all_notes()
    if n_steps <= 0 or len(notes) == 0:
        return math.nan
    labels = chord_labels(chords, n_steps)  # [T, 3] root, quality index, bass
    root, quality = labels[:, 0], labels[:, 1]
    has_chord = (root >= 0) & (quality != _NO_CHORD)
    tones = np.zeros((n_steps, 12), dtype=bool)
    tones[has_chord] = CHORD_TONES[quality[has_chord], root[has_chord]]
    # prefix sums over time, so a note's count is one difference whatever its length
    tones_before = np.concatenate([np.zeros((1, 12), np.int64), np.cumsum(tones, axis=0)])
    chord_before = np.concatenate([[0], np.cumsum(has_chord)])
    start = np.clip(notes[:, START], 0, n_steps)
    end = np.clip(notes[:, START] + notes[:, DURATION], start, n_steps)
    pc = notes[:, PITCH] % 12
    matched = tones_before[end, pc] - tones_before[start, pc]
    counted = chord_before[end] - chord_before[start]
    total = int(counted.sum())
    return float(matched.sum() / total) if total else math.nan


def chord_agreement(
    given_chords: list[Chord], recognized_chords: list[Chord], n_steps: int
) -> dict[str, float]:
    """Duration-weighted agreement of the chords recognized in a song with the chords it was
    given, over the `n_steps` grid steps: `{"root": share of the steps the given chords label
    on which the roots agree, "root_quality": ... on which root and quality both agree}`
    (`N` must meet `N`; nan when the given chords label no step)."""
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    scores = agreement(given_chords, recognized_chords, int(n_steps))
    return {"root": scores["root"], "root_quality": scores["root_quality"]}


def harmony_metrics(song: Song, plan: Plan, analyzed: Plan, given: bool) -> dict[str, float]:
    """`chord_tone_ratio` (notes against `plan`'s chords), `chord_agreement_root` and
    `chord_agreement_quality` (`plan`'s chords against `analyzed`'s, root and root+quality;
    `nan` unless the plan was `given`)."""
    out = {"chord_tone_ratio": chord_tone_ratio(song, plan.chords)}
    if given:
        scores = chord_agreement(plan.chords, analyzed.chords, song.end)
        out["chord_agreement_root"] = scores["root"]
        out["chord_agreement_quality"] = scores["root_quality"]
    else:
        out["chord_agreement_root"] = math.nan
        out["chord_agreement_quality"] = math.nan
    return out
