"""The sampler's guide: start a region from an earlier result, held for part of the steps.

Data: x0 is -1 or +1 with equal probability (1-D). Under x_t = a x0 + s eps the exact x0
prediction is E[x0 | x_t] = tanh(a x_t / s^2), so every sampler run here lands near one of the
two modes, and which one shows what the guide did.
"""

from __future__ import annotations

import pytest
import torch

from structdiff.diffusion import NoiseSchedule, sample

SCHEDULE = NoiseSchedule(prediction="x0")
N = 500
STEPS = 20


pytestmark = pytest.mark.usefixtures("one_thread")


def two_points(x_t, t, cond):
    ab = SCHEDULE.alphas_cumprod[t][:, None]
    return torch.tanh(ab.sqrt() * x_t / (1 - ab))


def draw(seed=0, sampler="ddim", n=N, **kwargs):
    return sample(two_points, (n, 1), SCHEDULE, sampler=sampler, steps=STEPS,
                  generator=torch.Generator().manual_seed(seed), dtype=torch.float64, **kwargs)


def at_plus_one(x):
    return float((x > 0).double().mean())


def test_strength_0_returns_the_guide_exactly():
    guide = torch.full((N, 1), 0.3, dtype=torch.float64)
    x = draw(guide=guide, guide_mask=torch.ones(N, 1), guide_strength=0.0)
    assert torch.equal(x, guide)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "dpmsolver++"])
def test_strength_1_ignores_the_guide(sampler):
    plain = draw(seed=4, sampler=sampler)
    guided = draw(seed=4, sampler=sampler, guide=torch.ones(N, 1),
                  guide_mask=torch.ones(N, 1, dtype=torch.bool), guide_strength=1.0)
    assert torch.equal(plain, guided)


def test_intermediate_strength_pulls_towards_the_guide():
    plain = draw()
    assert 0.4 < at_plus_one(plain) < 0.6
    assert (plain.abs() - 1).abs().max() < 0.05  # the samples do reach the modes
    mask = torch.ones(N, 1)
    up = draw(guide=torch.ones(N, 1), guide_mask=mask, guide_strength=0.3)
    assert at_plus_one(up) > 0.9
    down = draw(guide=-torch.ones(N, 1), guide_mask=mask, guide_strength=0.3)
    assert at_plus_one(down) < 0.1
    # a weaker hold (higher strength) pulls less
    loose = draw(guide=torch.ones(N, 1), guide_mask=mask, guide_strength=0.9)
    assert at_plus_one(plain) - 0.05 < at_plus_one(loose) < at_plus_one(up)


def test_guide_applies_only_under_its_mask():
    plain = draw(seed=2)
    mask = torch.zeros(N, 1, dtype=torch.bool)
    mask[: N // 2] = True
    x = draw(seed=2, guide=torch.ones(N, 1), guide_mask=mask, guide_strength=0.0)
    assert (x[: N // 2] == 1).all()
    # DDIM draws no noise after the start and the denoiser is per element: the rest of the
    # samples follow exactly the same path as without a guide
    assert torch.equal(x[N // 2 :], plain[N // 2 :])


def test_known_values_win_over_the_guide():
    known = torch.full((N, 1), -1.0)
    keep = torch.zeros(N, 1, dtype=torch.bool)
    keep[:10] = True
    x = draw(known=known, mask=keep, guide=torch.full((N, 1), 0.5), guide_mask=torch.ones(N, 1),
             guide_strength=0.0)
    assert (x[:10] == -1).all() and (x[10:] == 0.5).all()


def test_the_denoiser_is_not_told_about_the_guide():
    seen = []

    def spy(x_t, t, cond):
        seen.append(set(cond))
        return torch.zeros_like(x_t)

    sample(spy, (4, 1), SCHEDULE, cond={"style": 1}, steps=3, guide=torch.ones(4, 1),
           guide_mask=torch.ones(4, 1), guide_strength=0.5)
    assert seen == [{"style"}] * 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"guide": torch.ones(4, 1), "guide_mask": torch.ones(4, 1), "guide_strength": 1.5},
         "guide_strength must be in 0..1, got 1.5"),
        ({"guide": torch.ones(4, 1), "guide_mask": torch.ones(4, 1), "guide_strength": -0.1},
         "guide_strength must be in 0..1"),
        ({"guide": torch.ones(4, 1)}, "guide and guide_mask go together, got only guide$"),
        ({"guide_mask": torch.ones(4, 1)}, "got only guide_mask"),
        ({"guide": torch.ones(3, 1), "guide_mask": torch.ones(4, 1)},
         "guide must be broadcastable"),
        ({"guide": torch.ones(4, 1), "guide_mask": torch.full((4, 1), 0.5)}, "only 0 and 1"),
    ],
)
def test_bad_guide_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample(two_points, (4, 1), SCHEDULE, steps=2, **kwargs)
