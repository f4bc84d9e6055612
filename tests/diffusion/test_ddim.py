"""The in-house DDIM step, betas and noise (`structdiff.diffusion.ddim`) equal diffusers' bit for
bit: the default sampler may skip diffusers' import only because it computes the same numbers."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor

from structdiff.diffusion import NoiseSchedule, sample
from structdiff.diffusion import ddim as ddim_module


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("T", [1000, 100, 37])
def test_betas_equal_diffusers(schedule, T):
    ns = NoiseSchedule(num_train_timesteps=T, schedule=schedule)
    reference = ns.make_scheduler("ddpm")
    assert torch.equal(ns.betas.to(torch.float32), reference.betas)
    assert reference.betas.dtype == torch.float32


def test_unknown_beta_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        ddim_module.betas("quadratic", 10, 1e-4, 0.02)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
@pytest.mark.parametrize("schedule, T", [("cosine", 1000), ("linear", 1000), ("cosine", 100)])
@pytest.mark.parametrize("steps", [1, 7, 20, 61])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_step_equals_diffusers_bit_for_bit(prediction, schedule, T, steps, eta):
    if steps > T:
        pytest.skip("more steps than training steps")
    ns = NoiseSchedule(num_train_timesteps=T, schedule=schedule, prediction=prediction)
    ours = ns.ddim_sampler(steps)
    theirs = ns.make_scheduler("ddim")
    theirs.set_timesteps(steps)
    data = torch.Generator().manual_seed(steps * 7 + T)
    x = torch.randn(3, 4, 5, generator=data)
    for t in ns.timesteps(steps).tolist():
        prediction_t = torch.randn(x.shape, generator=data)
        g1 = torch.Generator().manual_seed(t)
        g2 = torch.Generator().manual_seed(t)
        mine = ours.step(prediction_t, t, x, eta=eta, generator=g1)
        reference = theirs.step(prediction_t, t, x, eta=eta, generator=g2).prev_sample
        assert mine.dtype == reference.dtype
        assert torch.equal(mine, reference), (t, (mine - reference).abs().max())
        x = reference


def test_whole_sampling_run_equals_the_diffusers_scheduler(monkeypatch):
    """The loop with the in-house step gives the very samples the diffusers scheduler gives."""
    ns = NoiseSchedule(prediction="v")

    def denoiser(x, t, cond):
        return torch.tanh(x * 0.7) + t.view(-1, 1, 1).float() / 1000

    known = torch.zeros(2, 3, 8)
    mask = torch.zeros(2, 3, 8, dtype=torch.bool)
    mask[:, 0] = True
    ours = sample(denoiser, (2, 3, 8), ns, steps=13, eta=0.3, known=known, mask=mask,
                  generator=torch.Generator().manual_seed(5))

    class Wrapped:
        """diffusers' scheduler behind the in-house step's interface."""

        def __init__(self, steps):
            self.inner = ns.make_scheduler("ddim")
            self.inner.set_timesteps(steps)

        def step(self, prediction, t, x, eta=0.0, generator=None):
            return self.inner.step(prediction, t, x, eta=eta, generator=generator).prev_sample

    monkeypatch.setattr(NoiseSchedule, "ddim_sampler", lambda self, steps: Wrapped(steps))
    theirs = sample(denoiser, (2, 3, 8), ns, steps=13, eta=0.3, known=known, mask=mask,
                    generator=torch.Generator().manual_seed(5))
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_randn_equals_diffusers_randn_tensor(dtype):
    mine = ddim_module.randn((4, 3), generator=torch.Generator().manual_seed(3), dtype=dtype)
    reference = randn_tensor((4, 3), generator=torch.Generator().manual_seed(3), dtype=dtype)
    assert torch.equal(mine, reference) and mine.dtype == dtype


def test_bad_ddim_arguments_are_refused():
    ns = NoiseSchedule(num_train_timesteps=50)
    with pytest.raises(ValueError, match="steps"):
        ns.ddim_sampler(51)
    with pytest.raises(ValueError, match="prediction"):
        ddim_module.DDIM(ns.betas, "score", 5)


def test_ddim_sampling_imports_no_diffusers():
    """A DDIM run (the command line's default) in a fresh process leaves diffusers unimported;
    DDPM imports it."""
    code = (
        "import sys, torch\n"
        "from structdiff.diffusion import NoiseSchedule, sample\n"
        "ns = NoiseSchedule()\n"
        "sample(lambda x, t, c: x * 0, (1, 2), ns, sampler='{}', steps=3)\n"
        "print('diffusers' in sys.modules)\n"
    )
    for sampler, imported in (("ddim", "False"), ("ddpm", "True")):
        out = subprocess.run([sys.executable, "-c", code.format(sampler)], capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == imported, (sampler, out.stdout, out.stderr)
