"""Shipped models: safetensors weights beside a JSON file, loadable without executing code.

A bundle `NAME` in a folder is `NAME.safetensors` (the network's state dict) and `NAME.json`
(`{"kind", "config", ...}`: the constructor arguments of the network and what the pipeline
needs around it, e.g. style names and the noise schedule).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from torch import nn

SHIPPED_DIR = Path(__file__).parent / "weights"


class BundleError(ValueError):
    """A model bundle that is missing or does not fit its network."""


def save_bundle(model: nn.Module, meta: dict, folder: str | Path, name: str) -> Path:
    """Write `name.safetensors` and `name.json` to `folder`, each atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    weights = folder / f"{name}.safetensors"
    tmp = folder / f".{name}.safetensors.tmp{os.getpid()}"
    save_file(state, str(tmp))
    tmp.chmod(0o644)  # safetensors writes owner-only files
    os.replace(tmp, weights)
    tmp = folder / f".{name}.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(tmp, folder / f"{name}.json")
    return weights


def read_bundle_meta(folder: str | Path | None, name: str) -> dict:
    path = Path(folder or SHIPPED_DIR) / f"{name}.json"
    if not path.is_file():
        raise BundleError(f"no model {name!r} in {path.parent} ({path.name} missing)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"bad model file {path}: {e}") from None


def load_state(model: nn.Module, folder: str | Path | None, name: str) -> nn.Module:
    """Load `name.safetensors` into `model` (strict), in eval mode."""
    from safetensors.torch import load_file

    path = Path(folder or SHIPPED_DIR) / f"{name}.safetensors"
    if not path.is_file():
        raise BundleError(f"no weights for model {name!r}: {path} missing")
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except (RuntimeError, OSError) as e:
        reason = str(e).splitlines()[0]
        raise BundleError(f"weights {path} do not fit the model: {reason}") from None
    return model.eval()
