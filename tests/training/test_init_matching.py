"""Fine-tuning from a shipped bundle: matching tensors load, others start fresh."""

import pytest
import torch

from structdiff.models.bundle import BundleError, save_bundle
from structdiff.models.planner import Planner, PlannerConfig
from structdiff.training.base import init_matching


def _planner(n_styles: int, seed: int) -> Planner:
    torch.manual_seed(seed)
    return Planner(PlannerConfig(n_features=20, n_slots=4, n_bar_cond=3, n_styles=n_styles,
                                 d_model=16, n_layers=1, n_heads=2))


def test_matching_tensors_load_and_the_style_table_starts_fresh(tmp_path):
    source = _planner(n_styles=6, seed=0)
    save_bundle(source, {"kind": "planner"}, tmp_path, "planner")
    target = _planner(n_styles=16, seed=1)
    fresh_style = target.style.weight.clone()
    fresh = init_matching(target, str(tmp_path), "planner")
    assert fresh == ["style.weight"]
    assert torch.equal(target.style.weight, fresh_style)
    src, dst = source.state_dict(), target.state_dict()
    assert all(torch.equal(src[k], dst[k]) for k in dst if k != "style.weight")


def test_a_folder_without_the_bundle_is_a_clear_error(tmp_path):
    with pytest.raises(BundleError, match="no model 'planner'"):
        init_matching(_planner(2, 0), str(tmp_path), "planner")
