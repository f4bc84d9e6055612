"""The default sampler's arithmetic without importing diffusers: betas, DDIM's step, noise.

Why this exists (issue 14, cold start): every diffusers scheduler module imports
`diffusers.utils` and `diffusers.configuration_utils`, whose package set-up (metadata probes of
every optional backend, `huggingface_hub`, `requests`) costs 0.7 to 0.9 s of a 4.1 s
`structdiff generate` on the 2-core machine, about 40% of all it adds to `import torch`.
The command line samples with DDIM by default, so that one step, the two beta schedules and the
noise draw are written here; everything else (DDPM, DPM-Solver++, training) still comes from
diffusers, and the tests hold these to diffusers' own numbers bit for bit
(`tests/diffusion/test_ddim.py`): the same float32 betas and cumulative products, and the same
`step` results for every prediction type, schedule, step count and eta.

The formulas are the papers': the cosine schedule of Nichol & Dhariwal (2021, eq. 17, betas
capped at 0.999) and the DDIM update of Song et al. (2021, eq. 12), with the final cumulative
alpha set to 1 and no clipping of the predicted x0.
"""

from __future__ import annotations

import math

import torch

MAX_BETA = 0.999  # the cosine schedule's cap (Nichol & Dhariwal)
COSINE_OFFSET = 0.008  # their s


def betas(schedule: str, num_train_timesteps: int, beta_start: float,
          beta_end: float) -> torch.Tensor:
    """float32 betas `[T]`: 'linear' (evenly spaced from `beta_start` to `beta_end`) or 'cosine'
    (from alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2), capped at `MAX_BETA`; the start and
    end are not used). Equal to diffusers' 'linear' and 'squaredcos_cap_v2'."""
    T = num_train_timesteps
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
    if schedule == "cosine":
        def alpha_bar(u: float) -> float:
            return math.cos((u + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2

        values = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), MAX_BETA) for i in range(T)]
        return torch.tensor(values, dtype=torch.float32)
    raise ValueError(f"schedule must be 'linear' or 'cosine', got {schedule!r}")


def randn(shape, generator: torch.Generator | None = None, device=None,
          dtype: torch.dtype | None = None) -> torch.Tensor:
    """Standard normal noise of `shape` on `device`. A CPU generator draws on the CPU whatever the
    device (then the tensor moves), so a seed gives the same numbers on any device, as
    diffusers' `randn_tensor` does."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    where = device
    if generator is not None and generator.device.type == "cpu" and device.type != "cpu":
        where = generator.device
    return torch.randn(tuple(shape), generator=generator, device=where, dtype=dtype).to(device)


class DDIM:
    """Deterministic (eta 0) or noisy DDIM steps over `betas` `[T]` for a model predicting
    'eps', 'v' or 'x0'. Stateless between steps: `step(prediction, t, x)` goes from timestep t
    back by the stride T // steps (to the clean sample, cumulative alpha 1, past t = 0)."""

    def __init__(self, betas: torch.Tensor, prediction: str, steps: int) -> None:
        if prediction not in ("eps", "v", "x0"):
            raise ValueError(f"prediction must be 'eps', 'v' or 'x0', got {prediction!r}")
        T = len(betas)
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= T:
            raise ValueError(f"steps must be an integer in 1..{T}, got {steps!r}")
        self.alphas_cumprod = torch.cumprod(1.0 - betas.to(torch.float32), dim=0)
        self.final_alpha_cumprod = torch.tensor(1.0)
        self.prediction = prediction
        self.stride = T // steps

    def step(self, prediction: torch.Tensor, t: int, x: torch.Tensor, eta: float = 0.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """x at the previous timestep `[B, ...]` from the model's `prediction` `[B, ...]` at x_t
        `[B, ...]`, timestep `t` (an int)."""
        t_prev = t - self.stride
        a_t = self.alphas_cumprod[t]
        a_prev = self.alphas_cumprod[t_prev] if t_prev >= 0 else self.final_alpha_cumprod
        b_t = 1 - a_t
        if self.prediction == "eps":
            x0 = (x - b_t ** 0.5 * prediction) / a_t ** 0.5
            eps = prediction
        elif self.prediction == "x0":
            x0 = prediction
            eps = (x - a_t ** 0.5 * x0) / b_t ** 0.5
        else:
            x0 = a_t ** 0.5 * x - b_t ** 0.5 * prediction
            eps = a_t ** 0.5 * prediction + b_t ** 0.5 * x
        # sigma_t^2 of eq. 16: (1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)
        variance = ((1 - a_prev) / b_t) * (1 - a_t / a_prev)
        sigma = eta * variance ** 0.5
        out = a_prev ** 0.5 * x0 + (1 - a_prev - sigma ** 2) ** 0.5 * eps
        if eta > 0:
            noise = randn(prediction.shape, generator=generator, device=prediction.device,
                          dtype=prediction.dtype)
            out = out + sigma * noise
        return out
