"""Distances between a generated and a reference set of per-song metric values.

Following Yang & Lerch (2018, "On the evaluation of generative models in music"), a metric's
*intra-set* distances are the absolute differences between the values of two songs of the
reference set, its *inter-set* distances those between a generated and a reference song. Both
are smoothed into densities with a Gaussian KDE (scipy); the overlapping area (OA) and the KL
divergence KL(intra || inter) between the two densities say how close the generated songs lie
to the reference compared with how close reference songs lie to each other: OA near 1 and KL
near 0 for a generator that matches the reference. The overlap of the two sets' value
densities themselves (`value_oa`) is reported beside it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import gaussian_kde

GRID_POINTS = 1000
MIN_VALUES = 2  # per set, after dropping nan
MAX_KDE_SAMPLES = 4000  # distances beyond this are subsampled (seeded): KDE cost is samples x grid


def intra_set_distances(values: np.ndarray) -> np.ndarray:
    """|a - b| over all pairs of distinct songs of one set `[N]` -> `[N (N-1) / 2]`."""
    v = np.asarray(values, dtype=float)
    i, j = np.triu_indices(len(v), k=1)
    return np.abs(v[i] - v[j])


def inter_set_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a_i - b_j| over all pairs across two sets `[N]`, `[M]` -> `[N M]`."""
    return np.abs(np.asarray(a, float)[:, None] - np.asarray(b, float)[None, :]).ravel()


def _density(samples: np.ndarray, grid: np.ndarray, scale: float) -> np.ndarray:
    """KDE of `samples` on `grid`, normalized to integrate to 1. A set without spread (all
    values equal) gets a narrow kernel instead of scipy's singular covariance."""
    if len(samples) > MAX_KDE_SAMPLES:
        samples = np.random.default_rng(0).choice(samples, MAX_KDE_SAMPLES, replace=False)
    if np.ptp(samples) == 0:
        width = 1e-2 * scale
        dens = np.exp(-0.5 * ((grid[:, None] - samples[None, :]) / width) ** 2).sum(axis=1)
    else:
        dens = gaussian_kde(samples)(grid)
    total = np.trapezoid(dens, grid)
    return dens / total if total > 0 else dens


def overlap_and_kl(p_samples: np.ndarray, q_samples: np.ndarray) -> tuple[float, float]:
    """Overlapping area of the densities of two samples and KL(p || q); nan, nan when either
    sample has fewer than 2 values."""
    p = np.asarray(p_samples, float)
    q = np.asarray(q_samples, float)
    p, q = p[np.isfinite(p)], q[np.isfinite(q)]
    if len(p) < MIN_VALUES or len(q) < MIN_VALUES:
        return math.nan, math.nan
    lo, hi = min(p.min(), q.min()), max(p.max(), q.max())
    scale = hi - lo if hi > lo else max(abs(hi), 1.0)
    grid = np.linspace(lo - 0.5 * scale, hi + 0.5 * scale, GRID_POINTS)
    dp, dq = _density(p, grid, scale), _density(q, grid, scale)
    oa = float(np.trapezoid(np.minimum(dp, dq), grid))
    eps = 1e-12
    kl = float(np.trapezoid(dp * np.log((dp + eps) / (dq + eps)), grid))
    return min(max(oa, 0.0), 1.0), max(kl, 0.0)


def compare_sets(generated: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Summary of one metric over two sets `[N]`, `[M]` (nan values dropped): mean and std of
    each, the Yang & Lerch overlap `oa` and `kl` (reference intra-set vs inter-set distances),
    and `value_oa`, the overlap of the value densities."""
    g = np.asarray(generated, float)
    r = np.asarray(reference, float)
    g, r = g[np.isfinite(g)], r[np.isfinite(r)]
    out = {
        "generated_mean": float(g.mean()) if len(g) else math.nan,
        "generated_std": float(g.std()) if len(g) else math.nan,
        "generated_n": int(len(g)),
        "reference_mean": float(r.mean()) if len(r) else math.nan,
        "reference_std": float(r.std()) if len(r) else math.nan,
        "reference_n": int(len(r)),
    }
    if len(g) >= MIN_VALUES and len(r) >= MIN_VALUES:
        out["oa"], out["kl"] = overlap_and_kl(intra_set_distances(r), inter_set_distances(g, r))
        out["value_oa"] = overlap_and_kl(g, r)[0]
    else:
        out["oa"] = out["kl"] = out["value_oa"] = math.nan
    return out
