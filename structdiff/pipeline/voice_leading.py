"""The voice-leading lean of a masked arranger: parallel and direct fifths and octaves made
unlikely.

Two voices that move in the same direction from one perfect interval to the same one again (a
fifth to a fifth, an octave or unison to an octave or unison, compound or not) lose their
independence; part-writing has avoided it since the fifteenth century, and Bach's chorales
hold one such motion in a thousand. The outer voices, heard most, also avoid reaching a fifth
or an octave by similar motion with the top voice leaping (direct, or hidden, fifths and
octaves). A masked arranger draws each note given the others (`structdiff.diffusion.masked`),
so the rules can act where a note is drawn: `voice_leading_bias` reads the voices as they
stand (written or still masked) and lowers the logit of every pitch that would break one,
entering the note (from the voice's previous note, while the other voice moves at the same
step) or leaving it (to the voice's next note, already written). Intervals are measured from
the lower of the two pitches, whichever voice has it. Nothing is edited after sampling: a
draw can still choose such a pitch when the network is sure enough of it (the lean's
`strength`, in nats), and tokens masked in the same round do not see each other.

`dissonance_bias` is a second lean of the same kind: a note off the plan's chord reached or
left by anything but a step; `resolution_bias` its other side, the note after or before such
a dissonance (the chorale arranger ships both at 1.5 nats since session 19).

Tokens are an arranger's (`structdiff.data.tokens`): `REST`, `HOLD`, then one per pitch,
`[B, K, W]` with `structdiff.diffusion.masked.MASK` where not yet drawn.
"""

from __future__ import annotations

import torch

from structdiff.data.tokens import HOLD, N_SPECIAL, REST
from structdiff.diffusion.masked import MASK

SILENT, UNKNOWN = -1, -2  # values of `sounding_lines` where no pitch sounds, or none is known
PERFECT = (0, 7)  # interval classes (semitones mod 12) of the octave / unison and the fifth


def _struck_at(tokens: torch.Tensor) -> torch.Tensor:
    """The step `[B, K, W]` of the last token that is not `HOLD` at or before each step (-1
    where the window starts in `HOLD`s)."""
    index = torch.arange(tokens.shape[-1], device=tokens.device).expand_as(tokens)
    return torch.where(tokens != HOLD, index, torch.full_like(index, -1)).cummax(-1).values


def _unstepped(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Where pitches a and b are not a step apart (one or two semitones): repeats and leaps."""
    return ((a - b).abs() < 1) | ((a - b).abs() > 2)


def sounding_lines(tokens: torch.Tensor) -> torch.Tensor:
    """The pitch index (token - N_SPECIAL) each voice sounds at each step `[B, K, W]`:
    `SILENT` after a `REST`, `UNKNOWN` after a masked token or where the window starts in
    `HOLD`s."""
    struck_at = _struck_at(tokens)
    src = tokens.gather(-1, struck_at.clamp(min=0))
    line = torch.where(src == REST, torch.full_like(src, SILENT), src - N_SPECIAL)
    unknown = (struck_at < 0) | (src == MASK)
    return torch.where(unknown, torch.full_like(src, UNKNOWN), line)


def _one_step_earlier(line: torch.Tensor) -> torch.Tensor:
    """`sounding_lines` `[B, K, W]` moved one step later: what each voice sounded one step
    before each step (`UNKNOWN` at the first)."""
    return torch.cat([torch.full_like(line[..., :1], UNKNOWN), line[..., :-1]], -1)


def next_onsets(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each voice and step `[B, K, W]`: the step of the voice's next token after it that
    is not `HOLD` (W where none), and that token's pitch index (< 0: a rest, a masked token,
    or none)."""
    W = tokens.shape[-1]
    index = torch.arange(W, device=tokens.device).expand_as(tokens)
    onset_at = torch.where(tokens != HOLD, index, torch.full_like(index, W))
    nxt = onset_at.flip(-1).cummin(-1).values.flip(-1)  # first non-HOLD at or after each step
    e = torch.cat([nxt[..., 1:], torch.full_like(nxt[..., :1], W)], -1)  # after each step
    pitch = tokens.gather(-1, e.clamp(max=W - 1)) - N_SPECIAL
    return e, torch.where((e < W) & (pitch >= 0), pitch, torch.full_like(pitch, -1))


def dissonance_bias(tokens: torch.Tensor, off_chord: torch.Tensor, strength: float
                    ) -> torch.Tensor:
    """Logit offsets `[B, K, W, vocab]`: -`strength` for each pitch token off the chord at its
    step (`off_chord` `[..., W, vocab]` bool, broadcast to the tokens') that would be
    approached or left by anything but a step (one or two semitones) from the voice's
    previous or to its next note, where those are known: the treatment of an unaccented
    dissonance (passing and neighbour tones), which the chorales keep four times in five."""
    B, K, W = tokens.shape
    vocab = off_chord.shape[-1]
    bias = torch.zeros(B, K, W, vocab, device=tokens.device)
    if strength == 0.0 or W < 2:
        return bias
    p0 = _one_step_earlier(sounding_lines(tokens))[..., None]
    p1 = next_onsets(tokens)[1][..., None]
    cand = torch.arange(vocab - N_SPECIAL, device=tokens.device)
    bad = ((p0 >= 0) & _unstepped(cand, p0)) | ((p1 >= 0) & _unstepped(p1, cand))
    off = off_chord[..., N_SPECIAL:].expand(B, K, W, vocab - N_SPECIAL)
    bias[..., N_SPECIAL:] = -float(strength) * (off & bad).float()
    return bias


def resolution_bias(tokens: torch.Tensor, off_chord: torch.Tensor, strength: float
                    ) -> torch.Tensor:
    """Logit offsets `[B, K, W, vocab]`: -`strength` for each pitch token that would leave the
    voice's previous note, when that note is off the chord at its onset, or approach its next
    note, when that one is off the chord at its onset, by anything but a step: the other side
    of `dissonance_bias`'s factor, which leans only on the dissonant note's own draw. With both,
    each pair of neighbouring notes of which one is an unstepped dissonance costs `strength`
    whichever of the two is drawn, so that repeated redraws (Gibbs rounds) tilt the lines by
    exp(-strength) per such pair; with `dissonance_bias` alone the note after a dissonance may
    leap away freely (issue 11, session 19: the songs left 11% of their off-chord notes by
    leap, Bach 2%; 6.5% with both). `off_chord` `[..., W, vocab]` bool as there."""
    B, K, W = tokens.shape
    vocab = off_chord.shape[-1]
    bias = torch.zeros(B, K, W, vocab, device=tokens.device)
    if strength == 0.0 or W < 2:
        return bias
    off = off_chord.expand(B, K, W, vocab).reshape(B, K, W * vocab)
    prev_onset = _one_step_earlier(_struck_at(tokens))  # the previous note's onset (< 0: none)
    p0 = _one_step_earlier(sounding_lines(tokens))  # [B, K, W], < 0 unless a known pitch
    e, p1 = next_onsets(tokens)

    def off_at(step, pitch):  # whether `pitch` is off the chord at `step` (False if unknown)
        known = (step >= 0) & (step < W) & (pitch >= 0)
        at = step.clamp(0, W - 1) * vocab + pitch.clamp(min=0) + N_SPECIAL
        return known & off.gather(2, at)

    cand = torch.arange(vocab - N_SPECIAL, device=tokens.device)
    left = off_at(prev_onset, p0)[..., None] & _unstepped(cand, p0[..., None])
    reached = off_at(e, p1)[..., None] & _unstepped(p1[..., None], cand)
    bias[..., N_SPECIAL:] = -float(strength) * (left | reached).float()
    return bias


def _motion_hits(k_from, k_to, q0, q1, ok, outer, top_k, top_j
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where voice k moving `k_from` -> `k_to` while voice j moves `q0` -> `q1` makes parallel
    perfect intervals, and where (`outer` pairs) it reaches a fifth or octave by similar motion
    with the top voice leaping (direct; parallel ones among them). All broadcast to `[M, K,
    P]` (masked position, other voice j, candidate pitch); `ok`: all four known."""
    moves = ok & (q1 != q0) & (torch.sign(k_to - k_from) == torch.sign(q1 - q0))
    before, after = (k_from - q0).abs() % 12, (k_to - q1).abs() % 12
    perfect = moves & ((after == PERFECT[0]) | (after == PERFECT[1]))
    leap = (top_k & ((k_to - k_from).abs() > 2)) | (top_j & ((q1 - q0).abs() > 2))
    return perfect & (before == after), perfect & outer & leap


def voice_leading_bias(tokens: torch.Tensor, vocab: int, strength: float,
                       outer: tuple[int, int] | None = None,
                       direct_strength: float | None = None) -> torch.Tensor:
    """Logit offsets `[B, K, W, vocab]`: -`strength` for each pitch token that, struck at a
    masked voice and step, would move in parallel fifths or octaves (unisons, compound
    intervals) with another voice, or, between the `outer` voices (top, bottom), into a fifth
    or octave by similar motion with the top voice leaping (direct fifths and octaves), given
    the tokens `[B, K, W]` as they stand (module docstring); 0 elsewhere, for REST and HOLD,
    and at positions already drawn (the sampler draws only masked ones). Voices or steps not
    yet known add nothing. `direct_strength`: the nats of a direct fifth or octave (default
    `strength`); Bach writes some (0.8% of outer-voice motions), parallels almost never."""
    B, K, W = tokens.shape
    direct_strength = strength if direct_strength is None else float(direct_strength)
    n_p = vocab - N_SPECIAL
    bias = torch.zeros(B, K, W, vocab, device=tokens.device)
    masked = tokens == MASK
    if strength == 0.0 or K < 2 or W < 2 or not masked.any():
        return bias
    device = tokens.device
    b, k, s = masked.nonzero(as_tuple=True)  # the M positions to lean on
    line = sounding_lines(tokens)
    before = _one_step_earlier(line)
    cand = torch.arange(n_p, device=device).view(1, 1, n_p)
    ks = torch.arange(K, device=device)
    other = (ks[None, :] != k[:, None])[..., None]  # [M, K, 1]: voice j is another voice
    pair = torch.zeros(K, K, dtype=torch.bool, device=device)
    top = torch.zeros(K, dtype=torch.bool, device=device)
    if outer is not None and outer[0] != outer[1]:
        pair[outer[0], outer[1]] = pair[outer[1], outer[0]] = True
        top[outer[0]] = True
    pair, top_k, top_j = pair[k][..., None], top[k].view(-1, 1, 1), top.view(1, K, 1)

    # entering: voice k moves p0 -> the candidate at step s while voice j moves q0 -> q1
    p0 = before[b, k, s].view(-1, 1, 1)
    q0, q1 = before[b, :, s][..., None], line[b, :, s][..., None]  # [M, K, 1]
    ok = (p0 >= 0) & (q0 >= 0) & (q1 >= 0) & other
    parallel, direct = _motion_hits(p0, cand, q0, q1, ok, pair, top_k, top_j)
    parallel, direct = parallel.any(1), direct.any(1)  # [M, P]

    # leaving: voice k holds the candidate from s to its next onset e, where it moves to p1
    # while voice j moves q0 -> q1 (its pitches at e - 1 and e)
    e, p1 = next_onsets(tokens)
    e = e[b, k, s].clamp(max=W - 1)
    p1 = p1[b, k, s].view(-1, 1, 1)
    q1, q0 = line[b, :, e][..., None], line[b, :, (e - 1).clamp(min=0)][..., None]
    ok = (p1 >= 0) & (q0 >= 0) & (q1 >= 0) & other
    par_leaving, dir_leaving = _motion_hits(cand, p1, q0, q1, ok, pair, top_k, top_j)
    parallel, direct = parallel | par_leaving.any(1), direct | dir_leaving.any(1)

    bias[b, k, s, N_SPECIAL:] = -(float(strength) * parallel.float()
                                  + direct_strength * (direct & ~parallel).float())
    return bias


def completeness_bias(tokens: torch.Tensor, vocab: int, strength: float) -> torch.Tensor:
    """Logit offsets `[B, K, W, vocab]`: -`strength` for each pitch token struck at a masked
    step that would leave the sonority there with fewer than three pitch classes while at least
    three voices sound: a bare fifth or octave, or a triad missing its third, where the other
    voices' pitches at that step are all known (none masked) and at least two of them sound.
    Four voices sound a complete chord nearly always in the chorales (thin sonorities 1.5%;
    issue 11, session 20: the arranger's 3-4%). Pitch classes are read from token indices (a
    shift common to all voices does not change which pitches share a class). 0 for REST and
    HOLD and where the others are not known."""
    B, K, W = tokens.shape
    bias = torch.zeros(B, K, W, vocab, device=tokens.device)
    if strength == 0.0 or K < 3:
        return bias
    line = sounding_lines(tokens)  # [B, K, W]
    sounding = line >= 0
    pcs = torch.nn.functional.one_hot(line.clamp(min=0) % 12, 12).bool() & sounding[..., None]
    total = pcs.long().sum(1, keepdim=True)  # [B, 1, W, 12]: voices on each class, all voices
    others = (total - pcs.long()) > 0  # [B, K, W, 12]: classes the other voices sound
    unknown = line == UNKNOWN
    n_others = sounding.sum(1, keepdim=True) - sounding.long()  # [B, K, W]
    unknown_others = unknown.sum(1, keepdim=True) - unknown.long()
    at = (tokens == MASK) & (n_others >= 2) & (unknown_others == 0)
    if not at.any():
        return bias
    n_classes = others.sum(-1)  # [B, K, W]
    cand = torch.arange(vocab - N_SPECIAL, device=tokens.device) % 12  # [P]
    new_class = ~others[..., cand]  # [B, K, W, P]: the candidate adds a class
    thin = (n_classes[..., None] + new_class.long()) < 3
    bias[..., N_SPECIAL:] = -float(strength) * (thin & at[..., None]).float()
    return bias


INTERVALS = 12  # an interval table's reach: -12..12 semitones, then one entry for wider leaps


def interval_bias(tokens: torch.Tensor, vocab: int, table: torch.Tensor) -> torch.Tensor:
    """Logit offsets `[B, K, W, vocab]` from each voice's melodic intervals: a pitch token
    struck at a masked step of voice k gets `table[k, i + 12]` nats for the interval i
    (semitones, -12..12; `table[k, 25]` for any wider) from the pitch the voice sounds just
    before it (entering), plus the entry of the interval to the voice's next written note
    (leaving). Repeated notes are interval 0. Where a Gibbs sampler redraws every note many
    times, this tilts the joint of the voices' lines by the table's weight per interval
    (a product with an interval model), the network still choosing every note. 0 for REST
    and HOLD, at positions already drawn, and where the neighbouring note is not known
    (masked, a rest, before the window)."""
    B, K, W = tokens.shape
    bias = torch.zeros(B, K, W, vocab, device=tokens.device)
    masked = (tokens == MASK) & table.ne(0).any(-1).view(1, K, 1)
    if W < 2 or not masked.any():
        return bias
    b, k, s = masked.nonzero(as_tuple=True)
    p0 = _one_step_earlier(sounding_lines(tokens))[b, k, s][:, None]
    p1 = next_onsets(tokens)[1][b, k, s][:, None]
    cand = torch.arange(vocab - N_SPECIAL, device=tokens.device)[None]
    rows = table.to(bias.dtype)[k]  # [M, 2 * INTERVALS + 2]

    def weight(a, b_):  # the table's entry for the interval a -> b, [M, P]
        index = (b_ - a).clamp(-INTERVALS - 1, INTERVALS + 1) + INTERVALS
        index = torch.where(index > 2 * INTERVALS, 2 * INTERVALS + 1, index)
        index = torch.where(index < 0, 2 * INTERVALS + 1, index)
        return rows.gather(1, index.expand(len(rows), -1))

    lean = torch.where(p0 >= 0, weight(p0, cand), 0.0)
    lean = lean + torch.where(p1 >= 0, weight(cand, p1), 0.0)
    bias[b, k, s, N_SPECIAL:] = lean
    return bias


def interval_table(lean: dict, roles: list[str]) -> torch.Tensor:
    """A bundle's `interval_lean` (role -> 2 * INTERVALS + 2 nats, from -12 semitones up to
    12, then wider) as `interval_bias`'s table `[K, 2 * INTERVALS + 2]`, 0 for roles not in
    it. Raises ValueError for a row of the wrong length."""
    table = torch.zeros(len(roles), 2 * INTERVALS + 2)
    for role, row in (lean or {}).items():
        if len(row) != 2 * INTERVALS + 2:
            raise ValueError(f"interval_lean[{role!r}] must have {2 * INTERVALS + 2} entries "
                             f"(-{INTERVALS}..{INTERVALS} semitones, then wider), got {len(row)}")
        if role in roles:
            table[roles.index(role)] = torch.tensor([float(x) for x in row])
    return table


def within_pitches(logits: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """`logits + bias` with the pitch tokens' total probability kept as it was: a lean that
    changes which pitch a new note takes, not whether a note starts (REST and HOLD keep their
    logits, the pitches are shifted together to their old log-sum-exp)."""
    out = logits + bias
    head, tail = logits[..., N_SPECIAL:], out[..., N_SPECIAL:]
    shift = head.logsumexp(-1, keepdim=True) - tail.logsumexp(-1, keepdim=True)
    return torch.cat([out[..., :N_SPECIAL], tail + shift], -1)


def compass_bias(vocab: int, pitch_low: int, shift: int, compass: dict, roles: list[str],
                 strength: float = 1.0) -> torch.Tensor:
    """Logit offsets `[K, vocab]`: -`strength` nats per semitone by which a pitch token lies
    outside its role's compass (`compass`: role -> [lowest, highest] MIDI pitch the voice
    sings, read from the corpus), for an arranger that writes its tokens moved by `shift`
    semitones (a token's pitch is `pitch_low + index - shift`). A voice keeps the range its
    singers have even when a lean on its intervals (octave leaps one after another) would take
    it down or up and out. 0 for REST and HOLD and for roles without a compass. Raises
    ValueError for a compass that is not [low, high] with low <= high."""
    bias = torch.zeros(len(roles), vocab)
    pitch = pitch_low + torch.arange(vocab - N_SPECIAL) - shift
    for role, span in (compass or {}).items():
        if len(span) != 2 or span[0] > span[1]:
            raise ValueError(f"compass[{role!r}] must be [lowest, highest], got {span!r}")
        if role in roles:
            low, high = float(span[0]), float(span[1])
            outside = (low - pitch).clamp(min=0) + (pitch - high).clamp(min=0)
            bias[roles.index(role), N_SPECIAL:] = -float(strength) * outside
    return bias
