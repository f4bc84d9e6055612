"""The voice-leading lean: which pitches move in parallel fifths or octaves, and a sampler
that draws with it writes none where it can avoid them."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from structdiff.data.tokens import HOLD, N_SPECIAL, REST
from structdiff.diffusion.masked import MASK, sample_masked
from structdiff.pipeline.voice_leading import (
    INTERVALS,
    SILENT,
    UNKNOWN,
    compass_bias,
    completeness_bias,
    dissonance_bias,
    interval_bias,
    interval_table,
    resolution_bias,
    sounding_lines,
    voice_leading_bias,
    within_pitches,
)

V = N_SPECIAL + 48  # four octaves of pitches


def t(pitch: int) -> int:
    return N_SPECIAL + pitch


def leaned(tokens, voice, step, strength=5.0, outer=None):
    """The pitches (indices) the lean lowers for `voice` at `step`."""
    b = voice_leading_bias(torch.tensor([tokens]), V, strength, outer)[0, voice, step]
    assert (b[:N_SPECIAL] == 0).all()  # never REST or HOLD
    return set((b[N_SPECIAL:] < 0).nonzero().flatten().tolist())


def test_sounding_lines_follow_holds_rests_and_masks():
    tokens = torch.tensor([[[HOLD, t(5), HOLD, REST, HOLD, MASK, HOLD, t(7)]]])
    assert sounding_lines(tokens)[0, 0].tolist() == [UNKNOWN, 5, 5, SILENT, SILENT, UNKNOWN,
                                                     UNKNOWN, 7]


def test_entering_a_fifth_or_octave_in_similar_motion_is_leaned_against():
    # upper voice on 19 (G, a fifth above the lower C 12), the lower one moves up to D 14:
    # the upper voice's A 21 (and an octave or two above) would be parallel fifths
    assert leaned([[t(19), MASK], [t(12), t(14)]], 0, 1) == {21, 33, 45}
    # from an octave (C 24 over C 12): D 26 and 38 are parallel octaves; the unison D 14
    # is reached by contrary motion
    assert leaned([[t(24), MASK], [t(12), t(14)]], 0, 1) == {26, 38}
    assert leaned([[t(10), MASK], [t(10), t(12)]], 0, 1) == {12, 24, 36}  # unison to unison
    # intervals are measured up from the lower pitch: G 7 under C 12 (the voices crossed) is
    # a fourth, as is F 17 over C 12, and fourths may move in parallel
    assert leaned([[t(7), MASK], [t(12), t(14)]], 0, 1) == set()
    assert leaned([[t(17), MASK], [t(12), t(14)]], 0, 1) == set()
    # the upper voice a fifth below the lower one (F 5 under C 12, crossed): up to a fifth
    # from D 14, below (G 7) or above (A 21, and the compounds), is parallel fifths too
    assert leaned([[t(5), MASK], [t(12), t(14)]], 0, 1) == {7, 21, 33, 45}
    # the lower voice sees the same rule from the other side: from C 12 up to a fifth under
    # (or over) A 21 while G 19 -> A 21
    assert leaned([[t(19), t(21)], [t(12), MASK]], 1, 1) == {14, 28, 40}
    # and leaving: C 12 before D 14 under G 19 -> A 21 (C 0 and 24 too, 24 crossing above)
    assert leaned([[t(19), t(21)], [MASK, t(14)]], 1, 0) == {0, 12}
    # contrary motion into a fifth is allowed: from 19 downwards to 14 + 7 - 12 = 9 is fine
    assert 9 not in leaned([[t(19), MASK], [t(12), t(14)]], 0, 1)


def test_leaving_a_note_in_parallel_with_the_next_one_is_leaned_against():
    # the upper voice will sound A 21 at step 1 while the lower one moves C 12 -> D 14:
    # a G 19 before it would make the fifths, as would F 5 a fifth below C (G 7 under C
    # is a fourth)
    assert leaned([[MASK, t(21)], [t(12), t(14)]], 0, 0) == {5, 19}
    # held through a HOLD the next note is still the one that counts
    assert leaned([[MASK, HOLD, t(21)], [t(12), HOLD, t(14)]], 0, 0) == {5, 19}


def test_no_lean_without_motion_a_perfect_interval_or_known_neighbours():
    assert leaned([[t(19), MASK], [t(12), HOLD]], 0, 1) == set()  # the other voice holds
    assert leaned([[t(16), MASK], [t(12), t(14)]], 0, 1) == set()  # from a third
    assert leaned([[t(19), MASK], [MASK, t(14)]], 0, 1) == set()  # the other's past unknown
    assert leaned([[t(19), MASK], [t(12), MASK]], 0, 1) == set()  # the other's note unknown
    assert leaned([[t(19), MASK], [REST, t(14)]], 0, 1) == set()  # it was silent
    assert leaned([[t(19), MASK], [t(12), t(14)]], 0, 1, strength=0.0) == set()
    # only masked positions are leaned on: the sampler draws no others
    assert leaned([[t(19), t(21)], [t(12), t(14)]], 0, 1) == set()


def test_direct_fifths_and_octaves_are_leaned_against_in_the_outer_voices_only():
    # soprano E 16 a third over the bass C 12; the bass falls to G 7: the soprano falling by
    # a leap onto G 7 or C 0 (an octave, a fifth) is direct; D 14 is a step, and allowed
    tokens = [[t(16), MASK], [t(12), t(7)]]
    assert leaned(tokens, 0, 1, outer=(0, 1)) == {0, 7}
    assert leaned(tokens, 0, 1) == set()  # inner voices may
    # the bass under a soprano leaping E 16 -> A 9: falling onto A 9 or D 2
    assert leaned([[t(16), t(9)], [t(12), MASK]], 1, 1, outer=(0, 1)) == {2, 9}
    assert leaned([[t(16), t(14)], [t(12), MASK]], 1, 1, outer=(0, 1)) == set()  # a step
    # leaving: the soprano will fall to G 7 as the bass falls C 12 -> G 7: any note it leaps
    # down from (above A 9) makes a direct unison, or parallel ones from C 12 and C 24
    assert leaned([[MASK, t(7)], [t(12), t(7)]], 0, 0, outer=(0, 1)) == set(range(10, 48))


def test_direct_fifths_and_octaves_can_cost_less_than_parallels():
    # the soprano (0) moves down from D 26 to the note to draw while the bass (1) steps down
    # from D 14 to C 12, an octave apart: C 24, C 12 and C 0 move in parallel octaves
    # (unisons); G 19 and F 5 reach a fifth by similar motion with the soprano leaping
    # (direct fifths)
    tokens = torch.tensor([[[t(26), MASK], [t(14), t(12)]]])
    both = voice_leading_bias(tokens, V, 5.0, outer=(0, 1))[0, 0, 1, N_SPECIAL:]
    milder = voice_leading_bias(tokens, V, 5.0, outer=(0, 1), direct_strength=1.0)[
        0, 0, 1, N_SPECIAL:]
    assert set((both < 0).nonzero().flatten().tolist()) == {0, 5, 12, 19, 24}
    assert [float(milder[p]) for p in (0, 12, 24)] == [-5.0] * 3  # parallels as before
    assert [float(milder[p]) for p in (5, 19)] == [-1.0] * 2  # direct ones at their own nats
    assert ((both < 0) == (milder < 0)).all()


def test_a_dissonance_is_leaned_against_unless_approached_and_left_by_step():
    # one voice: C 12 at step 0, a note to draw at step 1, E 16 at step 2; every pitch but
    # C, E and G (12, 16, 19 and their octaves) is off the chord at step 1
    tokens = torch.tensor([[[t(12), MASK, t(16)]]])
    off = torch.ones(1, 1, 3, V, dtype=torch.bool)
    off[..., :N_SPECIAL] = False
    for chord_tone in (0, 4, 7):
        off[..., N_SPECIAL + chord_tone::12] = False
    lowered = dissonance_bias(tokens, off, 4.0)[0, 0, 1]
    assert (lowered[:N_SPECIAL] == 0).all()
    leaned_on = set((lowered[N_SPECIAL:] < 0).nonzero().flatten().tolist())
    # D 14 passes from C to E by step; C# 13 and D# 15 are a step on one side only, and
    # every other off-chord pitch is reached or left by a leap
    assert 14 not in leaned_on
    assert {10, 11, 13, 15, 17, 18, 26} <= leaned_on
    assert {12, 16, 19, 24} & leaned_on == set()  # chord tones, whatever the leap
    # with its neighbours unknown (masked, rests) nothing is leaned on
    assert not (dissonance_bias(torch.tensor([[[MASK, MASK, REST]]]), off, 4.0) < 0).any()
    assert not (dissonance_bias(tokens, off, 0.0) < 0).any()


def test_a_note_that_would_leave_a_thin_sonority_is_leaned_against():
    # four voices at step 1: soprano G 31, tenor C 24, bass C 12 known, the alto to draw:
    # the others sound two classes (C, G), so a C or a G (any octave) leaves the four voices
    # on two; E, or any other class, makes three
    tokens = torch.tensor([[[t(31), t(31)], [t(28), MASK], [t(24), t(24)], [t(12), HOLD]]])
    lowered = completeness_bias(tokens, V, 3.0)[0, 1, 1]
    assert (lowered[:N_SPECIAL] == 0).all()
    leaned_on = set((lowered[N_SPECIAL:] < 0).nonzero().flatten().tolist())
    assert leaned_on == {p for p in range(48) if p % 12 in (0, 7)}
    assert float(lowered[N_SPECIAL + 12]) == -3.0 and float(lowered[N_SPECIAL + 28]) == 0.0
    # the held bass counts; with the soprano on E and the tenor on G, the others already
    # make three classes and nothing is leaned on
    full = tokens.clone()
    full[0, 0], full[0, 2] = t(28), t(19)
    assert not (completeness_bias(full, V, 3.0) < 0).any()
    # another voice still masked, or fewer than two others sounding: no lean
    unknown = tokens.clone()
    unknown[0, 2, 1] = MASK
    assert not (completeness_bias(unknown, V, 3.0)[0, 1, 1] < 0).any()
    resting = tokens.clone()
    resting[0, 0, 1], resting[0, 2, 1] = REST, REST
    assert not (completeness_bias(resting, V, 3.0)[0, 1, 1] < 0).any()
    assert not (completeness_bias(tokens, V, 0.0) < 0).any()


def test_the_notes_beside_a_dissonance_lean_toward_resolving_it_by_step():
    # one voice: D 14 struck at step 0 (off the chord there) and held, a note to draw at step
    # 2, then F# 18 at step 3 (off the chord there): only E 16 leaves D and reaches F# by step
    tokens = torch.tensor([[[t(14), HOLD, MASK, t(18)]]])
    off = torch.zeros(1, 1, 4, V, dtype=torch.bool)
    off[0, 0, 0, N_SPECIAL + 14] = off[0, 0, 3, N_SPECIAL + 18] = True
    lowered = resolution_bias(tokens, off, 2.0)[0, 0, 2]
    assert (lowered[:N_SPECIAL] == 0).all()
    assert set((lowered[N_SPECIAL:] == 0).nonzero().flatten().tolist()) == {16}
    assert (lowered[N_SPECIAL:][lowered[N_SPECIAL:] != 0] == -2.0).all()
    # neighbours on the chord: nothing leans (the candidate's own dissonance is
    # `dissonance_bias`'s)
    assert not (resolution_bias(tokens, torch.zeros_like(off), 2.0) < 0).any()
    # only the side that is a dissonance counts: with F# on the chord, a step from D stays
    off[0, 0, 3, N_SPECIAL + 18] = False
    lowered = resolution_bias(tokens, off, 2.0)[0, 0, 2]
    assert set((lowered[N_SPECIAL:] == 0).nonzero().flatten().tolist()) == {12, 13, 15, 16}
    assert not (resolution_bias(tokens, off, 0.0) < 0).any()


def _table(rows: dict) -> torch.Tensor:
    """An interval table `[K, 26]` from {voice: {interval: nats}} (2 voices)."""
    table = torch.zeros(2, 2 * INTERVALS + 2)
    for k, row in rows.items():
        for interval, nats in row.items():
            table[k, interval + INTERVALS if interval != "wider" else -1] = nats
    return table


def test_each_voice_s_intervals_are_leaned_on_entering_and_leaving():
    tokens = torch.tensor([[[t(5), HOLD, MASK, HOLD, t(9)],  # voice 0: after 5, before 9
                            [t(3), MASK, REST, MASK, t(2)]]])  # voice 1
    # voice 0 only: repeats -4, a step up -1, a third up +0.5
    b = interval_bias(tokens, V, _table({0: {0: -4.0, 2: -1.0, 4: 0.5}}))
    assert (b[..., :N_SPECIAL] == 0).all() and (b[0, 1] == 0).all()
    row = b[0, 0, 2, N_SPECIAL:]
    # 5 -> 5 (repeat, -4) -> 9 (a third up, +0.5); 7: a step up from 5 (-1), a step up to 9
    # (-1); 9: a third up (+0.5), then a repeat (-4); 3: a step down, then 6 up (0)
    assert row[5] == -3.5 and row[7] == -2.0 and row[9] == -3.5 and row[3] == 0.0
    assert set(row.nonzero().flatten().tolist()) == {5, 7, 9}  # nothing else in the table
    assert (b[0, 0, [0, 1, 3, 4]] == 0).all()  # only masked positions are leaned on
    # voice 1: at step 1 after 3 and before a rest, at step 3 after a rest and before 2
    b = interval_bias(tokens, V, _table({1: {0: -2.0, "wider": -1.0}}))[0, 1]
    assert set((b[1, N_SPECIAL:] < 0).nonzero().flatten().tolist()) == (
        {3} | set(range(16, 48)))  # the repeat, and anything more than an octave above
    assert b[1, t(3)] == -2.0 and b[1, t(30)] == -1.0
    assert set((b[3, N_SPECIAL:] < 0).nonzero().flatten().tolist()) == (
        {2} | set(range(15, 48)))
    # an unknown neighbour (masked, or a window that starts holding) adds nothing
    b = interval_bias(torch.tensor([[[HOLD, MASK, MASK]]]), V,
                      _table({0: {0: -3.0}})[:1])
    assert (b == 0).all()


def test_a_voice_is_leaned_back_into_its_compass_by_a_nat_a_semitone():
    # tokens written moved up 2 semitones: index i is MIDI pitch 33 + i - 2
    b = compass_bias(V, 33, 2, {"bass": [36, 64], "viola": [1, 2]}, ["soprano", "bass"])
    assert b.shape == (2, V) and (b[0] == 0).all() and (b[1, :N_SPECIAL] == 0).all()
    pitch = 33 + torch.arange(V - N_SPECIAL) - 2
    row = b[1, N_SPECIAL:]
    assert (row[(pitch >= 36) & (pitch <= 64)] == 0).all()
    assert row[pitch == 35].item() == -1.0 and row[pitch == 31].item() == -5.0
    assert row[pitch == 66].item() == -2.0
    assert (compass_bias(V, 33, 0, {"bass": [36, 64]}, ["bass"], 0.5)[0, N_SPECIAL] == -1.5)
    with pytest.raises(ValueError, match="must be \\[lowest, highest\\]"):
        compass_bias(V, 33, 0, {"bass": [64, 36]}, ["bass"])


def test_an_interval_table_comes_from_a_bundle_s_rows_by_role():
    row = [0.0] * (2 * INTERVALS + 2)
    row[INTERVALS] = -1.5
    table = interval_table({"bass": row, "quintus": row}, ["soprano", "bass"])
    assert table.shape == (2, 26) and (table[0] == 0).all() and table[1, INTERVALS] == -1.5
    assert (interval_table(None, ["soprano"]) == 0).all()
    with pytest.raises(ValueError, match="must have 26 entries"):
        interval_table({"bass": [0.0] * 25}, ["bass"])


def test_a_lean_within_pitches_keeps_the_odds_of_rest_hold_and_a_new_note():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, V, generator=g)
    bias = torch.zeros(3, 4, V)
    bias[..., N_SPECIAL + 5] = -6.0
    bias[..., N_SPECIAL + 9] = -2.0
    p0, p1 = logits.softmax(-1), within_pitches(logits, bias).softmax(-1)
    assert torch.allclose(p1[..., :N_SPECIAL], p0[..., :N_SPECIAL], atol=1e-6)
    # among the pitches, the odds are the leaned ones
    pitch = (logits + bias)[..., N_SPECIAL:].softmax(-1)
    assert torch.allclose(p1[..., N_SPECIAL:] / p1[..., N_SPECIAL:].sum(-1, keepdim=True),
                          pitch, atol=1e-6)
    assert (p1[..., N_SPECIAL + 5] < p0[..., N_SPECIAL + 5]).all()


def test_a_sampler_with_the_interval_lean_draws_fewer_repeated_notes():
    # one voice over 4 pitches, every pitch equally likely: a free draw repeats a quarter of
    # the time; with a 20-nat lean against repeats, never (other pitches always remain)
    vocab = N_SPECIAL + 4

    def draw(strength):
        def logits_fn(tokens, step, cond):
            flat = torch.zeros(*tokens.shape, vocab)
            flat[..., :N_SPECIAL] = -1e4
            return flat + interval_bias(tokens, vocab, _table({0: {0: -strength}})[:1])
        g = torch.Generator().manual_seed(0)
        tokens = sample_masked(logits_fn, (300, 1, 8), 100, steps=8, order="random",
                               generator=g)
        return int((tokens[..., 1:] == tokens[..., :-1]).sum())

    free, leaned = draw(0.0), draw(20.0)
    assert free > 300 * 7 / 4 * 0.8 and leaned == 0


def _parallels(tokens: torch.Tensor) -> int:
    """Parallel fifths or octaves between the two voices of each row `[B, 2, W]` of pitches."""
    p = tokens - N_SPECIAL
    a0, b0, a1, b1 = p[:, 0, :-1], p[:, 1, :-1], p[:, 0, 1:], p[:, 1, 1:]
    same = (a1 - a0) * (b1 - b0) > 0
    c0, c1 = (a0 - b0).abs() % 12, (a1 - b1).abs() % 12
    return int((same & (c0 == c1) & ((c0 == 0) | (c0 == 7))).sum())


@pytest.mark.parametrize("strength", [0.0, 20.0])
def test_a_sampler_with_the_lean_draws_no_parallels_where_it_can_avoid_them(strength):
    # two voices of one-step notes over a 12-pitch range, every pitch equally likely: a free
    # draw moves in parallel perfect intervals often; one token drawn at a time, with the
    # lean at full strength, never (some other pitch always avoids them)
    vocab = N_SPECIAL + 12

    def logits_fn(tokens, step, cond):
        flat = torch.zeros(*tokens.shape, vocab)
        flat[..., :N_SPECIAL] = -1e4  # pitches only
        return flat + voice_leading_bias(tokens, vocab, strength)

    g = torch.Generator().manual_seed(0)
    # 64 rounds for 16 tokens: one token a round, each drawn knowing all the others
    tokens = sample_masked(logits_fn, (400, 2, 8), 100, steps=64, order="random", generator=g)
    count = _parallels(tokens)
    if strength:
        assert count == 0
    else:
        assert count > 8  # about 400 x 7 x 2/12 x 1/12 x 1/2 = 19 of them by chance


@pytest.mark.usefixtures("one_thread")
def test_the_chorale_arranger_leaned_writes_fewer_parallels_and_bad_strengths_are_refused():
    from structdiff.metrics.musicianship import FEATURE_NAMES, window_features
    from structdiff.models.bundle import SHIPPED_DIR, arranger_for_style, planner_for_style
    from structdiff.pipeline.arrange import load_arranger
    from structdiff.pipeline.generate import Options, new_song
    from structdiff.pipeline.plan import load_planner

    planner = load_planner(planner_for_style(SHIPPED_DIR, "chorale"))
    arranger = load_arranger(arranger_for_style(SHIPPED_DIR, "chorale"))
    arranger.meta["resample"] = 20
    fifths, octaves = (FEATURE_NAMES.index(n) for n in ("parallel_fifths", "parallel_octaves"))
    counts = {}
    for strength in (0.0, 20.0):
        songs = [new_song(planner, arranger, Options(style="chorale", seed=seed, steps=8,
                                                     harmony=0.0, voice_leading=strength),
                          n_bars=16) for seed in range(3)]
        windows = np.concatenate([window_features(s) for s in songs])
        counts[strength] = float(np.nansum(windows[:, fifths] + windows[:, octaves]))
    assert counts[20.0] < 0.5 * counts[0.0]
    with pytest.raises(ValueError, match="voice_leading must be in 0..100"):
        new_song(planner, arranger, Options(style="chorale", voice_leading=-1.0), n_bars=4)


@pytest.mark.usefixtures("one_thread")
def test_the_outer_voices_are_leaned_on_only_when_the_bundle_says(monkeypatch):
    from structdiff.models.bundle import SHIPPED_DIR, arranger_for_style, planner_for_style
    from structdiff.pipeline import arrange as arrange_module
    from structdiff.pipeline.arrange import load_arranger
    from structdiff.pipeline.generate import Options, new_song
    from structdiff.pipeline.plan import load_planner

    seen = []

    def spy(tokens, vocab, strength, outer=None, direct_strength=None):
        seen.append((strength, outer, direct_strength))
        return voice_leading_bias(tokens, vocab, strength, outer, direct_strength)

    monkeypatch.setattr(arrange_module, "voice_leading_bias", spy)
    planner = load_planner(planner_for_style(SHIPPED_DIR, "chorale"))
    arranger = load_arranger(arranger_for_style(SHIPPED_DIR, "chorale"))
    options = Options(style="chorale", steps=2, harmony=0.0, gibbs=0, voice_leading=2.5)
    new_song(planner, arranger, options, n_bars=2)
    assert seen and set(seen) == {(2.5, None, None)}
    seen.clear()
    arranger.meta["voice_leading_direct"] = True
    new_song(planner, arranger, options, n_bars=2)
    roles = arranger.roles
    outer = (roles.index("soprano"), roles.index("bass"))
    assert set(seen) == {(2.5, outer, None)}
    seen.clear()
    arranger.meta["voice_leading_direct"] = 1.5  # nats of their own for the direct ones
    new_song(planner, arranger, options, n_bars=2)
    assert set(seen) == {(2.5, outer, 1.5)}
    seen.clear()
    new_song(planner, arranger, replace(options, voice_leading=0.0), n_bars=2)
    assert not seen  # no lean asked, none computed


@pytest.mark.usefixtures("one_thread")
def test_the_interval_lean_and_onset_keeping_come_from_the_bundle(monkeypatch):
    from structdiff.models.bundle import SHIPPED_DIR, arranger_for_style, planner_for_style
    from structdiff.pipeline import arrange as arrange_module
    from structdiff.pipeline.arrange import load_arranger
    from structdiff.pipeline.generate import Options, new_song
    from structdiff.pipeline.plan import load_planner

    seen, kept = [], []

    def spy(tokens, vocab, table):
        seen.append(tuple(table[:, INTERVALS].tolist()))
        return interval_bias(tokens, vocab, table)

    def spy_within(logits, bias):
        kept.append(True)
        return within_pitches(logits, bias)

    monkeypatch.setattr(arrange_module, "interval_bias", spy)
    monkeypatch.setattr(arrange_module, "within_pitches", spy_within)
    planner = load_planner(planner_for_style(SHIPPED_DIR, "chorale"))
    arranger = load_arranger(arranger_for_style(SHIPPED_DIR, "chorale"))
    options = Options(style="chorale", steps=2, harmony=0.0, gibbs=0)
    arranger.meta.pop("interval_lean", None)
    arranger.meta["lean_keeps_onsets"] = False
    new_song(planner, arranger, options, n_bars=2)
    assert not seen and not kept
    row = [0.0] * (2 * INTERVALS + 2)
    row[INTERVALS] = -3.0  # repeats
    arranger.meta["interval_lean"] = {"bass": row}
    arranger.meta["lean_keeps_onsets"] = True
    new_song(planner, arranger, options, n_bars=2)
    expected = tuple(-3.0 if r == "bass" else 0.0 for r in arranger.roles)
    assert seen and set(seen) == {expected} and kept
    seen.clear()  # generate --interval-lean scales the table, 0 turns it off
    new_song(planner, arranger, replace(options, interval_lean=0.5), n_bars=2)
    assert set(seen) == {tuple(x / 2 for x in expected)}
    seen.clear()
    new_song(planner, arranger, replace(options, interval_lean=0.0), n_bars=2)
    assert not seen
    with pytest.raises(ValueError, match="interval_lean must be in 0..4"):
        new_song(planner, arranger, replace(options, interval_lean=-1.0), n_bars=2)


@pytest.mark.usefixtures("one_thread")
def test_the_chorale_arranger_with_its_interval_lean_writes_the_intervals_it_favours():
    from structdiff.models.bundle import SHIPPED_DIR, arranger_for_style, planner_for_style
    from structdiff.pipeline.arrange import load_arranger
    from structdiff.pipeline.generate import Options, new_song
    from structdiff.pipeline.plan import load_planner

    planner = load_planner(planner_for_style(SHIPPED_DIR, "chorale"))
    arranger = load_arranger(arranger_for_style(SHIPPED_DIR, "chorale"))
    arranger.meta["resample"] = 20
    table = {r: np.array(row) for r, row in arranger.meta["interval_lean"].items()}

    def mean_weight(scale: float) -> float:
        """The table's mean weight over the intervals of 3 songs' voices."""
        weights = []
        for seed in range(3):
            song = new_song(planner, arranger, Options(style="chorale", seed=seed, steps=8,
                                                       harmony=0.0, interval_lean=scale),
                            n_bars=16)
            for track in song.tracks:
                n = track.notes[np.argsort(track.notes[:, 0], kind="stable")]
                iv = np.diff(n[:, 2].astype(int))
                weights.append(table[track.role][np.where(np.abs(iv) > 12, 25, iv + 12)])
        return float(np.concatenate(weights).mean())

    leaned, free = mean_weight(1.0), mean_weight(0.0)
    assert leaned > free + 0.05, (leaned, free)  # 12 bars: 0.007 against -0.082


@pytest.mark.usefixtures("one_thread")
def test_the_dissonance_lean_takes_both_sides_only_when_the_bundle_says(monkeypatch):
    from structdiff.models.bundle import SHIPPED_DIR, arranger_for_style, planner_for_style
    from structdiff.pipeline import arrange as arrange_module
    from structdiff.pipeline.arrange import load_arranger
    from structdiff.pipeline.generate import Options, new_song
    from structdiff.pipeline.plan import load_planner

    calls = []

    def spy(tokens, off_chord, strength):
        calls.append(strength)
        return resolution_bias(tokens, off_chord, strength)

    monkeypatch.setattr(arrange_module, "resolution_bias", spy)
    planner = load_planner(planner_for_style(SHIPPED_DIR, "chorale"))
    arranger = load_arranger(arranger_for_style(SHIPPED_DIR, "chorale"))
    options = Options(style="chorale", steps=2, harmony=0.0, gibbs=0)
    assert arranger.meta["dissonance_both_sides"] is True  # shipped since session 19
    arranger.meta["dissonance"] = 2.0
    arranger.meta.pop("dissonance_both_sides")
    new_song(planner, arranger, options, n_bars=2)
    assert not calls  # without the key: the dissonant note's own draw only
    arranger.meta["dissonance_both_sides"] = True
    new_song(planner, arranger, options, n_bars=2)
    assert calls and set(calls) == {2.0}
    calls.clear()
    arranger.meta["dissonance"] = 0.0
    new_song(planner, arranger, options, n_bars=2)
    assert not calls
