"""The arranger network: shapes, the token embedding, and what each output may depend on."""

import pytest
import torch
from torch import nn

from structdiff.analysis.chords import QUALITIES
from structdiff.data.arrange_tensor import PLAN_FEATURES, feature_slice
from structdiff.data.tokens import HOLD, REST, vocab_size
from structdiff.models.arranger import (
    PITCH_FEATURES,
    Arranger,
    ArrangerConfig,
    pitch_embedding,
    pitch_features,
)

B, K, T = 2, 4, 32  # 8 tokens of 4 steps per track
N = T // 4


def _random_model(**settings) -> Arranger:
    """A small all-mono arranger (`settings` override its config) whose blocks do something."""
    torch.manual_seed(0)
    cfg = ArrangerConfig(**{**dict(vocab=vocab_size(12), n_roles=5, n_styles=2,
                                   n_plan=PLAN_FEATURES, emb_dim=8, d_model=32, n_layers=2,
                                   n_heads=2, dropout=0.0, max_distance=4), **settings})
    m = Arranger(cfg)
    # adaLN-zero starts every block as the identity, where nothing crosses tracks or time:
    # random modulations and position biases make the blocks do something to test.
    with torch.no_grad():
        for module in m.modules():
            if hasattr(module, "modulation"):
                nn.init.normal_(module.modulation.weight, std=0.2)
                nn.init.normal_(module.modulation.bias, std=0.2)
        nn.init.normal_(m.time_bias.weight)
        nn.init.normal_(m.plan_bias.weight)
    return m.eval()


@pytest.fixture(scope="module")
def model():
    return _random_model()


def mono(m, *args):
    """The mono logits of an all-mono arranger."""
    return m(*args)["mono"]


def _inputs(seed=0, present=None):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(B, K, T, 8, generator=g)
    plan = torch.rand(B, N, PLAN_FEATURES, generator=g)
    plan[..., -1] = 0  # no padding
    if present is None:
        present = torch.ones(B, K, dtype=torch.bool)
    cond = {"style": torch.tensor([0, 2]), "plan": plan, "present": present}
    return x_t, torch.tensor([10, 500]), cond


def test_forward_shape(model):
    x_t, t, cond = _inputs()
    logits = mono(model, x_t, t, cond)
    assert logits.shape == (B, K, T, model.cfg.vocab)
    assert torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="multiple of 4"):
        mono(model, x_t[:, :, :30], t, cond)


def test_fewer_tracks_than_roles(model):
    x_t, t, cond = _inputs()
    cond["present"] = cond["present"][:, :2]
    assert mono(model, x_t[:, :2], t, cond).shape == (B, 2, T, model.cfg.vocab)


def test_nearest_token_of_every_embedding_is_itself(model):
    tokens = torch.arange(model.cfg.vocab)
    x0 = model.embed(tokens)
    assert x0.shape == (model.cfg.vocab, 8)
    assert torch.allclose(x0.norm(dim=-1), torch.full((model.cfg.vocab,), 8**0.5))
    assert torch.equal(model.nearest_tokens(x0), tokens)
    grid = tokens.reshape(2, 7)
    assert torch.equal(model.nearest_tokens(model.embed(grid)), grid)
    # a little noise does not move a token to another one
    noisy = x0 + 0.05 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.nearest_tokens(noisy), tokens)


def test_x0_from_sharp_logits_is_the_embedding(model):
    V = model.cfg.vocab
    tokens = torch.tensor([[0, 1, 5], [V - 1, 3, 3]])
    logits = 1e4 * nn.functional.one_hot(tokens, V).float()
    assert torch.allclose(model.x0_from_logits(logits), model.embed(tokens), atol=1e-6)
    # flat logits give the mean embedding
    flat = model.x0_from_logits(torch.zeros(V))
    assert torch.allclose(flat, model.token_embeddings().mean(0), atol=1e-6)


@torch.no_grad()
def test_tracks_that_do_not_play_do_not_affect_those_that_play(model):
    present = torch.tensor([[True, True, False, False]] * B)
    x_t, t, cond = _inputs(present=present)
    other = x_t.clone()
    other[:, 2:] = torch.randn(other[:, 2:].shape, generator=torch.Generator().manual_seed(5))
    a, b = mono(model, x_t, t, cond), mono(model, other, t, cond)
    assert torch.allclose(a[:, :2], b[:, :2], atol=1e-5)
    assert not torch.allclose(a[:, 2:], b[:, 2:], atol=1e-3)  # their own outputs do change
    # when those tracks play, the others hear them: the check above could fail
    cond_all = dict(cond, present=torch.ones(B, K, dtype=torch.bool))
    a, b = mono(model, x_t, t, cond_all), mono(model, other, t, cond_all)
    assert not torch.allclose(a[:, :2], b[:, :2], atol=1e-3)


@torch.no_grad()
def test_padding_tokens_do_not_affect_the_real_ones(model):
    x_t, t, cond = _inputs()
    cond["plan"][:, -2:, -1] = 1  # the last two tokens (8 steps) are padding
    other = x_t.clone()
    other[:, :, -8:] += 3.0
    a, b = mono(model, x_t, t, cond), mono(model, other, t, cond)
    assert torch.allclose(a[:, :, :-8], b[:, :, :-8], atol=1e-5)
    # without padding they would
    cond["plan"][:, -2:, -1] = 0
    a, b = mono(model, x_t, t, cond), mono(model, other, t, cond)
    assert not torch.allclose(a[:, :, :-8], b[:, :, :-8], atol=1e-3)


@torch.no_grad()
def test_known_context_is_read_only_where_the_mask_is_1(model):
    x_t, t, cond = _inputs()
    g = torch.Generator().manual_seed(7)
    context = torch.randn(x_t.shape, generator=g)
    mask = torch.zeros_like(x_t)
    mask[:, 0] = 1  # the first track is known
    base = mono(model, x_t, t, dict(cond, context=context, mask=mask))
    changed_known = context.clone()
    changed_known[:, 0] += 1.0
    changed = mono(model, x_t, t, dict(cond, context=changed_known, mask=mask))
    assert not torch.allclose(base, changed, atol=1e-3)
    changed_unknown = context.clone()
    changed_unknown[:, 1:] += 1.0
    unchanged = mono(model, x_t, t, dict(cond, context=changed_unknown, mask=mask))
    assert torch.allclose(base, unchanged, atol=1e-5)
    # no context given is the same as a zero mask
    zero = torch.zeros_like(x_t)
    masked = mono(model, x_t, t, dict(cond, context=context, mask=zero))
    assert torch.allclose(mono(model, x_t, t, cond), masked, atol=1e-5)


@torch.no_grad()
def test_style_and_plan_are_used(model):
    x_t, t, cond = _inputs()
    base = mono(model, x_t, t, cond)
    restyled = mono(model, x_t, t, dict(cond, style=torch.tensor([1, 1])))
    assert not torch.allclose(base, restyled, atol=1e-3)
    replanned = mono(model, x_t, t, dict(cond, plan=torch.roll(cond["plan"], 1, dims=1)))
    assert not torch.allclose(base, replanned, atol=1e-3)


# -- track kinds ----------------------------------------------------------------------------

BAND_KINDS = ["mono", "mono", "poly", "poly", "poly", "drums"]


@pytest.fixture(scope="module")
def band_model():
    torch.manual_seed(0)
    cfg = ArrangerConfig(vocab=vocab_size(12), n_roles=6, n_styles=2, n_plan=PLAN_FEATURES,
                         emb_dim=8, d_model=32, n_layers=2, n_heads=2, dropout=0.0,
                         max_distance=4, kinds=BAND_KINDS, poly_pitches=12, n_drums=8)
    m = Arranger(cfg)
    with torch.no_grad():
        for module in m.modules():
            if hasattr(module, "modulation"):
                nn.init.normal_(module.modulation.weight, std=0.2)
                nn.init.normal_(module.modulation.bias, std=0.2)
    return m.eval()


def _band_parts(seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab_size(12), (B, 2, T), generator=g)
    roll = torch.rand(B, 3, T, 12, 2, generator=g) < 0.2
    hits = torch.rand(B, 1, T, 8, generator=g) < 0.3
    return tokens, roll, hits


def test_band_x0_round_trip(band_model):
    tokens, roll, hits = _band_parts()
    x0 = band_model.encode_x0(tokens, roll, hits)
    assert x0.shape == (B, 6, T, 24)  # the poly roll is the widest: 12 pitches x 2
    parts = band_model.decode_x0(x0)
    assert torch.equal(parts["tokens"], tokens)
    assert torch.equal(parts["roll"], roll) and torch.equal(parts["hits"], hits)
    assert torch.equal(band_model.snap(x0 + 0.1 * torch.randn_like(x0)), x0)


def test_band_outputs_per_kind(band_model):
    x0 = band_model.encode_x0(*_band_parts())
    _, t, cond = _inputs()
    cond["present"] = torch.ones(B, 6, dtype=torch.bool)
    out = band_model(torch.randn_like(x0), t, cond)
    assert out["mono"].shape == (B, 2, T, vocab_size(12))
    assert out["poly"].shape == (B, 3, T, 12, 2) and out["drums"].shape == (B, 1, T, 8)
    est = band_model.x0_from_output(out)
    assert est.shape == x0.shape and est[:, 2:].abs().max() <= 1


def test_drums_attend_to_the_keys(band_model):
    x0 = band_model.encode_x0(*_band_parts())
    _, t, cond = _inputs()
    cond["present"] = torch.ones(B, 6, dtype=torch.bool)
    x_t = torch.randn_like(x0)
    other = x_t.clone()
    other[:, 2] = torch.randn_like(other[:, 2])  # only the keys' input changes
    a, b = band_model(x_t, t, cond), band_model(other, t, cond)
    assert not torch.allclose(a["drums"], b["drums"])
    assert not torch.allclose(a["mono"], b["mono"])


def test_base_rate_bias_starts_poly_and_drums_mostly_off(band_model):
    fresh = Arranger(band_model.cfg)
    x0 = fresh.encode_x0(*_band_parts())
    _, t, cond = _inputs()
    cond["present"] = torch.ones(B, 6, dtype=torch.bool)
    out = fresh(torch.randn_like(x0), t, cond)
    assert torch.sigmoid(out["poly"]).mean() < 0.1 and torch.sigmoid(out["drums"]).mean() < 0.15


def test_kinds_must_match_roles():
    with pytest.raises(ValueError, match="one of mono, poly, drums per role"):
        Arranger(ArrangerConfig(vocab=14, n_roles=2, n_styles=1, n_plan=PLAN_FEATURES,
                                kinds=["mono", "piano"]))


# -- masked diffusion --------------------------------------------------------------------------


def test_masked_arranger_reads_mask_vectors_and_is_certain_of_given_tokens():
    torch.manual_seed(0)
    cfg = ArrangerConfig(vocab=vocab_size(12), n_roles=5, n_styles=2, n_plan=PLAN_FEATURES,
                         emb_dim=8, d_model=32, n_layers=1, n_heads=2, dropout=0.0,
                         diffusion="masked")
    m = Arranger(cfg).eval()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.vocab, (B, K, T), generator=g)
    masked = torch.rand(B, K, T, generator=g) < 0.5
    x_tokens = tokens.masked_fill(masked, -1)
    x = m.masked_input(x_tokens)
    assert torch.equal(x[~masked], m.embed(tokens)[~masked])
    assert torch.equal(x[masked], m.mask_vector.expand(int(masked.sum()), -1))
    _, t, cond = _inputs()
    logits = m.masked_logits(x_tokens, t, cond)
    assert logits.shape == (B, K, T, cfg.vocab)
    assert torch.equal(logits.argmax(-1)[~masked], tokens[~masked])
    # where masked, the network's own logits, which depend on the visible tokens
    other = m.masked_logits(torch.where(masked, x_tokens, (tokens + 1) % cfg.vocab), t, cond)
    assert not torch.allclose(logits[masked], other[masked])


def test_masked_diffusion_needs_mono_tracks_only():
    with pytest.raises(ValueError, match="mono tracks only"):
        Arranger(ArrangerConfig(vocab=14, n_roles=6, n_styles=1, n_plan=PLAN_FEATURES,
                                kinds=BAND_KINDS, diffusion="masked"))
    with pytest.raises(ValueError, match="diffusion must be one of"):
        Arranger(ArrangerConfig(vocab=14, n_roles=1, n_styles=1, n_plan=PLAN_FEATURES,
                                diffusion="uniform"))


# -- pitch classes (masked arrangers) ---------------------------------------------------------


def test_pitch_features_follow_held_notes_and_stop_at_masks_and_rests():
    # pitch_low 33: token 2 + 27 is pitch 60 (C4), token 2 + 31 is 64 (E4)
    tokens = torch.tensor([[REST, HOLD, 29, HOLD, HOLD, -1, HOLD, 33, HOLD, REST, HOLD]])
    f = pitch_features(tokens, 33)[0]
    assert f.shape == (11, PITCH_FEATURES)
    sounding = f[:, 13].bool().tolist()
    assert sounding == [False, False, True, True, True, False, False, True, True, False, False]
    assert f[2:5, :12].argmax(-1).tolist() == [0, 0, 0]
    assert f[7:9, :12].argmax(-1).tolist() == [4, 4]
    assert f[~f[:, 13].bool(), :13].abs().sum() == 0  # nothing sounds: no class, no height
    assert torch.allclose(f[7, 12], torch.tensor(4 / 12))  # E4 is a third above C4
    assert f[:, 14].nonzero().flatten().tolist() == [2, 7]  # onsets
    assert f[:, 15].nonzero().flatten().tolist() == [5]  # masked


def _pc_model():
    torch.manual_seed(0)
    cfg = ArrangerConfig(vocab=vocab_size(24), n_roles=5, n_styles=2, n_plan=PLAN_FEATURES,
                         emb_dim=8, d_model=32, n_layers=1, n_heads=2, dropout=0.0,
                         diffusion="masked", pitch_classes=True, pitch_low=36)
    m = Arranger(cfg)
    with torch.no_grad():  # blocks that do something (as in the `model` fixture)
        for module in m.modules():
            if hasattr(module, "modulation"):
                nn.init.normal_(module.modulation.weight, std=0.2)
                nn.init.normal_(module.modulation.bias, std=0.2)
    return m.eval()


@torch.no_grad()
def test_pitch_class_arranger_reads_pitch_classes_and_writes_one_logit_per_class():
    m = _pc_model()
    assert m.cfg.channels == 8 + PITCH_FEATURES
    x_t, t, cond = _inputs()
    tokens = torch.full((B, K, T), HOLD)
    tokens[:, :, 0] = 2  # every voice holds C2 (pitch_low 36)
    x = m.masked_input(tokens)
    assert x.shape == (B, K, T, m.cfg.channels)
    assert torch.equal(x[..., 8:], pitch_features(tokens, 36))
    # the class head alone: pitches an octave apart get the same logit
    nn.init.zeros_(m.out.weight)
    nn.init.zeros_(m.out.bias)
    logits = m(x, t, cond)["mono"]
    assert torch.allclose(logits[..., 2:14], logits[..., 14:26])
    assert not torch.allclose(logits[..., 2], logits[..., 3])
    # the voices' pitch classes reach the network, not only their learned embedding: moving
    # the held note up a fifth changes the outputs of every track, the other tracks' too
    moved = tokens.clone()
    moved[:, 0, 0] = 2 + 7
    assert not torch.allclose(m(m.masked_input(moved), t, cond)["mono"][:, 1:], logits[:, 1:])


def test_plan_pitch_classes_are_the_chord_tones_and_bass():
    m = _pc_model()
    plan = torch.zeros(1, 1, PLAN_FEATURES)
    plan[..., feature_slice("root").start + 7] = 1  # G
    plan[..., feature_slice("quality").start + QUALITIES.index("dom7")] = 1  # dominant seventh
    plan[..., feature_slice("bass").start + 11] = 1  # B in the bass
    pcs = m._plan_pitch_classes(plan)[0, 0]
    assert pcs[:12].nonzero().flatten().tolist() == [2, 5, 7, 11]
    assert pcs[12:].nonzero().flatten().tolist() == [11]


def test_pitch_classes_need_a_masked_arranger():
    with pytest.raises(ValueError, match="pitch_classes needs a masked arranger"):
        Arranger(ArrangerConfig(vocab=14, n_roles=1, n_styles=1, n_plan=PLAN_FEATURES,
                                pitch_classes=True))


def test_pitch_embedding_puts_near_pitches_near():
    V, E = vocab_size(68), 12
    emb = pitch_embedding(V, E)
    assert emb.shape == (V, E)
    assert torch.allclose(emb.norm(dim=-1), torch.full((V,), E**0.5))
    d = torch.cdist(emb.double(), emb.double())
    # from any pitch, the distance grows with the interval up to two octaves, up or down
    for p in range(2, V):
        up = d[p, p : min(V, p + 25)]
        down = d[p, max(2, p - 24) : p + 1].flip(0)
        assert torch.all(up[1:] > up[:-1]) and torch.all(down[1:] > down[:-1])
    # a rest or a hold is farther from every pitch than the pitches within an octave
    assert d[REST, 2:].min() > d[2:14, 2:14].max() and d[HOLD, 2:].min() > d[2:14, 2:14].max()
    assert d[REST, HOLD] > 0
    with pytest.raises(ValueError, match="emb_dim >= 5"):
        pitch_embedding(V, 4)


def test_pitch_embedded_arranger_has_no_learned_embedding_and_decodes_every_token():
    cfg = ArrangerConfig(vocab=vocab_size(24), n_roles=2, n_styles=1, n_plan=PLAN_FEATURES,
                         emb_dim=8, d_model=16, n_layers=1, n_heads=2,
                         token_embedding="pitch")
    m = Arranger(cfg)
    assert not hasattr(m, "embedding")
    assert not any("embedding" in k for k in m.state_dict())  # rebuilt from the config
    tokens = torch.arange(cfg.vocab)
    assert torch.equal(m.embed(tokens), pitch_embedding(cfg.vocab, 8))
    assert torch.equal(m.nearest_tokens(m.embed(tokens)), tokens)
    # an estimate halfway between two pitches a tone apart is read as one of them
    mid = (m.embed(torch.tensor(10)) + m.embed(torch.tensor(12))) / 2
    assert m.nearest_tokens(mid).item() in (10, 11, 12)
    with pytest.raises(ValueError, match="token_embedding must be one of"):
        Arranger(ArrangerConfig(vocab=14, n_roles=1, n_styles=1, n_plan=PLAN_FEATURES,
                                token_embedding="random"))


def _span_model(span, n_layers=2):
    return _random_model(n_layers=n_layers, track_span=span)


@torch.no_grad()
def test_track_span_with_only_the_own_time_open_is_the_plain_track_attention():
    plain, span = _span_model(0), _span_model(1)
    state = plain.state_dict()
    assert set(span.state_dict()) - set(state) == {"span_bias.weight"}
    span.load_state_dict(state, strict=False)
    with torch.no_grad():  # offsets -1 and +1 (rows 0-1 and 4-5) shut, offset 0 open
        span.span_bias.weight.zero_()
        span.span_bias.weight[[0, 1, 4, 5]] = -1e9
    present = torch.tensor([[True, True, True, False], [True, True, True, True]])
    x_t, t, cond = _inputs(present=present)
    cond["plan"][1, -2:, -1] = 1  # padding at the end of the second window
    assert torch.allclose(mono(plain, x_t, t, cond), mono(span, x_t, t, cond), atol=1e-5)
    span.span_bias.weight.zero_()  # open: the neighbours' tokens change the outputs
    assert not torch.allclose(mono(plain, x_t, t, cond), mono(span, x_t, t, cond), atol=1e-3)


@torch.no_grad()
@pytest.mark.parametrize("span", [0, 1])
def test_track_span_lets_a_voice_hear_the_other_voices_next_quarter_in_one_block(span):
    m = _span_model(span, n_layers=1)
    m.time_bias.weight.fill_(-1e9)  # time attention shut but for each token's own
    m.time_bias.weight[m.cfg.max_distance] = 0.0
    x_t, t, cond = _inputs()
    other = x_t.clone()
    other[:, 1, 12:16] += 3.0  # track 1's fourth token (steps 12-15)
    a, b = mono(m, x_t, t, cond), mono(m, other, t, cond)
    changed = ~torch.isclose(a[:, 0], b[:, 0], atol=1e-5).all(-1).all(0)  # [T] of track 0
    # in one block, track 0 hears track 1 at its own time, and with a span at the neighbours'
    assert changed[12:16].all()
    assert changed[8:12].all() == (span == 1) and changed[16:20].all() == (span == 1)
    assert not changed[:8].any() and not changed[20:].any()


@torch.no_grad()
def test_track_span_masks_padding_and_silent_tracks_and_stays_finite():
    m = _span_model(1)
    present = torch.tensor([[True, True, False, False]] * B)
    x_t, t, cond = _inputs(present=present)
    cond["plan"][:, -2:, -1] = 1  # the last two tokens are padding
    other = x_t.clone()
    other[:, :, -8:] += 3.0
    other[:, 2:] += 3.0
    a, b = mono(m, x_t, t, cond), mono(m, other, t, cond)
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    assert torch.allclose(a[:, :2, :-8], b[:, :2, :-8], atol=1e-5)
    with pytest.raises(ValueError, match="track_span"):
        _span_model(-1)
