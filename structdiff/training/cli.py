"""`structdiff train MODEL --config FILE [LightningCLI options]`: LightningCLI's `fit`.

The constructor arguments of the LightningModule and DataModule are the config (YAML only
sets values); `--print_config` shows every option. Weights & Biases runs offline unless
WANDB_MODE says otherwise.
"""

from __future__ import annotations

import os
import sys

MODELS = ("planner",)


def run_training(model: str, args: list[str]) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} (trainable: {', '.join(MODELS)})")
    os.environ.setdefault("WANDB_MODE", "offline")
    from pytorch_lightning.cli import LightningCLI

    from structdiff.training.planner_data import PlanDataModule
    from structdiff.training.planner_module import PlannerModule

    class PlannerCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            # one list of styles for the network's embedding and the data's labels
            parser.link_arguments("model.styles", "data.styles")

    argv, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI reads only `args`
    try:
        PlannerCLI(
            PlannerModule,
            PlanDataModule,
            args=["fit", *args],
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"fit": {"exit_on_error": False}},
        )
    finally:
        sys.argv = argv
