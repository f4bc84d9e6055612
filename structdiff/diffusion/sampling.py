"""One sampling loop for every sampler: DDPM (ancestral), DDIM and DPM-Solver++.

The loop is diffusers' own: set the timesteps, then for each t ask the denoiser for its prediction
and let the scheduler step. DDIM, the default, steps with `ddim.DDIM` (diffusers' arithmetic bit
for bit, without importing diffusers: a command-line start saves 0.7-0.9 s); DDPM and
DPM-Solver++ are diffusers' schedulers. The denoiser is passed to the call, sees only
(x_t, t, cond) and never the betas; the scheduler comes from the `NoiseSchedule` it was trained
with, so any sampler swaps in without retraining, at any number of steps (respaced, not
retrained).

Known regions (infilling, accompaniment, continuation): `known` holds x0 values and `mask` says
where they apply. They reach the denoiser in `cond` under two keys, exactly as a model trained
with random masks expects them:

- `cond["context"]`: known * mask, `[B, ...]` (zero where unknown)
- `cond["mask"]`: the mask as 0./1. in the sample's dtype, `[B, ...]`

and after every step the known region of the new sample is replaced by the known values noised
to the next timestep (replacement, as in RePaint), so even a denoiser that ignores the context
keeps them; the result holds exactly `known` where the mask is 1.

A guide (`guide`, `guide_mask`, `guide_strength`) is a softer hold, for variations of an earlier
result (SDEdit, region by region): where `guide_mask` is 1 the sample is replaced by the guide
noised to the current timestep for the first `1 - guide_strength` of the steps and left free
after that. Strength 0 returns the guide exactly, 1 ignores it. The denoiser is not told about
the guide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from structdiff.diffusion.ddim import randn
from structdiff.diffusion.schedule import NoiseSchedule

CONTEXT_KEY = "context"
MASK_KEY = "mask"

Denoiser = Callable[[torch.Tensor, torch.Tensor, dict | None], torch.Tensor]


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    shape: Sequence[int],
    schedule: NoiseSchedule,
    cond: dict | None = None,
    sampler: str = "ddim",
    steps: int = 20,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    known: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    progress: bool = False,
    *,
    guide: torch.Tensor | None = None,
    guide_mask: torch.Tensor | None = None,
    guide_strength: float = 1.0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw x0 samples of `shape` `[B, ...]` by reversing `schedule` in `steps` steps.

    Args:
        denoiser: `denoiser(x_t [B, ...], t LongTensor [B], cond) -> prediction [B, ...]` of
            `schedule.prediction` ('eps', 'v' or 'x0').
        shape: the sample shape `[B, ...]`.
        schedule: the noise schedule the denoiser was trained with.
        cond: conditions passed to the denoiser unchanged (plus the known-region keys below).
        sampler: 'ddpm', 'ddim' or 'dpmsolver++' (any case).
        steps: number of denoiser calls, 1 .. schedule.num_train_timesteps.
        eta: DDIM noise (0 = deterministic ODE, 1 = DDPM-like); only 'ddim' takes it.
        generator: the source of all randomness (initial noise, DDPM and DDIM noise,
            re-noised known values): the same seed gives the same samples.
        known: x0 values `[B, ...]` (or broadcastable to `shape`) to keep where `mask` is 1.
        mask: bool or 0/1, broadcastable to `shape`, 1 = known. Given with `known` only.
        progress: show a progress bar over the steps.
        guide, guide_mask: x0 values and where to start from them (see the module docstring).
        guide_strength: 0..1, how far the guided region may move from the guide.
        dtype: of the sample and of what the denoiser sees; default torch's default float
            dtype (`known` is cast to it: a float64 array from numpy does not make a float32
            network run in float64).
        device: of the sample; default that of `known`, else the generator's (CPU without).

    Returns:
        x0 `[B, ...]`, equal to `known` exactly where `mask` is 1.

    With `known`, the denoiser receives `cond["context"]` = known * mask and `cond["mask"]`
    (0./1.), both `[B, ...]`; `cond` must not hold these keys already.
    """
    shape = _check_shape(shape)
    grid = schedule.timesteps(steps)
    is_ddim = str(sampler).lower() == "ddim"
    scheduler = schedule.ddim_sampler(len(grid)) if is_ddim else schedule.make_scheduler(sampler)
    if not isinstance(eta, int | float) or eta < 0:
        raise ValueError(f"eta must be a number >= 0, got {eta!r}")
    if eta != 0 and not is_ddim:
        raise ValueError(f"eta applies to the 'ddim' sampler only, got eta={eta} with {sampler!r}")
    if device is None and known is not None:
        device = known.device
    elif device is None:
        device = generator.device if generator is not None else "cpu"
    dtype = dtype or torch.get_default_dtype()
    cond = dict(cond) if cond is not None else {}
    known, keep = _check_known(known, mask, shape, cond, dtype, device)
    if keep is not None:
        cond[CONTEXT_KEY] = known * keep
        cond[MASK_KEY] = keep.to(dtype)
    if not 0.0 <= float(guide_strength) <= 1.0:
        raise ValueError(f"guide_strength must be in 0..1, got {guide_strength}")
    guide, guided = _check_known(guide, guide_mask, shape, {}, dtype, device, "guide")
    # steps during which the guided region is held to the noised guide
    n_guided = round((1.0 - float(guide_strength)) * len(grid)) if guided is not None else 0

    if not is_ddim:  # diffusers' schedulers visit exactly the grid (DDIM goes by its stride)
        scheduler.set_timesteps(timesteps=grid.tolist(), device=device)
    x = randn(shape, generator=generator, device=torch.device(device), dtype=dtype)
    if keep is not None:
        x = _replace_known(x, known, keep, schedule, int(grid[0]), generator)
    if n_guided > 0:
        x = _replace_known(x, guide, guided, schedule, int(grid[0]), generator)
    for i, t in enumerate(tqdm(grid.tolist(), disable=not progress, desc=f"{sampler} sampling")):
        t_batch = torch.full((shape[0],), t, dtype=torch.long, device=x.device)
        prediction = denoiser(x, t_batch, cond)
        if not isinstance(prediction, torch.Tensor) or prediction.shape != x.shape:
            got = tuple(prediction.shape) if isinstance(prediction, torch.Tensor) else prediction
            raise ValueError(f"denoiser must return a tensor of shape {shape}, got {got!r}")
        if is_ddim:
            x = scheduler.step(prediction.to(dtype), t, x, eta=float(eta), generator=generator)
        else:
            x = scheduler.step(prediction.to(dtype), t, x, generator=generator).prev_sample
        x = x.to(dtype)
        if keep is not None and i + 1 < len(grid):
            x = _replace_known(x, known, keep, schedule, int(grid[i + 1]), generator)
        if i + 1 < n_guided:
            x = _replace_known(x, guide, guided, schedule, int(grid[i + 1]), generator)
    if n_guided >= len(grid):
        x = torch.where(guided, guide, x)
    if keep is not None:
        x = torch.where(keep, known, x)
    return x


def _replace_known(
    x: torch.Tensor,
    known: torch.Tensor,
    keep: torch.Tensor,
    schedule: NoiseSchedule,
    t: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """x `[B, ...]` with its known region set to a fresh draw of q(x_t | known) at timestep t."""
    noise = randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    return torch.where(keep, schedule.add_noise(known, noise, t_batch), x)


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of positive integers, got {shape!r}") from None
    if not dims or any(d < 1 for d in dims) or any(d != s for d, s in zip(dims, shape)):
        raise ValueError(f"shape must be a sequence of positive integers [B, ...], got {shape!r}")
    return dims


def _check_known(
    known: torch.Tensor | None,
    mask: torch.Tensor | None,
    shape: tuple[int, ...],
    cond: dict,
    dtype: torch.dtype,
    device,
    what: str = "known",
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """`known` and `mask` expanded to `shape` (`mask` as bool), or (None, None) when not given.
    `what` names the pair in errors: `known`/`mask` or `guide`/`guide_mask`."""
    names = (what, "mask" if what == "known" else f"{what}_mask")
    if known is None and mask is None:
        return None, None
    if known is None or mask is None:
        given = names[0] if mask is None else names[1]
        raise ValueError(f"{names[0]} and {names[1]} go together, got only {given}")
    for name, value in zip(names, (known, mask)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name} must be a tensor broadcastable to {shape}, got {value!r}")
        try:  # numpy's check: torch.broadcast_shapes imports sympy (0.5 s of a cold start)
            broadcast = np.broadcast_shapes(tuple(value.shape), tuple(shape))
        except ValueError:
            broadcast = None
        if broadcast != tuple(shape):
            raise ValueError(
                f"{name} must be broadcastable to the sample shape {shape}, "
                f"got {tuple(value.shape)}"
            )
    if mask.dtype != torch.bool:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"{names[1]} must be bool or hold only 0 and 1, got other values")
        mask = mask != 0
    for key in (CONTEXT_KEY, MASK_KEY):
        if key in cond:
            raise ValueError(f"cond already has {key!r}, which sample() sets from known and mask")
    keep = mask.to(device).expand(shape)
    return known.to(device=device, dtype=dtype).expand(shape), keep
