"""Masked (absorbing-state) discrete diffusion over tokens: the forward process and the sampler.

The forward process replaces each token by `MASK` with probability `mask_rate(t)`; the network
sees the partly masked tokens and predicts logits for every position (D3PM's absorbing state,
as MaskGIT and MDLM train it; Coconet's orderless masking for Bach chorales is the same idea).
Training timestep t in [0, num_train_timesteps) masks a share (t + 1) / num_train_timesteps.

Sampling starts from every free position masked and, over `steps` rounds, asks the network for
logits, draws a token for every masked position and keeps a share of them, so that the masked
share follows a cosine curve down to zero (MaskGIT's schedule). Which draws are kept:

- `order="confidence"`: the most probable draws (their log-probability plus Gumbel noise that
  fades over the rounds, as MaskGIT does), so that early rounds commit what the context makes
  sure of;
- `order="random"`: a uniformly random set: ancestral sampling of the absorbing process, exact
  for an exact network (the tests check it on a known distribution).

After the last round, `resample` rounds of Gibbs sampling (Coconet's annealed blocked Gibbs)
may follow: each masks a random share of the free positions again, from `resample_rate` down
toward 0, and draws them anew from the network given all the rest.

Known positions (accompaniment, continuation, infilling) are never masked. A guide (a variation
of earlier material) starts its positions from the guide's tokens with a share
`guide_strength` of them masked again, so 0 keeps the guide and 1 ignores it.

Shapes: tokens `[B, ...]` long, logits `[B, ..., V]`. The logits function is
`logits_fn(tokens [B, ...] with MASK where masked, t LongTensor [B], cond) -> [B, ..., V]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

MASK = -1  # the token value of a masked position
ORDERS = ("confidence", "random")

LogitsFn = Callable[[torch.Tensor, torch.Tensor, dict | None], torch.Tensor]


def mask_rate(t: torch.Tensor, num_train_timesteps: int) -> torch.Tensor:
    """The share of tokens masked at training timestep t `[B]`: (t + 1) / num_train_timesteps."""
    return (t.to(torch.float64) + 1) / num_train_timesteps


def timestep_of_rate(rate: torch.Tensor, num_train_timesteps: int) -> torch.Tensor:
    """The training timestep `[B]` whose mask rate is nearest `rate` `[B]` (in [0, 1])."""
    t = torch.round(rate.to(torch.float64) * num_train_timesteps) - 1
    return t.clamp(0, num_train_timesteps - 1).long()


def mask_tokens(tokens: torch.Tensor, t: torch.Tensor, num_train_timesteps: int,
                maskable: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward process: `tokens` `[B, ...]` with each maskable position masked with
    probability `mask_rate(t)`. Returns (masked tokens, where masked `[B, ...]` bool)."""
    rate = mask_rate(t, num_train_timesteps).to(torch.float32)
    rate = rate.view((-1,) + (1,) * (tokens.ndim - 1))
    # drawn on the generator's device (a CPU generator for a GPU batch too), compared there
    rng_device = generator.device if generator is not None else tokens.device
    masked = (torch.rand(tokens.shape, generator=generator, device=rng_device)
              < rate.to(rng_device)).to(tokens.device)
    if maskable is not None:
        masked &= maskable.expand_as(masked)
    return torch.where(masked, torch.full_like(tokens, MASK), tokens), masked


def nucleus(logp: torch.Tensor, top_p: float) -> torch.Tensor:
    """Log-probabilities `[..., V]` renormalized over each row's nucleus: its most probable
    tokens whose probabilities, taken in order, reach `top_p` (at least the likeliest one)."""
    sorted_logp, order = logp.sort(-1, descending=True)
    before = sorted_logp.exp().cumsum(-1) - sorted_logp.exp()  # mass of the likelier tokens
    cut = torch.zeros_like(logp, dtype=torch.bool).scatter(-1, order, before >= top_p)
    return torch.log_softmax(logp.masked_fill(cut, -math.inf), -1)


def shaped(logits: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0,
           shape_from: int = 0) -> torch.Tensor:
    """Log-probabilities `[..., V]` to draw from: `logits` at `temperature`, then each row's
    `nucleus(top_p)`. With `shape_from` > 0 the temperature and the nucleus shape only the
    choice among the values >= `shape_from`: each value below it, and the others together,
    keep the probability the network gives them at temperature 1. For an arranger's tokens
    (REST, HOLD, then pitches) that trims which pitch a note takes, not whether a note starts:
    a nucleus over all values cuts the many unlikely pitches of an off-beat onset together
    and holds the note instead, so the rhythm loses its quick notes."""
    if shape_from <= 0 or shape_from >= logits.shape[-1]:
        logp = torch.log_softmax(logits / temperature, -1)
        return nucleus(logp, float(top_p)) if top_p < 1.0 else logp
    logp = torch.log_softmax(logits, -1)
    head, tail = logp[..., :shape_from], logp[..., shape_from:]
    inner = torch.log_softmax(tail / temperature, -1)
    if top_p < 1.0:
        inner = nucleus(inner, float(top_p))
    return torch.cat([head, tail.logsumexp(-1, keepdim=True) + inner], -1)


def _cosine(u: float) -> float:
    """The masked share after a fraction u of the rounds."""
    return math.cos(math.pi / 2 * min(max(u, 0.0), 1.0))


@torch.no_grad()
def sample_masked(
    logits_fn: LogitsFn,
    shape: Sequence[int],
    num_train_timesteps: int,
    cond: dict | None = None,
    steps: int = 20,
    generator: torch.Generator | None = None,
    known: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    *,
    guide: torch.Tensor | None = None,
    guide_mask: torch.Tensor | None = None,
    guide_strength: float = 1.0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    shape_from: int = 0,
    order: str = "confidence",
    noise: float = 1.0,
    resample: int = 0,
    resample_rate: float = 0.3,
    progress: bool = False,
) -> torch.Tensor:
    """Tokens `[B, ...]` of `shape`, drawn by unmasking over `steps` rounds.

    Args:
        logits_fn: the network (see the module docstring); it is called once per round.
        shape: the token shape `[B, ...]`.
        num_train_timesteps: of the masking process the network was trained with.
        cond: passed to `logits_fn` unchanged.
        steps: rounds (network calls), >= 1.
        generator: the source of all randomness; the same seed gives the same tokens.
        known, mask: tokens `[B, ...]` to keep where `mask` (bool) is true.
        guide, guide_mask, guide_strength: start the `guide_mask` positions from `guide`'s
            tokens, a random share `guide_strength` of them masked again.
        temperature: of the token draws (1 draws from the network's distribution).
        top_p: nucleus sampling: each draw is among the most probable tokens that together
            hold `top_p` of the probability (at least the likeliest one); 1 keeps them all.
        shape_from: temperature and top_p shape only the choice among token values
            >= `shape_from`; the values below it (an arranger's REST and HOLD) and all the
            others together keep the network's own odds (`shaped`). 0 shapes every value.
        order: which draws each round keeps, 'confidence' or 'random' (module docstring).
        noise: scale of the Gumbel noise on the confidences (0: greedy order), fading to 0
            over the rounds; 'confidence' only.
        resample: Gibbs rounds after the unmasking (module docstring), each one network call.
        resample_rate: the share of free positions the first Gibbs round masks again.
        progress: show a progress bar over the rounds.
    """
    dims = tuple(int(d) for d in shape)
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"shape must be positive integers [B, ...], got {shape!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 < float(top_p) <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if not isinstance(shape_from, int) or shape_from < 0:
        raise ValueError(f"shape_from must be an integer >= 0, got {shape_from!r}")
    if not 0.0 <= float(guide_strength) <= 1.0:
        raise ValueError(f"guide_strength must be in 0..1, got {guide_strength}")
    if not isinstance(resample, int) or resample < 0 or not 0.0 < resample_rate <= 1.0:
        raise ValueError(f"resample must be an integer >= 0 and resample_rate in (0, 1], "
                         f"got {resample!r}, {resample_rate!r}")
    if (known is None) != (mask is None) or (guide is None) != (guide_mask is None):
        raise ValueError("known and mask (and guide and guide_mask) go together")
    device = known.device if known is not None else (
        generator.device if generator is not None else torch.device("cpu"))
    tokens = torch.full(dims, MASK, dtype=torch.long, device=device)
    free = torch.ones(dims, dtype=torch.bool, device=device)
    if known is not None:
        keep = mask.to(device=device, dtype=torch.bool).expand(dims)
        tokens = torch.where(keep, known.to(device).long().expand(dims), tokens)
        free &= ~keep
    if guide is not None:
        guided = guide_mask.to(device=device, dtype=torch.bool).expand(dims) & free
        again = torch.rand(dims, generator=generator, device=device) < float(guide_strength)
        start = guided & ~again
        tokens = torch.where(start, guide.to(device).long().expand(dims), tokens)
    B = dims[0]
    flat = tokens.view(B, -1)
    free_flat = free.view(B, -1)
    n_free = free_flat.sum(1)  # [B]
    n_start = (flat == MASK).sum(1)  # [B] masked at the start

    def draw_masked():
        """Log-probabilities `[B, L, V]` of the network and a draw `[B, L]` of every token."""
        masked = flat == MASK
        rate = masked.sum(1).double() / n_free.clamp(min=1).double()
        t = timestep_of_rate(rate, num_train_timesteps).to(device)
        logits = logits_fn(flat.view(dims), t, cond)
        if logits.shape[:-1] != torch.Size(dims):
            raise ValueError(f"logits_fn must return logits [{', '.join(map(str, dims))}, V], "
                             f"got {tuple(logits.shape)}")
        logp = shaped(logits.float().reshape(B, flat.shape[1], -1), temperature, top_p,
                      shape_from)
        gumbel = -torch.log(-torch.log(
            torch.rand(logp.shape, generator=generator, device=device).clamp(1e-20, 1)))
        return logp, (logp + gumbel).argmax(-1)  # a draw from softmax(logits / temperature)

    for i in tqdm(range(steps), disable=not progress, desc="unmasking"):
        masked = flat == MASK
        if not masked.any():
            break
        logp, draw = draw_masked()
        if order == "random":
            score = torch.rand(draw.shape, generator=generator, device=device)
        else:
            fade = noise * (1.0 - (i + 1) / steps)
            u = torch.rand(draw.shape, generator=generator, device=device).clamp(1e-20, 1)
            score = logp.gather(-1, draw[..., None])[..., 0] - fade * torch.log(-torch.log(u))
        score = score.masked_fill(~masked, -math.inf)
        left = torch.floor(n_start.double() * _cosine((i + 1) / steps)).long()  # [B]
        n_keep = (masked.sum(1) - left).clamp(min=1)
        if i + 1 == steps:
            n_keep = masked.sum(1)
        ranks = score.argsort(1, descending=True).argsort(1)
        commit = masked & (ranks < n_keep[:, None])
        flat = torch.where(commit, draw, flat)
    for j in range(resample):
        rate = resample_rate * (1.0 - j / resample)
        again = free_flat & (torch.rand(flat.shape, generator=generator, device=device) < rate)
        if not again.any():
            continue
        flat = torch.where(again, torch.full_like(flat, MASK), flat)
        _, draw = draw_masked()
        flat = torch.where(again, draw, flat)
    return flat.view(dims)
