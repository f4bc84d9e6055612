"""The multi-track roll `[K, T, P, 2]`: K role slots, T grid steps, P pitches, (onset, sustain).

The onset channel marks the step a note is struck, the sustain channel every step it sounds
(onset step included), so repeated notes of one pitch stay apart. Drum slots are onset-only
and decode to one-step hits. Tracks that share a role are merged into its slot; where two notes
of one pitch overlap in a slot, the later onset ends the earlier note.
"""

from __future__ import annotations

import numpy as np

from structdiff.data.song import DURATION, PITCH, START, Song, Track, empty_notes, sort_notes

ONSET, SUSTAIN = 0, 1


def encode_roll(
    song: Song,
    roles: list[str],
    start: int = 0,
    end: int | None = None,
    pitch_low: int = 0,
    n_pitches: int = 128,
    drum_roles: frozenset[str] | set[str] = frozenset({"drums"}),
) -> np.ndarray:
    """Encode steps [start, end) of `song` into a bool roll `[K, T, P, 2]`, K = len(roles).

    A note sounding across `start` gets an onset at `start`. Notes outside
    [pitch_low, pitch_low + n_pitches) are left out, as are tracks whose role is not in `roles`.
    """
    end = song.end if end is None else end
    if end <= start:
        raise ValueError(f"end must be > start, got start={start}, end={end}")
    roll = np.zeros((len(roles), end - start, n_pitches, 2), dtype=bool)
    slot = {r: k for k, r in enumerate(roles)}
    for track in song.tracks:
        k = slot.get(track.role)
        if k is None or not track.n_notes:
            continue
        notes = track.notes
        s = notes[:, START].astype(np.int64)
        e = s + notes[:, DURATION]
        p = notes[:, PITCH].astype(np.int64) - pitch_low
        keep = (e > start) & (s < end) & (p >= 0) & (p < n_pitches)
        s, e, p = np.maximum(s[keep], start) - start, np.minimum(e[keep], end) - start, p[keep]
        roll[k, s, p, ONSET] = True
        if track.is_drum or roles[k] in drum_roles:
            continue
        # sustain: +1 at start, -1 at end per pitch, then a running sum over time
        delta = np.zeros((end - start + 1, n_pitches), dtype=np.int32)
        np.add.at(delta, (s, p), 1)
        np.add.at(delta, (e, p), -1)
        roll[k, :, :, SUSTAIN] |= np.cumsum(delta[:-1], axis=0) > 0
    return roll


def decode_roll(
    roll: np.ndarray,
    roles: list[str],
    start: int = 0,
    pitch_low: int = 0,
    velocity: int = 80,
    drum_roles: frozenset[str] | set[str] = frozenset({"drums"}),
) -> dict[str, np.ndarray]:
    """Notes `[N, 4]` per role from a roll `[K, T, P, 2]`; times are offset by `start`.

    A note starts at each onset and lasts while sustain stays on and no new onset of the same
    pitch comes; an onset without sustain lasts one step. Drum slots give one-step hits.
    """
    if roll.ndim != 4 or roll.shape[-1] != 2 or roll.shape[0] != len(roles):
        raise ValueError(f"roll must be [K={len(roles)}, T, P, 2], got {list(roll.shape)}")
    K, T, P, _ = roll.shape
    out = {}
    for k, role in enumerate(roles):
        onset, sustain = roll[k, :, :, ONSET], roll[k, :, :, SUSTAIN]
        t, p = np.nonzero(onset)
        if len(t) == 0:
            out[role] = empty_notes()
            continue
        if role in drum_roles:
            dur = np.ones_like(t)
        else:
            # a note ends at the first step after its onset where sustain is off or a new
            # onset of the same pitch starts
            stops = ~sustain | onset
            step_if_stop = np.where(stops, np.arange(T)[:, None], T)
            next_stop = np.minimum.accumulate(step_if_stop[::-1], axis=0)[::-1]  # at or after
            after = np.vstack([next_stop[1:], np.full((1, P), T)])  # strictly after
            dur = np.maximum(after[t, p] - t, 1)
        notes = np.stack([t + start, dur, p + pitch_low, np.full_like(t, velocity)], axis=1)
        out[role] = sort_notes(notes)
    return out


def song_with_roll(
    song: Song, roll: np.ndarray, roles: list[str], start: int = 0, pitch_low: int = 0
) -> Song:
    """A copy of `song` whose tracks are the decoded roll, one track per role with notes."""
    from dataclasses import replace

    decoded = decode_roll(roll, roles, start=start, pitch_low=pitch_low)
    by_role = {t.role: t for t in song.tracks if t.role}
    tracks = []
    for role in roles:
        notes = decoded[role]
        if not len(notes):
            continue
        like = by_role.get(role)
        tracks.append(
            Track(
                name=like.name if like else role,
                program=like.program if like else 0,
                is_drum=like.is_drum if like else role == "drums",
                notes=notes,
                role=role,
            )
        )
    return replace(song, tracks=tracks)


def normalize_for_roll(notes: np.ndarray, drum: bool = False) -> np.ndarray:
    """What a roll keeps of notes `[N, 4]`: one note per (start, pitch), the later onset of a
    pitch ending the earlier note, velocity dropped (set to 80); drums as one-step hits."""
    notes = sort_notes(notes)
    if not len(notes):
        return notes
    s, d, p = notes[:, START], notes[:, DURATION].copy(), notes[:, PITCH]
    if drum:
        d[:] = 1
    else:
        # the sounding end of a pitch is the max end over notes that overlap; onsets cut
        e = s + d
        out = []
        for pitch in np.unique(p):
            idx = np.nonzero(p == pitch)[0]
            starts = np.unique(s[idx])
            # end of sounding at each step: union of intervals of this pitch
            for i, st in enumerate(starts):
                cover_end = e[idx][s[idx] <= st].max()  # any note still sounding from earlier
                nxt = starts[i + 1] if i + 1 < len(starts) else np.iinfo(np.int64).max
                out.append((st, min(cover_end, nxt) - st if cover_end > st else 1, pitch))
        arr = np.asarray(out, dtype=np.int64)
        return sort_notes(np.column_stack([arr, np.full(len(arr), 80)]))
    keep = np.unique(np.column_stack([s, p]), axis=0, return_index=True)[1]
    res = np.column_stack([s[keep], d[keep], p[keep], np.full(len(keep), 80)])
    return sort_notes(res)
