import torch

from structdiff.data.plan_tensor import CONDITION_NAMES, MAX_SLOTS, N_FEATURES, PLAN_LAYOUT
from structdiff.models.planner import Planner, PlannerConfig, x0_from_logits


def _model():
    torch.manual_seed(0)
    cfg = PlannerConfig(n_features=N_FEATURES, n_slots=MAX_SLOTS,
                        n_bar_cond=len(CONDITION_NAMES), n_styles=3, d_model=32, n_layers=2,
                        n_heads=2, dropout=0.0)
    model = Planner(cfg).eval()
    # adaLN-zero starts every block as the identity: perturb so the test sees attention
    for p in model.parameters():
        p.data += 0.05 * torch.randn_like(p)
    return model


def _cond(B, L, pad=None):
    return {
        "style": torch.zeros(B, dtype=torch.long),
        "mode": torch.ones(B, dtype=torch.long),
        "slot_valid": torch.ones(B, L, MAX_SLOTS, dtype=torch.bool),
        "bar_cond": torch.zeros(B, L, len(CONDITION_NAMES)),
        "pad": torch.zeros(B, L, dtype=torch.bool) if pad is None else pad,
    }


def test_output_shape_and_padding_does_not_leak():
    model = _model()
    x = torch.randn(1, 6, N_FEATURES)
    t = torch.tensor([10])
    with torch.no_grad():
        alone = model(x, t, _cond(1, 6))
        padded_x = torch.cat([x, 5 * torch.randn(1, 3, N_FEATURES)], dim=1)
        pad = torch.tensor([[False] * 6 + [True] * 3])
        padded = model(padded_x, t, _cond(1, 9, pad))
    assert alone.shape == (1, 6, N_FEATURES)
    # bar_cond is the same zeros, so the real bars see exactly the same inputs
    assert torch.allclose(alone, padded[:, :6], atol=1e-5)


def test_context_and_condition_change_the_prediction():
    model = _model()
    x = torch.randn(1, 4, N_FEATURES)
    t = torch.tensor([5])
    cond = _cond(1, 4)
    with torch.no_grad():
        base = model(x, t, cond)
        known = {**cond, "context": torch.ones(1, 4, N_FEATURES),
                 "mask": torch.ones(1, 4, N_FEATURES)}
        other_style = {**cond, "style": torch.tensor([3])}  # the null style
        assert not torch.allclose(base, model(x, t, known))
        assert not torch.allclose(base, model(x, t, other_style))


def test_x0_from_logits_is_a_distribution_per_group():
    x0 = x0_from_logits(torch.randn(2, 3, N_FEATURES))
    assert x0.min() >= -1 and x0.max() <= 1
    for g in PLAN_LAYOUT:
        assert torch.allclose(((x0[..., g.slice] + 1) / 2).sum(-1), torch.ones(2, 3))
