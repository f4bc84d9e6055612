"""MusPy's per-song metrics, for the whole song and for each track role.

The values are MusPy 0.5's own (`muspy.metrics`, Dong et al. 2020): each is MusPy's function
called on a `muspy.Music` holding the right tracks, with the right arguments. The tests check
them against MusPy called on the same MIDI file read by MusPy.

What is measured on what (time in grid steps, `resolution` = `song.steps_per_quarter`):

- Pitch metrics (`PITCH_METRICS`) see pitched tracks only. MusPy skips drum tracks in most of
  them but not everywhere: its `pitch_range` of a drums-only song is -127, and its
  `polyphony_rate` divides by a length that counts drum notes. Here drum tracks are removed
  first, which is MusPy's value on the song without its drums. `pitch_in_scale_rate` needs the
  key from the caller (the song's plan key) and is `nan` without one.
- Rhythm metrics (`RHYTHM_METRICS`) see every track, drums included, as MusPy does. Beats are
  quarter notes (`resolution`); measures have the length of a bar of the song's first meter
  (`measure_resolution` = `steps_per_quarter * 4 * numerator / denominator`) and are counted
  from step 0, as in MusPy, so a pickup shifts them: MusPy assumes one constant meter.
  `groove_consistency` depends on the grid (its Hamming distance is divided by the steps per
  measure), so it is the value on the song's grid, 16 positions in a 4/4 bar.
- Drum metrics (`DRUM_METRICS`) see drum tracks only and are `nan` without drum notes. MusPy's
  pattern repeats every quarter note: 'duple' marks the 16th positions, 'triple' the triplet
  eighths. `drum_in_pattern_rate` takes 'triple' when the first meter's numerator is a
  multiple of 3 (3/4, 6/8, 9/8, 12/8) and 'duple' otherwise. On a 16th-note grid the duple
  pattern holds every grid step (so the rate is 1.0 for any quantized song) and the triple
  pattern only the quarter-note steps.

Per role (`name/ROLE` keys, for each role of `song.roles`) a metric is MusPy's on a `Music`
holding only that role's tracks; pitch metrics appear for roles with pitched notes, drum
metrics for roles with drum notes, rhythm metrics for every role. Empty input gives `nan`,
never an error (MusPy returns 0 for some metrics of an empty song).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from structdiff.data.song import Key, Song, TimeSignature, Track

PITCH_METRICS = (
    "pitch_range",
    "n_pitches_used",
    "n_pitch_classes_used",
    "polyphony",
    "polyphony_rate",
    "pitch_in_scale_rate",
    "scale_consistency",
    "pitch_entropy",
    "pitch_class_entropy",
)
RHYTHM_METRICS = ("empty_beat_rate", "empty_measure_rate", "groove_consistency")
DRUM_METRICS = ("drum_in_pattern_rate", "drum_pattern_consistency")
METRICS = PITCH_METRICS + RHYTHM_METRICS + DRUM_METRICS

POLYPHONY_THRESHOLD = 2  # MusPy's default: a step counts when more than 2 pitches sound

def to_muspy(song: Song, roles: Sequence[str] | None = None):
    """The song as a `muspy.Music` at `resolution = song.steps_per_quarter`.

    Tracks keep their name, program and drum flag; the file's time signatures, tempos and key
    signature come along. `roles` keeps only the tracks of those roles.
    """
    return _music(song, [t for t in song.tracks if roles is None or t.role in roles])


def _music(song: Song, selected: Sequence[Track]):
    import muspy

    tracks = []
    for t in selected:
        notes = [
            muspy.Note(time=s, pitch=p, duration=d, velocity=v)
            for s, d, p, v in t.notes.tolist()
        ]
        tracks.append(muspy.Track(program=t.program, is_drum=t.is_drum, name=t.name, notes=notes))
    key_signatures = []
    if song.key_signature is not None:
        ks = song.key_signature
        key_signatures.append(muspy.KeySignature(time=0, root=ks.tonic, mode=ks.mode))
    return muspy.Music(
        resolution=song.steps_per_quarter,
        tempos=[muspy.Tempo(time=tp.step, qpm=tp.qpm) for tp in song.tempos],
        time_signatures=[
            muspy.TimeSignature(time=ts.step, numerator=ts.numerator, denominator=ts.denominator)
            for ts in song.time_signatures
        ],
        key_signatures=key_signatures,
        tracks=tracks,
    )


def drum_meter(time_signature: TimeSignature) -> str:
    """MusPy's drum-pattern meter for a time signature: 'triple' when the numerator is a
    multiple of 3 (3/4, 6/8, 9/8, 12/8), else 'duple'."""
    return "triple" if time_signature.numerator % 3 == 0 else "duple"


def musical_metrics(song: Song, key: Key | None = None) -> dict[str, float]:
    """Every metric of `METRICS` for the whole song (`pitch_range`, ...) and per role present
    (`pitch_range/soprano`, ...). `key` (the song's plan key) is the scale of
    `pitch_in_scale_rate`; without it that metric is `nan`."""
    ts = song.time_signatures[0] if song.time_signatures else TimeSignature(0, 4, 4)
    args = (key, ts.bar_steps(song.steps_per_quarter), drum_meter(ts))
    out = _track_metrics(song, song.tracks, *args)
    for role in song.roles:
        tracks = [t for t in song.tracks if t.role == role]
        values = _track_metrics(song, tracks, *args)
        names = list(RHYTHM_METRICS)
        if any(t.n_notes and not t.is_drum for t in tracks):
            names += PITCH_METRICS
        if any(t.n_notes and t.is_drum for t in tracks):
            names += DRUM_METRICS
        out.update({f"{name}/{role}": values[name] for name in names})
    return out


def _track_metrics(
    song: Song, tracks: Sequence[Track], key: Key | None, measure_resolution: int, meter: str,
) -> dict[str, float]:
    import muspy

    pitched = [t for t in tracks if t.n_notes and not t.is_drum]
    drums = [t for t in tracks if t.n_notes and t.is_drum]
    out = dict.fromkeys(METRICS, math.nan)
    if pitched:
        music = _music(song, pitched)
        out.update(
            pitch_range=muspy.pitch_range(music),
            n_pitches_used=muspy.n_pitches_used(music),
            n_pitch_classes_used=muspy.n_pitch_classes_used(music),
            polyphony=muspy.polyphony(music),
            polyphony_rate=muspy.polyphony_rate(music, threshold=POLYPHONY_THRESHOLD),
            scale_consistency=muspy.scale_consistency(music),
            pitch_entropy=muspy.pitch_entropy(music),
            pitch_class_entropy=muspy.pitch_class_entropy(music),
        )
        if key is not None:
            out["pitch_in_scale_rate"] = muspy.pitch_in_scale_rate(music, key.tonic, key.mode)
    if pitched or drums:
        music = _music(song, pitched + drums)
        out.update(
            empty_beat_rate=muspy.empty_beat_rate(music),
            empty_measure_rate=muspy.empty_measure_rate(music, measure_resolution),
            groove_consistency=muspy.groove_consistency(music, measure_resolution),
        )
    if drums:
        music = _music(song, drums)
        out.update(
            drum_in_pattern_rate=muspy.drum_in_pattern_rate(music, meter),
            drum_pattern_consistency=muspy.drum_pattern_consistency(music),
        )
    return {name: float(value) for name, value in out.items()}
