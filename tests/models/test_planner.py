import torch

from structdiff.data.plan_tensor import CONDITION_NAMES, MAX_SLOTS, N_FEATURES, PLAN_LAYOUT
from structdiff.models.planner import Planner, PlannerConfig, x0_from_logits


def _model(**extra):
    torch.manual_seed(0)
    cfg = PlannerConfig(n_features=N_FEATURES, n_slots=MAX_SLOTS,
                        n_bar_cond=len(CONDITION_NAMES), n_styles=3, d_model=32, n_layers=2,
                        n_heads=2, dropout=0.0, **extra)
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


def test_padding_does_not_leak_with_the_smooth_length_encoding_either():
    model = _model(length_encoding="smooth")
    x = torch.randn(1, 6, N_FEATURES)
    t = torch.tensor([10])
    with torch.no_grad():
        alone = model(x, t, _cond(1, 6))
        padded_x = torch.cat([x, 5 * torch.randn(1, 3, N_FEATURES)], dim=1)
        padded = model(padded_x, t, _cond(1, 9, torch.tensor([[False] * 6 + [True] * 3])))
    assert torch.allclose(alone, padded[:, :6], atol=1e-5)


def test_the_smooth_length_encoding_conditions_near_lengths_alike():
    # session 20: the per-length table gave each length its own vector, random where few
    # training songs have that length (32-bar chorale plans sat on the tonic 40% of the time
    # against 25% at 31 bars); the smooth encoding moves little from one length to the next
    import pytest

    from structdiff.models.planner import length_features

    model = _model(length_encoding="smooth")
    assert "length.weight" not in dict(model.named_parameters())
    n = torch.arange(1, 513)
    with torch.no_grad():
        vectors = model.length(length_features(n, 512))
    step = (vectors[1:] - vectors[:-1]).norm(dim=-1)  # from each length to the next
    far = (vectors[31] - vectors[7]).norm()  # 32 bars against 8
    assert step[8:].max() < 0.1 * far
    with pytest.raises(ValueError, match="length_encoding must be one of"):
        _model(length_encoding="bucket")
    # an old bundle's config has no length_encoding: it reads as the table it was trained with
    assert _model().cfg.length_encoding == "table" and "length.weight" in dict(
        _model().named_parameters())


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


# --- the masked planner's tokens and sampler ---------------------------------------------------


def test_plan_tokens_round_trip_and_masked_groups_read_zero():
    from structdiff.diffusion.masked import MASK
    from structdiff.models.planner import masked_input, plan_tokens, tokens_one_hot

    g = torch.Generator().manual_seed(0)
    tokens = torch.stack([torch.randint(0, grp.size, (2, 5), generator=g)
                          for grp in PLAN_LAYOUT], dim=-1)  # [2, 5, G]
    one_hot = tokens_one_hot(tokens)
    assert one_hot.shape == (2, 5, N_FEATURES) and torch.equal(plan_tokens(one_hot), tokens)
    for grp in PLAN_LAYOUT:  # exactly one feature of every group is on
        assert torch.all(one_hot[..., grp.slice].sum(-1) == 1)
    masked = tokens.clone()
    masked[0, 1, 3] = MASK  # slot 0's root of bar 1
    x = masked_input(masked)
    assert torch.all(x[0, 1, PLAN_LAYOUT[3].slice] == 0)
    assert torch.equal(x[0, 0], 2 * one_hot[0, 0] - 1)  # known groups: their x0 values
    assert torch.equal(x[0, 1, PLAN_LAYOUT[4].slice], 2 * one_hot[0, 1, PLAN_LAYOUT[4].slice] - 1)


def test_group_logits_keep_each_groups_logits_and_shut_the_rest():
    from structdiff.models.planner import group_logits

    logits = torch.randn(1, 2, N_FEATURES)
    per_group = group_logits(logits)
    width = max(g.size for g in PLAN_LAYOUT)
    assert per_group.shape == (1, 2, len(PLAN_LAYOUT), width)
    for k, grp in enumerate(PLAN_LAYOUT):
        assert torch.equal(per_group[..., k, : grp.size], logits[..., grp.slice])
        assert torch.all(per_group[..., k, grp.size :] == float("-inf"))


def test_masked_plan_sampler_draws_the_networks_distribution_and_keeps_what_is_known():
    """A fake network with fixed logits: the sampler's draws follow its softmax group by group,
    the known groups come back exactly, unused slots stay unused (quality N)."""
    from structdiff.data.plan_tensor import N_QUALITY, group_slices
    from structdiff.models.planner import plan_tokens, sample_masked_plan

    B, L = 3000, 2
    logits = torch.zeros(N_FEATURES)
    quality0 = group_slices()["quality0"]
    want = torch.tensor([0.5, 0.3, 0.2])  # over the first three qualities; the rest -inf
    logits[quality0] = float("-inf")
    logits[quality0.start : quality0.start + 3] = want.log()
    seen = []

    def network(x_t, t, cond):
        seen.append(cond)
        return logits.expand(*x_t.shape[:-1], N_FEATURES)

    cond = _cond(B, L)
    cond["slot_valid"] = torch.zeros(B, L, MAX_SLOTS, dtype=torch.bool)
    cond["slot_valid"][..., :4] = True  # a 4/4 bar: four used slots
    known = -torch.ones(B, L, N_FEATURES)
    mask = torch.zeros(B, L, N_FEATURES)
    root1 = group_slices()["root1"]
    known[:, 0, root1.start + 7] = 1  # bar 0's slot 1 is on the dominant
    mask[:, 0, root1] = 1
    x = sample_masked_plan(network, cond, 100, steps=5,
                           generator=torch.Generator().manual_seed(1), known=known, mask=mask)
    tokens = plan_tokens((x + 1) / 2)
    names = [g.name for g in PLAN_LAYOUT]
    freq = torch.bincount(tokens[:, :, names.index("quality0")].flatten(), minlength=3)[:3]
    assert torch.allclose(freq.float() / freq.sum(), want, atol=0.03)
    assert torch.all(tokens[:, 0, names.index("root1")] == 7)
    free_root = torch.bincount(tokens[:, 1, names.index("root1")], minlength=12) / B
    assert torch.allclose(free_root, torch.full((12,), 1 / 12), atol=0.02)  # uniform logits
    assert torch.all(tokens[:, :, names.index("quality5")] == N_QUALITY)  # an unused slot
    assert torch.equal(seen[0]["mask"], mask) and torch.equal(seen[0]["context"], known * mask)
