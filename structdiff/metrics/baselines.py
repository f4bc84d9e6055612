"""Floors for the evaluation: real songs broken in one known way each.

- `shuffle_bars`: the bars of a song in a random order (pitch content and rhythm per bar
  kept, structure destroyed);
- `random_pitches`: every note gets a random pitch from its track's range (rhythm, texture
  and form kept, harmony destroyed).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from structdiff.data.song import DURATION, PITCH, START, Song, sort_notes


def shuffle_bars(song: Song, rng: np.random.Generator) -> Song:
    """A copy of `song` whose bars come in a random order. A note moves with the bar it
    starts in, cut at that bar's end if it was held over the bar line (so that it neither
    sounds into its new neighbour nor past the song's end); bars keep their own lengths, laid
    end to end in the new order (the bar grid follows them; meters stay where they were)."""
    lengths = song.bar_ends - song.bars
    order = rng.permutation(song.n_bars)
    new_starts = np.concatenate([[0], np.cumsum(lengths[order])[:-1]])
    shift = np.empty(song.n_bars, dtype=np.int64)
    shift[order] = new_starts - song.bars[order]
    tracks = []
    for t in song.tracks:
        notes = t.notes.copy()
        if len(notes):
            bar = song.bar_of(notes[:, START])
            notes[:, DURATION] = np.minimum(notes[:, DURATION],
                                            song.bar_ends[bar] - notes[:, START])
            notes[:, START] += shift[bar].astype(notes.dtype)
        tracks.append(replace(t, notes=sort_notes(notes)))
    return replace(song, tracks=tracks, bars=new_starts, plan=None, fermatas=[],
                   source=f"{song.source} (bars shuffled)")


def random_pitches(song: Song, rng: np.random.Generator) -> Song:
    """A copy of `song` where every pitched note takes a uniformly random pitch between its
    track's lowest and highest; drums, onsets and durations unchanged."""
    tracks = []
    for t in song.tracks:
        notes = t.notes.copy()
        if len(notes) and not t.is_drum:
            lo, hi = int(notes[:, PITCH].min()), int(notes[:, PITCH].max())
            notes[:, PITCH] = rng.integers(lo, hi + 1, size=len(notes))
        tracks.append(replace(t, notes=sort_notes(notes)))
    return replace(song, tracks=tracks, plan=None, source=f"{song.source} (random pitches)")
