"""Experiment (issue 11, part 2): can the arranger place one voice against three real ones?

For each of the 36 test-split Bach chorales (`evaluation/musicianship.py`'s chorale set), the
alto is written anew by an arranger with soprano, tenor and bass known (`generate
--regenerate alto`, on the chorale's analyzed plan), and the chords' texture is measured
against the real alto's: if the network had learned how voices fill a chord together, the
new alto would complete the chords the other three leave open. Besides the window features
(`structdiff.metrics.musicianship`), three measures of the alto alone, on the eighth-note steps
where the other three sound: how often it is silent, how often it doubles one of their pitch
classes, and, where they hold only two pitch classes, how often it supplies the third.

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

from structdiff.data.song import DURATION, PITCH, START
from structdiff.metrics.musicianship import FEATURE_NAMES
from structdiff.pipeline.arrange import arrange, load_arranger

sys.path.insert(0, str(Path(__file__).parent))
from musicianship import chorale_sets, features  # noqa: E402

SHOWN = ("thin_chords", "bare_dyads", "shared_pitch", "voice_crossing", "parallel_octaves",
         "step_motion", "silent_gaps")
ALTO = ("alto silent", "alto doubles", "alto completes")


def _means(feats) -> list[float]:
    rows = np.concatenate([f for f in feats if len(f)])
    return [float(np.nanmean(rows[:, FEATURE_NAMES.index(n)])) for n in SHOWN]


def _sounding(notes: np.ndarray, end: int) -> np.ndarray:
    """The pitch sounding at each step `[end]`, -1 for none."""
    line = np.full(end, -1)
    for start, duration, pitch in notes[:, [START, DURATION, PITCH]].tolist():
        line[start : start + duration] = pitch
    return line


def alto_measures(songs) -> list[float]:
    """On the eighth-note steps where soprano, tenor and bass all sound: how often the alto is
    silent, how often it doubles one of their pitch classes, and, where those three hold only
    two pitch classes, how often the alto supplies a third (the song means' mean)."""
    rows = []
    for song in songs:
        parts = {t.role: t.notes for t in song.tracks}
        end = int(song.end)
        s, a, t, b = (_sounding(parts[r], end) for r in ("soprano", "alto", "tenor", "bass"))
        steps = np.arange(0, end, 2)
        steps = steps[(s[steps] >= 0) & (t[steps] >= 0) & (b[steps] >= 0)]
        sound = steps[a[steps] >= 0]
        others = np.stack([s[sound] % 12, t[sound] % 12, b[sound] % 12], axis=1)
        doubles = (others == (a[sound] % 12)[:, None]).any(axis=1)
        open_chord = np.array([len(set(r)) < 3 for r in others.tolist()], dtype=bool)
        rows.append([float(np.mean(a[steps] < 0)) if len(steps) else np.nan,
                     float(np.mean(doubles)) if len(sound) else np.nan,
                     float(np.mean(~doubles[open_chord])) if open_chord.any() else np.nan])
    return np.nanmean(np.array(rows, dtype=float), axis=0).tolist()


def _row(label: str, songs) -> str:
    values = _means(features(songs)) + alto_measures(songs)
    return f"| {label} | {' | '.join(f'{v:.3f}' for v in values)} |"


def main() -> None:
    real, _ = chorale_sets(36, 32, generate=False)
    real = [s for s in real if {"soprano", "alto", "tenor", "bass"} <= set(s.roles)]
    print(f"| alto written by | {' | '.join(SHOWN + ALTO)} |")
    print(_row(f"Bach's own alto ({len(real)} chorales)", real), flush=True)
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
        print(_row(label, new), flush=True)


if __name__ == "__main__":
    main()
