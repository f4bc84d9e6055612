"""Train the debug arranger on a tiny prepared corpus (CPU, seconds); its random contexts and
intensity dropout."""

import json

import numpy as np
import pytest
import torch

from structdiff.data.arrange_tensor import (
    INTENSITIES,
    PLAN_FEATURES,
    ROLES,
    STEPS_PER_TOKEN,
    feature_slice,
)
from structdiff.models.arranger import Arranger
from structdiff.pipeline.arrange import load_arranger
from structdiff.training.arranger_module import (
    drop_bass,
    drop_intensity,
    random_context,
    step_padding,
)
from tests.debug_models import tiny_corpus, train_debug, two_style_splits

UNIT = 4 * STEPS_PER_TOKEN  # a prefix is a whole number of 4/4 bars


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prepared):
    root = tmp_path_factory.mktemp("arranger")
    return train_debug("arranger", prepared, root)


def test_training_writes_a_loadable_bundle(trained):
    assert (trained / "arranger.safetensors").stat().st_size > 10_000
    meta = json.loads((trained / "arranger.json").read_text())
    assert meta["kind"] == "arranger"
    assert meta["roles"] == list(ROLES)
    assert meta["training"]["steps"] >= 1 and meta["training"]["parameters"] > 0
    assert meta["config"]["d_model"] == 32 and meta["config"]["n_plan"] == PLAN_FEATURES
    assert meta["noise"]["prediction"] == "x0"
    assert "plan_bass" not in meta  # told the plan's bass, as every arranger before
    bundle = load_arranger(trained)
    assert isinstance(bundle.model, Arranger) and not bundle.model.training
    assert bundle.roles == list(ROLES) and bundle.styles == meta["styles"]
    assert bundle.noise.num_train_timesteps == 100
    assert (bundle.pitch_low, bundle.n_pitches) == (meta["pitch_low"], meta["n_pitches"])
    assert next((trained.parent / "run_arranger").rglob("last.ckpt"), None) is not None


def test_init_from_starts_from_a_bundles_weights(trained):
    from structdiff.models.bundle import read_state
    from structdiff.training.arranger_module import ArrangerModule

    meta = json.loads((trained / "arranger.json").read_text())["config"]
    settings = {k: meta[k] for k in ("d_model", "n_layers", "n_heads", "emb_dim")}
    fresh = ArrangerModule(**settings)
    module = ArrangerModule(**settings, init_from=str(trained))
    shipped = read_state(trained, "arranger")
    state = module.model.state_dict()
    assert set(shipped) == set(state)
    assert all(torch.equal(state[k], shipped[k]) for k in state)
    assert not all(torch.equal(fresh.model.state_dict()[k], shipped[k]) for k in state)
    assert all(torch.equal(p, e) for p, e in zip(module.model.parameters(),
                                                 module.ema.shadow.parameters()))


def test_only_styles_keeps_the_songs_of_those_styles(prepared, monkeypatch):
    from structdiff.training.arranger_data import ArrangeDataModule

    two_style_splits(prepared, monkeypatch)
    every = ArrangeDataModule(str(prepared))
    every.setup()
    chorales = ArrangeDataModule(str(prepared), only_styles=["chorale"])
    chorales.setup()
    for split in ("train", "validation"):
        kept = {ex.style for ex in chorales.examples[split]}
        assert kept == {"chorale"}
        assert len(chorales.examples[split]) < len(every.examples[split]) or (
            {ex.style for ex in every.examples[split]} == {"chorale"})
    with pytest.raises(ValueError, match="no train songs of the styles quartet"):
        ArrangeDataModule(str(prepared), only_styles=["quartet"]).setup()


# -- random contexts ------------------------------------------------------------------------

PRESENT = torch.tensor([
    [True, True, True, True, False],
    [True, False, True, True, False],
    [False, True, False, True, True],
    [True, True, True, True, True],
] * 16)  # 64 windows
T = 64


def _draw(p_tracks, p_prefix, p_infill, seed=0, present=PRESENT, steps=T):
    g = torch.Generator().manual_seed(seed)
    return random_context(present, steps, p_tracks, p_prefix, p_infill, g)


def test_track_contexts_know_some_playing_tracks_over_all_steps():
    for seed in range(5):
        mask = _draw(1.0, 0.0, 0.0, seed)
        assert mask.shape == (len(PRESENT), 5, T) and mask.dtype == torch.bool
        sizes = set()
        for b in range(len(PRESENT)):
            per_track = mask[b].any(dim=1)
            assert torch.equal(per_track, mask[b].all(dim=1))  # whole tracks
            known, playing = set(torch.nonzero(per_track).flatten().tolist()), set(
                torch.nonzero(PRESENT[b]).flatten().tolist())
            assert known and known < playing  # absent tracks are never known
            sizes.add(len(known))
        assert len(sizes) > 1  # not always the same number of tracks


def test_prefix_contexts_know_the_first_bars_of_every_track():
    lengths = set()
    for seed in range(5):
        mask = _draw(0.0, 1.0, 0.0, seed)
        for b in range(len(PRESENT)):
            m = int(mask[b, 0].sum())
            assert m % UNIT == 0 and UNIT <= m <= T // 2
            assert mask[b, :, :m].all() and not mask[b, :, m:].any()
            lengths.add(m)
    assert lengths == {16, 32}


def test_infill_contexts_leave_one_span_of_whole_tokens_free():
    mask = _draw(0.0, 0.0, 1.0)
    for b in range(len(PRESENT)):
        assert torch.equal(mask[b], mask[b, :1].expand_as(mask[b]))  # the same for all tracks
        free = torch.nonzero(~mask[b, 0]).flatten()
        assert len(free) >= STEPS_PER_TOKEN and len(free) % STEPS_PER_TOKEN == 0
        assert free[0] % STEPS_PER_TOKEN == 0
        assert torch.equal(free, torch.arange(int(free[0]), int(free[-1]) + 1))  # one span


def test_no_context_when_every_probability_is_0():
    assert not _draw(0.0, 0.0, 0.0).any()


def test_context_kinds_mix_by_their_probabilities():
    mask = _draw(0.25, 0.25, 0.25, present=torch.ones(400, 4, dtype=torch.bool))
    none = (~mask.flatten(1).any(dim=1)).float().mean()
    tracks = (mask.all(dim=2).any(dim=1) & ~mask.all(dim=2).all(dim=1)).float().mean()
    assert 0.15 < none < 0.35 and 0.15 < tracks < 0.35


def test_the_same_generator_seed_gives_the_same_contexts():
    assert torch.equal(_draw(0.3, 0.3, 0.3, seed=9), _draw(0.3, 0.3, 0.3, seed=9))
    assert not torch.equal(_draw(0.3, 0.3, 0.3, seed=9), _draw(0.3, 0.3, 0.3, seed=10))


def test_prefix_context_in_a_short_window():
    mask = _draw(0.0, 1.0, 0.0, present=torch.ones(2, 4, dtype=torch.bool), steps=16)
    assert mask.shape == (2, 4, 16)
    # a prefix, and something left to write
    assert mask[:, :, 0].all() and not mask[:, :, -1].any()


# -- intensity dropout ------------------------------------------------------------------------


def _plans(n=3, tokens=8, padded=2):
    g = torch.Generator().manual_seed(0)
    plan = torch.zeros(n, tokens, PLAN_FEATURES)
    plan[..., : feature_slice("intensity").start] = torch.rand(n, tokens, 1, generator=g)
    levels = torch.randint(0, len(INTENSITIES), (n, tokens), generator=g)
    intensity = torch.nn.functional.one_hot(levels, len(INTENSITIES) + 1).float()
    plan[..., feature_slice("intensity")] = intensity
    plan[:, tokens - padded :] = 0
    plan[:, tokens - padded :, -1] = 1
    return plan


def test_drop_intensity_sets_every_real_token_to_unknown():
    plan = _plans()
    before = plan.clone()
    dropped = drop_intensity(plan, 1.0)
    assert torch.equal(plan, before)  # the input is not changed in place
    unknown = torch.zeros(len(INTENSITIES) + 1)
    unknown[-1] = 1
    real = dropped[:, :-2, feature_slice("intensity")]
    assert torch.equal(real, unknown.expand_as(real))
    assert torch.equal(dropped[:, -2:], plan[:, -2:])  # padding stays all zero
    others = [i for i in range(PLAN_FEATURES) if not feature_slice("intensity").start <= i
              < feature_slice("intensity").stop]
    assert torch.equal(dropped[..., others], plan[..., others])


def test_drop_intensity_0_changes_nothing_and_half_drops_whole_rows():
    plan = _plans(n=200)
    assert torch.equal(drop_intensity(plan, 0.0), plan)
    dropped = drop_intensity(plan, 0.5, generator=torch.Generator().manual_seed(1))
    changed = (dropped != plan).flatten(1).any(dim=1)
    assert 0.35 < changed.float().mean() < 0.65
    sl = feature_slice("intensity")
    whole = (dropped[changed, :-2, sl.stop - 1] == 1).all()
    assert whole  # a dropped row loses the intensity of every real token


def test_drop_bass_withholds_the_bass_of_whole_rows_and_nothing_else():
    plan = _plans(n=200)
    assert torch.equal(drop_bass(plan, 0.0), plan)
    dropped = drop_bass(plan, 0.5, generator=torch.Generator().manual_seed(1))
    sl = feature_slice("bass")
    gone = (dropped[..., sl] == 0).flatten(1).all(dim=1)
    assert 0.35 < gone.float().mean() < 0.65
    assert torch.equal(dropped[~gone], plan[~gone])  # other rows untouched
    others = [i for i in range(PLAN_FEATURES) if not sl.start <= i < sl.stop]
    assert torch.equal(dropped[..., others], plan[..., others])


def test_step_padding_repeats_token_padding_over_its_steps():
    pad = step_padding(_plans(n=1))
    assert pad.shape == (1, 8 * STEPS_PER_TOKEN)
    assert pad[0].tolist() == [False] * 24 + [True] * 8


def test_a_pitch_embedded_arranger_starts_from_a_learned_ones_weights_and_ships(trained,
                                                                                 tmp_path):
    """`token_embedding: pitch` from a bundle with a learned embedding: every other weight is
    taken, the embedding is the fixed one, and the exported bundle loads with it."""
    from structdiff.models.arranger import pitch_embedding
    from structdiff.models.bundle import read_state
    from structdiff.training.arranger_module import ArrangerModule

    meta = json.loads((trained / "arranger.json").read_text())["config"]
    settings = {k: meta[k] for k in ("d_model", "n_layers", "n_heads", "emb_dim")}
    module = ArrangerModule(**settings, token_embedding="pitch", init_from=str(trained))
    shipped = read_state(trained, "arranger")
    state = module.model.state_dict()
    assert set(shipped) - set(state) == {"embedding.weight"}
    assert all(torch.equal(state[k], shipped[k]) for k in state)
    fixed = pitch_embedding(meta["vocab"], meta["emb_dim"])
    assert torch.equal(module.model.token_embeddings(), fixed)
    module.save(str(tmp_path), {"steps": 0})
    bundle = load_arranger(tmp_path)
    assert bundle.model.cfg.token_embedding == "pitch"
    assert torch.equal(bundle.model.token_embeddings(), fixed)


# -- transposed training windows ------------------------------------------------------------


def _chord_relative(item):
    """(voice, step) -> (pitch - chord root) % 12 where a pitch is struck under a chord."""
    from structdiff.data.tokens import N_SPECIAL

    root = item["plan"][:, feature_slice("root")].argmax(axis=1)  # per token; 12: no chord
    out = {}
    for k, t in zip(*np.nonzero(item["tokens"] >= N_SPECIAL)):
        r = root[t // STEPS_PER_TOKEN]
        if r < 12:
            out[(k, t)] = (int(item["tokens"][k, t]) - N_SPECIAL - r) % 12
    return out


def test_a_transposed_window_moves_notes_and_chords_together(prepared):
    from structdiff.data.tokens import N_SPECIAL
    from structdiff.training.arranger_data import (
        ArrangeDataModule,
        transpose_room,
        transpose_window,
        window,
    )

    dm = ArrangeDataModule(str(prepared))
    dm.setup()
    ex = dm.examples["train"][0]
    item = window(ex, int(ex.starts[0]))
    lo, hi = transpose_room(item, 54, 48)
    assert lo < 0 < hi
    for shift in (lo, -3, 4, hi):
        moved = transpose_window(item, shift)
        pitched = item["tokens"] >= N_SPECIAL
        assert np.array_equal(moved["tokens"][pitched], item["tokens"][pitched] + shift)
        assert np.array_equal(moved["tokens"][~pitched], item["tokens"][~pitched])
        assert _chord_relative(moved) == _chord_relative(item) != {}
        root = feature_slice("root")
        assert np.array_equal(moved["plan"][:, root.stop - 1], item["plan"][:, root.stop - 1])
        others = np.ones(item["plan"].shape[1], dtype=bool)
        others[root] = others[feature_slice("bass")] = False
        assert np.array_equal(moved["plan"][:, others], item["plan"][:, others])
    assert int(transpose_window(item, hi)["tokens"].max()) == N_SPECIAL + 53
    assert int(transpose_window(item, lo)["tokens"][item["tokens"] >= N_SPECIAL].min()) == N_SPECIAL


def test_training_windows_are_transposed_and_validation_windows_are_not(prepared):
    from structdiff.training.arranger_data import ArrangeDataModule

    plain = ArrangeDataModule(str(prepared), windows_per_epoch=64)
    plain.setup()
    moved = ArrangeDataModule(str(prepared), windows_per_epoch=64, transpose=6)
    moved.setup()
    a, b = plain.train_dataloader().dataset, moved.train_dataloader().dataset
    shifts = set()
    for i in range(64):
        x, y = a[i], b[i]
        ok = x["tokens"] >= 2
        assert np.array_equal(x["tokens"] >= 2, y["tokens"] >= 2)  # the same window
        if ok.any():
            shift = set((y["tokens"][ok].astype(int) - x["tokens"][ok]).tolist())
            assert len(shift) == 1 and -6 <= next(iter(shift)) <= 6
            shifts |= shift
            assert y["tokens"].max() <= 55
    assert len(shifts) > 5
    va, vb = plain.val_dataloader().dataset, moved.val_dataloader().dataset
    assert all(np.array_equal(va[i]["tokens"], vb[i]["tokens"]) for i in range(len(va)))
    with pytest.raises(ValueError, match="transpose must be 0..6"):
        ArrangeDataModule(str(prepared), transpose=7)
    with pytest.raises(ValueError, match="transpose and stream"):
        ArrangeDataModule(str(prepared), transpose=2, stream=True)


# -- the register condition -----------------------------------------------------------------


def test_the_register_condition_starts_at_zero_and_then_tells_registers_apart():
    from structdiff.models.arranger import ArrangerConfig

    torch.manual_seed(0)
    cfg = ArrangerConfig(vocab=20, n_roles=2, n_styles=1, n_plan=PLAN_FEATURES, emb_dim=8,
                         d_model=16, n_layers=1, n_heads=2, register=True)
    model = Arranger(cfg).eval()
    x = torch.randn(1, 2, 16, cfg.channels)
    cond = {"style": torch.tensor([1]), "plan": torch.zeros(1, 4, PLAN_FEATURES),
            "present": torch.ones(1, 2, dtype=torch.bool)}
    t = torch.tensor([10])
    unknown = model(x, t, cond)["mono"]
    # a model trained without it (its embedding still zero) reads every register alike
    assert torch.equal(model(x, t, {**cond, "register": torch.tensor([5])})["mono"], unknown)
    for p in model.parameters():  # a trained model (its adaptive norms no longer zero)
        torch.nn.init.normal_(p, std=0.2)
    up, down = (model(x, t, {**cond, "register": torch.tensor([s])})["mono"] for s in (5, -5))
    assert not torch.allclose(up, down)
    assert torch.equal(model(x, t, {**cond, "register": torch.tensor([40])})["mono"],
                       model(x, t, {**cond, "register": torch.tensor([12])})["mono"])


def test_windows_carry_their_register_and_a_transposition_adds_to_it(prepared):
    from structdiff.data.arrange_tensor import key_shift
    from structdiff.training.arranger_data import (
        ArrangeDataModule,
        collate,
        transpose_window,
        window,
    )

    dm = ArrangeDataModule(str(prepared))
    dm.setup()
    for ex in dm.examples["train"][:3]:
        item = window(ex, int(ex.starts[0]))
        assert item["register"] == ex.shift
        assert transpose_window(item, -2)["register"] == ex.shift - 2
    keys = {ex.source: ex.shift for ex in dm.examples["train"]}
    assert set(keys.values()) <= set(range(-6, 6))
    batch = collate([{**window(ex, int(ex.starts[0])), "style": 0}
                     for ex in dm.examples["train"][:2]])
    assert batch["register"].tolist() == [ex.shift for ex in dm.examples["train"][:2]]
    assert key_shift(None) == 0


def test_an_arranger_that_reads_its_register_trains_and_hears_the_songs_key(
        prepared, tmp_path, monkeypatch):
    from structdiff.data.song import Key, Plan, Section, Song, Tempo, TimeSignature
    from structdiff.pipeline.arrange import arrange

    folder = train_debug("arranger", prepared, tmp_path, "--model.register", "true",
                         "--data.transpose", "3", name="arranger_register")
    bundle = load_arranger(folder)
    assert bundle.model.cfg.register
    seen = []
    forward = Arranger.forward

    def spy(self, x_t, t, cond):
        seen.append(cond.get("register"))
        return forward(self, x_t, t, cond)

    monkeypatch.setattr(Arranger, "forward", spy)
    song = Song([], np.arange(4, dtype=np.int64) * 16, 64, [TimeSignature(0, 4, 4)],
                [Tempo(0, 100.0)])
    for tonic, shift in ((7, 5), (2, -2)):  # G: moved up 5 to C; D: down 2
        seen.clear()
        plan = Plan(Key(tonic, "major"), [], [Section(0, 4, "A")], [])
        arrange(bundle, song, plan, list(bundle.roles), steps=2)
        assert seen and all(r is not None and r.tolist() == [shift] for r in seen)


@pytest.mark.parametrize("options, message", [
    ({"plan_bass": False}, "plan_bass false needs bass_drop > 0"),
    ({"bass_drop": 1.5}, "bass_drop must be in 0..1"),
])
def test_bass_options_that_cannot_work_are_refused_at_the_start(options, message):
    from structdiff.training.arranger_module import ArrangerModule

    with pytest.raises(ValueError, match=message):
        ArrangerModule(d_model=16, n_layers=1, n_heads=2, emb_dim=8, **options)


def test_an_arranger_trained_without_the_plan_bass_says_so_and_validates_without_it(
        prepared, tmp_path, monkeypatch):
    """`bass_drop` withholds the bass from some training windows; `plan_bass: false` is
    written to the bundle, and validation sees every window without it, as generation will."""
    from structdiff.models.arranger import Arranger

    seen = []
    forward = Arranger.forward

    def spy(self, x_t, t, cond):
        seen.append((self.training, cond["plan"][..., feature_slice("bass")].abs().sum().item()))
        return forward(self, x_t, t, cond)

    monkeypatch.setattr(Arranger, "forward", spy)
    folder = train_debug("arranger", prepared, tmp_path, "--model.bass_drop", "1.0",
                         "--model.plan_bass", "false", name="arranger_free_bass")
    assert json.loads((folder / "arranger.json").read_text())["plan_bass"] is False
    assert seen and all(bass == 0 for _, bass in seen)  # training (drop 1.0) and validation
    assert {training for training, _ in seen} == {True, False}
