"""Structure metrics: bar-level self-similarity, structureness, ILS ratio, form adherence.

All are pure functions in the manner of MusPy's metrics: a float, `nan` where a metric does
not apply (too few bars, no pairs to compare), a `ValueError` naming the argument for bad input.

- `bar_ssm(song)`: the bar-level self-similarity matrix `[L, L]` the other metrics read.
- `structureness(ssm, min_bars, max_bars)`: the structureness indicator of Wu & Yang (2020),
  Müller's segment fitness on a bar grid (see its docstring for the adaptation).
- `label_similarity_ratio(ssm, labels)`: the ILS idea of Wang et al. (2024): how much more
  alike bars with the same section label are than bars with different labels.
- `form_adherence(plan_labels, song_labels)`: pairwise F-measure of two per-bar labelings.
- `form_statistics(forms)`: how a set of forms is built (section lengths, repeats, labels,
  intros and outros), to set generated forms beside real ones of a style.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from structdiff.analysis.sections import bar_features, labels_per_bar
from structdiff.data.song import Plan, Section, Song

# Bar ranges (inclusive) of the three structureness scales. Wu & Yang take segments of 3-8 s,
# 8-15 s and over 15 s of audio; at 120 bpm in 4/4 (2 s a bar) that is about 2-4, 4-8 and 8+
# bars: a phrase member, a phrase, a period or section (capped at 16 bars, longer repeats
# already score at 16).
SCALES: dict[str, tuple[int, int]] = {"si_short": (2, 4), "si_mid": (4, 8), "si_long": (8, 16)}

MATCH_THRESHOLD = 0.8  # SSM values at or above this count as a match (see `structureness`)
PENALTY = -2.0  # what a cell below the threshold adds to a path's score (Müller's default)


def bar_ssm(song: Song) -> np.ndarray:
    """Bar-level self-similarity `[L, L]` in [0, 1]: the mean of the cosine similarities of
    the bars' pitch-class profiles (duration weighted) and of their onset rhythms (16
    positions), both from `bar_features`. An empty bar has similarity 0 to every other bar and
    1 to itself."""
    chroma, rhythm, _ = bar_features(song)
    sim = 0.5 * (chroma @ chroma.T + rhythm @ rhythm.T)
    sim = np.clip(sim, 0.0, 1.0)
    np.fill_diagonal(sim, 1.0)
    return sim


def _check_ssm(ssm: np.ndarray) -> np.ndarray:
    ssm = np.asarray(ssm, dtype=np.float64)
    if ssm.ndim != 2 or ssm.shape[0] != ssm.shape[1]:
        raise ValueError(f"ssm must be a square matrix [L, L], got shape {ssm.shape}")
    return ssm


def thresholded_ssm(
    ssm: np.ndarray, threshold: float = MATCH_THRESHOLD, penalty: float = PENALTY
) -> np.ndarray:
    """`ssm` `[L, L]` scored for path matching: values in [threshold, 1] rescaled to [0, 1],
    values below the threshold set to `penalty`, the diagonal set to 1 (Müller's thresholding,
    with an absolute threshold)."""
    ssm = _check_ssm(ssm)
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    if penalty > 0:
        raise ValueError(f"penalty must be <= 0, got {penalty}")
    scored = np.where(ssm >= threshold, (np.minimum(ssm, 1.0) - threshold) / (1 - threshold),
                      penalty)
    np.fill_diagonal(scored, 1.0)
    return scored


def fitness_by_length(scored: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """Müller's fitness of every segment `[s, s + n)` of a scored SSM `[L, L]` (from
    `thresholded_ssm`) for each length n in `lengths` `[K]` -> `[K, L]` (`nan` where the segment
    would run past the end).

    A segment's path family is its self-match plus the best set of other diagonal matches
    (bars `[r, r + n)` against `[s, s + n)`, induced segments not overlapping each other nor the
    segment itself) by total score: weighted interval scheduling over the rows, solved by one
    dynamic program before the segment (rows `< s`) and one after it (rows `>= s + n`), each
    run for every length and start at once.
    """
    L = len(scored)
    ns = np.asarray(lengths, dtype=np.int64)
    if len(ns) == 0 or ns.min() < 1 or ns.max() > L:
        raise ValueError(f"lengths must lie in [1, {L}], got {list(ns)}")
    K, m = len(ns), L - int(ns.min()) + 1  # m: the most segment starts of any length
    # diag[i, j] = sum of scored[i - k, j - k] for k >= 1 while both stay >= 0
    diag = np.zeros((L + 1, L + 1))
    for i in range(L):
        diag[i + 1, 1:] = diag[i, :-1] + scored[i]
    # weight[k, r, s]: score of bars [r, r + n) matched to [s, s + n); -inf where either runs out
    weight = np.full((K, L + 1, m), -np.inf)
    for k, n in enumerate(ns):
        w = diag[n:, n:] - diag[: L + 1 - n, : L + 1 - n]  # [L - n + 1, L - n + 1]
        weight[k, : L - n + 1, : L - n + 1] = w
    ks = np.arange(K)
    # before[k, i, s]: best score (and number of paths) using rows in [0, i)
    before = np.zeros((K, L + 1, m))
    n_before = np.zeros((K, L + 1, m), dtype=np.int64)
    for i in range(1, L + 1):
        j = np.maximum(i - ns, 0)
        cand = np.where((i >= ns)[:, None], before[ks, j] + weight[ks, j], -np.inf)
        take = cand > before[:, i - 1]
        before[:, i] = np.where(take, cand, before[:, i - 1])
        n_before[:, i] = np.where(take, n_before[ks, j] + 1, n_before[:, i - 1])
    # after[k, i, s]: best score (and number of paths) using rows in [i, L)
    after = np.zeros((K, L + 1, m))
    n_after = np.zeros((K, L + 1, m), dtype=np.int64)
    for i in range(L - 1, -1, -1):
        j = np.minimum(i + ns, L)
        cand = after[ks, j] + weight[:, i]
        take = cand > after[:, i + 1]
        after[:, i] = np.where(take, cand, after[:, i + 1])
        n_after[:, i] = np.where(take, n_after[ks, j] + 1, n_after[:, i + 1])
    ar = ks[:, None]
    s = np.arange(m)[None, :]
    end = np.minimum(s + ns[:, None], L)
    others = before[ar, s, s] + after[ar, end, s]  # [K, m]
    n_paths = 1 + n_before[ar, s, s] + n_after[ar, end, s]
    n = ns[:, None].astype(np.float64)
    score = others / (n_paths * n)  # (sigma - |alpha|) / total path length
    coverage = (n_paths - 1) * n / L  # (gamma - |alpha|) / L
    total = score + coverage
    fitness = np.divide(2 * score * coverage, total, out=np.zeros_like(total), where=total > 0)
    out = np.full((K, L), np.nan)
    valid = s + ns[:, None] <= L
    out[:, :m] = np.where(valid, fitness, np.nan)
    return out


def structureness(
    ssm: np.ndarray,
    min_bars: int,
    max_bars: int,
    threshold: float = MATCH_THRESHOLD,
    penalty: float = PENALTY,
) -> float:
    """Structureness indicator: the highest repetition fitness of any segment of `min_bars` to
    `max_bars` bars (inclusive) in a bar-level SSM `[L, L]` with values in [0, 1].

    Wu & Yang (2020, "The Jazz Transformer on the Front Line") take the maximum of Müller's
    fitness scape plot (Müller, Grosche & Jiang, 2012) over segments within a range of
    durations. The fitness of a segment alpha of n bars is the harmonic mean of
      - normalized score (sigma - n) / (K n): sigma, the summed scored SSM along the K paths of
        its best path family (the self-match, which scores n, included), the self-match
        normalized away; and
      - normalized coverage (K n - n) / L: the bars its repetitions cover, itself excluded.
    Adapted to a symbolic bar-level SSM:
      - paths are exact diagonals (bars are already aligned, so no time warping): a path
        matches bars [r, r + n) to the segment bar by bar, and a family is any set of such
        paths whose row ranges do not overlap each other nor the segment;
      - the SSM is scored with an absolute threshold (0.8 by default: our SSM is on a fixed
        scale where 1 is the same pitch-class profile and rhythm; audio SSMs need the
        relative threshold Müller uses): values v >= threshold score (v - threshold) /
        (1 - threshold), values below score `penalty` (-2, Müller's), so a path through
        dissimilar bars loses more than a similar bar gives; the diagonal scores 1;
      - the best family maximizes the summed score (weighted interval scheduling; a path joins
        only when it scores > 0), which stands in for Müller's warping-path DP.
    Values lie in [0, 1): 0 when nothing repeats at that scale; a segment played K times in a
    row over the whole song, every repeat exact, scores (K - 1) / K. `nan` when the song has
    fewer than `2 * min_bars` bars (no repetition of that length fits).
    """
    ssm = _check_ssm(ssm)
    if min_bars < 1 or max_bars < min_bars:
        raise ValueError(f"need 1 <= min_bars <= max_bars, got min_bars {min_bars}, "
                         f"max_bars {max_bars}")
    L = len(ssm)
    if L < 2 * min_bars:
        return math.nan
    lengths = range(min_bars, min(max_bars, L // 2) + 1)
    fitness = fitness_by_length(thresholded_ssm(ssm, threshold, penalty), lengths)
    return float(np.nanmax(fitness))


def label_similarity_ratio(ssm: np.ndarray, labels: Sequence[str]) -> float:
    """The ILS idea of Wang et al. (ICLR 2024): mean similarity over pairs of distinct bars with
    the same section label divided by the mean over pairs with different labels. `ssm` is
    `[L, L]`, `labels` `[L]`. Above 1 when same-labelled bars sound more alike; `nan` when no
    pair has the same label, none has different labels, or their mean similarity is 0."""
    ssm = _check_ssm(ssm)
    if len(labels) != len(ssm):
        raise ValueError(f"labels must have one label per bar ({len(ssm)}), got {len(labels)}")
    if len(ssm) < 2:
        return math.nan
    codes = np.unique(np.asarray(labels, dtype=object), return_inverse=True)[1].ravel()
    i, j = np.triu_indices(len(ssm), k=1)
    values, same = ssm[i, j], codes[i] == codes[j]
    if same.all() or not same.any():
        return math.nan
    different = values[~same].mean()
    return float(values[same].mean() / different) if different > 0 else math.nan


def form_adherence(plan_labels: Sequence[str], song_labels: Sequence[str]) -> float:
    """Pairwise F-measure of two per-bar labelings `[L]` (as mir_eval's pairwise frame
    clustering): with P the pairs of distinct bars that share a label in `plan_labels` and S
    those in `song_labels`, precision |P & S| / |S|, recall |P & S| / |P|, their harmonic mean.

    1.0 for the same form whatever the label names; 1.0 too when neither repeats any label, 0.0
    when only one of them does; `nan` for fewer than 2 bars."""
    if len(plan_labels) != len(song_labels):
        raise ValueError(f"labelings must have the same number of bars, got {len(plan_labels)} "
                         f"and {len(song_labels)}")
    if len(plan_labels) < 2:
        return math.nan
    plan = np.unique(np.asarray(plan_labels, dtype=object), return_inverse=True)[1].ravel()
    song = np.unique(np.asarray(song_labels, dtype=object), return_inverse=True)[1].ravel()
    i, j = np.triu_indices(len(plan), k=1)
    in_plan, in_song = plan[i] == plan[j], song[i] == song[j]
    n_plan, n_song = int(in_plan.sum()), int(in_song.sum())
    if n_plan == 0 and n_song == 0:
        return 1.0
    both = int((in_plan & in_song).sum())
    if both == 0:
        return 0.0
    precision, recall = both / n_song, both / n_plan
    return 2 * precision * recall / (precision + recall)


def _bar_labels(plan: Plan, n_bars: int) -> list[str]:
    """One label per bar of the song from `plan`'s sections (cut at the song's end)."""
    return labels_per_bar(plan.sections)[:n_bars]


def structure_metrics(song: Song, plan: Plan, analyzed: Plan, given: bool) -> dict[str, float]:
    """`si_short`, `si_mid`, `si_long` (structureness at the bar ranges of `SCALES`),
    `ils_ratio` (`label_similarity_ratio` with `plan`'s labels) and `form_adherence` (`plan`'s
    labels against `analyzed`'s; `nan` unless the plan was `given`). Bars beyond a plan's
    sections are left out of the metrics that need labels."""
    ssm = bar_ssm(song)
    L = len(ssm)
    out: dict[str, float] = {}
    lo, hi = min(a for a, _ in SCALES.values()), max(b for _, b in SCALES.values())
    lengths = list(range(lo, min(hi, L // 2) + 1))
    per_length = (
        np.nanmax(fitness_by_length(thresholded_ssm(ssm), lengths), axis=1) if lengths else []
    )
    for name, (a, b) in SCALES.items():
        picked = [f for n, f in zip(lengths, per_length) if a <= n <= b]
        out[name] = float(max(picked)) if picked else math.nan
    labels = _bar_labels(plan, L)
    out["ils_ratio"] = label_similarity_ratio(ssm[: len(labels), : len(labels)], labels)
    if given:
        song_labels = _bar_labels(analyzed, L)
        n = min(len(labels), len(song_labels))
        out["form_adherence"] = form_adherence(labels[:n], song_labels[:n])
    else:
        out["form_adherence"] = math.nan
    return out


FORM_LENGTH_BINS = 17  # section lengths 1..16 bars, and 17 or more in the last bin


def form_statistics(forms: Sequence[Sequence[Section]]) -> dict:
    """Of a set of forms (each a list of sections, as a plan holds them): `lengths`, the share
    of sections of 1, 2, ..., 16 and 17+ bars `[17]` (pooled); the means over forms of
    `repeated` (the share of bars whose label an earlier section had), `labels` (distinct
    labels other than `i`/`o`), `intro` and `outro` (whether it opens with `i` / closes with
    `o`) and `sections`. Empty forms are left out; ValueError when none is left."""
    forms = [list(f) for f in forms if len(f)]
    if not forms:
        raise ValueError("forms: no non-empty form")
    lengths = np.zeros(FORM_LENGTH_BINS)
    repeated, labels, intro, outro = [], [], [], []
    for form in forms:
        seen: set[str] = set()
        again = 0
        for s in form:
            lengths[min(s.n_bars, FORM_LENGTH_BINS) - 1] += 1
            if s.label in seen:
                again += s.n_bars
            seen.add(s.label)
        repeated.append(again / max(sum(s.n_bars for s in form), 1))
        labels.append(len(seen - {"i", "o"}))
        intro.append(form[0].label == "i")
        outro.append(form[-1].label == "o")
    return {"lengths": lengths / lengths.sum(), "repeated": float(np.mean(repeated)),
            "labels": float(np.mean(labels)), "intro": float(np.mean(intro)),
            "outro": float(np.mean(outro)), "sections": float(np.mean([len(f) for f in forms]))}

