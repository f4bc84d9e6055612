"""Compiled inner loops of the analysis and the beat grid (numba), each the exact equivalent
of the numpy code it replaced.

`prepare` reads and analyzes every file of a corpus; these loops were its cost (a Viterbi pass
over every beat, sweeps over every step, votes of every onset). numba compiles them the first
time on a machine (about 10 s; the machine code is cached beside this file, or in numba's user
cache when that is read-only); after that, the first call in a process loads numba's compiler
state (about half a second) and each kernel in milliseconds. Each kernel does numpy's
floating-point operations in numpy's order (its pairwise summation included: `_pairwise_sum`),
so results are identical, not merely close: `tests/analysis/test_kernels.py` checks each
against the numpy code it replaced, on random inputs and a real chorale, and plans came out
identical on 1,518 real songs.

Kernels index without bounds checks: their callers refuse inputs that would index out of
bounds (pitches outside 0..127, negative starts) before calling them.

Imported lazily by the functions that use them: importing `structdiff.analysis.chords` does not
import numba, and generating a song never does.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _argmax(x: np.ndarray) -> int:
    """`np.argmax` of a 1-d float array: the first maximum, or the first NaN if any."""
    best = 0
    for i in range(x.shape[0]):
        if np.isnan(x[i]):
            return i
        if x[i] > x[best]:
            best = i
    return best


@njit(cache=True)
def viterbi(emissions: np.ndarray, change_penalty: float) -> np.ndarray:
    """Best state path `[S]` through log scores `emissions` `[S, C]` when every change of
    state costs `change_penalty` (see `structdiff.analysis.chords.viterbi`)."""
    n_segments, n_states = emissions.shape
    path = np.empty(n_segments, dtype=np.int64)
    if n_segments == 0:
        return path
    back = np.empty((n_segments, n_states), dtype=np.int32)  # every entry below s = 0 is set
    score = emissions[0].copy()
    for s in range(1, n_segments):
        best = _argmax(score)
        switch = score[best] - change_penalty
        for c in range(n_states):
            if score[c] >= switch:
                back[s, c] = c
                score[c] = score[c] + emissions[s, c]
            else:
                back[s, c] = best
                score[c] = switch + emissions[s, c]
    path[n_segments - 1] = _argmax(score)
    for s in range(n_segments - 1, 0, -1):
        path[s - 1] = back[s, path[s]]
    return path


@njit(cache=True)
def pitch_class_segments(
    starts: np.ndarray, ends: np.ndarray, pitches: np.ndarray, weights: np.ndarray,
    bounds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted pitch classes `[S, 12]` and lowest pitch classes `[S, 12]` per segment of
    `bounds` `[S + 1]` (see `structdiff.analysis.chords.pitch_class_segments`).

    `starts`, `ends` are clipped to `[0, bounds[-1]]`. A sweep over the steps keeps, per pitch,
    how many notes sound, and per pitch class the weighted sum, accumulated in note order and
    then over time exactly as the cumulative sums of the numpy version are.
    """
    n_steps = bounds[-1]
    n_notes = starts.shape[0]
    # every note's start (+1) and end (-1) per pitch, sorted by step (a counting sort)
    per_step = np.zeros(n_steps + 2, dtype=np.int64)
    for i in range(n_notes):
        per_step[starts[i] + 1] += 1
        per_step[ends[i] + 1] += 1
    for t in range(n_steps + 1):
        per_step[t + 1] += per_step[t]
    fill = per_step[:-1].copy()
    event_pitch = np.empty(2 * n_notes, dtype=np.int64)
    event_sign = np.empty(2 * n_notes, dtype=np.int64)
    for i in range(n_notes):
        event_pitch[fill[starts[i]]], event_sign[fill[starts[i]]] = pitches[i], 1
        fill[starts[i]] += 1
    for i in range(n_notes):
        event_pitch[fill[ends[i]]], event_sign[fill[ends[i]]] = pitches[i], -1
        fill[ends[i]] += 1
    # weighted notes starting (+) and ending (-) per step and class, added in note order
    active = np.zeros((n_steps + 1, 12))
    for i in range(n_notes):
        active[starts[i], pitches[i] % 12] += weights[i]
    for i in range(n_notes):
        active[ends[i], pitches[i] % 12] += -weights[i]
    # the cumulative sums of the numpy version are needed at the bounds only
    slot = np.full(n_steps + 1, -1, dtype=np.int64)
    n_slots = 0
    for b in bounds:
        if slot[b] < 0:
            slot[b] = n_slots
            n_slots += 1
    total_at = np.zeros((n_slots, 12))
    bass_at = np.zeros((n_slots, 12))
    total = np.zeros(12)  # steps 0 .. t-1 of the masked cumulative sum, as the numpy version's
    bass_total = np.zeros(12)
    count = np.zeros(128, dtype=np.int64)  # notes sounding per pitch
    classes = np.zeros(12, dtype=np.int64)  # pitches of each class with count > 0
    running = np.zeros(12)  # weighted notes sounding per class (cumulative sum of `active`)
    lowest = -1
    for t in range(n_steps + 1):
        if slot[t] >= 0:
            for c in range(12):
                total_at[slot[t], c] = total[c]
                bass_at[slot[t], c] = bass_total[c]
        if t == n_steps:
            break
        if per_step[t + 1] > per_step[t]:
            for e in range(per_step[t], per_step[t + 1]):
                p = event_pitch[e]
                before = count[p] > 0
                count[p] += event_sign[e]
                after = count[p] > 0
                if before and not after:
                    classes[p % 12] -= 1
                elif after and not before:
                    classes[p % 12] += 1
            lowest = -1
            for p in range(128):
                if count[p] > 0:
                    lowest = p
                    break
        # numpy's version adds 0.0 where a class is silent (and to every bass class): a no-op
        # here, as these sums start at +0.0 and so are never -0.0, the one value it changes
        for c in range(12):
            running[c] += active[t, c]
            if classes[c] > 0:
                total[c] += running[c]
        if lowest >= 0:
            bass_total[lowest % 12] += 1.0
    n_segments = bounds.shape[0] - 1
    pcs = np.empty((n_segments, 12))
    bass = np.empty((n_segments, 12))
    for k in range(n_segments):
        a, b = slot[bounds[k]], slot[bounds[k + 1]]
        for c in range(12):
            pcs[k, c] = total_at[b, c] - total_at[a, c]
            bass[k, c] = bass_at[b, c] - bass_at[a, c]
    return pcs, bass


@njit(cache=True)
def chord_labels(
    path: np.ndarray, bounds: np.ndarray, bass: np.ndarray, tones: np.ndarray,
    n_tones: np.ndarray, n_state: int,
) -> np.ndarray:
    """The chords `[K, 5]` (onset, duration, root, quality index or -1 for N, bass) of the
    Viterbi `path` `[S]` over the segments of `bounds` `[S + 1]`, consecutive segments with
    the same label merged. A segment's bass is the chord tone with the most lowest-sounding
    steps in `bass` `[S, 12]` (its lowest note when no chord tone is); N is root 0, bass 0.

    `path` holds states `q * 12 + root` (`n_state` is N); `tones` `[Q, 4]` the intervals of
    each quality (the first `n_tones[q]` used)."""
    n = path.shape[0]
    out = np.zeros((n, 5), dtype=np.int64)
    k = 0
    for s in range(n):
        state = path[s]
        root, q, low = 0, -1, 0
        if state != n_state:
            root, q = state % 12, state // 12
            best, best_value = -1, 0.0
            for j in range(n_tones[q]):
                tone = (root + tones[q, j]) % 12
                if best < 0 or bass[s, tone] > best_value:
                    best, best_value = tone, bass[s, tone]
            low = best if best_value > 0 else _argmax(bass[s])
        length = bounds[s + 1] - bounds[s]
        if k > 0 and out[k - 1, 2] == root and out[k - 1, 3] == q and out[k - 1, 4] == low:
            out[k - 1, 1] += length
        else:
            out[k, 0], out[k, 1], out[k, 2], out[k, 3], out[k, 4] = bounds[s], length, root, q, low
            k += 1
    return out[:k]


@njit(cache=True)
def longest_runs(flags: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The longest run of True in `flags[lo[i]:hi[i]]` for each window i `[W]` (Python slice
    rules for the bounds)."""
    n = flags.shape[0]
    out = np.zeros(lo.shape[0], dtype=np.int64)
    for w in range(lo.shape[0]):
        a, b = lo[w], hi[w]
        if a < 0:
            a = max(a + n, 0)
        if b < 0:
            b = max(b + n, 0)
        b = min(b, n)
        run = 0
        for t in range(a, b):
            run = run + 1 if flags[t] else 0
            if run > out[w]:
                out[w] = run
    return out


@njit(cache=True)
def silent_runs(starts: np.ndarray, ends: np.ndarray, n: int, lo: np.ndarray,
                hi: np.ndarray) -> np.ndarray:
    """`longest_runs` of the steps 0 .. n-1 where none of the notes [starts, ends) `[N]` sounds
    (a note's start and end are clipped to n), for each window [lo[i], hi[i]) `[W]`."""
    sounding = np.zeros(n + 1, dtype=np.int64)
    for i in range(starts.shape[0]):
        sounding[min(starts[i], n)] += 1
        sounding[min(ends[i], n)] -= 1
    silent = np.empty(n, dtype=np.bool_)
    count = 0
    for t in range(n):
        count += sounding[t]
        silent[t] = count == 0
    return longest_runs(silent, lo, hi)


@njit(cache=True)
def repeat_runs(sim: np.ndarray, threshold: float, min_run: int) -> np.ndarray:
    """Runs `[R, 3]` (start, end, lag) of at least `min_run` and at most `lag` bars along each
    diagonal `lag` of `sim` `[L, L]` whose bars are all >= `threshold` alike, leaving out runs
    whose own bars are all alike (mean off-diagonal similarity >= `threshold`); see
    `structdiff.analysis.sections.repeat_boundaries`."""
    L = sim.shape[0]
    out = np.empty((max(L * L, 1), 3), dtype=np.int64)
    n_out = 0
    for lag in range(1, L):
        a = 0
        while a < L - lag:
            if sim[a, a + lag] < threshold:
                a += 1
                continue
            b = a
            while b < L - lag and sim[b, b + lag] >= threshold:
                b += 1
            n = b - a
            if min_run <= n <= lag and n > 1:
                inner = _pairwise_sum(_block(sim, a, b, a, b), n * n)
                if not (inner - n) / (n * n - n) >= threshold:
                    out[n_out, 0], out[n_out, 1], out[n_out, 2] = a, b, lag
                    n_out += 1
            a = b
    return out[:n_out]


@njit(cache=True)
def novelty(sim: np.ndarray, half: int) -> np.ndarray:
    """Foote novelty `[L]` of `sim` `[L, L]` (see `structdiff.analysis.sections.novelty`)."""
    L = sim.shape[0]
    out = np.zeros(L)
    k = half * half
    for i in range(half, L - half + 1):
        past = _pairwise_sum(_block(sim, i - half, i, i - half, i), k) / k
        future = _pairwise_sum(_block(sim, i, i + half, i, i + half), k) / k
        cross = _pairwise_sum(_block(sim, i - half, i, i, i + half), k) / k
        out[i] = (past + future) / 2 - cross
    return out


@njit(cache=True)
def _block(x: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """`x[r0:r1, c0:c1]` as one contiguous row of values: what numpy sums a block as (its
    sum and mean of such a block are `_pairwise_sum` of this, checked bit for bit)."""
    out = np.empty((r1 - r0) * (c1 - c0))
    k = 0
    for i in range(r0, r1):
        for j in range(c0, c1):
            out[k] = x[i, j]
            k += 1
    return out


@njit(cache=True)
def _block_sum(x: np.ndarray, lo: int, n: int) -> float:
    """numpy's sum of at most 128 values `x[lo:lo + n]`: in order below 8, else 8 partial sums."""
    if n < 8:
        total = 0.0
        for i in range(n):
            total += x[lo + i]
        return total
    r0, r1, r2, r3 = x[lo], x[lo + 1], x[lo + 2], x[lo + 3]
    r4, r5, r6, r7 = x[lo + 4], x[lo + 5], x[lo + 6], x[lo + 7]
    i = 8
    while i < n - n % 8:
        r0 += x[lo + i]
        r1 += x[lo + i + 1]
        r2 += x[lo + i + 2]
        r3 += x[lo + i + 3]
        r4 += x[lo + i + 4]
        r5 += x[lo + i + 5]
        r6 += x[lo + i + 6]
        r7 += x[lo + i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += x[lo + i]
        i += 1
    return total


@njit(cache=True)
def _pairwise_sum(x: np.ndarray, n: int) -> float:
    """`np.sum(x[:n])` as numpy adds it (pairwise halves down to blocks of 128, each with 8
    partial sums), so that means come out bit for bit the same. Written without recursion:
    numba's cache cannot hold recursive functions."""
    # post-order walk of numpy's halving tree: (lo, n, combine?) tasks and a stack of sums
    task_lo = np.empty(128, dtype=np.int64)
    task_n = np.empty(128, dtype=np.int64)
    task_combine = np.empty(128, dtype=np.bool_)
    sums = np.empty(128)
    n_tasks, n_sums = 1, 0
    task_lo[0], task_n[0], task_combine[0] = 0, n, False
    while n_tasks:
        n_tasks -= 1
        lo, m, combine = task_lo[n_tasks], task_n[n_tasks], task_combine[n_tasks]
        if combine:
            sums[n_sums - 2] = sums[n_sums - 2] + sums[n_sums - 1]
            n_sums -= 1
        elif m <= 128:
            sums[n_sums] = _block_sum(x, lo, m)
            n_sums += 1
        else:
            half = m // 2
            half -= half % 8
            task_lo[n_tasks], task_n[n_tasks], task_combine[n_tasks] = lo, m, True
            task_lo[n_tasks + 1], task_n[n_tasks + 1] = lo + half, m - half
            task_combine[n_tasks + 1] = False
            task_lo[n_tasks + 2], task_n[n_tasks + 2] = lo, half
            task_combine[n_tasks + 2] = False
            n_tasks += 3
    return sums[0]


@njit(cache=True)
def segment_similarities(sim: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """`[K, K]`: entry (i, j), j < i, is the mean bar-to-bar similarity of segment i (bars
    `starts[i]` to `ends[i]`) against segment j, aligned at their starts and scaled down by
    their length ratio (how `structdiff.analysis.sections` labels segments); 0 elsewhere."""
    k = starts.shape[0]
    out = np.zeros((k, k))
    diag = np.empty(sim.shape[0])
    for i in range(k):
        for j in range(i):
            a, b, c, d = starts[i], ends[i], starts[j], ends[j]
            n = min(b - a, d - c)
            for m in range(n):
                diag[m] = sim[a + m, c + m]
            out[i, j] = _pairwise_sum(diag, n) / n * n / max(b - a, d - c)
    return out


@njit(cache=True)
def normalized_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of `x` `[S, 12]` divided by its sum (0 where the sum is not > 0), and the sums
    `[S]`, added as numpy adds a row of 12."""
    n, width = x.shape
    out = np.zeros_like(x)
    sums = np.empty(n)
    for s in range(n):
        total = _block_sum(x[s], 0, width)
        sums[s] = total
        if total > 0:
            for c in range(width):
                out[s, c] = x[s, c] / total
    return out, sums


@njit(cache=True)
def chord_scores(
    fit: np.ndarray, bass: np.ndarray, weight: np.ndarray, prior: np.ndarray,
    roots: np.ndarray, root_in_bass: float, scale: np.ndarray,
) -> np.ndarray:
    """Emissions `[S, C + 1]` (N last) from the template fit `[S, C]`, the normalized bass
    `[S, 12]` and the pitch-class mass `weight` `[S]` of each segment, times `scale` `[S]`
    (see `structdiff.analysis.chords.chord_emissions`)."""
    n, n_chords = fit.shape
    out = np.empty((n, n_chords + 1))
    for s in range(n):
        empty = weight[s] <= 0
        for c in range(n_chords):
            value = -np.inf if empty else fit[s, c] + prior[c] + root_in_bass * bass[s, roots[c]]
            out[s, c] = value * scale[s]
        out[s, n_chords] = (0.0 if empty else -np.inf) * scale[s]
    return out


@njit(cache=True)
def mono_share(starts: np.ndarray, durations: np.ndarray) -> float:
    """The share of the steps on which notes (`starts`, `durations` `[N]`, N > 0, starts >= 0)
    sound where exactly one sounds (1.0 when none sounds)."""
    end = 0
    for i in range(starts.shape[0]):
        end = max(end, starts[i] + durations[i])
    end += 1
    delta = np.zeros(end + 1, dtype=np.int64)
    for i in range(starts.shape[0]):
        delta[starts[i]] += 1
        delta[starts[i] + durations[i]] -= 1
    count, sounding, single = 0, 0, 0
    for t in range(end):
        count += delta[t]
        if count > 0:
            sounding += 1
            if count == 1:
                single += 1
    return single / sounding if sounding else 1.0


@njit(cache=True)
def phrase_cuts(costs: np.ndarray, bonus: np.ndarray, n: int) -> np.ndarray:
    """The cheapest cut of `n` bars into phrases: `back` `[n + 1]`, where `back[j]` is the
    start of the last phrase of the best cut of the first j bars. A phrase of length m costs
    `costs[m]` (m < len(costs)) less `bonus[i]` for starting at bar i > 0."""
    best = np.full(n + 1, np.inf)
    back = np.zeros(n + 1, dtype=np.int64)
    best[0] = 0.0
    longest = costs.shape[0] - 1
    for j in range(1, n + 1):
        for i in range(max(0, j - longest), j):
            cost = best[i] + costs[j - i]
            if i > 0:
                cost -= bonus[i]
            if cost < best[j]:
                best[j], back[j] = cost, i
    return back


@njit(cache=True)
def residue_contrasts(values: np.ndarray, m: int) -> np.ndarray:
    """For each d < m `[m]`: the mean of `values[d::m]` less the mean of the other values
    (NaN where there are fewer than 2 of the first or none of the second), each mean as numpy
    adds it (see `structdiff.analysis.beats`)."""
    n = values.shape[0]
    out = np.full(m, np.nan)
    lines = np.empty(n)
    others = np.empty(n)
    for d in range(m):
        n_lines = n_others = 0
        for i in range(n):
            if i % m == d:
                lines[n_lines] = values[i]
                n_lines += 1
            else:
                others[n_others] = values[i]
                n_others += 1
        if n_lines >= 2 and n_others:
            out[d] = (_pairwise_sum(lines, n_lines) / n_lines
                      - _pairwise_sum(others, n_others) / n_others)
    return out


@njit(cache=True)
def track_profiles(starts: np.ndarray, durations: np.ndarray, pitches: np.ndarray,
                   offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per track t (notes `offsets[t]:offsets[t + 1]` of the concatenated `starts`,
    `durations`, `pitches`, each track with notes): `mono_share` `[T]` and the median pitch
    `[T]` (as `np.median`: the mean of the two middle pitches of an even count)."""
    n_tracks = offsets.shape[0] - 1
    shares = np.empty(n_tracks)
    medians = np.empty(n_tracks)
    counts = np.zeros(128, dtype=np.int64)
    for t in range(n_tracks):
        lo, hi = offsets[t], offsets[t + 1]
        shares[t] = mono_share(starts[lo:hi], durations[lo:hi])
        counts[:] = 0
        for i in range(lo, hi):
            counts[pitches[i]] += 1
        n = hi - lo
        below, first, second = 0, -1, -1  # the pitches at sorted places (n - 1) // 2 and n // 2
        for p in range(128):
            if first < 0 and below + counts[p] > (n - 1) // 2:
                first = p
            if below + counts[p] > n // 2:
                second = p
                break
            below += counts[p]
        medians[t] = (float(first) + float(second)) / 2
    return shares, medians


@njit(cache=True)
def bar_evidence(times: np.ndarray, durations: np.ndarray, pitches: np.ndarray,
                 drums: np.ndarray, tpq: int, shift: int, change_weight: float,
                 strength_weight: float) -> np.ndarray:
    """Per beat `[B]`: how much starts there (the harmony changes from the beat before, long
    and low notes begin), after shifting the onsets by `shift` ticks (see
    `structdiff.analysis.beats._bar_scores`)."""
    n = times.shape[0]
    beat = np.empty(n, dtype=np.int64)
    n_beats = 0
    for i in range(n):
        beat[i] = np.int64(np.floor((times[i] + shift + tpq // 8) / tpq))
        n_beats = max(n_beats, beat[i] + 1)
    chroma = np.zeros((n_beats, 12))
    strength = np.zeros(n_beats)
    for i in range(n):  # in note order, as bincount adds
        if not drums[i]:
            chroma[beat[i], pitches[i] % 12] += min(max(durations[i] / tpq, 0.25), 4.0)
    for i in range(n):
        if abs(times[i] + shift - beat[i] * tpq) <= tpq // 8:
            low = 1.0 if (not drums[i] and pitches[i] < 55) else 0.0
            strength[beat[i]] += min(max(durations[i] / tpq, 0.25), 4.0) * (1.0 + low)
    norm = np.empty(n_beats)
    unit = np.zeros((n_beats, 12))
    row = np.empty(12)
    for b in range(n_beats):
        for c in range(12):
            row[c] = chroma[b, c] * chroma[b, c]
        norm[b] = np.sqrt(_block_sum(row, 0, 12))
        if norm[b] > 0:
            for c in range(12):
                unit[b, c] = chroma[b, c] / norm[b]
    change = np.zeros(n_beats)
    for b in range(1, n_beats):
        for c in range(12):
            row[c] = unit[b, c] * unit[b - 1, c]
        change[b] = 1.0 - _block_sum(row, 0, 12)
    for b in range(n_beats):
        if norm[b] == 0:
            change[b] = 0.0
    mean = _pairwise_sum(strength, n_beats) / n_beats
    scale = max(mean, 1e-9)
    evidence = np.empty(n_beats)
    for b in range(n_beats):
        evidence[b] = change_weight * change[b] + strength_weight * (strength[b] / scale)
    return evidence


@njit(cache=True)
def phase_weights(times: np.ndarray, durations: np.ndarray, pitches: np.ndarray, tpq: int,
                  phases: int, tolerance: int) -> np.ndarray:
    """`[phases]`: the weight of the onsets near each candidate beat phase, each vote spread
    over a triangle of `tolerance` candidates (see `structdiff.analysis.beats.phase_weights`)."""
    votes = np.zeros(phases)
    for i in range(times.shape[0]):  # in note order, as bincount adds
        weight = min(max(durations[i] / tpq, 0.25), 2.0) + (0.5 if pitches[i] < 55 else 0.0)
        position = np.int64(np.rint((times[i] % tpq) / tpq * phases)) % phases
        votes[position] += weight
    total = np.zeros(phases)
    for d in range(-tolerance, tolerance + 1):  # in the order of numpy's sum of rolls
        for j in range(phases):
            total[j] += (tolerance + 1 - abs(d)) * votes[(j - d) % phases]
    return total


@njit(cache=True)
def phase_refined(times: np.ndarray, durations: np.ndarray, pitches: np.ndarray, tpq: int,
                  centre: float, window: float) -> float:
    """`centre` moved to the weighted mean offset of the onsets within `window` ticks of it
    (modulo a quarter), weighted as `phase_weights` weighs them; unmoved when none is near.
    As numpy's `np.average` of the offsets computes it (pairwise sums), bit for bit."""
    n = times.shape[0]
    products = np.empty(n)
    weights = np.empty(n)
    k = 0
    half = tpq / 2
    for i in range(n):
        offset = (times[i] - centre + half) % tpq - half
        if abs(offset) <= window:
            weight = min(max(durations[i] / tpq, 0.25), 2.0) + (0.5 if pitches[i] < 55 else 0.0)
            products[k] = offset * weight
            weights[k] = weight
            k += 1
    if k == 0:
        return centre
    return centre + _pairwise_sum(products, k) / _pairwise_sum(weights, k)


@njit(cache=True)
def bar_similarity(literal: np.ndarray, chroma_sim: np.ndarray,
                   rhythm_sim: np.ndarray) -> np.ndarray:
    """`clip(0.5 * literal + 0.25 * chroma_sim + 0.25 * rhythm_sim, 0, 1)` `[L, L]` float64
    in one pass, with numpy's roundings: `0.5 * literal` in float32 (as numpy does for a
    float32 array), then float64, added left to right."""
    n = literal.shape[0]
    out = np.empty((n, n))
    half = np.float32(0.5)
    for i in range(n):
        for j in range(n):
            v = np.float64(half * literal[i, j]) + 0.25 * chroma_sim[i, j]
            v = v + 0.25 * rhythm_sim[i, j]
            out[i, j] = min(max(v, 0.0), 1.0) if v == v else v
    return out


@njit(cache=True)
def onset_jaccard(bar_index: np.ndarray, kinds: np.ndarray, n_bars: int) -> np.ndarray:
    """`[L, L]` float32: the Jaccard similarity of each two bars' sets of onset kinds (1 where
    both are empty), for notes in bar `bar_index` `[N]` (0 <= b < n_bars) of kind `kinds` `[N]`
    (see `structdiff.analysis.sections.self_similarity`). The counts are the integers the
    numpy version's float32 matrix product gave, and the quotient is float32's, as there."""
    out = np.ones((n_bars, n_bars), dtype=np.float32)
    n = bar_index.shape[0]
    if n == 0:
        return out
    # dense ids of the kinds (rank among the distinct values)
    order = np.argsort(kinds, kind="mergesort")
    dense = np.empty(n, dtype=np.int64)
    n_kinds = 0
    for k in range(n):
        if k > 0 and kinds[order[k]] != kinds[order[k - 1]]:
            n_kinds += 1
        dense[order[k]] = n_kinds
    n_kinds += 1
    # each bar's distinct kinds, bar by bar
    keys = np.sort(bar_index * n_kinds + dense)
    ptr = np.zeros(n_bars + 1, dtype=np.int64)
    members = np.empty(n, dtype=np.int64)
    m = 0
    for k in range(n):
        if k == 0 or keys[k] != keys[k - 1]:
            members[m] = keys[k] % n_kinds
            ptr[keys[k] // n_kinds + 1] += 1
            m += 1
    for b in range(n_bars):
        ptr[b + 1] += ptr[b]
    mark = np.full(n_kinds, -1, dtype=np.int64)
    for i in range(n_bars):
        for e in range(ptr[i], ptr[i + 1]):
            mark[members[e]] = i
        count_i = ptr[i + 1] - ptr[i]
        for j in range(i, n_bars):
            both = 0
            for e in range(ptr[j], ptr[j + 1]):
                if mark[members[e]] == i:
                    both += 1
            union = count_i + (ptr[j + 1] - ptr[j]) - both
            if union > 0:
                value = np.float32(both) / np.float32(union)
                out[i, j] = value
                out[j, i] = value
    return out


@njit(cache=True)
def in_note_order(notes: np.ndarray) -> bool:
    """Whether notes `[N, 4]` are already in `structdiff.data.song.sort_notes`' order (start,
    then pitch, then duration): one pass instead of building its sort key (files read in
    order, as most are, skip the sort)."""
    for i in range(1, notes.shape[0]):
        a0, b0 = notes[i - 1, 0], notes[i, 0]
        if a0 != b0:
            if a0 > b0:
                return False
            continue
        a2, b2 = notes[i - 1, 2], notes[i, 2]
        if a2 != b2:
            if a2 > b2:
                return False
            continue
        if notes[i - 1, 1] > notes[i, 1]:
            return False
    return True


@njit(cache=True)
def note_order(notes: np.ndarray) -> np.ndarray:
    """The stable order `[N]` that `structdiff.data.song.sort_notes` puts notes `[N, 4]` in
    (start, then pitch, then duration), from the same packed int64 key; an empty array when
    a field is outside that key's ranges (the caller then sorts with `sort_notes` itself)."""
    n = notes.shape[0]
    key = np.empty(n, dtype=np.int64)
    for i in range(n):
        start, duration, pitch = np.int64(notes[i, 0]), np.int64(notes[i, 1]), np.int64(notes[i, 2])
        if not (0 <= start < 2**30 and 0 <= pitch < 128 and 0 <= duration < 2**26):
            return np.empty(0, dtype=np.int64)
        key[i] = (start << 33) | (pitch << 26) | duration
    return np.argsort(key, kind="mergesort")
