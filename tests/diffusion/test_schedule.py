"""NoiseSchedule: the training side agrees with the diffusers schedulers the samplers use."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import pickle

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

import structdiff.diffusion
from structdiff.diffusion import NoiseSchedule


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_alphas_cumprod_match_every_scheduler(schedule):
    ns = NoiseSchedule(schedule=schedule)
    assert ns.alphas_cumprod.dtype == torch.float64 and ns.alphas_cumprod.shape == (1000,)
    assert (ns.alphas_cumprod.diff() < 0).all()
    for sampler in ["ddpm", "ddim", "dpmsolver++"]:
        scheduler = ns.make_scheduler(sampler)
        assert torch.equal(scheduler.betas.double(), ns.betas)
        relative = (scheduler.alphas_cumprod.double() / ns.alphas_cumprod - 1).abs().max()
        assert relative < 1e-6


def test_schedules_reach_pure_noise():
    assert NoiseSchedule(schedule="cosine").alphas_cumprod[-1] < 1e-8
    assert NoiseSchedule(schedule="linear").alphas_cumprod[-1] < 1e-4
    # improved-diffusion's scaling keeps the linear schedule's overall noise at fewer steps.
    short = NoiseSchedule(num_train_timesteps=100, schedule="linear")
    assert short.betas[-1].item() == pytest.approx(0.2) and short.alphas_cumprod[-1] < 1e-4


def test_add_noise_and_target_agree_with_diffusers():
    reference = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    x0 = torch.randn(5, 4, 16, 3, generator=torch.Generator().manual_seed(0))  # [B, K, T, P]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 10, 500, 900, 999])
    ns = NoiseSchedule(prediction="v")
    x_t = ns.add_noise(x0, noise, t)
    assert x_t.dtype == torch.float32 and x_t.shape == x0.shape
    torch.testing.assert_close(x_t, reference.add_noise(x0, noise, t), atol=1e-5, rtol=1e-5)
    velocity = reference.get_velocity(x0, noise, t)
    torch.testing.assert_close(ns.target(x0, noise, t), velocity, atol=1e-5, rtol=1e-5)
    assert torch.equal(NoiseSchedule(prediction="eps").target(x0, noise, t), noise)
    assert torch.equal(NoiseSchedule(prediction="x0").target(x0, noise, t), x0)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_x0_and_eps_recovered_from_the_target(schedule, prediction):
    ns = NoiseSchedule(schedule=schedule, prediction=prediction)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 2, 8, generator=generator, dtype=torch.float64)
    noise = torch.randn(6, 2, 8, generator=generator, dtype=torch.float64)
    t = torch.tensor([0, 1, 250, 500, 750, 999])
    x_t = ns.add_noise(x0, noise, t)
    target = ns.target(x0, noise, t)
    # 1e-6: eps -> x0 divides by sqrt(ab) ~ 5e-5 at t = 999 of the cosine schedule.
    torch.testing.assert_close(ns.x0_from(target, x_t, t), x0, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ns.eps_from(target, x_t, t), noise, atol=1e-6, rtol=1e-6)


def test_snr():
    ns = NoiseSchedule()
    t = torch.arange(1000)
    snr = ns.snr(t)
    assert snr.dtype == torch.float64 and (snr.diff() < 0).all()
    torch.testing.assert_close(snr, ns.alphas_cumprod / (1 - ns.alphas_cumprod))


@pytest.mark.parametrize(
    "name, cls",
    [
        ("ddpm", DDPMScheduler),
        ("DDIM", DDIMScheduler),
        ("dpmsolver++", DPMSolverMultistepScheduler),
    ],
)
@pytest.mark.parametrize(
    "prediction, diffusers_name", [("eps", "epsilon"), ("v", "v_prediction"), ("x0", "sample")]
)
def test_make_scheduler_configures_prediction_and_no_clipping(
    name, cls, prediction, diffusers_name
):
    scheduler = NoiseSchedule(prediction=prediction).make_scheduler(name)
    assert type(scheduler) is cls
    assert scheduler.config.prediction_type == diffusers_name
    assert scheduler.config.beta_schedule == "squaredcos_cap_v2"
    assert not scheduler.config.get("clip_sample", False)
    if cls is DPMSolverMultistepScheduler:
        assert scheduler.config.algorithm_type == "dpmsolver++"


def test_each_scheduler_is_fresh():
    ns = NoiseSchedule()
    assert ns.make_scheduler("dpmsolver++") is not ns.make_scheduler("dpmsolver++")


def test_timesteps_for_every_step_count():
    ns = NoiseSchedule()
    for steps in range(1, 1001):
        grid = ns.timesteps(steps)
        assert grid.dtype == torch.int64 and len(grid) == steps
        assert grid[0] == 999 and grid[-1] == 1000 // steps - 1
        assert (grid.diff() < 0).all()
        # DDIM steps back by 1000 // steps: never past the next grid point, at most one short.
        gaps = -grid.diff()
        assert ((gaps - 1000 // steps >= 0) & (gaps - 1000 // steps <= 1)).all()
    # Where steps divides T the grid is diffusers' "trailing" spacing.
    reference = DDIMScheduler(timestep_spacing="trailing")
    reference.set_timesteps(50)
    assert torch.equal(ns.timesteps(50), reference.timesteps)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schedule": "sigmoid"}, r"schedule must be one of \['cosine', 'linear'\], got 'sigmoid'"),
        ({"prediction": "score"}, r"prediction must be one of \['eps', 'v', 'x0'\], got 'score'"),
        ({"num_train_timesteps": 0}, "num_train_timesteps must be an integer >= 1, got 0"),
        ({"num_train_timesteps": 20, "schedule": "linear"}, "needs num_train_timesteps > 20"),
    ],
)
def test_bad_schedule_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NoiseSchedule(**kwargs)


def test_names_are_case_insensitive_and_the_schedule_is_a_value():
    assert NoiseSchedule(schedule="Cosine", prediction="V") == NoiseSchedule()
    assert NoiseSchedule(prediction="eps") != NoiseSchedule()
    with pytest.raises(AttributeError):
        NoiseSchedule().prediction = "eps"


@pytest.mark.parametrize(
    "t, message",
    [
        (torch.tensor([0.5, 1.0]), "t must be a LongTensor"),
        (torch.tensor([1, 2, 3]), r"t must have shape \[B\] matching .* got \(3,\)"),
        (torch.tensor([0, 1000]), r"t must lie in \[0, 1000\), got values in \[0, 1000\]"),
        (torch.tensor([-1, 3]), r"got values in \[-1, 3\]"),
    ],
)
def test_bad_timesteps(t, message):
    ns = NoiseSchedule()
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=message):
        ns.add_noise(x, x, t)


def test_bad_sampler_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"\['ddpm', 'ddim', 'dpmsolver\+\+'\], got 'heun'"):
        NoiseSchedule().make_scheduler("heun")


def test_diffusion_knows_no_network():
    for path in pathlib.Path(structdiff.diffusion.__file__).parent.glob("*.py"):
        source = path.read_text()
        assert "structdiff.models" not in source and "structdiff.training" not in source, path


def test_the_config_is_the_three_fields_and_survives_pickling():
    ns = NoiseSchedule(schedule="linear", prediction="eps")
    config = dataclasses.asdict(ns)
    assert config == {"num_train_timesteps": 1000, "schedule": "linear", "prediction": "eps"}
    assert NoiseSchedule(**json.loads(json.dumps(config))) == ns
    copy = pickle.loads(pickle.dumps(ns))
    assert copy == ns and torch.equal(copy.alphas_cumprod, ns.alphas_cumprod)
    other = dataclasses.replace(ns, schedule="cosine")
    assert not torch.equal(other.alphas_cumprod, ns.alphas_cumprod)
