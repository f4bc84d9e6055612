"""Classifier-free guidance: one network, trained with conditions sometimes dropped, guides itself.

Training replaces the condition of a random fraction of samples by a null condition
(`drop_condition`); sampling mixes the conditional and unconditional predictions,
uncond + guidance_scale * (cond - uncond) (`ClassifierFreeGuidance`). The null condition is a
dict of the entries that change, e.g. `{"style": null_style_index}`; every other entry of `cond`
(the plan, a known region's context and mask) stays as it is.

Shapes: B batch; `...` any trailing shape. A null value is a tensor `[B, ...]` or anything that
broadcasts to the shape of the entry it replaces (a Python number, a tensor `[...]`).
"""

from __future__ import annotations

import torch

from structdiff.diffusion.sampling import Denoiser


class ClassifierFreeGuidance:
    """A denoiser `(x_t [B, ...], t [B], cond) -> prediction [B, ...]` that guides another.

    The conditional and unconditional passes run as one call of batch 2B: tensor entries of
    `cond` with batch size B are concatenated (the first half conditional, the second with
    `null_cond`'s entries), other entries are passed through unchanged. With guidance_scale 1
    the guided prediction is the conditional one, and the unconditional pass is skipped.
    """

    def __init__(self, denoiser: Denoiser, guidance_scale: float, null_cond: dict) -> None:
        if not isinstance(guidance_scale, int | float) or not guidance_scale >= 0:
            raise ValueError(f"guidance_scale must be a number >= 0, got {guidance_scale!r}")
        if not isinstance(null_cond, dict) or not null_cond:
            raise ValueError(
                f"null_cond must be a non-empty dict of the entries to replace, got {null_cond!r}"
            )
        self.denoiser = denoiser
        self.guidance_scale = float(guidance_scale)
        self.null_cond = dict(null_cond)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: dict | None) -> torch.Tensor:
        """Guided prediction `[B, ...]` for x_t `[B, ...]`, t `[B]`."""
        if self.guidance_scale == 1.0:
            return self.denoiser(x_t, t, cond)
        batch = x_t.shape[0]
        _check_null_keys(cond, self.null_cond, batch)
        both = {}
        for key, value in cond.items():
            if _is_batched(value, batch):
                other = (
                    _null_like(self.null_cond[key], value, key) if key in self.null_cond else value
                )
                both[key] = torch.cat([value, other])
            else:
                both[key] = value
        out = self.denoiser(torch.cat([x_t, x_t]), torch.cat([t, t]), both)
        conditional, unconditional = out[:batch], out[batch:]
        return unconditional + self.guidance_scale * (conditional - unconditional)


def drop_condition(
    cond: dict,
    p: float,
    null_cond: dict,
    generator: torch.Generator | None = None,
) -> dict:
    """A copy of `cond` where each sample, with probability p, has `null_cond`'s entries instead.

    One draw per sample drops all of `null_cond`'s entries together. The entries named by
    `null_cond` must be tensors `[B, ...]` in `cond`; the rest are returned unchanged.
    """
    if not isinstance(p, int | float) or not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    if not isinstance(null_cond, dict) or not null_cond:
        raise ValueError(
            f"null_cond must be a non-empty dict of the entries to replace, got {null_cond!r}"
        )
    first = cond.get(next(iter(null_cond))) if isinstance(cond, dict) else None
    batch = first.shape[0] if isinstance(first, torch.Tensor) and first.ndim >= 1 else -1
    _check_null_keys(cond, null_cond, batch)
    rng_device = generator.device if generator is not None else first.device
    drop = torch.rand(batch, generator=generator, device=rng_device) < p
    out = dict(cond)
    for key, null in null_cond.items():
        value = cond[key]
        where = drop.to(value.device).view((batch,) + (1,) * (value.ndim - 1))
        out[key] = torch.where(where, _null_like(null, value, key), value)
    return out


def _is_batched(value, batch: int) -> bool:
    return isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == batch


def _check_null_keys(cond: dict | None, null_cond: dict, batch: int) -> None:
    if not isinstance(cond, dict):
        raise ValueError(f"cond must be a dict holding {sorted(null_cond)}, got {cond!r}")
    for key in null_cond:
        if key not in cond:
            raise ValueError(f"cond has no entry {key!r} for null_cond to replace")
        if not _is_batched(cond[key], batch):
            raise ValueError(
                f"cond[{key!r}] must be a tensor of batch size {batch} to be replaced by "
                f"null_cond, got {cond[key]!r}"
            )


def _null_like(null, value: torch.Tensor, key: str) -> torch.Tensor:
    """The null entry `null` as a tensor of `value`'s shape `[B, ...]`, dtype and device."""
    null = torch.as_tensor(null, dtype=value.dtype, device=value.device)
    try:
        return null.expand(value.shape)
    except RuntimeError:
        raise ValueError(
            f"null_cond[{key!r}] of shape {tuple(null.shape)} does not broadcast to cond[{key!r}] "
            f"of shape {tuple(value.shape)}"
        ) from None
