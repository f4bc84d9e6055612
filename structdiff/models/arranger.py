"""The arranger's denoiser: a transformer over tracks and time, cross-attending to the plan.

A window of K tracks of T 16th steps is diffused as per-step tokens (rest / hold / pitch,
`structdiff.data.tokens`) in a learned `emb_dim`-wide embedding, each row normalized to norm
sqrt(emb_dim). The network reads the noisy embeddings of one quarter note (`steps_per_token`
steps) of one track as one token and predicts x0 as class logits per step; the training loss
is their cross-entropy, and for sampling the x0 estimate is the softmax-weighted mean of the
embeddings (the token formulation DESIGN.md measured best for voices).

Each block attends three ways, each with adaptive layer norm from the condition (step, style):

- along time within each track (learned relative-position bias, padding masked);
- across tracks at each time token (tracks that don't play are masked as keys);
- to the plan: the window's per-token plan features (`structdiff.data.arrange_tensor`) pass
  through an encoder and every track token cross-attends to them, with a relative-position bias.

The plan features of each time token are also added to its track tokens. Besides the step and
the style, the model sees each track's role and whether it plays, and the known context (tracks
or steps a user gave, or the end of the previous window) with its mask.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from structdiff.models.planner import count_parameters, timestep_embedding

__all__ = ["Arranger", "ArrangerConfig", "count_parameters"]


@dataclass
class ArrangerConfig:
    vocab: int  # token values (structdiff.data.tokens.vocab_size)
    n_roles: int  # track slots
    n_styles: int  # style labels; index n_styles is the null style of guidance
    n_plan: int  # per-token plan features (structdiff.data.arrange_tensor.PLAN_FEATURES)
    steps_per_token: int = 4
    emb_dim: int = 12  # width of the diffused token embedding
    d_model: int = 192
    n_layers: int = 3  # blocks, each with time, track and plan attention
    n_heads: int = 4
    dropout: float = 0.1
    max_distance: int = 64  # relative distances (in tokens) beyond this share one bias

    def to_dict(self) -> dict:
        return asdict(self)


class _Attention(nn.Module):
    """Pre-norm attention modulated by the condition (adaLN-zero), self or cross."""

    def __init__(self, d: int, n_heads: int, dropout: float, cross: bool = False):
        super().__init__()
        self.n_heads = n_heads
        self.norm = nn.LayerNorm(d, elementwise_affine=False)
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.kv_norm = nn.LayerNorm(d) if cross else None
        self.proj = nn.Linear(d, d)
        self.dropout = dropout
        self.modulation = nn.Linear(d, 3 * d)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h, c, bias=None, memory=None):
        """h [S, L, D], c [S, D], bias broadcastable to [S, H, L, Lk], memory [S, Lk, D]."""
        shift, scale, gate = self.modulation(c)[:, None].chunk(3, -1)
        x = self.norm(h) * (1 + scale) + shift
        src = x if memory is None else self.kv_norm(memory)
        q = rearrange(self.q(x), "s l (h e) -> s h l e", h=self.n_heads)
        k, v = rearrange(self.kv(src), "s l (two h e) -> two s h l e", two=2, h=self.n_heads)
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        return h + gate * self.proj(rearrange(a, "s h l e -> s l (h e)"))


class _MLP(nn.Module):
    def __init__(self, d: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * d, d))
        self.modulation = nn.Linear(d, 3 * d)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h, c):
        shift, scale, gate = self.modulation(c)[:, None].chunk(3, -1)
        return h + gate * self.mlp(self.norm(h) * (1 + scale) + shift)


class _Block(nn.Module):
    def __init__(self, cfg: ArrangerConfig):
        super().__init__()
        d, H, p = cfg.d_model, cfg.n_heads, cfg.dropout
        self.time = _Attention(d, H, p)
        self.track = _Attention(d, H, p)
        self.plan = _Attention(d, H, p, cross=True)
        self.mlp = _MLP(d, p)

    def forward(self, h, c, time_bias, track_bias, plan_bias, plan):
        """h [B, K, N, D]; c [B, D]; biases per attention; plan [B, N, D]."""
        B, K, N, D = h.shape
        x = rearrange(h, "b k n d -> (b k) n d")
        x = self.time(x, c.repeat_interleave(K, 0), time_bias)
        x = rearrange(x, "(b k) n d -> (b n) k d", b=B)
        x = self.track(x, c.repeat_interleave(N, 0), track_bias)
        x = rearrange(x, "(b n) k d -> b (k n) d", b=B)
        x = self.plan(x, c, plan_bias, memory=plan)
        x = self.mlp(x, c)
        return rearrange(x, "b (k n) d -> b k n d", k=K)


class Arranger(nn.Module):
    """Denoiser `forward(x_t [B, K, T, E], t [B], cond) -> logits [B, K, T, vocab]`.

    `cond` holds `style` [B] long (n_styles = none), `plan` [B, N, n_plan] float (N = T //
    steps_per_token; the last feature marks padding tokens), `present` [B, K] bool (which
    tracks play), and for known parts `context` [B, K, T, E] (x0 values) with `mask` [B, K, T,
    E] (1 = known, the same over E); both default to nothing known.
    """

    def __init__(self, cfg: ArrangerConfig):
        super().__init__()
        self.cfg = cfg
        d, E, S = cfg.d_model, cfg.emb_dim, cfg.steps_per_token
        self.embedding = nn.Embedding(cfg.vocab, E)
        nn.init.normal_(self.embedding.weight)
        self.inp = nn.Linear(2 * S * E + S, d)
        self.role = nn.Embedding(cfg.n_roles, d)
        self.present = nn.Embedding(2, d)
        self.plan_in = nn.Sequential(nn.Linear(cfg.n_plan, d), nn.SiLU(), nn.Linear(d, d))
        self.plan_add = nn.Linear(d, d)
        self.time_emb = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.style = nn.Embedding(cfg.n_styles + 1, d)
        n_rel = 2 * cfg.max_distance + 1
        self.time_bias = nn.Embedding(n_rel, cfg.n_heads)
        self.plan_bias = nn.Embedding(n_rel, cfg.n_heads)
        nn.init.zeros_(self.time_bias.weight)
        nn.init.zeros_(self.plan_bias.weight)
        self.blocks = nn.ModuleList([_Block(cfg) for _ in range(cfg.n_layers)])
        self.out_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, S * cfg.vocab)

    def token_embeddings(self) -> torch.Tensor:
        """The diffused embedding of every token value `[vocab, E]`, rows of norm sqrt(E)."""
        return F.normalize(self.embedding.weight, dim=-1) * math.sqrt(self.cfg.emb_dim)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """x0 `[..., E]` of tokens `[...]`."""
        return self.token_embeddings()[tokens]

    def x0_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The x0 estimate `[..., E]`: the softmax-weighted mean of the token embeddings."""
        return torch.softmax(logits, dim=-1) @ self.token_embeddings()

    def nearest_tokens(self, x0: torch.Tensor) -> torch.Tensor:
        """Tokens `[...]` whose embeddings lie nearest to x0 estimates `[..., E]`."""
        return (x0 @ self.token_embeddings().T).argmax(dim=-1)

    def _relative_bias(self, table: nn.Embedding, n: int, device) -> torch.Tensor:
        index = torch.arange(n, device=device)
        rel = (index[None, :] - index[:, None]).clamp(-self.cfg.max_distance,
                                                        self.cfg.max_distance)
        return rearrange(table(rel + self.cfg.max_distance), "q k h -> h q k")  # [H, N, N]

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        B, K, T, E = x_t.shape
        S = self.cfg.steps_per_token
        if T % S:
            raise ValueError(f"window steps must be a multiple of {S}, got {T}")
        N = T // S
        context, mask = cond.get("context"), cond.get("mask")
        if context is None or mask is None:
            context = torch.zeros_like(x_t)
            mask = torch.zeros_like(x_t)
        mask = mask.to(x_t.dtype)
        present = cond["present"].bool()
        plan = cond["plan"].to(x_t.dtype)
        pad = plan[..., -1] > 0.5  # [B, N]

        x = torch.cat([
            rearrange(x_t, "b k (n s) e -> b k n (s e)", s=S),
            rearrange(context * mask, "b k (n s) e -> b k n (s e)", s=S),
            rearrange(mask[..., 0], "b k (n s) -> b k n s", s=S),
        ], dim=-1)
        p = self.plan_in(plan)  # [B, N, D]
        h = self.inp(x) + self.role.weight[None, :K, None]
        h = h + self.present(present.long())[:, :, None]
        h = h + self.plan_add(p)[:, None]
        c = self.time_emb(timestep_embedding(t, self.cfg.d_model)) + self.style(cond["style"])

        neg = torch.finfo(x_t.dtype).min
        key_pad = torch.zeros(B, 1, 1, N, dtype=x_t.dtype, device=x_t.device).masked_fill(
            pad[:, None, None, :], neg)
        time_bias = self._relative_bias(self.time_bias, N, x_t.device)[None] + key_pad
        time_bias = time_bias.repeat_interleave(K, 0)  # [(B K), H, N, N]
        # a track that doesn't play is no key; with no track playing, every track is one
        keys = present | ~present.any(dim=1, keepdim=True)
        track_bias = torch.zeros(B, 1, 1, K, dtype=x_t.dtype, device=x_t.device).masked_fill(
            ~keys[:, None, None, :], neg).repeat_interleave(N, 0)  # [(B N), 1, 1, K]
        plan_bias = self._relative_bias(self.plan_bias, N, x_t.device).repeat(1, K, 1)
        plan_bias = plan_bias[None] + key_pad  # [B, H, K N, N]
        for block in self.blocks:
            h = block(h, c, time_bias, track_bias, plan_bias, p)
        logits = self.out(self.out_norm(h))  # [B, K, N, S V]
        return rearrange(logits, "b k n (s v) -> b k (n s) v", s=S)
