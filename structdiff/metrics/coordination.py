"""Coordination metrics: how the parts of a song fit together, step by step.

Parts are the song's pitched roles (tracks sharing a role are one part, merged in the roll;
tracks without a role and drum roles are left out), read from the roll of `encode_roll`:
channel 1 says which pitches sound at each grid step, channel 0 where notes start. Each
metric is `nan` where it does not apply (fewer than two parts, nothing sounding together).

- `tonal_distance`: MuseGAN's tonal distance (Dong et al. 2018) after Harte et al. (2006).
  For each pair of parts and each beat, the duration-weighted chroma of each part is
  normalized to sum 1 and projected onto the 6-D tonal centroid space (circle of fifths,
  minor thirds, major thirds; radii 1, 1, 0.5); the distance is the L2 norm between the two
  centroids, averaged over the beats where both parts sound, then over pairs. MuseGAN summed
  chroma per beat (24 of its 96 steps a bar); beats here follow the meter (a quarter in x/4,
  a dotted quarter in compound x/8, counted from each bar line). Lower: more alike in harmony.
- `onset_synchrony`: for each part, the share of its onset steps at which another part also
  has an onset; averaged over parts (0..1).
- `dissonance_rate`: over every step and every pair of pitches sounding there in different
  parts, the share of pairs whose interval reduced mod 12 is 1, 2, 6, 10 or 11 semitones
  (minor/major second and their inversions and compounds, the tritone). Unisons, octaves,
  thirds, sixths, fifths and fourths are consonant: between parts a fourth over another voice
  is common in any texture, so it is not counted. Each step counts once, so held chords weigh
  by their duration.
- `voice_crossing_rate`: for pairs of parts that should lie one above the other, the share of
  steps where both sound and the upper part's top pitch is below the lower part's top pitch
  (pooled over pairs). Pairs: adjacent roles of the role map's `pitch_order` among the roles
  present, for maps of one track per slot (voices: `satb` gives soprano/alto, alto/tenor,
  tenor/bass, with `quintus` between alto and tenor); for other maps (`band`) only melody
  above bass, since keys, guitar and strings may lie anywhere; without a role map, adjacent
  roles in the order the song's tracks give them.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from structdiff.data.roles import RoleMapError, load_role_map
from structdiff.data.roll import ONSET, SUSTAIN, encode_roll
from structdiff.data.song import Song

METRICS = ("tonal_distance", "onset_synchrony", "dissonance_rate", "voice_crossing_rate")

DISSONANT_INTERVALS = (1, 2, 6, 10, 11)  # semitones mod 12: m2, M2, tritone, m7, M7
# Upper/lower pairs checked for crossing under role maps that are not one voice per slot.
OPEN_MAP_VOICE_PAIRS = (("melody", "bass"),)


def coordination_metrics(song: Song) -> dict[str, float]:
    """Every metric of `METRICS` for the song's pitched parts (see the module docstring)."""
    roles = pitched_roles(song)
    if len(roles) < 2:
        return dict.fromkeys(METRICS, math.nan)
    roll = encode_roll(song, roles, drum_roles=frozenset())
    onsets, sounding = roll[..., ONSET], roll[..., SUSTAIN]
    index = {r: k for k, r in enumerate(roles)}
    pairs = [(index[hi], index[lo]) for hi, lo in voice_pairs(song, roles)]
    return {
        "tonal_distance": tonal_distance(sounding, beat_starts(song)),
        "onset_synchrony": onset_synchrony(onsets),
        "dissonance_rate": dissonance_rate(sounding),
        "voice_crossing_rate": voice_crossing_rate(sounding, pairs),
    }


def pitched_roles(song: Song) -> list[str]:
    """Roles with notes and no drum track, in the order of `song.roles`."""
    drum_roles = {t.role for t in song.tracks if t.is_drum}
    return [r for r in song.roles if r not in drum_roles]


def voice_pairs(song: Song, roles: list[str]) -> list[tuple[str, str]]:
    """(upper, lower) role pairs whose crossing counts, among `roles` (see the module doc)."""
    try:
        role_map = load_role_map(song.role_map) if song.role_map else None
    except RoleMapError:
        role_map = None
    if role_map is not None and not role_map.exclusive:
        return [(hi, lo) for hi, lo in OPEN_MAP_VOICE_PAIRS if hi in roles and lo in roles]
    order = list(roles)
    if role_map is not None:
        ranked = [r for r in role_map.pitch_order if r in roles]
        order = ranked + [r for r in roles if r not in ranked]
    return list(zip(order[:-1], order[1:]))


def beat_starts(song: Song) -> np.ndarray:
    """Start step of every beat `[B]` in [0, song.end): beats of `song.beat_steps` laid from
    each bar line (a bar's last beat may be short)."""
    bars = song.bars.astype(np.int64)
    beat = np.array([song.beat_steps(int(b)) for b in bars], dtype=np.int64)
    n = -(-(song.bar_ends - bars) // beat)  # beats per bar, the last one possibly partial
    first = np.cumsum(n) - n
    starts = np.repeat(bars, n) + (np.arange(n.sum()) - np.repeat(first, n)) * np.repeat(beat, n)
    starts = starts[starts < song.end]
    if not len(starts) or starts[0] > 0:
        starts = np.concatenate([[0], starts])
    return starts


def tonal_matrix(r1: float = 1.0, r2: float = 1.0, r3: float = 0.5) -> np.ndarray:
    """Harte et al.'s transform `[6, 12]` from chroma to the tonal centroid: circle of fifths
    (radius r1), of minor thirds (r2) and of major thirds (r3)."""
    pc = np.arange(12)
    return np.stack([
        r1 * np.sin(pc * 7 * np.pi / 6), r1 * np.cos(pc * 7 * np.pi / 6),
        r2 * np.sin(pc * 3 * np.pi / 2), r2 * np.cos(pc * 3 * np.pi / 2),
        r3 * np.sin(pc * 2 * np.pi / 3), r3 * np.cos(pc * 2 * np.pi / 3),
    ])


def chroma(sounding: np.ndarray) -> np.ndarray:
    """Pitch-class counts `[K, T, 12]` of a roll `[K, T, P]` whose pitch 0 is MIDI pitch 0."""
    K, T, P = sounding.shape
    out = np.zeros((K, T, 12), dtype=np.int32)
    for octave in range(0, P, 12):
        block = sounding[..., octave : octave + 12]
        out[..., : block.shape[-1]] += block
    return out


def tonal_distance(sounding: np.ndarray, beat_starts: np.ndarray) -> float:
    """Mean tonal distance over pairs of parts of a roll `[K, T, P]`, per beat (beats start at
    the steps `beat_starts` `[B]`, the first at 0), over beats where both parts sound."""
    beat_chroma = np.add.reduceat(chroma(sounding).astype(np.float64), beat_starts, axis=1)
    weight = beat_chroma.sum(axis=-1, keepdims=True)  # [K, B, 1]
    centroid = np.divide(beat_chroma, weight, out=np.zeros_like(beat_chroma), where=weight > 0)
    centroid = centroid @ tonal_matrix().T  # [K, B, 6]
    heard = weight[..., 0] > 0
    per_pair = []
    for k, m in combinations(range(len(sounding)), 2):
        both = heard[k] & heard[m]
        if both.any():
            per_pair.append(np.linalg.norm(centroid[k, both] - centroid[m, both], axis=-1).mean())
    return float(np.mean(per_pair)) if per_pair else math.nan


def onset_synchrony(onsets: np.ndarray) -> float:
    """Mean over parts of the share of a part's onset steps shared with another part; onsets
    `[K, T, P]`; `nan` unless two parts have onsets."""
    struck = onsets.any(axis=-1)  # [K, T]
    n_struck = struck.sum(axis=1)
    if np.count_nonzero(n_struck) < 2:
        return math.nan
    shared = (struck & (struck.sum(axis=0) >= 2)).sum(axis=1)
    playing = n_struck > 0
    return float(np.mean(shared[playing] / n_struck[playing]))


def dissonance_rate(sounding: np.ndarray) -> float:
    """Share of dissonant pairs among pitches sounding together in different parts, counted
    per step; sounding `[K, T, P]`."""
    counts = chroma(sounding).astype(np.float64)  # [K, T, 12]
    total = counts.sum(axis=0)  # [T, 12]
    # [12, 12] pairs of pitch classes sounding together, in different parts (both orders)
    pairs = total.T @ total - np.einsum("kta,ktb->ab", counts, counts)
    n_pairs = pairs.sum()
    if n_pairs <= 0:
        return math.nan
    interval = (np.arange(12)[None, :] - np.arange(12)[:, None]) % 12
    return float(pairs[np.isin(interval, DISSONANT_INTERVALS)].sum() / n_pairs)


def voice_crossing_rate(sounding: np.ndarray, pairs: list[tuple[int, int]]) -> float:
    """Share of steps, pooled over `pairs` of part indices (upper, lower), where both parts
    sound and the upper part's top pitch lies below the lower part's; sounding `[K, T, P]`."""
    if not pairs:
        return math.nan
    heard = sounding.any(axis=-1)  # [K, T]
    top = sounding.shape[-1] - 1 - np.argmax(sounding[..., ::-1], axis=-1)  # [K, T]
    upper, lower = np.array(pairs).T
    both = heard[upper] & heard[lower]
    n_both = np.count_nonzero(both)
    if not n_both:
        return math.nan
    return float(np.count_nonzero(both & (top[upper] < top[lower])) / n_both)
