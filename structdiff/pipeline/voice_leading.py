"""The voice-leading lean of a masked arranger: parallel fifths and octaves made unlikely.

Two voices that move in the same direction from one perfect interval to the same one again (a
fifth to a fifth, an octave or unison to an octave or unison, compound or not) lose their
independence; part-writing has avoided it since the fifteenth century, and Bach's chorales
hold one such motion in a thousand. A masked arranger draws each note given the others
(`structdiff.diffusion.masked`), so the rule can act where the note is drawn: `parallel_bias`
reads the voices as they stand (written or still masked), and lowers the logit of every pitch
that would move in parallel with another voice, entering the note (from the voice's previous
note, while the other voice moves at the same step) or leaving it (to the voice's next note,
already written). Nothing is edited after sampling: a Gibbs round can still choose such a
pitch when the network is sure enough of it, and the lean's `strength` says how sure.

Tokens are an arranger's (`structdiff.data.tokens`): `REST`, `HOLD`, then one per pitch,
`[B, K, W]` with `structdiff.diffusion.masked.MASK` where not yet drawn.
"""

from __future__ import annotations

import torch

from structdiff.data.tokens import HOLD, N_SPECIAL, REST
from structdiff.diffusion.masked import MASK

SILENT, UNKNOWN = -1, -2  # values of `sounding_lines` where no pitch sounds, or none is known
PERFECT = (0, 7)  # interval classes (semitones mod 12) of the octave / unison and the fifth


def sounding_lines(tokens: torch.Tensor) -> torch.Tensor:
    """The pitch index (token - N_SPECIAL) each voice sounds at each step `[B, K, W]`:
    `SILENT` after a `REST`, `UNKNOWN` after a masked token or where the window starts in
    `HOLD`s."""
    index = torch.arange(tokens.shape[-1], device=tokens.device).expand_as(tokens)
    struck_at = torch.where(tokens != HOLD, index, torch.full_like(index, -1)).cummax(-1).values
    src = tokens.gather(-1, struck_at.clamp(min=0))
    line = torch.where(src == REST, torch.full_like(src, SILENT), src - N_SPECIAL)
    unknown = (struck_at < 0) | (src == MASK)
    return torch.where(unknown, torch.full_like(src, UNKNOWN), line)


def parallel_bias(tokens: torch.Tensor, vocab: int, strength: float) -> torch.Tensor:
    """Logit offsets `[B, K, W, vocab]`: -`strength` for each pitch token that, struck at that
    voice and step, would move in parallel fifths or octaves (unisons, compound intervals)
    with another voice, given the tokens `[B, K, W]` as they stand (module docstring); 0
    elsewhere and for REST and HOLD. Voices or steps not yet known add nothing."""
    B, K, W = tokens.shape
    n_p = vocab - N_SPECIAL
    bias = torch.zeros(B, K, W, vocab, device=tokens.device)
    if strength == 0.0 or K < 2 or W < 2:
        return bias
    line = sounding_lines(tokens)
    unknown = torch.full_like(line[..., :1], UNKNOWN)
    before = torch.cat([unknown, line[..., :-1]], -1)  # each voice's pitch one step earlier
    P = torch.arange(n_p, device=tokens.device)
    other = ~torch.eye(K, dtype=torch.bool, device=tokens.device)[None, :, :, None]  # [1,K,K,1]
    # intervals are measured up from the lower of the two pitches, whichever voice has it
    cand = P.view(1, 1, 1, 1, n_p)

    # entering: this voice k moves p0 -> p at step s while voice j moves q0 -> q1
    p0 = before[:, :, None, :]  # [B, K, 1, W]
    q0, q1 = before[:, None, :, :], line[:, None, :, :]  # [B, 1, K, W]
    ok = (p0 >= 0) & (q0 >= 0) & (q1 >= 0) & (q1 != q0) & other  # [B, K, K, W]
    c = (p0 - q0).abs() % 12
    ok &= (c == PERFECT[0]) | (c == PERFECT[1])
    same_class = (cand - q1[..., None]).abs() % 12 == c[..., None]
    same_way = torch.sign(cand - p0[..., None]) == torch.sign(q1 - q0)[..., None]
    hit = (ok[..., None] & same_class & same_way).any(2)  # [B, K, W, P]

    # leaving: voice k holds p from s to its next onset e, where it moves to p1 while voice j
    # moves q0 -> q1 (its pitches at e - 1 and e)
    index = torch.arange(W, device=tokens.device).expand_as(tokens)
    onset_at = torch.where(tokens != HOLD, index, torch.full_like(index, W))
    nxt = onset_at.flip(-1).cummin(-1).values.flip(-1)  # first non-HOLD at or after each step
    e = torch.cat([nxt[..., 1:], torch.full_like(nxt[..., :1], W)], -1)  # after each step
    has_e = e < W
    e_c = e.clamp(max=W - 1)
    p1 = tokens.gather(-1, e_c) - N_SPECIAL  # [B, K, W]: voice k's next pitch (< 0: none)
    lines_j = line[:, None, :, :].expand(B, K, K, W)
    at = e_c[:, :, None, :].expand(B, K, K, W)
    q1 = lines_j.gather(-1, at)
    q0 = lines_j.gather(-1, (at - 1).clamp(min=0))
    p1_ = p1[:, :, None, :]
    ok = has_e[:, :, None, :] & (p1_ >= 0) & (q0 >= 0) & (q1 >= 0) & (q1 != q0) & other
    c = (p1_ - q1).abs() % 12
    ok &= (c == PERFECT[0]) | (c == PERFECT[1])
    same_class = (cand - q0[..., None]).abs() % 12 == c[..., None]
    same_way = torch.sign(p1_[..., None] - cand) == torch.sign(q1 - q0)[..., None]
    hit |= (ok[..., None] & same_class & same_way).any(2)

    bias[..., N_SPECIAL:] = -float(strength) * hit.float()
    return bias
