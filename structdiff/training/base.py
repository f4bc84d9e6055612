"""What the planner's and the arranger's LightningModules share: the training loop around a
diffusion loss, EMA weights, AdamW with warm-up and cosine decay, samples every n epochs and
the export of the EMA weights when training ends."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite: training stops before it reaches the weights."""


class DiffusionModule(pl.LightningModule):
    """Subclasses set `model`, `ema` and the hyperparameters `lr`, `weight_decay`,
    `warmup_steps`, `sample_every_n_epochs` and `export_dir`, and define `_loss(model, batch,
    generator)`, `log_samples()` and `export(folder)`. `batch_key` names a batch entry whose
    first dimension is the batch size."""

    batch_key = "x"

    def _loss(self, model, batch: dict, generator: torch.Generator | None = None):
        raise NotImplementedError

    def log_samples(self) -> None:
        raise NotImplementedError

    def export(self, folder: str) -> None:
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(self.model, batch)
        if not torch.isfinite(loss).all():
            # stop before the optimizer step: no NaN reaches the weights, the EMA or a
            # checkpoint (the last good one stays; resume from it with a lower learning rate)
            raise NonFiniteLossError(
                f"training stopped: the loss is {float(loss.detach().float().mean())} at step "
                f"{self.global_step} (epoch {self.current_epoch}); nothing was written from it. "
                "Lower --model.lr, or check the data; resume from the last checkpoint with "
                "--ckpt_path last")
        self.log("train/loss", loss, prog_bar=True, batch_size=batch[self.batch_key].shape[0])
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=1)
        return loss

    # -- resumable randomness: a run resumed from a checkpoint trains exactly as if it had
    # never stopped. Each step's randomness (noise, timesteps, contexts, dropout) comes from
    # a seed of (the run's seed, the step), and each epoch's data from (seed, epoch): the
    # datasets' `set_epoch`. Lightning restores the step, the optimizer and the schedule.

    def on_fit_start(self) -> None:
        self._run_seed = torch.initial_seed() % 2**31  # seed_everything's, the same on resume

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        seed = getattr(self, "_run_seed", 0)
        torch.manual_seed((seed * 1_000_003 + self.global_step * 7919 + self.global_rank)
                          % 2**63)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.ema.update(self.model)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        # a fixed draw of steps and noise (and contexts) per batch, so epochs compare
        generator = torch.Generator().manual_seed(batch_idx)
        loss = self._loss(self.ema.shadow, batch, generator)
        # averaged over the processes under DDP: every rank's checkpoint monitor sees the same
        self.log("val/loss", loss, prog_bar=True, batch_size=batch[self.batch_key].shape[0],
                 sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        every = self.hparams.sample_every_n_epochs
        if not every or self.trainer.sanity_checking or (self.current_epoch + 1) % every:
            return
        self.log_samples()

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.hparams.lr,
                                weight_decay=self.hparams.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = min(self.hparams.warmup_steps, total // 2)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_end(self) -> None:
        if self.hparams.export_dir:
            self.export(self.hparams.export_dir)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but a checkpoint appears whole or not at all: it is
    written beside its place and renamed into it, so a run killed while saving leaves the
    previous checkpoint to resume from (`structdiff train` uses it)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def checkpoint_training(state: dict, ckpt_path: str) -> dict:
    """The training facts of a Lightning checkpoint `state`: epochs, steps, its best
    validation loss when a ModelCheckpoint monitored one."""
    training = {"epochs": state["epoch"] + 1, "steps": state["global_step"],
                "checkpoint": str(ckpt_path)}
    best = [c.get("best_model_score") for c in state.get("callbacks", {}).values()
            if isinstance(c, dict)]
    if best and best[0] is not None:
        training["val/loss"] = float(best[0])
    return training


def init_matching(model: torch.nn.Module, folder: str, name: str) -> list[str]:
    """Load the bundle `name` of `folder` into `model` where names and shapes match (fine-tuning
    a shipped model on a new corpus: a style embedding for another list of styles starts
    fresh); the names of the tensors left as they were."""
    from structdiff.models.bundle import read_bundle_meta, read_state

    read_bundle_meta(folder, name)  # a clear error for a folder without the bundle
    loaded = read_state(folder, name)
    state = model.state_dict()
    take = {k: v for k, v in loaded.items() if k in state and state[k].shape == v.shape}
    model.load_state_dict(take, strict=False)
    return sorted(set(state) - set(take))
