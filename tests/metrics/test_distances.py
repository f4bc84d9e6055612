import math

import numpy as np
import pytest

from structdiff.metrics.distances import (
    compare_sets,
    inter_set_distances,
    intra_set_distances,
    overlap_and_kl,
)


def test_pairwise_distances():
    assert sorted(intra_set_distances(np.array([0.0, 1.0, 3.0]))) == [1.0, 2.0, 3.0]
    assert sorted(inter_set_distances(np.array([0.0, 1.0]), np.array([2.0]))) == [1.0, 2.0]


def test_identical_samples_overlap_fully():
    x = np.random.default_rng(0).normal(size=300)
    oa, kl = overlap_and_kl(x, x)
    assert oa == pytest.approx(1.0, abs=1e-6) and kl == pytest.approx(0.0, abs=1e-6)


def test_far_apart_samples_do_not_overlap():
    rng = np.random.default_rng(1)
    oa, kl = overlap_and_kl(rng.normal(0, 1, 200), rng.normal(10, 1, 200))
    assert oa < 0.01 and kl > 5


def test_overlap_of_two_unit_gaussians_one_sigma_apart():
    # the exact overlap of N(0,1) and N(1,1) is 2 * Phi(-0.5) = 0.617
    rng = np.random.default_rng(2)
    oa, _ = overlap_and_kl(rng.normal(0, 1, 4000), rng.normal(1, 1, 4000))
    assert oa == pytest.approx(0.617, abs=0.03)


def test_compare_sets_matches_generator_to_reference():
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 200)
    close = compare_sets(rng.normal(0, 1, 200), ref)
    far = compare_sets(rng.normal(3, 1, 200), ref)
    assert close["oa"] > 0.9 > far["oa"] and close["kl"] < far["kl"]
    assert close["value_oa"] > 0.8 > 0.2 > far["value_oa"]
    assert close["reference_n"] == 200 and abs(close["reference_mean"]) < 0.2


def test_nan_values_are_dropped_and_too_few_give_nan():
    out = compare_sets(np.array([1.0, math.nan]), np.array([1.0, 2.0, 3.0]))
    assert out["generated_n"] == 1 and math.isnan(out["oa"])
    constant = compare_sets(np.array([2.0, 2.0, 2.0]), np.array([2.0, 2.0]))
    assert constant["value_oa"] == pytest.approx(1.0, abs=1e-3)
