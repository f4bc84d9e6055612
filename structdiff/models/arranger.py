"""The arranger's denoiser: a transformer over tracks and time, cross-attending to the plan.

A window of K tracks of T 16th steps is diffused as one tensor `[B, K, T, C]`; each track's
slot holds its *kind*'s representation (`structdiff.data.parts`), padded with zeros to C
channels:

- mono (voices, melody, bass): per-step tokens (rest / hold / pitch) in a learned `emb_dim`-wide
  embedding, each row normalized to norm sqrt(emb_dim), or (`token_embedding="pitch"`, the
  shipped band arranger) a fixed one in which near pitches lie near each other
  (`pitch_embedding`); the network predicts x0 as class logits
  per step (cross-entropy) and the x0 estimate is the softmax-weighted mean of the embeddings;
- poly (keys, guitar, strings): the roll `[P, 2]` (onset, sustain) per step as +-1 values; the
  network predicts a logit per cell (binary cross-entropy, output bias at the base rate) and the
  x0 estimate is tanh(logit / 2), the expected +-1 value;
- drums: hits `[D]` per step on the reduced kit, as +-1 values, predicted like poly cells.

(The token and roll+BCE formulations are those DESIGN.md measured best for each.)

An arranger of mono tracks only may instead be a masked (absorbing-state) diffusion
(`diffusion="masked"`, `structdiff.diffusion.masked`): x_t holds each token's embedding, or a
learned mask vector where the token is masked, and the same network predicts the tokens' logits
(`masked_input`, `masked_logits`). With `pitch_classes`, a masked arranger's x_t also spells
out what its unmasked tokens mean (`pitch_features`: the pitch class and height sounding at
each step, held notes included), the plan's chord reaches the network as the pitch classes of
its tones and bass, and a head writes one logit per pitch class that is added to every pitch of
that class: which pitch classes sound together is then plain to the network instead of hidden
in a learned embedding (issue 11 measured why that matters:
`evaluation/results/musicianship_arrangers.md`). The network
reads one quarter note (`steps_per_token` steps) of one track as one token, through an input
projection of its kind, and writes each kind's outputs through a head of that kind.

Each block attends three ways, each with adaptive layer norm from the condition (step, style):

- along time within each track (learned relative-position bias, padding masked);
- across tracks at each time token (tracks that don't play are masked as keys), so every track
  of every kind attends to every other;
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

from structdiff.analysis.chords import CHORD_TONES
from structdiff.data.arrange_tensor import feature_slice
from structdiff.data.tokens import HOLD, N_SPECIAL, REST
from structdiff.models.planner import count_parameters, timestep_embedding

__all__ = ["DIFFUSIONS", "PITCH_FEATURES", "Arranger", "ArrangerConfig", "count_parameters",
           "pitch_features"]


MAX_REGISTER_SHIFT = 12  # semitones either way a `register` condition may say


def register_index(shift: torch.Tensor | None, batch: int, device=None) -> torch.Tensor:
    """Embedding rows `[B]` of register shifts `[B]` (-12..12, clamped), or of unknown."""
    unknown = 2 * MAX_REGISTER_SHIFT + 1
    if shift is None:
        return torch.full((batch,), unknown, dtype=torch.long, device=device)
    return shift.long().clamp(-MAX_REGISTER_SHIFT, MAX_REGISTER_SHIFT) + MAX_REGISTER_SHIFT


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
    kinds: list[str] | None = None  # kind of each role slot (mono, poly, drums); None: all mono
    poly_pitches: int = 48  # pitches of a poly roll
    n_drums: int = 8  # classes of the reduced drum kit
    poly_base_rate: float = 0.02  # share of poly cells on: the initial output bias
    drum_base_rate: float = 0.05  # share of drum cells on
    diffusion: str = "gaussian"  # 'gaussian' (noise on embeddings) or 'masked' (mono only)
    # masked only: the network also reads each step's sounding pitch class and height, and the
    # plan chord's tones, and writes a pitch-class logit added to every pitch of that class
    pitch_classes: bool = False
    pitch_low: int = 33  # pitch of the first pitch token (structdiff.data.tokens)
    # 'learned': a free embedding of every token value; 'pitch': a fixed one in which near
    # pitches lie near each other (`pitch_embedding`)
    token_embedding: str = "learned"
    # track attention's reach in time: 0, every track at the same time token (as trained
    # before); n, every track's tokens within n time tokens either side (`track_span`)
    track_span: int = 0
    # the network is told how many semitones its notes were moved to reach C (`key_shift`,
    # and a training transposition): voices keep one register whatever the key, so a song in
    # G, moved up 5 to C, sits 5 higher there than one in C; without it the network writes one
    # register in C for every key, and songs in keys far from C come out too low or too high
    register: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def slot_kinds(self) -> list[str]:
        return list(self.kinds) if self.kinds is not None else ["mono"] * self.n_roles

    def kind_channels(self, kind: str) -> int:
        """Channels of one step of one track of `kind` in the diffused tensor."""
        mono = self.emb_dim + (PITCH_FEATURES if self.pitch_classes else 0)
        return {"mono": mono, "poly": 2 * self.poly_pitches, "drums": self.n_drums}[kind]

    @property
    def channels(self) -> int:
        """C: the widest kind's channels; narrower kinds are zero-padded."""
        return max(self.kind_channels(k) for k in set(self.slot_kinds))


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

    def neighbours(self, h, c, span: int, bias):
        """Self-attention of h `[B, K, N, D]` in which each token attends to every track's
        tokens within `span` time tokens of its own (the window's ends padded with zeros); c
        `[B, D]`, bias `[B N, H, K, K (2 span + 1)]` masks and weights those keys."""
        B = h.shape[0]
        shift, scale, gate = self.modulation(c)[:, None, None].chunk(3, -1)
        x = self.norm(h) * (1 + scale) + shift
        q = rearrange(self.q(x), "b k n (h e) -> (b n) h k e", h=self.n_heads)
        kv = F.pad(self.kv(x), (0, 0, span, span)).unfold(2, 2 * span + 1, 1)
        k, v = rearrange(kv, "b k n (two h e) w -> two (b n) h (k w) e", two=2, h=self.n_heads)
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        return h + gate * self.proj(rearrange(a, "(b n) h k e -> b k n (h e)", b=B))


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
        self.span = cfg.track_span

    def forward(self, h, c, time_bias, track_bias, plan_bias, plan):
        """h [B, K, N, D]; c [B, D]; biases per attention; plan [B, N, D]."""
        B, K, N, D = h.shape
        x = rearrange(h, "b k n d -> (b k) n d")
        x = self.time(x, c.repeat_interleave(K, 0), time_bias)
        if self.span:
            x = rearrange(x, "(b k) n d -> b k n d", b=B)
            x = rearrange(self.track.neighbours(x, c, self.span, track_bias),
                          "b k n d -> b (k n) d")
        else:
            x = rearrange(x, "(b k) n d -> (b n) k d", b=B)
            x = self.track(x, c.repeat_interleave(N, 0), track_bias)
            x = rearrange(x, "(b n) k d -> b (k n) d", b=B)
        x = self.plan(x, c, plan_bias, memory=plan)
        x = self.mlp(x, c)
        return rearrange(x, "b (k n) d -> b k n d", k=K)


_KINDS = ("mono", "poly", "drums")
DIFFUSIONS = ("gaussian", "masked")
TOKEN_EMBEDDINGS = ("learned", "pitch")


def pitch_embedding(vocab: int, emb_dim: int) -> torch.Tensor:
    """A fixed token embedding `[vocab, emb_dim]`, rows of norm sqrt(emb_dim), in which the
    distance between two pitch tokens grows with the interval between them.

    Three dimensions say what a token is (REST, HOLD, or a pitch; REST and HOLD are those axes
    alone); the rest hold the pitch's height as sines and cosines of periods 2n, n, n/2, ...
    pitches (n the number of pitch tokens), the first of them too long to wrap round. Under
    Gaussian noise a note is then told from a rest first, its register next and its exact
    pitch last, and an estimate between two near pitches lies between them, where a learned
    embedding of 68 pitches in 12 dimensions puts every pitch about as far from every other
    (issue 11: the shipped band arranger's neighbouring pitch tokens had a mean cosine of 0.06,
    its melodies moved by step 13% of the time against POP909's 50%).
    """
    pairs = (emb_dim - 3) // 2
    if pairs < 1:
        raise ValueError(f"a pitch embedding needs emb_dim >= 5, got {emb_dim}")
    n = vocab - N_SPECIAL
    out = torch.zeros(vocab, emb_dim, dtype=torch.float64)
    out[REST, 0] = out[HOLD, 1] = math.sqrt(emb_dim)
    kind, height = emb_dim / 4, 3 * emb_dim / 4  # squared norms of the two parts of a pitch
    out[N_SPECIAL:, 2] = math.sqrt(kind)
    pitch = torch.arange(n, dtype=torch.float64)
    for k in range(pairs):
        angle = 2 * math.pi * pitch / (2 * n / 2 ** k)
        share = (pairs - k) / (pairs * (pairs + 1) / 2)
        out[N_SPECIAL:, 3 + 2 * k] = torch.cos(angle) * math.sqrt(height * share)
        out[N_SPECIAL:, 4 + 2 * k] = torch.sin(angle) * math.sqrt(height * share)
    return out.float()


PITCH_FEATURES = 16  # per step: sounding pitch class (12), height, sounding, onset, masked


def pitch_features(tokens: torch.Tensor, pitch_low: int) -> torch.Tensor:
    """What a masked diffusion's tokens `[..., T]` (`MASK` = -1) say of each step, `[..., T,
    PITCH_FEATURES]`: the pitch class (one-hot) and height ((pitch - 60) / 12) of the note that
    sounds there, whether one sounds, whether the step is an onset, whether it is masked. A
    held step sounds the pitch of its note's onset, found back through the `HOLD`s; where a
    masked token lies between, the step's pitch is unknown and nothing is said to sound."""
    T = tokens.shape[-1]
    steps = torch.arange(T, device=tokens.device).expand_as(tokens)
    last = torch.where(tokens != HOLD, steps, -1).cummax(dim=-1).values  # last non-HOLD step
    source = torch.gather(tokens, -1, last.clamp(min=0))
    sounding = (last >= 0) & (source >= N_SPECIAL)
    pitch = source - N_SPECIAL + pitch_low
    pc = F.one_hot(torch.where(sounding, pitch % 12, 0), 12) * sounding[..., None]
    height = torch.where(sounding, (pitch - 60) / 12.0, 0.0)
    return torch.cat([pc.float(), height[..., None].float(), sounding[..., None].float(),
                      (tokens >= N_SPECIAL)[..., None].float(), (tokens < 0)[..., None].float()],
                     dim=-1)
# module name suffix of each kind's input and output layers (mono keeps the plain names, so the
# all-mono arrangers trained before track kinds load as they are)
_SUFFIX = {"mono": "", "poly": "_poly", "drums": "_drums"}


class Arranger(nn.Module):
    """Denoiser `forward(x_t [B, K, T, C], t [B], cond) -> {kind: logits}`: for the slots of
    each kind, in role order, mono `[B, Km, T, vocab]`, poly `[B, Kp, T, P, 2]`, drums
    `[B, Kd, T, D]` (only the kinds the model has).

    `cond` holds `style` [B] long (n_styles = none), `plan` [B, N, n_plan] float (N = T //
    steps_per_token; the last feature marks padding tokens), `present` [B, K] bool (which
    tracks play), and for known parts `context` [B, K, T, C] (x0 values) with `mask` [B, K, T,
    C] (1 = known, the same over C); both default to nothing known. K may be less than the
    number of roles (the first K slots). With `cfg.register`, `register` [B] long: the
    semitones (-12..12) the notes were moved to the network's C (default: unknown).
    """

    def __init__(self, cfg: ArrangerConfig):
        super().__init__()
        self.cfg = cfg
        d, E, S = cfg.d_model, cfg.emb_dim, cfg.steps_per_token
        kinds = cfg.slot_kinds
        if len(kinds) != cfg.n_roles or any(k not in _KINDS for k in kinds):
            raise ValueError(f"kinds must give one of {', '.join(_KINDS)} per role "
                             f"({cfg.n_roles}), got {kinds}")
        self.kinds = [k for k in _KINDS if k in kinds]
        if cfg.diffusion not in DIFFUSIONS:
            raise ValueError(f"diffusion must be one of {', '.join(DIFFUSIONS)}, "
                             f"got {cfg.diffusion!r}")
        if cfg.diffusion == "masked":
            if self.kinds != ["mono"]:
                raise ValueError("masked diffusion needs an arranger of mono tracks only, "
                                 f"got kinds {sorted(set(kinds))}")
            self.mask_vector = nn.Parameter(torch.randn(E))
        elif cfg.pitch_classes:
            raise ValueError("pitch_classes needs a masked arranger (a Gaussian one's noisy "
                             "inputs have no pitch to read)")
        if cfg.pitch_classes:
            n_pitch = cfg.vocab - N_SPECIAL
            self.register_buffer("token_pc", (cfg.pitch_low + torch.arange(n_pitch)) % 12,
                                 persistent=False)
            self.register_buffer("chord_tones", torch.from_numpy(CHORD_TONES).float(),
                                 persistent=False)  # [Q, 12 roots, 12 pitch classes]
            self.plan_pc = nn.Linear(24, d)  # the chord's tones and its bass, as pitch classes
            self.out_pc = nn.Linear(d, S * 12)
        if cfg.token_embedding not in TOKEN_EMBEDDINGS:
            raise ValueError(f"token_embedding must be one of {', '.join(TOKEN_EMBEDDINGS)}, "
                             f"got {cfg.token_embedding!r}")
        if "mono" in kinds and cfg.token_embedding == "pitch":
            self.register_buffer("fixed_embedding", pitch_embedding(cfg.vocab, E),
                                 persistent=False)
        elif "mono" in kinds:
            self.embedding = nn.Embedding(cfg.vocab, E)
            nn.init.normal_(self.embedding.weight)
        out_size = {"mono": cfg.vocab, "poly": 2 * cfg.poly_pitches, "drums": cfg.n_drums}
        base = {"poly": cfg.poly_base_rate, "drums": cfg.drum_base_rate}
        for kind in self.kinds:
            c = cfg.kind_channels(kind)
            setattr(self, "inp" + _SUFFIX[kind], nn.Linear(2 * S * c + S, d))
            head = nn.Linear(d, S * out_size[kind])
            if kind in base:  # start at the base rate of notes: the empty roll is no surprise
                nn.init.constant_(head.bias, math.log(base[kind] / (1 - base[kind])))
            setattr(self, "out" + _SUFFIX[kind], head)
        self.role = nn.Embedding(cfg.n_roles, d)
        self.present = nn.Embedding(2, d)
        self.plan_in = nn.Sequential(nn.Linear(cfg.n_plan, d), nn.SiLU(), nn.Linear(d, d))
        self.plan_add = nn.Linear(d, d)
        self.time_emb = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.style = nn.Embedding(cfg.n_styles + 1, d)
        if cfg.register:  # shifts -12..12, then unknown; zero at first, so that a model
            # trained without it starts from where it was
            self.register_emb = nn.Embedding(2 * MAX_REGISTER_SHIFT + 2, d)
            nn.init.zeros_(self.register_emb.weight)
        n_rel = 2 * cfg.max_distance + 1
        self.time_bias = nn.Embedding(n_rel, cfg.n_heads)
        self.plan_bias = nn.Embedding(n_rel, cfg.n_heads)
        nn.init.zeros_(self.time_bias.weight)
        nn.init.zeros_(self.plan_bias.weight)
        if not isinstance(cfg.track_span, int) or cfg.track_span < 0:
            raise ValueError(f"track_span must be an integer >= 0, got {cfg.track_span!r}")
        if cfg.track_span:  # a bias per time offset, for a key of the query's track or another
            self.span_bias = nn.Embedding(2 * (2 * cfg.track_span + 1), cfg.n_heads)
            nn.init.zeros_(self.span_bias.weight)
        self.blocks = nn.ModuleList([_Block(cfg) for _ in range(cfg.n_layers)])
        self.out_norm = nn.LayerNorm(d)

    def slots(self, kind: str, K: int | None = None) -> list[int]:
        """The slots of `kind` among the first K (default all)."""
        K = self.cfg.n_roles if K is None else K
        return [k for k, kd in enumerate(self.cfg.slot_kinds[:K]) if kd == kind]

    def _by_kind(self, parts: dict[str, torch.Tensor], K: int) -> torch.Tensor:
        """Per-kind tensors `[B, K_kind, ...]` put back in slot order `[B, K, ...]`."""
        order = [k for kind in self.kinds for k in self.slots(kind, K)]
        joined = torch.cat([parts[kind] for kind in self.kinds if self.slots(kind, K)], dim=1)
        if order == list(range(K)):
            return joined
        return joined[:, torch.argsort(torch.tensor(order))]

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, self.cfg.channels - x.shape[-1]))

    def encode_x0(self, tokens: torch.Tensor | None = None, roll: torch.Tensor | None = None,
                  hits: torch.Tensor | None = None) -> torch.Tensor:
        """x0 `[B, K, T, C]` of clean parts: `tokens` `[B, Km, T]` long, `roll` `[B, Kp, T, P,
        2]` and `hits` `[B, Kd, T, D]` bool (each may be None for a kind with no slots)."""
        parts = {}
        if tokens is not None and tokens.shape[1]:
            parts["mono"] = self._pad(self.embed(tokens))
        if roll is not None and roll.shape[1]:
            parts["poly"] = self._pad(rearrange(roll.float() * 2 - 1, "b k t p c -> b k t (p c)"))
        if hits is not None and hits.shape[1]:
            parts["drums"] = self._pad(hits.float() * 2 - 1)
        K = sum(p.shape[1] for p in parts.values())
        return self._by_kind(parts, K)

    def x0_from_output(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """The x0 estimate `[B, K, T, C]` from the outputs of `forward`."""
        parts = {}
        if "mono" in out:
            parts["mono"] = self._pad(self.x0_from_logits(out["mono"]))
        if "poly" in out:
            parts["poly"] = self._pad(rearrange(torch.tanh(out["poly"] / 2),
                                                "b k t p c -> b k t (p c)"))
        if "drums" in out:
            parts["drums"] = self._pad(torch.tanh(out["drums"] / 2))
        K = sum(p.shape[1] for p in parts.values())
        return self._by_kind(parts, K)

    def decode_x0(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        """Clean parts of x0 values `[B, K, T, C]`: `tokens` `[B, Km, T]` (nearest embedding),
        `roll` `[B, Kp, T, P, 2]` and `hits` `[B, Kd, T, D]` (positive values are on); a kind
        without slots has a dimension of 0 slots."""
        B, K, T, _ = x0.shape
        mono, poly, drums = (self.slots(k, K) for k in _KINDS)
        P, D = self.cfg.poly_pitches, self.cfg.n_drums
        tokens = torch.zeros(B, 0, T, dtype=torch.long)
        roll = torch.zeros(B, 0, T, P, 2, dtype=torch.bool)
        hits = torch.zeros(B, 0, T, D, dtype=torch.bool)
        if mono:
            tokens = self.nearest_tokens(x0[:, mono, :, : self.cfg.emb_dim])
        if poly:
            roll = rearrange(x0[:, poly, :, : 2 * P] > 0, "b k t (p c) -> b k t p c", c=2)
        if drums:
            hits = x0[:, drums, :, :D] > 0
        return {"tokens": tokens, "roll": roll, "hits": hits}

    def snap(self, x0: torch.Tensor) -> torch.Tensor:
        """x0 values `[B, K, T, C]` moved to the nearest clean parts."""
        return self.encode_x0(**self.decode_x0(x0))

    def token_embeddings(self) -> torch.Tensor:
        """The diffused embedding of every token value `[vocab, E]`, rows of norm sqrt(E)."""
        if self.cfg.token_embedding == "pitch":
            return self.fixed_embedding
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

    def masked_input(self, tokens: torch.Tensor) -> torch.Tensor:
        """x_t `[B, K, T, C]` of a masked diffusion's tokens `[B, K, T]` (`MASK` = -1 where
        masked): each token's embedding, the learned mask vector where masked."""
        x = self.embed(tokens.clamp(min=0))
        x = torch.where((tokens < 0)[..., None], self.mask_vector.to(x.dtype), x)
        if self.cfg.pitch_classes:
            x = torch.cat([x, pitch_features(tokens, self.cfg.pitch_low).to(x.dtype)], dim=-1)
        return self._pad(x)

    def masked_logits(self, tokens: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        """Logits `[B, K, T, vocab]` of a masked diffusion's tokens `[B, K, T]`; where a token
        is not masked, logits that are certain of it (so that an argmax reads it back)."""
        logits = self(self.masked_input(tokens), t, cond)["mono"]
        given = F.one_hot(tokens.clamp(min=0), logits.shape[-1]).to(logits.dtype)
        return torch.where((tokens >= 0)[..., None], (given - 1) * 1e4, logits)

    def _plan_pitch_classes(self, plan: torch.Tensor) -> torch.Tensor:
        """`[B, N, 24]`: the pitch classes of the plan chord's tones, then its bass's (both
        relative to the tonic, as the tokens are), from the plan features `[B, N, n_plan]`."""
        root = plan[..., feature_slice("root")][..., :12]
        quality = plan[..., feature_slice("quality")]
        tones = torch.einsum("bnq,bnr,qrp->bnp", quality, root, self.chord_tones.to(plan.dtype))
        return torch.cat([tones, plan[..., feature_slice("bass")][..., :12]], dim=-1)

    def _span_bias(self, keys: torch.Tensor, pad: torch.Tensor, K: int, N: int,
                   dtype) -> torch.Tensor:
        """The bias `[B N, H, K, K W]` of the track attention with `track_span` (W = 2 span +
        1 time tokens): a learned value per time offset and same-or-other track, and the keys
        masked that lie past the window's ends or on padding (never the query's own time) or
        belong to a track that doesn't play (`keys` `[B, K]`; `pad` `[B, N]`)."""
        span, device = self.cfg.track_span, keys.device
        W = 2 * span + 1
        at = torch.arange(N, device=device)[:, None] + torch.arange(W, device=device) - span
        ok = (at >= 0) & (at < N) & ~pad[:, at.clamp(0, N - 1)]  # [B, N, W]
        ok[:, :, span] = True
        ok = ok[:, :, None, :] & keys[:, None, :, None]  # [B, N, K, W]
        same = torch.eye(K, dtype=torch.long, device=device)[:, :, None]  # [K query, K key, 1]
        index = 2 * torch.arange(W, device=device) + same  # [K, K, W]
        rel = rearrange(self.span_bias(index), "q k w h -> h q (k w)").to(dtype)
        neg = torch.finfo(dtype).min
        mask = torch.zeros(ok.shape, dtype=dtype, device=device).masked_fill(~ok, neg)
        return rel[None] + rearrange(mask, "b n k w -> (b n) 1 1 (k w)")

    def _relative_bias(self, table: nn.Embedding, n: int, device) -> torch.Tensor:
        index = torch.arange(n, device=device)
        rel = (index[None, :] - index[:, None]).clamp(-self.cfg.max_distance,
                                                        self.cfg.max_distance)
        return rearrange(table(rel + self.cfg.max_distance), "q k h -> h q k")  # [H, N, N]

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        B, K, T, C = x_t.shape
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

        known = context * mask
        inputs = {}
        for kind in self.kinds:
            idx = self.slots(kind, K)
            if not idx:
                continue
            c = self.cfg.kind_channels(kind)
            x = torch.cat([
                rearrange(x_t[:, idx, :, :c], "b k (n s) c -> b k n (s c)", s=S),
                rearrange(known[:, idx, :, :c], "b k (n s) c -> b k n (s c)", s=S),
                rearrange(mask[:, idx, :, 0], "b k (n s) -> b k n s", s=S),
            ], dim=-1)
            inputs[kind] = getattr(self, "inp" + _SUFFIX[kind])(x)
        p = self.plan_in(plan)  # [B, N, D]
        if self.cfg.pitch_classes:
            p = p + self.plan_pc(self._plan_pitch_classes(plan))
        h = self._by_kind(inputs, K) + self.role.weight[None, :K, None]
        h = h + self.present(present.long())[:, :, None]
        h = h + self.plan_add(p)[:, None]
        c = self.time_emb(timestep_embedding(t, self.cfg.d_model)) + self.style(cond["style"])
        if self.cfg.register:
            c = c + self.register_emb(register_index(cond.get("register"), B, c.device))

        neg = torch.finfo(x_t.dtype).min
        key_pad = torch.zeros(B, 1, 1, N, dtype=x_t.dtype, device=x_t.device).masked_fill(
            pad[:, None, None, :], neg)
        time_bias = self._relative_bias(self.time_bias, N, x_t.device)[None] + key_pad
        time_bias = time_bias.repeat_interleave(K, 0)  # [(B K), H, N, N]
        # a track that doesn't play is no key; with no track playing, every track is one
        keys = present | ~present.any(dim=1, keepdim=True)
        if self.cfg.track_span:
            track_bias = self._span_bias(keys, pad, K, N, x_t.dtype)
        else:
            track_bias = torch.zeros(B, 1, 1, K, dtype=x_t.dtype, device=x_t.device).masked_fill(
                ~keys[:, None, None, :], neg).repeat_interleave(N, 0)  # [(B N), 1, 1, K]
        plan_bias = self._relative_bias(self.plan_bias, N, x_t.device).repeat(1, K, 1)
        plan_bias = plan_bias[None] + key_pad  # [B, H, K N, N]
        for block in self.blocks:
            h = block(h, c, time_bias, track_bias, plan_bias, p)
        h = self.out_norm(h)
        out = {}
        for kind in self.kinds:
            idx = self.slots(kind, K)
            if not idx:
                continue
            y = getattr(self, "out" + _SUFFIX[kind])(h[:, idx])  # [B, K_kind, N, S V]
            y = rearrange(y, "b k n (s v) -> b k (n s) v", s=S)
            if kind == "mono" and self.cfg.pitch_classes:  # one logit per class, to each pitch
                pc = rearrange(self.out_pc(h[:, idx]), "b k n (s c) -> b k (n s) c", s=S)
                y = torch.cat([y[..., :N_SPECIAL],
                               y[..., N_SPECIAL:] + pc[..., self.token_pc]], dim=-1)
            out[kind] = rearrange(y, "b k t (p c) -> b k t p c", c=2) if kind == "poly" else y
        return out
