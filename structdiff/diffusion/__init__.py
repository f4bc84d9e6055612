"""Diffusion core: noise schedules, samplers, guidance. Knows no network.

A denoiser is any callable `denoiser(x_t, t, cond) -> prediction` (x_t `[B, ...]`, t a LongTensor
`[B]` of training timesteps); it never sees the schedule. Training uses `NoiseSchedule`
(`add_noise`, `target`, `x0_from`) and `drop_condition`; generation uses `sample`, optionally
with a `ClassifierFreeGuidance` around the denoiser.
"""

from structdiff.diffusion.guidance import ClassifierFreeGuidance, drop_condition
from structdiff.diffusion.sampling import CONTEXT_KEY, MASK_KEY, sample
from structdiff.diffusion.schedule import NoiseSchedule

__all__ = [
    "CONTEXT_KEY",
    "MASK_KEY",
    "ClassifierFreeGuidance",
    "NoiseSchedule",
    "drop_condition",
    "sample",
]
