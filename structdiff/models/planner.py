"""The planner's denoiser: a transformer over the bars of a song.

Each bar is one token: its noisy plan features `x_t`, the known context and its mask (the parts
of the plan the user fixed), which chord slots the bar has, and where the bar lies in the
song. Attention between bars carries a learned bias per head and clipped relative distance
(relative positions: a section eight bars back looks the same anywhere in the song). The
diffusion step, the style, the target length and the mode condition every block through
adaptive layer norm (scale and shift from the condition, as in DiT).

The network predicts x0 as logits per feature; `structdiff.training` turns them into
cross-entropy per categorical group and, for sampling, into an x0 estimate in [-1, 1].
The key's tonic is not an input: chords are encoded relative to it.

A masked planner (`diffusion="masked"`) is the same network over the same features: x_t is
the plan's x0 values (-1/1) with its masked groups all zero (`masked_input`), and its
logits become one distribution per group and bar (`group_logits`) for
`structdiff.diffusion.masked.sample_masked`.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from structdiff.diffusion.masked import sample_masked

MODES = ("major", "minor")
DIFFUSIONS = ("gaussian", "masked")
LENGTH_ENCODINGS = ("table", "smooth")


@dataclass
class PlannerConfig:
    n_features: int  # per-bar plan features (structdiff.data.plan_tensor.N_FEATURES)
    n_slots: int  # chord slots per bar (structdiff.data.plan_tensor.MAX_SLOTS)
    n_bar_cond: int  # per-bar conditions (structdiff.data.plan_tensor.CONDITION_NAMES)
    n_styles: int  # style labels; index n_styles is the null style of guidance
    d_model: int = 192  # token width
    n_layers: int = 4  # transformer blocks
    n_heads: int = 4  # attention heads
    dropout: float = 0.1
    max_distance: int = 64  # relative distances beyond this share one bias
    max_bars: int = 512  # longest song the length embedding knows
    # how the song's length reaches the network: 'table' (one learned vector per length, the
    # planners shipped before session 20: a length seen in few training songs gets a vector
    # barely moved from its random start, which shifts every chord of plans of that length)
    # or 'smooth' (a small MLP of log length and length: near lengths condition alike)
    length_encoding: str = "table"
    # 'gaussian' (noise on the one-hot groups, x0 logits) or 'masked' (absorbing-state
    # diffusion over one token per group and bar; `structdiff.diffusion.masked`)
    diffusion: str = "gaussian"

    def to_dict(self) -> dict:
        return asdict(self)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of diffusion steps `t` [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Block(nn.Module):
    """Pre-norm self-attention and MLP, each modulated by the condition (adaLN-zero)."""

    def __init__(self, cfg: PlannerConfig):
        super().__init__()
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.dropout = nn.Dropout(cfg.dropout)
        # condition -> shift, scale, gate for attention and MLP; zero-init keeps blocks identity
        self.modulation = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """h [B, L, D], c [B, D], bias [B, H, L, L] (relative positions and padding)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c)[:, None].chunk(6, -1)
        x = self.norm1(h) * (1 + scale1) + shift1
        q, k, v = rearrange(self.qkv(x), "b l (three h e) -> three b h l e", three=3,
                            h=self.n_heads)
        p = self.dropout.p if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        h = h + gate1 * self.dropout(self.proj(rearrange(a, "b h l e -> b l (h e)")))
        x = self.norm2(h) * (1 + scale2) + shift2
        return h + gate2 * self.dropout(self.mlp(x))


class Planner(nn.Module):
    """Denoiser `forward(x_t, t, cond) -> x0 logits [B, L, F]`.

    `cond` holds: `style` [B] long (n_styles = none), `mode` [B] long (0 major, 1 minor,
    2 none), `slot_valid` [B, L, S] bool, `bar_cond` [B, L, C] float (per-bar conditions:
    beats, pickups, position, hypermeter), `pad` [B, L] bool (True for padding bars), and for
    known parts `context` [B, L, F] (x0 values, -1/1) with `mask` [B, L, F] (1 = known);
    both default to nothing known.
    """

    def __init__(self, cfg: PlannerConfig):
        super().__init__()
        if cfg.diffusion not in DIFFUSIONS:
            raise ValueError(f"diffusion must be one of {', '.join(DIFFUSIONS)}, "
                             f"got {cfg.diffusion!r}")
        self.cfg = cfg
        d = cfg.d_model
        n_in = 3 * cfg.n_features + cfg.n_slots + cfg.n_bar_cond
        self.inp = nn.Linear(n_in, d)
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.style = nn.Embedding(cfg.n_styles + 1, d)
        self.mode = nn.Embedding(len(MODES) + 1, d)
        if cfg.length_encoding not in LENGTH_ENCODINGS:
            raise ValueError(f"length_encoding must be one of {', '.join(LENGTH_ENCODINGS)}, "
                             f"got {cfg.length_encoding!r}")
        if cfg.length_encoding == "table":
            self.length = nn.Embedding(cfg.max_bars + 1, d)
        else:
            self.length = nn.Sequential(nn.Linear(2, d), nn.SiLU(), nn.Linear(d, d))
        self.rel_bias = nn.Embedding(2 * cfg.max_distance + 1, cfg.n_heads)
        nn.init.zeros_(self.rel_bias.weight)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.out_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.n_features)

    def _length_input(self, lengths: torch.Tensor) -> torch.Tensor:
        if self.cfg.length_encoding == "table":
            return lengths.clamp(max=self.cfg.max_bars)
        return length_features(lengths, self.cfg.max_bars).to(self.inp.weight.dtype)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        B, L, Fe = x_t.shape
        pad = cond.get("pad")
        if pad is None:
            pad = torch.zeros(B, L, dtype=torch.bool, device=x_t.device)
        context = cond.get("context")
        mask = cond.get("mask")
        if context is None or mask is None:
            context = torch.zeros_like(x_t)
            mask = torch.zeros_like(x_t)
        mask = mask.to(x_t.dtype)
        slot_valid = cond["slot_valid"].to(x_t.dtype)
        bar_cond = cond["bar_cond"].to(x_t.dtype)
        lengths = (~pad).sum(dim=1)  # [B]
        h = self.inp(torch.cat([x_t, context * mask, mask, slot_valid, bar_cond], dim=-1))

        c = self.time(timestep_embedding(t, self.cfg.d_model))
        c = c + self.style(cond["style"]) + self.mode(cond["mode"])
        c = c + self.length(self._length_input(lengths))

        index = torch.arange(L, device=x_t.device)
        rel = index[None, :] - index[:, None]  # [L, L] key - query
        rel = rel.clamp(-self.cfg.max_distance, self.cfg.max_distance) + self.cfg.max_distance
        bias = rearrange(self.rel_bias(rel), "q k h -> h q k")[None].expand(B, -1, -1, -1)
        bias = bias.masked_fill(pad[:, None, None, :], float("-inf"))
        for block in self.blocks:
            h = block(h, c, bias)
        return self.out(self.out_norm(h))


def length_features(lengths: torch.Tensor, max_bars: int) -> torch.Tensor:
    """`[B, 2]`: log length and length, each scaled to [0, 1] at `max_bars` bars (a length
    encoding that changes little from one length to the next)."""
    n = lengths.clamp(1, max_bars).float()
    return torch.stack([n.log() / math.log(max_bars), n / max_bars], dim=-1)


def x0_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """x0 estimate `[..., F]` in [-1, 1] from plan logits: 2 * softmax - 1 within every
    categorical group of the plan layout."""
    from structdiff.data.plan_tensor import PLAN_LAYOUT

    parts = [2 * torch.softmax(logits[..., g.slice], dim=-1) - 1 for g in PLAN_LAYOUT]
    return torch.cat(parts, dim=-1)


@functools.cache
def _layout_index() -> tuple[torch.Tensor, torch.Tensor, int]:
    """For every feature, its group `[F]` and its class within the group `[F]`; the largest
    group's size."""
    from structdiff.data.plan_tensor import PLAN_LAYOUT

    group = torch.cat([torch.full((g.size,), i) for i, g in enumerate(PLAN_LAYOUT)])
    cls = torch.cat([torch.arange(g.size) for g in PLAN_LAYOUT])
    return group, cls, max(g.size for g in PLAN_LAYOUT)


def plan_tokens(one_hot: torch.Tensor) -> torch.Tensor:
    """The class of every group `[..., G]` (long) of one-hot plan features `[..., F]`."""
    from structdiff.data.plan_tensor import PLAN_LAYOUT

    return torch.stack([one_hot[..., g.slice].argmax(-1) for g in PLAN_LAYOUT], dim=-1)


def group_mask(mask: torch.Tensor) -> torch.Tensor:
    """Which groups `[..., G]` (bool) a feature mask `[..., F]` covers (whole groups: its first
    feature says)."""
    from structdiff.data.plan_tensor import PLAN_LAYOUT

    return torch.stack([mask[..., g.offset] > 0 for g in PLAN_LAYOUT], dim=-1)


def tokens_one_hot(tokens: torch.Tensor) -> torch.Tensor:
    """One-hot plan features `[..., F]` (float) of group classes `[..., G]`; a masked group
    (`structdiff.diffusion.masked.MASK`, negative) is all zero."""
    group, cls, _ = _layout_index()
    picked = tokens[..., group.to(tokens.device)]  # [..., F]: the class of each feature's group
    return (picked == cls.to(tokens.device)).float()


def masked_input(tokens: torch.Tensor) -> torch.Tensor:
    """A masked planner's x_t `[..., F]` of group classes `[..., G]`: a known group's x0 values
    (-1/1, as the Gaussian planner sees a clean plan), 0 for every feature of a masked one."""
    group, _, _ = _layout_index()
    known = (tokens >= 0)[..., group.to(tokens.device)].float()
    return (2 * tokens_one_hot(tokens) - 1) * known


def group_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-feature logits `[..., F]` as one distribution per group `[..., G, V]`, V the largest
    group's size; the classes a smaller group lacks are -inf."""
    group, cls, width = _layout_index()
    n_groups = int(group[-1]) + 1
    out = logits.new_full((*logits.shape[:-1], n_groups, width), float("-inf"))
    out[..., group.to(logits.device), cls.to(logits.device)] = logits
    return out


def used_groups(pad: torch.Tensor, slot_valid: torch.Tensor) -> torch.Tensor:
    """Which groups `[B, L, G]` (bool) a plan uses: every group of a real bar but the chord
    groups of its unused slots. pad [B, L] (True = padding); slot_valid [B, L, S]."""
    from structdiff.data.plan_tensor import PLAN_LAYOUT

    real = ~pad.bool()
    slot = [int(m.group()) if (m := re.search(r"\d+$", g.name)) else None for g in PLAN_LAYOUT]
    return torch.stack([real if s is None else real & slot_valid[..., s].bool() for s in slot],
                       dim=-1)


def sample_masked_plan(
    logits_fn, cond: dict, num_train_timesteps: int, steps: int,
    generator: torch.Generator | None = None, known: torch.Tensor | None = None,
    mask: torch.Tensor | None = None, temperature: float = 1.0, order: str = "random",
    noise: float = 1.0,
) -> torch.Tensor:
    """Plans `[B, L, F]` (x0 values, -1/1) of a masked planner, unmasked over `steps` rounds
    in random order (`order="random"`: ancestral sampling) or surest draws first
    (`"confidence"`, `structdiff.diffusion.masked`; `noise`: the scale of the Gumbel noise on
    its confidences, fading over the rounds). `logits_fn(x_t, t, cond) -> [B, L, F]` is the
    network (or a guided one); `known` `[B, L, F]` (x0 values) is kept where `mask`
    `[B, L, F]` is 1 (whole groups), and passed as context as in training. Unused slots are
    known as unused."""
    from structdiff.data.plan_tensor import N_QUALITY, PLAN_LAYOUT

    B, L = cond["slot_valid"].shape[:2]
    cond = dict(cond)
    keep = ~used_groups(cond["pad"], cond["slot_valid"])  # [B, L, G]: padding, unused slots
    known_tokens = torch.zeros(B, L, len(PLAN_LAYOUT), dtype=torch.long)
    quality = [k for k, g in enumerate(PLAN_LAYOUT) if g.name.startswith("quality")]
    known_tokens[..., quality] = N_QUALITY  # an unused slot: root 0, N, bass 0
    if known is not None and mask is not None:
        cond["context"], cond["mask"] = known * mask, mask.to(known.dtype)
        given = group_mask(mask)
        known_tokens = torch.where(given, plan_tokens((known + 1) / 2), known_tokens)
        keep = keep | given

    def logits(tokens, t, c):
        return group_logits(logits_fn(masked_input(tokens), t, c))

    tokens = sample_masked(logits, (B, L, len(PLAN_LAYOUT)), num_train_timesteps, cond, steps,
                           generator=generator, known=known_tokens, mask=keep,
                           temperature=temperature, order=order, noise=noise)
    return 2 * tokens_one_hot(tokens) - 1


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
