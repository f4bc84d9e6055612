"""Per-step tokens `[K, T]` for monophonic tracks (voices, bass, melody): one per slot and step.

Vocabulary: `REST` (nothing sounds), `HOLD` (the note of the previous step goes on), then one
token per pitch in [pitch_low, pitch_low + n_pitches): token = 2 + pitch - pitch_low. A pitch
token strikes a note, so repeated notes of one pitch stay apart and one slot holds at most one
note per step by construction (the representation DESIGN.md measured best for such tracks).

Encoding is lossy in three documented ways:
- monophonic reduction: the top voice. Where a slot has several notes at a step (tracks sharing
  a role, or a polyphonic track) it keeps the highest sounding note, with a new onset where the
  top note changes; lower notes are dropped.
- notes outside the pitch range are moved by whole octaves into it rather than dropped.
- notes of zero duration (grace notes quantized away) sound at no step and are left out.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from structdiff.data.roll import ONSET, SUSTAIN, encode_roll
from structdiff.data.song import DURATION, PITCH, Song, sort_notes

REST, HOLD = 0, 1
N_SPECIAL = 2  # REST and HOLD come before the pitch tokens


def vocab_size(n_pitches: int = 54) -> int:
    """Number of token values: REST, HOLD and one per pitch."""
    if n_pitches < 1:
        raise ValueError(f"n_pitches must be >= 1, got {n_pitches}")
    return N_SPECIAL + n_pitches


def fold_into_range(pitches: np.ndarray, pitch_low: int, n_pitches: int) -> np.ndarray:
    """Pitches `[N]` moved by whole octaves into [pitch_low, pitch_low + n_pitches).

    Needs n_pitches >= 12 so that every pitch class has a place in the range.
    """
    p = np.asarray(pitches, dtype=np.int64)
    high = pitch_low + n_pitches  # exclusive
    up = np.maximum(-((p - pitch_low) // 12), 0)  # octaves up so that p >= pitch_low
    p = p + 12 * up
    down = np.maximum(-((high - 1 - p) // 12), 0)  # octaves down so that p < high
    return p - 12 * down


def _check_pitch_range(pitch_low: int, n_pitches: int) -> None:
    if not 0 <= pitch_low <= 127:
        raise ValueError(f"pitch_low must be in 0..127, got {pitch_low}")
    if n_pitches < 12:
        raise ValueError(f"n_pitches must be >= 12 so octaves fold into range, got {n_pitches}")
    if pitch_low + n_pitches > 128:
        raise ValueError(f"pitch_low + n_pitches must be <= 128, got {pitch_low} + {n_pitches}")


def fold_notes(notes: np.ndarray, pitch_low: int, n_pitches: int) -> np.ndarray:
    """Notes `[N, 4]` with pitches folded into range; zero-length notes (sounding nowhere)
    left out."""
    notes = notes[notes[:, DURATION] > 0].copy()
    notes[:, PITCH] = fold_into_range(notes[:, PITCH], pitch_low, n_pitches)
    return notes


def encode_tokens(
    song: Song,
    roles: list[str],
    start: int = 0,
    end: int | None = None,
    pitch_low: int = 33,
    n_pitches: int = 54,
) -> np.ndarray:
    """Encode steps [start, end) of `song` into int64 tokens `[K, T]`, K = len(roles).

    A note's first step is its pitch token, its following steps `HOLD`; steps without a note
    are `REST`. A note sounding across `start` gets its pitch token at `start`. Tracks whose
    role is not in `roles` are left out; tracks sharing a role are merged into its slot and
    reduced to the top voice (see the module docstring).
    """
    end = song.end if end is None else end
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if end <= start:
        raise ValueError(f"end must be > start, got start={start}, end={end}")
    if len(set(roles)) != len(roles):
        raise ValueError(f"roles must be distinct, got {roles}")
    _check_pitch_range(pitch_low, n_pitches)
    # the roll of the folded notes gives what sounds and what is struck at each step
    folded = [
        replace(t, notes=fold_notes(t.notes, pitch_low, n_pitches), is_drum=False)
        for t in song.tracks if t.role in roles and t.n_notes
    ]
    roll = encode_roll(replace(song, tracks=folded), roles, start, end, pitch_low, n_pitches,
                       drum_roles=frozenset())
    struck, on = roll[..., ONSET], roll[..., SUSTAIN]  # [K, T, P]
    any_on = on.any(axis=2)
    top = n_pitches - 1 - np.argmax(on[:, :, ::-1], axis=2)  # highest sounding pitch, [K, T]
    prev = np.concatenate([np.full((len(roles), 1), -1), np.where(any_on, top, -1)[:, :-1]], 1)
    top_struck = np.take_along_axis(struck, top[:, :, None], axis=2)[:, :, 0]
    onset = any_on & ((top != prev) | top_struck)
    tokens = np.where(onset, N_SPECIAL + top, HOLD)
    return np.where(any_on, tokens, REST).astype(np.int64)


def decode_tokens(
    tokens: np.ndarray,
    roles: list[str],
    start: int = 0,
    pitch_low: int = 33,
    velocity: int = 80,
) -> dict[str, np.ndarray]:
    """Notes `[N, 4]` per role from tokens `[K, T]`; times are offset by `start`.

    A pitch token starts a note that lasts through the `HOLD`s that follow it. A `HOLD` with
    no note to continue (after `REST`, or at the first step) is read as `REST`.
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[0] != len(roles):
        raise ValueError(f"tokens must be [K={len(roles)}, T], got {list(tokens.shape)}")
    if tokens.size and not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be integers, got dtype {tokens.dtype}")
    if not 0 <= pitch_low <= 127:
        raise ValueError(f"pitch_low must be in 0..127, got {pitch_low}")
    if not 1 <= velocity <= 127:
        raise ValueError(f"velocity must be in 1..127, got {velocity}")
    if tokens.size:
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi - N_SPECIAL + pitch_low > 127:
            raise ValueError(
                f"tokens must be in 0..{127 - pitch_low + N_SPECIAL} for pitch_low={pitch_low}, "
                f"got values in {lo}..{hi}"
            )
    K, T = tokens.shape
    # a note ends at the first step after its onset that is not HOLD
    step_if_stop = np.where(tokens != HOLD, np.arange(T), T)
    next_stop = np.minimum.accumulate(step_if_stop[:, ::-1], axis=1)[:, ::-1]  # at or after
    after = np.concatenate([next_stop[:, 1:], np.full((K, 1), T)], axis=1)  # strictly after
    out = {}
    for k, role in enumerate(roles):
        t = np.nonzero(tokens[k] >= N_SPECIAL)[0]
        notes = np.stack(
            [
                t + start,
                after[k, t] - t,
                tokens[k, t].astype(np.int64) - N_SPECIAL + pitch_low,
                np.full_like(t, velocity),
            ],
            axis=1,
        )
        out[role] = sort_notes(notes)
    return out
