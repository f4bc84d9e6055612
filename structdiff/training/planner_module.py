"""Training the planner: x0 prediction with cross-entropy per categorical group.

Plans are one-hot per group (`structdiff.data.plan_tensor`); the diffused x0 is their analog
form 2 * one_hot - 1. The network predicts logits per group; the loss is their cross-entropy
against the true classes (on real bars and used chord slots), and for sampling the logits
become the x0 estimate 2 * softmax - 1 (DESIGN.md: x0 through a classification loss learns
within minutes where MSE on one-hot data learns "everything off").

Each training plan gets a random context, as users give them: its form (labels and section
starts), its chords on a span of bars, both or neither — the same model then fills in
whatever a user leaves open. Style and mode are dropped at random for classifier-free
guidance.

A masked planner (`diffusion="masked"`) is trained as an absorbing-state diffusion over one
token per group and bar (`structdiff.diffusion.masked`): each group outside the plan's context
is masked with the step's rate, and the loss is the same weighted cross-entropy over the
masked groups only. Unused chord slots and padding are never masked, as in generation.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from structdiff.data.corpus import STYLES
from structdiff.data.plan_tensor import (
    CONDITION_NAMES,
    MAX_SLOTS,
    N_FEATURES,
    PLAN_LAYOUT,
    chord_group_names,
)
from structdiff.diffusion import NoiseSchedule, drop_condition, sample
from structdiff.diffusion.masked import mask_tokens
from structdiff.models.planner import (
    MODES,
    Planner,
    PlannerConfig,
    count_parameters,
    group_mask,
    masked_input,
    plan_tokens,
    sample_masked_plan,
    used_groups,
    x0_from_logits,
)
from structdiff.training.base import DiffusionModule, init_matching
from structdiff.training.ema import EMA

_GROUPS = [(g.name, g.offset, g.size) for g in PLAN_LAYOUT]
_FORM_GROUPS = ("label", "section_start")
_CHORD_GROUPS = [n for kind in ("root", "quality", "bass") for n in chord_group_names(kind)]


def group_weights(pad: torch.Tensor, slot_valid: torch.Tensor,
                  form_weight: float = 1.0) -> torch.Tensor:
    """The loss weight `[B, L, G]` of every group of every bar: `form_weight` for the per-bar
    form groups (label, section start, phrase end) of real bars, 1 for the chord groups of
    used slots, 0 for padding and unused slots. pad [B, L] (True = padding); slot_valid
    [B, L, S]."""
    form = torch.tensor([name not in _CHORD_GROUPS for name, _, _ in _GROUPS], device=pad.device)
    scale = torch.where(form, float(form_weight), 1.0)
    return used_groups(pad, slot_valid).float() * scale


def group_cross_entropy(
    logits: torch.Tensor, one_hot: torch.Tensor, pad: torch.Tensor, slot_valid: torch.Tensor,
    form_weight: float = 1.0, only: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted mean cross-entropy over every group of every real bar (chord groups: used
    slots only); the per-bar form groups (label, section start, phrase end) weigh
    `form_weight` each, a chord group 1. `only` `[B, L, G]` (bool): count these groups only
    (a masked planner's masked ones).

    logits, one_hot [B, L, F]; pad [B, L] (True = padding); slot_valid [B, L, S]."""
    weight = group_weights(pad, slot_valid, form_weight)
    if only is not None:
        weight = weight * only.float()
    total = logits.new_zeros(())
    for k, (_, o, n) in enumerate(_GROUPS):
        target = one_hot[..., o : o + n].argmax(dim=-1)
        ce = F.cross_entropy(logits[..., o : o + n].flatten(0, 1), target.flatten(),
                             reduction="none").view_as(weight[..., k])
        total = total + (ce * weight[..., k]).sum()
    return total / weight.sum().clamp(min=1)


class PlannerModule(DiffusionModule):
    """The planner, its EMA copy and its diffusion training.

    Args:
        styles: style names, in embedding order (a song of another style counts as none).
        d_model, n_layers, n_heads, dropout, max_distance: the network (`PlannerConfig`).
        num_train_timesteps, schedule: the noise schedule (x0 prediction).
        lr, weight_decay, warmup_steps: AdamW with linear warm-up, then cosine decay.
        ema_decay: decay of the weight average that is sampled from and shipped.
        cfg_drop: probability of dropping style and mode (classifier-free guidance).
        p_form, p_chords: probability that a training plan shows its form, its chords.
        form_weight: loss weight of each per-bar form group (label, section start, phrase
            end) against 1 for each chord group: a bar has 3 form groups and up to 24 chord
            groups, and without a weight the form gets little of the gradient.
        sample_every_n_epochs: log sample plans every n validation epochs (0: never).
        sample_bars, sample_steps: length and DDIM steps of the logged samples.
        diffusion: 'gaussian' (noise on the one-hot plan) or 'masked' (absorbing-state
            diffusion over its groups; the module docstring).
        export_dir: write the bundle (`planner.safetensors` + `planner.json`) here when
            training ends (None: don't).
        length_encoding: 'table' (a learned vector per song length, as planners shipped
            before session 20) or 'smooth' (an MLP of the log length: lengths seen rarely
            in training condition like their neighbours; `PlannerConfig`).
        init_from: a folder with a planner bundle whose weights training starts from (e.g.
            `structdiff/models/weights`, the shipped classical planner); tensors whose shape
            differs (the style embedding of another list of styles) start fresh.
    """

    def __init__(
        self,
        styles: list[str] | None = None,
        d_model: int = 192,
        n_layers: int = 4,
        n_heads: int = 4,
        dropout: float = 0.1,
        max_distance: int = 64,
        num_train_timesteps: int = 1000,
        schedule: str = "cosine",
        lr: float = 3e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 200,
        ema_decay: float = 0.999,
        cfg_drop: float = 0.1,
        p_form: float = 0.3,
        p_chords: float = 0.3,
        form_weight: float = 4.0,
        sample_every_n_epochs: int = 5,
        sample_bars: int = 32,
        sample_steps: int = 20,
        diffusion: str = "gaussian",
        export_dir: str | None = None,
        init_from: str | None = None,
        length_encoding: str = "table",
    ):
        super().__init__()
        self.save_hyperparameters()
        self.styles = list(styles if styles is not None else STYLES)
        self.config = PlannerConfig(
            n_features=N_FEATURES, n_slots=MAX_SLOTS, n_bar_cond=len(CONDITION_NAMES),
            n_styles=len(self.styles), d_model=d_model, n_layers=n_layers, n_heads=n_heads,
            dropout=dropout, max_distance=max_distance, diffusion=diffusion,
            length_encoding=length_encoding,
        )
        self.model = Planner(self.config)
        if init_from:
            fresh = init_matching(self.model, init_from, "planner")
            print(f"planner weights from {init_from}; fresh: {', '.join(fresh) or 'none'}")
        self.ema = EMA(self.model, ema_decay)
        self.noise = NoiseSchedule(num_train_timesteps, schedule, prediction="x0")
        self.null_cond = {"style": len(self.styles), "mode": len(MODES)}
        self._started = time.time()

    # --- the denoiser as the sampler sees it ----------------------------------------------

    @staticmethod
    def denoiser(model: Planner):
        def predict(x_t, t, cond):
            return x0_from_logits(model(x_t, t, cond))

        return predict

    # --- training --------------------------------------------------------------------------

    def random_context(self, x0: torch.Tensor, batch: dict) -> torch.Tensor:
        """A mask `[B, L, F]` of what each plan shows as context: form, chords, both, none."""
        B, L, _ = x0.shape
        mask = torch.zeros_like(x0)
        real = ~batch["pad"]
        for b in range(B):
            n = int(real[b].sum())
            if torch.rand(()) < self.hparams.p_form:
                for name, o, size in _GROUPS:
                    if name in _FORM_GROUPS:
                        mask[b, :n, o : o + size] = 1
            if torch.rand(()) < self.hparams.p_chords:
                if torch.rand(()) < 0.5:
                    lo, hi = 0, n
                else:
                    lo = int(torch.randint(0, n, ()))
                    hi = int(torch.randint(lo + 1, n + 1, ()))
                for name, o, size in _GROUPS:
                    if name in _CHORD_GROUPS:
                        mask[b, lo:hi, o : o + size] = 1
        return mask

    @property
    def masked(self) -> bool:
        return self.config.diffusion == "masked"

    def _loss(self, model: Planner, batch: dict, generator: torch.Generator | None = None):
        if self.masked:
            return self._masked_loss(model, batch, generator)
        one_hot = batch["x"]
        x0 = 2 * one_hot - 1
        B = x0.shape[0]
        # drawn on the CPU generator (the same draws on any device), moved to the batch's
        t = torch.randint(0, self.noise.num_train_timesteps, (B,), generator=generator
                          ).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        x_t = self.noise.add_noise(x0, noise, t).to(x0.dtype)
        cond = {k: batch[k] for k in ("style", "mode", "slot_valid", "bar_cond", "pad")}
        if model.training:
            cond = drop_condition(cond, self.hparams.cfg_drop, self.null_cond)
            mask = self.random_context(x0, batch)
            cond["context"], cond["mask"] = x0 * mask, mask
        logits = model(x_t, t, cond)
        return group_cross_entropy(logits, one_hot, batch["pad"], batch["slot_valid"],
                                   self.hparams.form_weight)

    def _masked_loss(self, model: Planner, batch: dict,
                     generator: torch.Generator | None = None):
        """Cross-entropy of the masked groups; context, padding and unused slots stay."""
        one_hot = batch["x"]
        B = one_hot.shape[0]
        cond = {k: batch[k] for k in ("style", "mode", "slot_valid", "bar_cond", "pad")}
        maskable = used_groups(batch["pad"], batch["slot_valid"])
        if model.training:
            cond = drop_condition(cond, self.hparams.cfg_drop, self.null_cond)
            mask = self.random_context(one_hot, batch)
            cond["context"], cond["mask"] = (2 * one_hot - 1) * mask, mask
            maskable &= ~group_mask(mask)
        t = torch.randint(0, self.noise.num_train_timesteps, (B,), generator=generator
                          ).to(one_hot.device)
        tokens = plan_tokens(one_hot)
        x_tokens, masked = mask_tokens(tokens, t, self.noise.num_train_timesteps, maskable,
                                       generator)
        logits = model(masked_input(x_tokens), t, cond)
        return group_cross_entropy(logits, one_hot, batch["pad"], batch["slot_valid"],
                                   self.hparams.form_weight, only=masked)

    # --- samples, export ---------------------------------------------------------------------

    def sample_plans(self, n_bars: int, styles: list[int], steps: int, seed: int = 0):
        """Plans of `n_bars` 4/4 bars, one per style index, from the EMA weights."""
        from structdiff.data.plan_tensor import decode_plan, plan_condition, uniform_grid
        from structdiff.data.song import Key

        grid = uniform_grid(n_bars)
        B = len(styles)
        cond = {
            "style": torch.tensor(styles),
            "mode": torch.zeros(B, dtype=torch.long),
            "slot_valid": torch.from_numpy(grid.slot_valid)[None].expand(B, -1, -1),
            "bar_cond": torch.from_numpy(plan_condition(grid))[None].expand(B, -1, -1),
            "pad": torch.zeros(B, n_bars, dtype=torch.bool),
        }
        generator = torch.Generator().manual_seed(seed)
        if self.masked:
            x = sample_masked_plan(self.ema.shadow, cond, self.noise.num_train_timesteps,
                                   steps, generator)
        else:
            x = sample(self.denoiser(self.ema.shadow), (B, n_bars, N_FEATURES), self.noise,
                       cond, "ddim", steps, generator=generator)
        return [decode_plan(x[b].numpy(), grid, Key(0, "major")) for b in range(B)], grid

    def log_samples(self) -> None:
        from structdiff.training.plan_logging import log_plans

        styles = list(range(min(4, len(self.styles))))
        plans, grid = self.sample_plans(self.hparams.sample_bars, styles,
                                        self.hparams.sample_steps, seed=self.current_epoch)
        log_plans(self.logger, plans, [self.styles[s] for s in styles], grid,
                  step=self.global_step)

    def export(self, folder: str) -> None:
        metrics = {k: float(v) for k, v in self.trainer.callback_metrics.items()
                   if k in ("train/loss", "val/loss")}
        datamodule = getattr(self.trainer, "datamodule", None)
        training = {"epochs": self.current_epoch + 1, "steps": int(self.global_step),
                    "seconds": round(time.time() - self._started, 1), **metrics}
        self.save(folder, getattr(datamodule, "key_counts", {}), training)

    def save(self, folder: str, key_counts: dict, training: dict) -> None:
        """Write the EMA weights as the bundle `planner` in `folder`."""
        from structdiff.models.bundle import save_bundle

        meta = {
            "kind": "planner",
            "config": self.config.to_dict(),
            "styles": self.styles,
            "noise": {"num_train_timesteps": self.noise.num_train_timesteps,
                      "schedule": self.noise.schedule, "prediction": self.noise.prediction},
            "key_counts": key_counts,
            "training": {"parameters": count_parameters(self.model), **training},
        }
        save_bundle(self.ema.shadow, meta, folder, "planner")


def export_checkpoint(ckpt_path: str, folder: str, key_counts: dict) -> None:
    """The bundle of a Lightning checkpoint (e.g. of a run stopped before it ended)."""
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    hparams = {k: v for k, v in state["hyper_parameters"].items() if not k.startswith("_")}
    module = PlannerModule(**hparams)
    module.load_state_dict(state["state_dict"])
    best = [c.get("best_model_score") for c in state.get("callbacks", {}).values()
            if isinstance(c, dict)]
    training = {"epochs": state["epoch"] + 1, "steps": state["global_step"],
                "checkpoint": str(ckpt_path)}
    if best and best[0] is not None:
        training["val/loss"] = float(best[0])
    module.save(folder, key_counts, training)
