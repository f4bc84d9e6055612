"""`structdiff train MODEL --config FILE [LightningCLI options]`: LightningCLI, then `fit`.

`--ckpt_path PATH` (e.g. `last`) resumes a run from its checkpoint. A checkpoint is a pickle:
it is only ever loaded with torch's `weights_only` unpickler (tensors and plain containers;
nothing in the file runs), a file it refuses is a one-line error, and a URL is refused (a
remote checkpoint would be loaded with the unsafe unpickler by Lightning).

The constructor arguments of the LightningModule and DataModule are the config (YAML only
sets values); `--print_config` shows every option. Weights & Biases runs offline unless
WANDB_MODE says otherwise.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

MODELS = ("planner", "arranger")


def run_training(model: str, args: list[str]) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} (trainable: {', '.join(MODELS)})")
    os.environ.setdefault("WANDB_MODE", "offline")
    from pytorch_lightning.cli import LightningCLI

    from structdiff.training.base import AtomicCheckpointIO

    if model == "planner":
        from structdiff.training.planner_data import PlanDataModule as DataModule
        from structdiff.training.planner_module import PlannerModule as Module
    else:
        from structdiff.training.arranger_data import ArrangeDataModule as DataModule
        from structdiff.training.arranger_module import ArrangerModule as Module

    class ModelCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            # one list of styles for the network's embedding and the data's labels
            parser.link_arguments("model.styles", "data.styles")
            if model == "arranger":  # the data is encoded as the network reads it
                for name in ("roles", "role_map", "pitch_low", "n_pitches", "poly_low",
                             "poly_pitches", "intensity_cuts"):
                    parser.link_arguments(f"model.{name}", f"data.{name}")

    args, ckpt_path = _pop_option(list(args), "--ckpt_path")
    if ckpt_path is not None:
        check_checkpoint(ckpt_path)
    # LightningCLI prints a whole usage text on a bad option: keep only its error line
    captured = io.StringIO()
    argv, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI reads only `args`
    try:
        with contextlib.redirect_stderr(captured):
            cli = ModelCLI(
                Module,
                DataModule,
                args=args,
                run=False,
                save_config_kwargs={"overwrite": True},
                trainer_defaults={"plugins": [AtomicCheckpointIO()]},
            )
    except SystemExit as e:
        if e.code:
            errors = [ln.strip() for ln in captured.getvalue().splitlines()
                      if ln.strip().startswith("error:")]
            raise ValueError(errors[-1][len("error:"):].strip() if errors
                             else "bad training options (see --help)") from None
        return  # --help, --print_config
    finally:
        sys.argv = argv
    sys.stderr.write(captured.getvalue())
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path, weights_only=True)


LIGHTNING_NAMES = ("last", "best", "hpc", "registry")  # ckpt_path values Lightning resolves


def check_checkpoint(ckpt_path: str) -> None:
    """A ValueError (one line) unless `ckpt_path` is one of Lightning's names or a local file
    that torch's weights-only unpickler loads; nothing in the file is run."""
    if ckpt_path in LIGHTNING_NAMES:
        return
    if "://" in ckpt_path:
        raise ValueError(f"--ckpt_path must be a local file or one of "
                         f"{', '.join(LIGHTNING_NAMES)}, got the URL {ckpt_path!r}")
    import pickle

    import torch

    try:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except OSError as e:
        raise ValueError(f"cannot read checkpoint {ckpt_path}: {e.strerror or e}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{ckpt_path} is not a checkpoint that loads safely (refused: "
                         f"{first[:160]})") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise ValueError(f"{ckpt_path} is not a Lightning checkpoint (no state_dict)")


def _pop_option(args: list[str], name: str) -> tuple[list[str], str | None]:
    """Remove `name VALUE` or `name=VALUE` from args; its value or None."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[:i] + args[i + 2 :], args[i + 1]
        if arg.startswith(name + "="):
            return args[:i] + args[i + 1 :], arg.split("=", 1)[1]
    return args, None
