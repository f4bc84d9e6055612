"""Samplers recover a known distribution from its exact denoiser.

Data: a 2-D mixture of three isotropic Gaussians. Under x_t = a x0 + s eps (a = sqrt(ab_t),
s = sqrt(1 - ab_t)), x_t given component k is N(a m_k, (a^2 std^2 + s^2) I), so the posterior over
components and E[x0 | x_t] are closed-form: the oracle below is the best possible denoiser, and
what a sampler draws with it shows the sampler's own error.
"""

from __future__ import annotations

import math

import pytest
import torch

from structdiff.diffusion import ClassifierFreeGuidance, NoiseSchedule, sample

MEANS = torch.tensor([[-1.5, 1.0], [0.0, -1.0], [1.5, 0.5]], dtype=torch.float64)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
STD = 0.15
N = 2000
SAMPLERS = [("ddpm", 50), ("ddim", 50), ("dpmsolver++", 20)]


pytestmark = pytest.mark.usefixtures("one_thread")


def mixture_oracle(schedule: NoiseSchedule, use_context: bool = True):
    """The exact denoiser of the mixture, predicting `schedule.prediction`.

    With `use_context`, coordinates where cond["mask"] is 1 are known to equal cond["context"]:
    the posterior then conditions on them exactly, as a model trained with random masks would.
    """

    def denoiser(x_t, t, cond):
        ab = schedule.alphas_cumprod[t].unsqueeze(-1)  # [B, 1]
        a = ab.sqrt()
        var = a**2 * STD**2 + (1 - ab)  # variance of x_t given a component
        if use_context and cond and "mask" in cond:
            m, c = cond["mask"][:, None, :], cond["context"][:, None, :]  # [B, 1, 2]
        else:
            m = c = torch.zeros_like(x_t)[:, None, :]
        xt, mu, a3, v3 = x_t[:, None, :], MEANS[None], a[:, None], var[:, None]  # [B, K, 2]
        loglik_known = -0.5 * (c - mu) ** 2 / STD**2 - math.log(STD)
        loglik_xt = -0.5 * (xt - a3 * mu) ** 2 / v3 - 0.5 * torch.log(v3)
        logp = WEIGHTS.log() + (m * loglik_known + (1 - m) * loglik_xt).sum(-1)  # [B, K]
        resp = torch.softmax(logp, dim=-1)
        x0_k = m * c + (1 - m) * (mu + a3 * STD**2 / v3 * (xt - a3 * mu))  # [B, K, 2]
        x0 = (resp[..., None] * x0_k).sum(1)
        eps = (x_t - a * x0) / (1 - ab).sqrt()
        return schedule.target(x0, eps, t)

    return denoiser


def mixture_stats(x: torch.Tensor):
    """Weights `[K]`, means `[K, 2]` and stds `[K, 2]` of samples `[N, 2]` by nearest mean."""
    k = torch.cdist(x, MEANS).argmin(1)
    weights = torch.bincount(k, minlength=len(MEANS)).double() / len(x)
    means = torch.stack([x[k == i].mean(0) for i in range(len(MEANS))])
    stds = torch.stack([x[k == i].std(0) for i in range(len(MEANS))])
    return weights, means, stds


def draw(schedule, sampler, steps, seed=0, n=N, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    return sample(
        mixture_oracle(schedule),
        (n, 2),
        schedule,
        sampler=sampler,
        steps=steps,
        generator=generator,
        dtype=torch.float64,
        **kwargs,
    )


@pytest.mark.parametrize(
    "schedule, prediction",
    [("cosine", "eps"), ("cosine", "v"), ("cosine", "x0"), ("linear", "eps")],
)
@pytest.mark.parametrize("sampler, steps", SAMPLERS)
def test_sampler_recovers_mixture(sampler, steps, schedule, prediction):
    ns = NoiseSchedule(schedule=schedule, prediction=prediction)
    x = draw(ns, sampler, steps)
    assert x.shape == (N, 2) and x.dtype == torch.float64
    weights, means, stds = mixture_stats(x)
    assert (weights - WEIGHTS).abs().max() < 0.05, weights
    assert (means - MEANS).abs().max() < 0.1, means
    # Few steps shrink each component a little (0.09-0.14 here); a wrong noise term would blow
    # it up or collapse it.
    assert 0.5 * STD < stds.min() and stds.max() < 1.33 * STD, stds


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++"])
def test_ode_samplers_converge_with_steps(sampler):
    ns = NoiseSchedule()
    _, _, stds = mixture_stats(draw(ns, sampler, 100))
    assert (stds - STD).abs().max() < 0.02, stds


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmsolver++"])
@pytest.mark.parametrize("steps", [30, 61])
def test_step_counts_that_do_not_divide_the_training_steps(sampler, steps):
    # 61 of 1000 is a count where diffusers' own trailing spacing ends on t = -1.
    x = draw(NoiseSchedule(), sampler, steps, n=1000)
    weights, means, _ = mixture_stats(x)
    assert (weights - WEIGHTS).abs().max() < 0.06 and (means - MEANS).abs().max() < 0.1


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmsolver++"])
def test_one_step_gives_the_posterior_mean_of_pure_noise(sampler):
    ns = NoiseSchedule()
    x = draw(ns, sampler, 1, n=100)
    # From t = T-1 the best single guess is E[x0] = the mixture mean, whatever the noise.
    assert torch.allclose(x, (WEIGHTS[:, None] * MEANS).sum(0).expand(100, 2), atol=1e-3)


def test_full_ddpm_chain_of_a_shorter_schedule():
    x = draw(NoiseSchedule(num_train_timesteps=100), "ddpm", 100, n=500)
    weights, means, stds = mixture_stats(x)
    assert (weights - WEIGHTS).abs().max() < 0.07 and (means - MEANS).abs().max() < 0.1
    assert (stds - STD).abs().max() < 0.03


def test_same_seed_same_samples_different_seed_different():
    ns = NoiseSchedule()
    for sampler in ["ddpm", "ddim", "dpmsolver++"]:
        a = draw(ns, sampler, 10, seed=1, n=200)
        assert torch.equal(a, draw(ns, sampler, 10, seed=1, n=200))
        assert not torch.allclose(a, draw(ns, sampler, 10, seed=2, n=200))


def test_ddim_eta_zero_is_deterministic_given_the_initial_noise():
    ns = NoiseSchedule()
    a = draw(ns, "ddim", 20, seed=3, n=200)
    # The same initial noise, but the generator is left in another state after drawing it:
    # with eta = 0 nothing else is drawn, so the result cannot differ.
    generator = torch.Generator().manual_seed(3)
    b = sample(
        lambda x_t, t, cond: (generator.manual_seed(99), mixture_oracle(ns)(x_t, t, cond))[1],
        (200, 2),
        ns,
        steps=20,
        generator=generator,
        dtype=torch.float64,
    )
    assert torch.equal(a, b)
    noisy = draw(ns, "ddim", 20, seed=3, n=200, eta=1.0)
    assert not torch.allclose(a, noisy)
    weights, means, _ = mixture_stats(draw(ns, "ddim", 50, seed=3, eta=1.0))
    assert (weights - WEIGHTS).abs().max() < 0.05 and (means - MEANS).abs().max() < 0.1


def test_dtype_is_the_default_unless_asked():
    ns = NoiseSchedule()
    seen = []

    def spy(x_t, t, cond):
        seen.append((x_t.dtype, cond["context"].dtype))
        return torch.zeros_like(x_t)

    known = torch.ones(4, 2, dtype=torch.float64)  # as from numpy: a float32 network stays float32
    x = sample(spy, (4, 2), ns, steps=2, known=known, mask=torch.ones(2))
    assert x.dtype == torch.float32 and x.device.type == "cpu" and torch.equal(x, known.float())
    assert seen == [(torch.float32, torch.float32)] * 2
    x = sample(spy, (4, 2), ns, steps=2, known=known, mask=torch.ones(2), dtype=torch.float64)
    assert x.dtype == torch.float64 and torch.equal(x, known)


# -- known regions -------------------------------------------------------------------------


@pytest.mark.parametrize("sampler, steps", SAMPLERS)
@pytest.mark.parametrize("fixed, other", [(1.5, 0.5), (0.0, -1.0), (-1.5, 1.0)])
def test_known_coordinate_is_exact_and_the_other_follows_the_conditional(
    sampler, steps, fixed, other
):
    ns = NoiseSchedule()
    known = torch.tensor([fixed, 7.0], dtype=torch.float64).expand(1000, 2)
    mask = torch.tensor([1, 0])
    x = draw(ns, sampler, steps, n=1000, known=known, mask=mask)
    assert torch.equal(x[:, 0], known[:, 0])
    # Fixing the first coordinate at a component's mean selects that component (the others lie
    # 10 standard deviations away), so the second is N(other, STD^2).
    assert abs(x[:, 1].mean() - other) < 0.03
    assert 0.7 * STD < x[:, 1].std() < 1.2 * STD


def test_denoiser_receives_context_and_mask_with_the_callers_cond():
    ns = NoiseSchedule()
    seen = []

    def spy(x_t, t, cond):
        seen.append(cond)
        return torch.zeros_like(x_t)

    known = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    mask = torch.tensor([[True, False], [False, False]])
    sample(spy, (2, 2), ns, cond={"style": torch.tensor([3, 4])}, steps=3, known=known, mask=mask)
    assert len(seen) == 3
    for cond in seen:
        assert cond["style"].tolist() == [3, 4]
        assert cond["context"].tolist() == [[1.0, 0.0], [0.0, 0.0]]
        assert cond["mask"].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_per_sample_masks():
    ns = NoiseSchedule()
    known = torch.tensor([1.5, 0.0], dtype=torch.float64).expand(2000, 2)
    mask = torch.zeros(2000, 2, dtype=torch.bool)
    mask[:1000, 0] = True  # the first half has its first coordinate fixed, the rest is free
    x = draw(ns, "ddim", 50, known=known, mask=mask)
    assert torch.equal(x[:1000, 0], known[:1000, 0])
    assert abs(x[:1000, 1].mean() - 0.5) < 0.03
    weights, means, _ = mixture_stats(x[1000:])
    assert (weights - WEIGHTS).abs().max() < 0.06 and (means - MEANS).abs().max() < 0.1


@pytest.mark.parametrize("sampler, steps", SAMPLERS)
def test_replacement_alone_keeps_known_values_exact(sampler, steps):
    # A denoiser that ignores the context: replacement still keeps the known coordinate exact,
    # and pulls the other one towards the matching component (only roughly: replacement
    # without context misses the conditional for the middle component by a wide margin).
    ns = NoiseSchedule()
    known = torch.tensor([1.5, 0.0], dtype=torch.float64).expand(1000, 2)
    generator = torch.Generator().manual_seed(0)
    x = sample(
        mixture_oracle(ns, use_context=False),
        (1000, 2),
        ns,
        sampler=sampler,
        steps=steps,
        generator=generator,
        known=known,
        mask=torch.tensor([True, False]),
    )
    assert torch.equal(x[:, 0], known[:, 0])
    assert ((x[:, 1] - 0.5).abs() < 0.45).double().mean() > 0.75


def test_guided_sampling_calls_the_network_once_per_step():
    ns = NoiseSchedule()
    calls = []

    def net(x_t, t, cond):
        calls.append(x_t.shape[0])
        return mixture_oracle(ns)(x_t, t, cond) + 0.01 * cond["style"][:, None]

    guided = ClassifierFreeGuidance(net, 3.0, {"style": 0})
    style = torch.ones(8, dtype=torch.float64)
    sample(guided, (8, 2), ns, cond={"style": style}, steps=7, dtype=torch.float64)
    assert calls == [16] * 7


# -- bad arguments ---------------------------------------------------------------------------


def _zero(x_t, t, cond):
    return torch.zeros_like(x_t)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 0}, "steps must be between 1 and num_train_timesteps=1000, got 0"),
        ({"steps": 1001}, "got 1001"),
        ({"steps": 2.5}, "steps must be an integer, got 2.5"),
        ({"sampler": "euler"}, r"sampler must be one of \['ddpm', 'ddim', 'dpmsolver\+\+'\]"),
        ({"eta": -0.1}, "eta must be a number >= 0, got -0.1"),
        ({"eta": 1.0, "sampler": "ddpm"}, "eta applies to the 'ddim' sampler only"),
        ({"shape": (4, 0)}, r"shape must be .*got \(4, 0\)"),
        ({"shape": 4}, "shape must be a sequence of positive integers"),
        ({"known": torch.zeros(4, 2)}, "known and mask go together, got only known"),
        ({"known": torch.zeros(4, 2), "mask": torch.ones(3)}, r"mask must be broadcastable"),
        ({"known": torch.zeros(5, 2), "mask": torch.ones(2)}, r"known must be broadcastable"),
        ({"known": torch.zeros(4, 2), "mask": torch.full((2,), 2)}, "only 0 and 1"),
        (
            {"known": torch.zeros(4, 2), "mask": torch.ones(2), "cond": {"mask": 1}},
            "cond already has 'mask'",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    kwargs = {"shape": (4, 2), **kwargs}
    with pytest.raises(ValueError, match=message):
        sample(_zero, schedule=NoiseSchedule(), **kwargs)


def test_sampler_names_are_case_insensitive():
    # A denoiser that always predicts x0 = 0 ends on 0 whatever the sampler.
    x = sample(_zero, (3, 2), NoiseSchedule(prediction="x0"), sampler="DPMSolver++", steps=2)
    assert torch.equal(x, torch.zeros(3, 2))


def test_wrong_denoiser_output_shape():
    with pytest.raises(ValueError, match=r"denoiser must return a tensor of shape \(4, 2\)"):
        sample(lambda x_t, t, cond: x_t[:, :1], (4, 2), NoiseSchedule(), steps=2)
