"""The noise schedule shared by training and sampling.

A `NoiseSchedule` names a forward process x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps over
`num_train_timesteps` discrete steps (ab = alphas_cumprod) and what the denoiser predicts. Training
uses `add_noise`, `target`, `x0_from` and `snr`; sampling asks `make_scheduler` for a diffusers
scheduler built from the same config (same betas, same prediction type), so the two agree, or
`ddim_sampler` for the default sampler's own step, which needs no diffusers import (see `ddim.py`).

The betas are diffusers' `linear` and `squaredcos_cap_v2` schedules in float32, computed in
`ddim.betas` (tested equal to diffusers'); their cumulative product is taken here in float64, as
improved-diffusion does, and differs from the scheduler's float32 product by less than 1e-6
relative.

Shapes: B batch; `...` any trailing shape. Timesteps `t` are a LongTensor `[B]` of training steps
in [0, num_train_timesteps), and per-step coefficients broadcast over the trailing shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from structdiff.diffusion import ddim
from structdiff.diffusion.schedulers import scheduler_class

SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}  # ours -> diffusers beta_schedule
PREDICTIONS = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}  # ours -> prediction_type
SAMPLERS = ("ddpm", "ddim", "dpmsolver++")

# improved-diffusion's linear schedule, scaled by 1000 / num_train_timesteps so that fewer
# training steps keep the same overall noise (identical to diffusers' defaults at 1000 steps).
LINEAR_BETA_START = 1e-4
LINEAR_BETA_END = 0.02


@dataclass(frozen=True)
class NoiseSchedule:
    """Forward process and prediction type; the denoiser never sees it, only `t`.

    The three fields are the whole config (`dataclasses.asdict` gives it for a checkpoint's
    JSON); derived from them: `betas` and `alphas_cumprod`, float64 tensors `[T]`.
    """

    num_train_timesteps: int = 1000  # discrete training steps T; t runs over 0 .. T-1
    schedule: str = "cosine"  # 'linear' (DDPM) or 'cosine' (improved-diffusion, max beta 0.999)
    prediction: str = "v"  # what the denoiser predicts: 'eps' (noise), 'v' (velocity), 'x0'

    def __post_init__(self) -> None:
        steps = self.num_train_timesteps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"num_train_timesteps must be an integer >= 1, got {steps!r}")
        schedule = str(self.schedule).lower()
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {self.schedule!r}")
        prediction = str(self.prediction).lower()
        if prediction not in PREDICTIONS:
            raise ValueError(
                f"prediction must be one of {sorted(PREDICTIONS)}, got {self.prediction!r}"
            )
        if schedule == "linear" and LINEAR_BETA_END * 1000 / steps >= 1:
            raise ValueError(
                f"the linear schedule needs num_train_timesteps > 20 (its betas would reach 1), "
                f"got {steps}"
            )
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "prediction", prediction)
        # The very betas diffusers' schedulers compute from `_diffusers_config` (float32).
        scale = 1000 / steps
        betas = ddim.betas(schedule, steps, LINEAR_BETA_START * scale,
                           LINEAR_BETA_END * scale).to(torch.float64)
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "alphas_cumprod", torch.cumprod(1.0 - betas, dim=0))

    def _diffusers_config(self) -> dict:
        scale = 1000 / self.num_train_timesteps
        return dict(
            num_train_timesteps=self.num_train_timesteps,
            beta_schedule=SCHEDULES[self.schedule],
            beta_start=LINEAR_BETA_START * scale,
            beta_end=LINEAR_BETA_END * scale,
            prediction_type=PREDICTIONS[self.prediction],
        )

    # -- coefficients -------------------------------------------------------------------------

    def _coefs(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(ab_t), sqrt(1 - ab_t) for t `[B]`, shaped `[B, 1, ...]` like `like` `[B, ...]`."""
        self._check_t(t, like)
        ab = self.alphas_cumprod.to(t.device)[t]
        shape = (-1,) + (1,) * (like.ndim - 1)
        a = ab.sqrt().view(shape).to(like.dtype)
        s = (1.0 - ab).sqrt().view(shape).to(like.dtype)
        return a, s

    def _check_t(self, t: torch.Tensor, like: torch.Tensor) -> None:
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"t must be a LongTensor [B] of training timesteps, got {t!r}")
        if t.ndim != 1 or like.ndim < 1 or t.shape[0] != like.shape[0]:
            raise ValueError(
                f"t must have shape [B] matching the batch of a tensor {tuple(like.shape)}, "
                f"got {tuple(t.shape)}"
            )
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_train_timesteps):
            raise ValueError(
                f"t must lie in [0, {self.num_train_timesteps}), got values in "
                f"[{int(t.min())}, {int(t.max())}]"
            )

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio ab_t / (1 - ab_t) `[B]` (float64) for t `[B]`, e.g. for min-SNR
        loss weights."""
        self._check_t(t, t)
        ab = self.alphas_cumprod.to(t.device)[t]
        return ab / (1.0 - ab)

    # -- training -----------------------------------------------------------------------------

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise `[B, ...]`, for t `[B]`."""
        a, s = self._coefs(t, x0)
        return a * x0 + s * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the denoiser should predict for x_t = add_noise(x0, noise, t) `[B, ...]`: the noise
        ('eps'), v = sqrt(ab_t) noise - sqrt(1 - ab_t) x0 ('v', as diffusers' `get_velocity`),
        or x0 ('x0')."""
        if self.prediction == "eps":
            self._check_t(t, x0)
            return noise
        if self.prediction == "x0":
            self._check_t(t, x0)
            return x0
        a, s = self._coefs(t, x0)
        return a * noise - s * x0

    def x0_from(self, prediction: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Estimate of x0 `[B, ...]` from a prediction `[B, ...]` at x_t `[B, ...]`, t `[B]`.

        With 'eps' the estimate divides by sqrt(ab_t), which amplifies errors near t = T-1 (by
        about 2e4 at the last step of the cosine schedule); 'v' and 'x0' do not.
        """
        if self.prediction == "x0":
            self._check_t(t, x_t)
            return prediction
        a, s = self._coefs(t, x_t)
        if self.prediction == "eps":
            return (x_t - s * prediction) / a
        return a * x_t - s * prediction

    def eps_from(
        self, prediction: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Estimate of the noise `[B, ...]` from a prediction `[B, ...]` at x_t, t `[B]`."""
        if self.prediction == "eps":
            self._check_t(t, x_t)
            return prediction
        a, s = self._coefs(t, x_t)
        if self.prediction == "x0":
            return (x_t - a * prediction) / s
        return a * prediction + s * x_t

    # -- sampling -----------------------------------------------------------------------------

    def timesteps(self, steps: int) -> torch.Tensor:
        """The `steps` training timesteps a sampler visits, descending, LongTensor `[steps]`.

        "Trailing" spacing: the first is T-1 (pure noise, as the sampler's start), the last
        T // steps - 1, so that DDIM's fixed stride of T // steps ends exactly on the clean
        sample. Computed in integers: diffusers' own float `arange` for trailing spacing yields
        one step too many, ending at t = -1, for some counts (e.g. 61 of 1000).
        """
        T = self.num_train_timesteps
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer):
            raise ValueError(f"steps must be an integer, got {steps!r}")
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be between 1 and num_train_timesteps={T}, got {steps}")
        k = np.arange(steps, dtype=np.int64)
        return torch.from_numpy((steps - k) * T // steps - 1)

    def ddim_sampler(self, steps: int) -> ddim.DDIM:
        """The default sampler without diffusers: DDIM over this schedule in `steps` steps, equal
        bit for bit to `make_scheduler('ddim')` after `set_timesteps(steps)`."""
        return ddim.DDIM(self.betas.to(torch.float32), self.prediction, steps)

    def make_scheduler(self, sampler: str):
        """A fresh diffusers scheduler for `sampler` ('ddpm', 'ddim' or 'dpmsolver++', any case)
        with this schedule's betas and prediction type.

        No clipping of the predicted x0 (diffusers clips to [-1, 1] by default); DDPM uses the
        posterior variance ('fixed_small'); DDIM ends at ab = 1; DPM-Solver++ is second-order
        multistep and its last step, first-order, lands on sigma = 0. Schedulers keep state
        between steps: use one per sampling run. `sample` sets its timesteps through
        `timesteps(steps)`; `set_timesteps` called directly uses diffusers' trailing spacing.
        """
        name = str(sampler).lower()
        config = self._diffusers_config()
        config["timestep_spacing"] = "trailing"
        if name == "ddpm":
            return scheduler_class("DDPMScheduler")(**config, clip_sample=False,
                                                    variance_type="fixed_small")
        if name == "ddim":
            return scheduler_class("DDIMScheduler")(**config, clip_sample=False,
                                                    set_alpha_to_one=True)
        if name == "dpmsolver++":
            return scheduler_class("DPMSolverMultistepScheduler")(
                **config,
                algorithm_type="dpmsolver++",
                solver_order=2,
                final_sigmas_type="zero",
                lower_order_final=True,
            )
        raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
