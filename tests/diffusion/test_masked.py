"""Masked (absorbing-state) diffusion: the forward process, and the sampler on a known
distribution with an exact network."""

import functools
import itertools

import pytest
import torch

from structdiff.diffusion.masked import (
    MASK,
    mask_rate,
    mask_tokens,
    nucleus,
    sample_masked,
    shaped,
    timestep_of_rate,
)

# a joint distribution over 3 binary tokens, far from independent
JOINT = {seq: p for seq, p in zip(itertools.product((0, 1), repeat=3),
                                  (0.30, 0.02, 0.03, 0.15, 0.05, 0.10, 0.05, 0.30))}


@functools.cache
def _conditional(seen: tuple) -> torch.Tensor:
    """Log-probabilities `[3, 2]` of each position given the unmasked others of `seen`."""
    out = torch.zeros(len(seen), 2)
    for i in range(len(seen)):
        p = torch.zeros(2)
        for seq, q in JOINT.items():
            if all(s == MASK or s == v for j, (s, v) in enumerate(zip(seen, seq)) if j != i):
                p[seq[i]] += q
        out[i] = torch.log(p.clamp(min=1e-12))
    return out


def exact_logits(tokens, t, cond):
    """The exact conditional of every position given the unmasked ones, as logits."""
    return torch.stack([_conditional(tuple(row)) for row in tokens.tolist()])


def _frequencies(tokens):
    counts = {seq: 0 for seq in JOINT}
    for row in tokens.tolist():
        counts[tuple(row)] += 1
    return {seq: c / len(tokens) for seq, c in counts.items()}


def _tv(freq):
    return 0.5 * sum(abs(freq[s] - JOINT[s]) for s in JOINT)


def test_random_order_with_one_token_per_round_draws_the_joint_distribution():
    g = torch.Generator().manual_seed(0)
    tokens = sample_masked(exact_logits, (3000, 3), 100, steps=3, order="random", generator=g)
    assert _tv(_frequencies(tokens)) < 0.03


def test_all_tokens_in_one_round_lose_the_dependence():
    # the control: one round draws each token from its marginal, independently
    g = torch.Generator().manual_seed(0)
    tokens = sample_masked(exact_logits, (3000, 3), 100, steps=1, order="random", generator=g)
    assert _tv(_frequencies(tokens)) > 0.15


def test_known_tokens_are_kept_and_condition_the_rest():
    known = torch.tensor([[1, 0, 0]]).repeat(2000, 1)
    mask = torch.tensor([[True, False, False]]).repeat(2000, 1)
    g = torch.Generator().manual_seed(1)
    tokens = sample_masked(exact_logits, (2000, 3), 100, steps=2, order="random",
                           generator=g, known=known, mask=mask)
    assert (tokens[:, 0] == 1).all()
    freq = _frequencies(tokens)
    z = sum(p for s, p in JOINT.items() if s[0] == 1)
    for s in JOINT:
        if s[0] == 1:
            assert abs(freq[s] - JOINT[s] / z) < 0.04


def test_confidence_order_keeps_known_tokens_and_leaves_nothing_masked():
    known = torch.tensor([[MASK, 1, MASK]])
    mask = torch.tensor([[False, True, False]])
    tokens = sample_masked(exact_logits, (1, 3), 100, steps=2, known=known, mask=mask,
                           generator=torch.Generator().manual_seed(0))
    assert tokens[0, 1] == 1 and (tokens >= 0).all()


def test_a_guide_at_strength_0_is_returned_and_at_1_is_redrawn():
    guide = torch.tensor([[0, 1, 0]]).repeat(500, 1)  # probability 0.03
    gm = torch.ones(500, 3, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    same = sample_masked(exact_logits, (500, 3), 100, steps=3, guide=guide, guide_mask=gm,
                         guide_strength=0.0, generator=g)
    assert torch.equal(same, guide)
    free = sample_masked(exact_logits, (500, 3), 100, steps=3, guide=guide, guide_mask=gm,
                         guide_strength=1.0, order="random", generator=g)
    assert (free == guide).all(1).float().mean() < 0.1


def test_the_same_seed_gives_the_same_tokens():
    a = sample_masked(exact_logits, (20, 3), 100, steps=2,
                      generator=torch.Generator().manual_seed(5))
    b = sample_masked(exact_logits, (20, 3), 100, steps=2,
                      generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_forward_process_masks_its_share_and_only_where_allowed():
    tokens = torch.randint(0, 5, (4, 10_000))
    t = torch.tensor([0, 249, 499, 999])
    maskable = torch.ones(1, 10_000, dtype=torch.bool)
    maskable[:, :100] = False
    x, masked = mask_tokens(tokens, t, 1000, maskable, torch.Generator().manual_seed(0))
    assert not masked[:, :100].any()
    share = masked[:, 100:].float().mean(1)
    assert torch.allclose(share, mask_rate(t, 1000).float(), atol=0.02)
    assert torch.equal(x[masked], torch.full_like(x[masked], MASK))
    assert torch.equal(x[~masked], tokens[~masked])
    assert torch.equal(timestep_of_rate(mask_rate(t, 1000), 1000), t)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps"),
    ({"order": "sideways"}, "order"),
    ({"temperature": 0.0}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"shape_from": -1}, "shape_from"),
    ({"known": torch.zeros(1, 3, dtype=torch.long)}, "go together"),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_masked(exact_logits, (1, 3), 100, **kwargs)


def test_gibbs_rounds_keep_the_distribution_and_the_known_tokens():
    # from a wrong start (one round: independent marginals), Gibbs rounds with an exact
    # network move the draws toward the joint distribution
    g = torch.Generator().manual_seed(0)
    once = sample_masked(exact_logits, (3000, 3), 100, steps=1, order="random", generator=g)
    g = torch.Generator().manual_seed(0)
    gibbs = sample_masked(exact_logits, (3000, 3), 100, steps=1, order="random", generator=g,
                          resample=12, resample_rate=0.34)
    assert _tv(_frequencies(gibbs)) < 0.5 * _tv(_frequencies(once))
    known = torch.tensor([[1, MASK, MASK]]).repeat(50, 1)
    mask = torch.tensor([[True, False, False]]).repeat(50, 1)
    kept = sample_masked(exact_logits, (50, 3), 100, steps=1, known=known, mask=mask,
                         resample=5, resample_rate=1.0, generator=g)
    assert (kept[:, 0] == 1).all()


def test_nucleus_keeps_the_likeliest_tokens_up_to_top_p_and_renormalizes():
    logp = torch.log(torch.tensor([[0.15, 0.5, 0.05, 0.3]]))
    assert torch.allclose(nucleus(logp, 0.8).exp(), torch.tensor([[0, 0.625, 0, 0.375]]))
    assert torch.allclose(nucleus(logp, 0.9).exp(), torch.tensor([[0.15, 0.5, 0, 0.3]]) / 0.95)
    assert torch.allclose(nucleus(logp, 0.3).exp(), torch.tensor([[0.0, 1, 0, 0]]))  # the top one
    assert torch.allclose(nucleus(logp, 1.0).exp(), logp.exp())


def test_top_p_draws_from_the_nucleus_of_each_conditional():
    # under JOINT the first two tokens agree with probability 0.67, and each one's likelier
    # value given the other is to agree (0.64 and 0.70): top_p 0.6 cuts the other value
    # wherever one of the two is drawn after the other, so they (almost) always agree
    g = torch.Generator().manual_seed(0)
    tokens = sample_masked(exact_logits, (2000, 3), 100, steps=3, order="random",
                           generator=g, top_p=0.6)
    full = sample_masked(exact_logits, (2000, 3), 100, steps=3, order="random",
                         generator=torch.Generator().manual_seed(0))
    assert (tokens[:, 0] == tokens[:, 1]).float().mean() > 0.9
    assert (full[:, 0] == full[:, 1]).float().mean() < 0.8


def test_shaped_trims_the_pitch_not_whether_a_note_starts():
    # REST 0.05, HOLD 0.55, then four pitches holding 0.40 together
    p = torch.tensor([[0.05, 0.55, 0.20, 0.10, 0.06, 0.04]])
    everything = shaped(p.log(), top_p=0.8).exp()
    assert torch.allclose(everything, torch.tensor([[0, 0.55, 0.20, 0.10, 0, 0]]) / 0.85)
    pitches = shaped(p.log(), top_p=0.8, shape_from=2).exp()
    # REST and HOLD keep their odds, the pitches their 0.40, shared by their own nucleus
    # (0.20 and 0.10 reach 0.75 of it, 0.06 the rest up to 0.90 > 0.8)
    assert torch.allclose(pitches[0, :2], p[0, :2])
    assert torch.allclose(pitches[0, 2:].sum(), torch.tensor(0.40))
    assert torch.allclose(pitches[0, 2:], torch.tensor([0.20, 0.10, 0.06, 0]) * 0.40 / 0.36)
    # a temperature sharpens the pitches among themselves only
    cold = shaped(p.log(), temperature=0.5, shape_from=2).exp()
    inner = p[0, 2:] ** 2 / (p[0, 2:] ** 2).sum()
    assert torch.allclose(cold[0], torch.cat([p[0, :2], 0.40 * inner]))
    # shape_from 0 (or past the vocabulary) is the plain temperature and nucleus
    assert torch.allclose(shaped(p.log(), 0.5, 0.8), nucleus(torch.log_softmax(p.log() / 0.5, -1),
                                                             0.8))
    assert torch.allclose(shaped(p.log(), 0.5, 0.8, shape_from=6), shaped(p.log(), 0.5, 0.8))


def test_shape_from_keeps_the_first_values_odds_in_the_sampler():
    # token 0 of JOINT's first position has odds 0.50 overall; a nucleus of 0.4 over both
    # values cuts the less likely one of each conditional, one over values >= 1 keeps them
    g = torch.Generator().manual_seed(0)
    tokens = sample_masked(exact_logits, (3000, 3), 100, steps=3, order="random",
                           generator=g, top_p=0.4, shape_from=1)
    assert _tv(_frequencies(tokens)) < 0.03
