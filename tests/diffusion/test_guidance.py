"""Classifier-free guidance and condition dropout."""

from __future__ import annotations

import pytest
import torch

from structdiff.diffusion import ClassifierFreeGuidance, drop_condition

B = 4


class Recorder:
    """A denoiser whose prediction depends on x_t, t and every kind of cond entry."""

    def __init__(self):
        self.calls = []

    def __call__(self, x_t, t, cond):
        self.calls.append((x_t.shape[0], cond))
        style = cond["style"].to(x_t.dtype).view(-1, 1, 1)
        return x_t * style + t.view(-1, 1, 1) + cond["plan"].sum() + cond["offset"]


def make_cond():
    return {
        "style": torch.tensor([1, 2, 3, 4]),  # [B], replaced by the null style
        "plan": torch.ones(3, 5),  # not of batch size B: shared, passed through
        "offset": 0.5,  # not a tensor: passed through
        "mask": torch.ones(B, 2, 3),  # [B, ...]: concatenated unchanged
    }


def inputs():
    x_t = torch.randn(B, 2, 3, generator=torch.Generator().manual_seed(0))
    return x_t, torch.tensor([10, 20, 30, 40])


def test_scale_one_is_the_conditional_denoiser_in_one_pass():
    net = Recorder()
    x_t, t = inputs()
    cond = make_cond()
    out = ClassifierFreeGuidance(net, 1.0, {"style": 0})(x_t, t, cond)
    assert torch.equal(out, Recorder()(x_t, t, cond))
    assert [size for size, _ in net.calls] == [B]


def test_scale_zero_is_the_unconditional_denoiser():
    x_t, t = inputs()
    out = ClassifierFreeGuidance(Recorder(), 0.0, {"style": 0})(x_t, t, make_cond())
    unconditional = Recorder()(x_t, t, {**make_cond(), "style": torch.zeros(B, dtype=torch.long)})
    torch.testing.assert_close(out, unconditional)


def test_guidance_extrapolates_in_one_batched_call():
    net = Recorder()
    x_t, t = inputs()
    cond = make_cond()
    out = ClassifierFreeGuidance(net, 2.5, {"style": 0})(x_t, t, cond)
    conditional = Recorder()(x_t, t, cond)
    unconditional = Recorder()(x_t, t, {**cond, "style": torch.zeros(B, dtype=torch.long)})
    torch.testing.assert_close(out, unconditional + 2.5 * (conditional - unconditional))
    assert len(net.calls) == 1
    size, batched = net.calls[0]
    assert size == 2 * B
    assert batched["style"].tolist() == [1, 2, 3, 4, 0, 0, 0, 0]
    assert batched["plan"] is cond["plan"] and batched["offset"] == 0.5
    assert batched["mask"].shape == (2 * B, 2, 3)
    assert cond["style"].tolist() == [1, 2, 3, 4]  # the caller's cond is untouched


def test_null_entries_may_be_tensors():
    x_t, t = inputs()
    cond = make_cond()
    null = {"style": torch.tensor([9, 9, 8, 8]), "mask": torch.zeros(2, 3)}
    net = Recorder()
    ClassifierFreeGuidance(net, 3.0, null)(x_t, t, cond)
    batched = net.calls[0][1]
    assert batched["style"].tolist() == [1, 2, 3, 4, 9, 9, 8, 8]
    assert batched["mask"][:B].eq(1).all() and batched["mask"][B:].eq(0).all()


@pytest.mark.parametrize(
    "scale, null, cond, message",
    [
        (-1.0, {"style": 0}, make_cond(), "guidance_scale must be a number >= 0, got -1.0"),
        (2.0, {}, make_cond(), "null_cond must be a non-empty dict"),
        (2.0, {"genre": 0}, make_cond(), "cond has no entry 'genre' for null_cond to replace"),
        (2.0, {"offset": 0.0}, make_cond(), r"cond\['offset'\] must be a tensor of batch size 4"),
        (2.0, {"style": torch.zeros(3)}, make_cond(), r"null_cond\['style'\] of shape \(3,\)"),
        (2.0, {"style": 0}, None, "cond must be a dict holding"),
    ],
)
def test_bad_guidance_arguments(scale, null, cond, message):
    x_t, t = inputs()
    with pytest.raises(ValueError, match=message):
        ClassifierFreeGuidance(Recorder(), scale, null)(x_t, t, cond)


def test_drop_condition_probability_and_determinism():
    n = 20000
    cond = {"style": torch.arange(1, n + 1), "intensity": torch.ones(n, 3), "plan": "kept"}
    null = {"style": 0, "intensity": torch.zeros(3)}
    out = drop_condition(cond, 0.3, null, torch.Generator().manual_seed(0))
    dropped = out["style"] == 0
    assert abs(dropped.double().mean().item() - 0.3) < 0.02
    # One draw per sample drops every null entry together; the rest is kept as it was.
    assert torch.equal(out["intensity"].eq(0).all(1), dropped)
    assert torch.equal(out["style"][~dropped], cond["style"][~dropped])
    assert out["plan"] == "kept" and cond["style"].min() == 1
    again = drop_condition(cond, 0.3, null, torch.Generator().manual_seed(0))
    assert torch.equal(again["style"], out["style"])
    assert torch.equal(drop_condition(cond, 0.0, null)["style"], cond["style"])
    assert drop_condition(cond, 1.0, null)["style"].eq(0).all()


@pytest.mark.parametrize(
    "p, null, message",
    [
        (1.5, {"style": 0}, r"p must be a probability in \[0, 1\], got 1.5"),
        (0.1, {}, "null_cond must be a non-empty dict"),
        (0.1, {"genre": 0}, "cond has no entry 'genre'"),
    ],
)
def test_bad_drop_arguments(p, null, message):
    with pytest.raises(ValueError, match=message):
        drop_condition({"style": torch.zeros(2)}, p, null)
