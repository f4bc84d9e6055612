"""Training the arranger: x0 prediction of every track kind with a classification loss.

A window's parts (tokens of mono roles, rolls of poly roles, drum hits; `structdiff.data.parts`)
become one x0 tensor (`Arranger.encode_x0`), are noised, and the network predicts them: the loss
is the cross-entropy of the mono tokens plus the binary cross-entropy of the roll cells and drum
hits, summed per track and step, averaged over the steps that are neither padding nor known, of
the tracks that play. Each window gets a random context, as generation uses them: nothing
known (a new song), some tracks known (accompaniment, regenerating a track), the first bars
known (the next window of a song, continuation) or all but a span (infilling). Style and
intensity are dropped at random for classifier-free guidance.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from structdiff.data.arrange_tensor import (
    INTENSITIES,
    INTENSITY_CUTS,
    PLAN_FEATURES,
    STEPS_PER_TOKEN,
    feature_slice,
    withhold_bass,
)
from structdiff.data.corpus import STYLES
from structdiff.data.drums import DRUM_CLASSES
from structdiff.data.parts import PartLayout, Parts, decode_parts
from structdiff.data.roles import load_role_map
from structdiff.data.tokens import vocab_size
from structdiff.diffusion import NoiseSchedule, drop_condition, sample
from structdiff.diffusion.masked import ORDERS, mask_tokens, sample_masked
from structdiff.models.arranger import Arranger, ArrangerConfig, count_parameters
from structdiff.training.base import DiffusionModule, checkpoint_training, init_matching
from structdiff.training.ema import EMA

_INTENSITY = feature_slice("intensity")
_PAD = feature_slice("pad")


def drop_intensity(plan: torch.Tensor, p: float, generator=None) -> torch.Tensor:
    """Plan features `[B, N, F]` with the intensity set to unknown in a random `p` of rows."""
    drop = (torch.rand(plan.shape[0], generator=generator) < p).to(plan.device)
    if not drop.any():
        return plan
    plan = plan.clone()
    unknown = plan.new_zeros(_INTENSITY.stop - _INTENSITY.start)
    unknown[len(INTENSITIES)] = 1
    real = plan[..., _PAD.start] < 0.5
    rows = drop[:, None] & real
    plan[..., _INTENSITY][rows] = unknown
    return plan


def drop_bass(plan: torch.Tensor, p: float, generator=None) -> torch.Tensor:
    """Plan features `[B, N, F]` with the chords' bass withheld (`withhold_bass`) in a random
    `p` of rows."""
    drop = (torch.rand(plan.shape[0], generator=generator) < p).to(plan.device)
    if not drop.any():
        return plan
    return torch.where(drop[:, None, None], withhold_bass(plan), plan)


def step_padding(plan: torch.Tensor) -> torch.Tensor:
    """Padding per step `[B, T]` from the per-token plan features `[B, N, F]`."""
    return (plan[..., _PAD.start] > 0.5).repeat_interleave(STEPS_PER_TOKEN, dim=1)


def random_context(present: torch.Tensor, T: int, p_tracks: float, p_prefix: float,
                   p_infill: float, generator=None) -> torch.Tensor:
    """A known mask `[B, K, T]` per window: some playing tracks, the first bars, all but a
    span, or nothing (the rest of the probability). A window with one playing track can't
    show some of its tracks; its draw falls through to the next kinds. Drawn on the CPU (the
    generator's), returned on `present`'s device."""
    device, present = present.device, present.cpu()
    B, K = present.shape
    mask = torch.zeros(B, K, T, dtype=torch.bool)
    unit = 4 * STEPS_PER_TOKEN  # a 4/4 bar at most; masks fall on token boundaries
    for b in range(B):
        r = float(torch.rand((), generator=generator))
        playing = torch.nonzero(present[b]).flatten()
        if r < p_tracks and len(playing) > 1:
            n = int(torch.randint(1, len(playing), (), generator=generator))
            known = playing[torch.randperm(len(playing), generator=generator)[:n]]
            mask[b, known] = True
        elif r < p_tracks + p_prefix:
            m = int(torch.randint(1, max(1, T // unit // 2) + 1, (), generator=generator)) * unit
            m = min(m, T - STEPS_PER_TOKEN)  # something is left to write
            mask[b, :, :m] = True
        elif r < p_tracks + p_prefix + p_infill:
            lo = int(torch.randint(0, T // STEPS_PER_TOKEN, (), generator=generator))
            hi = int(torch.randint(lo + 1, T // STEPS_PER_TOKEN + 1, (), generator=generator))
            mask[b] = True
            mask[b, :, lo * STEPS_PER_TOKEN : hi * STEPS_PER_TOKEN] = False
    return mask.to(device)


def given_condition(batch: dict) -> dict:
    """What a batch tells the network besides its tokens: style, plan, playing tracks and
    register shift (`collate`)."""
    return {k: batch[k] for k in ("style", "plan", "present", "register")}


class ArrangerModule(DiffusionModule):
    """The arranger, its EMA copy and its diffusion training.

    Args:
        styles: style names, in embedding order (a song of another style counts as none).
        roles: the track slots, in order (default: the role map's, else `satb`'s).
        role_map: the role map whose roles and track kinds the model has (None: `roles`, all
            monophonic, as the classical arranger).
        pitch_low, n_pitches: the mono token pitch range (`structdiff.data.tokens`).
        poly_low, poly_pitches: the poly roll's pitch range.
        intensity_cuts: note densities between the intensity levels of the training data
            (default: the embedded corpus's, `INTENSITY_CUTS`); generation measures a given
            song's sections with the same cuts.
        emb_dim, d_model, n_layers, n_heads, dropout, max_distance: the network.
        num_train_timesteps, schedule: the noise schedule (x0 prediction).
        diffusion: 'gaussian' (noise on the token embeddings, rolls and hits) or 'masked'
            (absorbing-state masking of the tokens; mono roles only,
            `structdiff.diffusion.masked`): the loss is then the cross-entropy of the masked
            tokens only.
        masked_order: a masked arranger's unmasking order in generation, 'confidence' or
            'random' (recorded in the bundle).
        pitch_classes: a masked arranger's network also reads the sounding pitch class of
            every step and the plan chord's tones, and writes a logit per pitch class
            (`ArrangerConfig.pitch_classes`).
        token_embedding: 'learned' (a free embedding of the mono tokens) or 'pitch' (a fixed
            one in which near pitches lie near each other; `arranger.pitch_embedding`).
        track_span: the track attention's reach in time tokens either side (0: the same time
            token only; 1: a voice also sees every voice's previous and next quarter note,
            where parallels, voice crossing and passing tones are decided).
        register: tell the network how many semitones each window's notes were moved to C
            (`ArrangerConfig.register`), so that voices keep their register in every key.
        lr, weight_decay, warmup_steps: AdamW with linear warm-up, then cosine decay.
        ema_decay: decay of the weight average that is sampled from and shipped.
        cfg_drop: probability of dropping the style, and separately the intensity.
        bass_drop: probability that a training window's plan chords come without their bass
            (`withhold_bass`), so that the network also learns to write the bass line's
            inversions itself.
        plan_bass: whether generation gives this arranger the plan chords' bass (recorded in
            the bundle as `plan_bass`; False needs `bass_drop` > 0): without it the bass
            voice chooses each chord's inversion, and the song's plan is then told the bass
            it got (`structdiff.pipeline.arrange`).
        p_tracks, p_prefix, p_infill: probability that a window shows some of its tracks,
            its first bars, everything but a span (else nothing).
        sample_every_n_epochs: log sample windows every n validation epochs (0: never).
        sample_windows, sample_steps: how many validation windows to arrange and the DDIM
            steps.
        default_steps, default_harmony: the DDIM steps and the `--harmony` lean that
            `generate` uses with this arranger unless told otherwise (recorded in the bundle).
        export_dir: write the bundle (`arranger.safetensors` + `arranger.json`) here when
            training ends (None: don't).
        init_from: a folder with an arranger bundle whose weights training starts from (e.g.
            `structdiff/models/weights/styles/chorale`, to train the shipped chorale arranger
            on); tensors whose shape differs start fresh. Its network settings must be given
            again (the config is not read from the bundle).
    """

    batch_key = "style"

    def __init__(
        self,
        styles: list[str] | None = None,
        roles: list[str] | None = None,
        role_map: str | None = None,
        pitch_low: int = 33,
        n_pitches: int = 54,
        poly_low: int = 36,
        poly_pitches: int = 48,
        intensity_cuts: list[float] | None = None,
        emb_dim: int = 12,
        d_model: int = 192,
        n_layers: int = 3,
        n_heads: int = 4,
        dropout: float = 0.1,
        max_distance: int = 64,
        num_train_timesteps: int = 1000,
        schedule: str = "cosine",
        diffusion: str = "gaussian",
        masked_order: str = "confidence",
        pitch_classes: bool = False,
        token_embedding: str = "learned",
        track_span: int = 0,
        register: bool = False,
        lr: float = 5e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 200,
        ema_decay: float = 0.999,
        cfg_drop: float = 0.1,
        bass_drop: float = 0.0,
        plan_bass: bool = True,
        p_tracks: float = 0.25,
        p_prefix: float = 0.25,
        p_infill: float = 0.1,
        sample_every_n_epochs: int = 5,
        sample_windows: int = 4,
        sample_steps: int = 20,
        default_steps: int = 20,
        default_harmony: float = 2.0,
        export_dir: str | None = None,
        init_from: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.styles = list(styles if styles is not None else STYLES)
        self.layout = PartLayout.of(role_map, roles, pitch_low=pitch_low, n_pitches=n_pitches,
                                    poly_low=poly_low, poly_pitches=poly_pitches)
        self.roles = list(self.layout.roles)
        kinds = list(self.layout.kinds) if role_map is not None else None
        self.programs = load_role_map(role_map).programs if role_map is not None else {}
        self.config = ArrangerConfig(
            vocab=vocab_size(n_pitches), n_roles=len(self.roles), n_styles=len(self.styles),
            n_plan=PLAN_FEATURES, steps_per_token=STEPS_PER_TOKEN, emb_dim=emb_dim,
            d_model=d_model, n_layers=n_layers, n_heads=n_heads, dropout=dropout,
            max_distance=max_distance, kinds=kinds, poly_pitches=poly_pitches,
            n_drums=len(DRUM_CLASSES), diffusion=diffusion, pitch_classes=pitch_classes,
            pitch_low=pitch_low, token_embedding=token_embedding, track_span=track_span,
            register=register,
        )
        if not 0.0 <= bass_drop <= 1.0:
            raise ValueError(f"bass_drop must be in 0..1, got {bass_drop}")
        if not plan_bass and bass_drop == 0.0:  # it would write bass lines it never learned
            raise ValueError("plan_bass false needs bass_drop > 0: an arranger never trained "
                             "without the plan's bass would be asked to write without it")
        if masked_order not in ORDERS:
            raise ValueError(f"masked_order must be one of {', '.join(ORDERS)}, "
                             f"got {masked_order!r}")
        self.model = Arranger(self.config)
        if init_from:
            fresh = init_matching(self.model, init_from, "arranger")
            print(f"arranger weights from {init_from}; fresh: {', '.join(fresh) or 'none'}")
        self.ema = EMA(self.model, ema_decay)
        self.noise = NoiseSchedule(num_train_timesteps, schedule, prediction="x0")
        self._started = time.time()

    @property
    def masked(self) -> bool:
        return self.config.diffusion == "masked"

    @staticmethod
    def denoiser(model: Arranger):
        def predict(x_t, t, cond):
            return model.x0_from_output(model(x_t, t, cond))

        return predict

    # --- training --------------------------------------------------------------------------

    def _loss(self, model: Arranger, batch: dict, generator: torch.Generator | None = None):
        if self.masked:
            return self._masked_loss(model, batch, generator)
        present, plan = batch["present"], batch["plan"]
        x0 = model.encode_x0(batch["tokens"], batch.get("roll"), batch.get("hits"))
        B, K, T, _ = x0.shape
        # drawn on the CPU generator (the same draws on every device), then moved
        t = torch.randint(0, self.noise.num_train_timesteps, (B,), generator=generator
                          ).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        x_t = self.noise.add_noise(x0, noise, t).to(x0.dtype)
        h = self.hparams
        known = random_context(present, T, h.p_tracks, h.p_prefix, h.p_infill, generator)
        out = model(x_t, t, self._condition(model, batch, known, x0))
        weight = (~known & present[:, :, None] & ~step_padding(plan)[:, None]).float()
        per_step = {}  # loss per track and step [B, K_kind, T] of each kind
        if "mono" in out:
            tokens = batch["tokens"]
            per_step["mono"] = F.cross_entropy(out["mono"].flatten(0, 2), tokens.flatten(),
                                               reduction="none").view(tokens.shape)
        if "poly" in out:
            per_step["poly"] = F.binary_cross_entropy_with_logits(
                out["poly"], batch["roll"].float(), reduction="none").sum((-2, -1))
        if "drums" in out:
            per_step["drums"] = F.binary_cross_entropy_with_logits(
                out["drums"], batch["hits"].float(), reduction="none").sum(-1)
        total = x0.new_zeros(())
        stage = "train" if model.training else "val"
        for kind, loss in per_step.items():
            w = weight[:, model.slots(kind, K)]
            total = total + (loss * w).sum()
            if len(per_step) > 1 and self._trainer is not None:
                self.log(f"{stage}/loss_{kind}", (loss * w).sum() / w.sum().clamp(min=1),
                         batch_size=B)
        return total / weight.sum().clamp(min=1)

    def _condition(self, model: Arranger, batch: dict, known: torch.Tensor,
                   x0: torch.Tensor) -> dict:
        """The network's condition for a batch: style, plan and playing tracks (style and
        intensity dropped at random in training, for guidance) and the known context, the x0
        values `[B, K, T, C]` where `known` `[B, K, T]`."""
        h = self.hparams
        cond = given_condition(batch)
        if model.training:
            cond = drop_condition(cond, h.cfg_drop, {"style": len(self.styles)})
            cond["plan"] = drop_intensity(batch["plan"], h.cfg_drop)
            if h.bass_drop:
                cond["plan"] = drop_bass(cond["plan"], h.bass_drop)
        elif not h.plan_bass:  # validation sees what generation will
            cond["plan"] = withhold_bass(cond["plan"])
        m = known[..., None].to(x0.dtype).expand_as(x0)
        cond["context"], cond["mask"] = x0 * m, m
        return cond

    def _masked_loss(self, model: Arranger, batch: dict,
                     generator: torch.Generator | None = None):
        """Cross-entropy of the masked tokens. Known context, padding and tracks that don't
        play are never masked, as in generation (where they are known)."""
        tokens, present, plan = batch["tokens"], batch["present"], batch["plan"]
        B, K, T = tokens.shape
        h = self.hparams
        known = random_context(present, T, h.p_tracks, h.p_prefix, h.p_infill, generator)
        t = torch.randint(0, self.noise.num_train_timesteps, (B,), generator=generator
                          ).to(tokens.device)
        maskable = ~known & present[:, :, None] & ~step_padding(plan)[:, None]
        x_tokens, masked = mask_tokens(tokens, t, self.noise.num_train_timesteps, maskable,
                                       generator)
        cond = self._condition(model, batch, known, model.masked_input(tokens))
        logits = model(model.masked_input(x_tokens), t, cond)["mono"]
        loss = F.cross_entropy(logits.flatten(0, 2), tokens.flatten(), reduction="none")
        w = masked.flatten().float()
        return (loss * w).sum() / w.sum().clamp(min=1)

    # --- samples, export ---------------------------------------------------------------------

    def sample_windows(self, batch: dict, steps: int, seed: int = 0) -> dict[str, torch.Tensor]:
        """The parts (`tokens`, `roll`, `hits`; `Arranger.decode_x0`) the EMA weights arrange
        for the plans of `batch`."""
        model = self.ema.shadow
        B, K = batch["present"].shape
        T = batch["plan"].shape[1] * STEPS_PER_TOKEN
        cond = given_condition(batch)
        if not self.hparams.plan_bass:
            cond["plan"] = withhold_bass(cond["plan"])
        generator = torch.Generator().manual_seed(seed)
        if self.masked:
            tokens = sample_masked(model.masked_logits, (B, K, T),
                                   self.noise.num_train_timesteps, cond, steps,
                                   generator=generator)
            return model.decode_x0(model.masked_input(tokens))
        x = sample(self.denoiser(model), (B, K, T, self.config.channels), self.noise, cond,
                   "ddim", steps, generator=generator)
        return model.decode_x0(x)

    def log_samples(self) -> None:
        from structdiff.training.arrange_logging import log_windows

        experiment = getattr(self.logger, "experiment", None)
        if experiment is None or not hasattr(experiment, "log"):
            return
        loader = self.trainer.datamodule.val_dataloader()
        batch = next(iter(loader))
        n = min(self.hparams.sample_windows, batch["style"].shape[0])
        batch = {k: v[:n] for k, v in batch.items()}
        sampled = self.sample_windows(batch, self.hparams.sample_steps, seed=self.current_epoch)
        parts = [Parts(**{k: v[i].numpy() for k, v in sampled.items()}) for i in range(n)]
        notes = [decode_parts(p, self.layout) for p in parts]
        log_windows(self.logger, notes, batch,
                    [self.styles[s] if s < len(self.styles) else "none"
                     for s in batch["style"].tolist()], step=self.global_step)

    def export(self, folder: str) -> None:
        metrics = {k: float(v) for k, v in self.trainer.callback_metrics.items()
                   if k in ("train/loss", "val/loss")}
        training = {"epochs": self.current_epoch + 1, "steps": int(self.global_step),
                    "seconds": round(time.time() - self._started, 1), **metrics}
        self.save(folder, training)

    def save(self, folder: str, training: dict) -> None:
        """Write the EMA weights as the bundle `arranger` in `folder`."""
        from structdiff.models.bundle import save_bundle

        meta = {
            "kind": "arranger",
            "config": self.config.to_dict(),
            "styles": self.styles,
            "roles": self.roles,
            "kinds": self.config.slot_kinds,
            "programs": self.programs,
            "role_map": self.hparams.role_map,
            "pitch_low": self.hparams.pitch_low,
            "n_pitches": self.hparams.n_pitches,
            "poly_low": self.hparams.poly_low,
            "poly_pitches": self.hparams.poly_pitches,
            "intensity_cuts": list(self.hparams.intensity_cuts or INTENSITY_CUTS),
            "default_steps": self.hparams.default_steps,
            "default_harmony": self.hparams.default_harmony,
            **({"order": self.hparams.masked_order} if self.masked else {}),
            **({} if self.hparams.plan_bass else {"plan_bass": False}),
            "noise": {"num_train_timesteps": self.noise.num_train_timesteps,
                      "schedule": self.noise.schedule, "prediction": self.noise.prediction},
            "training": {"parameters": count_parameters(self.model), **training},
        }
        save_bundle(self.ema.shadow, meta, folder, "arranger")


def export_checkpoint(ckpt_path: str, folder: str) -> None:
    """The bundle of a Lightning checkpoint (e.g. of a run stopped before it ended)."""
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    hparams = {k: v for k, v in state["hyper_parameters"].items() if not k.startswith("_")}
    module = ArrangerModule(**hparams)
    module.load_state_dict(state["state_dict"])
    training = checkpoint_training(state, ckpt_path)
    module.save(folder, training)

