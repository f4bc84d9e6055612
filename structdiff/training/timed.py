"""Train a model from a `structdiff train` config for a wall-clock budget, the learning rate
decaying to zero over that budget: `python -m structdiff.training.timed CONFIG --minutes M`.

For a machine lent for minutes (a GPU whose time is counted) where how many steps fit is not
known ahead: the config's `max_epochs` and its step-based cosine schedule assume a step rate;
here the rate is whatever the machine gives, the warm-up is the config's, and after it the
learning rate follows a cosine of elapsed time / budget, so the run ends decayed when the budget
ends, and writes its bundle (the EMA weights) to the config's `export_dir` as `structdiff train`
does. It builds the LightningModule and DataModule from the config's `model` and `data` blocks
itself (no LightningCLI, no W&B logger: a CSV log in `--log-dir`), so it runs where only torch,
pytorch-lightning and PyYAML are installed. Unlike `structdiff train`, a run is not reproducible
step for step (how many steps fit depends on the machine) and can't be resumed; its
checkpoints (best validation loss, last) are Lightning's.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import time
from pathlib import Path

import pytorch_lightning as pl

# the DataModule arguments `structdiff train` links to the model's (training/cli.py)
LINKED = {"planner": ("styles",),
          "arranger": ("styles", "roles", "role_map", "pitch_low", "n_pitches", "poly_low",
                       "poly_pitches", "intensity_cuts")}


def cosine_factor(elapsed: float, budget: float, step: int, warmup_steps: int) -> float:
    """The learning-rate factor: linear warm-up over `warmup_steps` steps, then a cosine from 1
    to 0 over the budget's seconds (0 past it)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))


class TimeBudget(pl.Callback):
    """Sets each step's learning rate from elapsed time (`cosine_factor`) and stops training
    once `seconds` have passed (at the end of that step; validation and export follow)."""

    def __init__(self, seconds: float, warmup_steps: int) -> None:
        self.seconds = seconds
        self.warmup_steps = warmup_steps
        self.started: float | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.started = time.monotonic()
        # the optimizer's own learning rates (LambdaLR keeps them as `initial_lr`)
        self.base = [g.get("initial_lr", g["lr"]) for g in trainer.optimizers[0].param_groups]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        factor = cosine_factor(time.monotonic() - self.started, self.seconds,
                               trainer.global_step, self.warmup_steps)
        for group, lr in zip(trainer.optimizers[0].param_groups, self.base):
            group["lr"] = lr * factor

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if time.monotonic() - self.started >= self.seconds:
            trainer.should_stop = True


def build(model: str, config: dict):
    """The LightningModule and DataModule of a `structdiff train MODEL` config."""
    if model == "planner":
        from structdiff.training.planner_data import PlanDataModule as DataModule
        from structdiff.training.planner_module import PlannerModule as Module
    elif model == "arranger":
        from structdiff.training.arranger_data import ArrangeDataModule as DataModule
        from structdiff.training.arranger_module import ArrangerModule as Module
    else:
        raise ValueError(f"unknown model {model!r} (trainable: planner, arranger)")
    model_args = dict(config.get("model") or {})
    data_args = dict(config.get("data") or {})
    defaults = inspect.signature(Module.__init__).parameters
    for name in LINKED[model]:
        if name in data_args and data_args[name] != model_args.get(name, data_args[name]):
            raise ValueError(f"data.{name} and model.{name} differ: the model's is used")
        if name in model_args or name in defaults:
            data_args[name] = model_args.get(name, defaults[name].default)
    return Module(**model_args), DataModule(**data_args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m structdiff.training.timed",
        description="Train from a `structdiff train` config for a wall-clock budget, the "
                    "learning rate decaying to zero over it.")
    parser.add_argument("model", choices=("planner", "arranger"))
    parser.add_argument("config", help="a `structdiff train` YAML config")
    parser.add_argument("--minutes", type=float, required=True,
                        help="training time; validation and export come after it")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (default)")
    parser.add_argument("--set", action="append", default=[], metavar="BLOCK.KEY=YAML",
                        help="override a config value, e.g. model.d_model=256 (repeatable)")
    parser.add_argument("--log-dir", default=None,
                        help="CSV log and checkpoints (default: the config's default_root_dir)")
    args = parser.parse_args(argv)
    import yaml

    try:
        config = yaml.safe_load(Path(args.config).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        print(f"error: cannot read {args.config}: {e}", file=sys.stderr)
        return 2
    for item in args.set:
        key, sep, value = item.partition("=")
        block, dot, name = key.partition(".")
        if not sep or not dot or block not in ("model", "data", "trainer"):
            print(f"error: --set wants BLOCK.KEY=VALUE with BLOCK model, data or trainer, "
                  f"got {item!r}", file=sys.stderr)
            return 2
        config.setdefault(block, {})[name] = yaml.safe_load(value)
    if not args.minutes > 0:
        print("error: --minutes must be positive", file=sys.stderr)
        return 2
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    from structdiff.training.base import AtomicCheckpointIO

    torch.set_float32_matmul_precision("high")
    trainer_cfg = config.get("trainer") or {}
    pl.seed_everything(config.get("seed_everything", 0))
    try:
        module, data = build(args.model, config)
    except (TypeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    root = Path(args.log_dir or trainer_cfg.get("default_root_dir") or "out/train/timed")
    trainer = pl.Trainer(
        accelerator=args.accelerator, devices=1, max_epochs=-1,
        max_steps=10**8,  # the budget stops training; the module's own schedule needs a total
        default_root_dir=str(root), logger=CSVLogger(str(root), name="timed"),
        log_every_n_steps=trainer_cfg.get("log_every_n_steps", 10),
        gradient_clip_val=trainer_cfg.get("gradient_clip_val"),
        enable_progress_bar=False, plugins=[AtomicCheckpointIO()],
        callbacks=[TimeBudget(args.minutes * 60, module.hparams.warmup_steps),
                   ModelCheckpoint(dirpath=str(root / "checkpoints"), save_last=True,
                                   save_top_k=1, monitor="val/loss")])
    trainer.fit(module, datamodule=data)
    print(f"trained {trainer.global_step} steps, {trainer.current_epoch + 1} epochs; "
          f"val/loss {float(trainer.callback_metrics.get('val/loss', float('nan'))):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
