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
# The shipped model sets, each a planner and an arranger in one folder, in the order `generate`
# tries them: the band models (pop, game and groove styles; drums, bass, keys, guitar,
# strings, melody) first, then the classical ones (voices and strings of the embedded corpus).
SHIPPED_SETS = {"band": SHIPPED_DIR / "band", "classical": SHIPPED_DIR}


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


def read_state(folder: str | Path | None, name: str) -> dict:
    """The tensors of `name.safetensors` in `folder` (default: the shipped classical set)."""
    from safetensors.torch import load_file

    path = Path(folder or SHIPPED_DIR) / f"{name}.safetensors"
    if not path.is_file():
        raise BundleError(f"no weights for model {name!r}: {path} missing")
    try:
        return load_file(str(path))
    except OSError as e:
        reason = str(e).splitlines()[0]
        raise BundleError(f"weights {path} do not fit the model: {reason}") from None


def load_state(model: nn.Module, folder: str | Path | None, name: str) -> nn.Module:
    """Load `name.safetensors` into `model` (strict), in eval mode."""
    path = Path(folder or SHIPPED_DIR) / f"{name}.safetensors"
    state = read_state(folder, name)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        reason = str(e).splitlines()[0]
        raise BundleError(f"weights {path} do not fit the model: {reason}") from None
    return model.eval()


def shipped_sets() -> dict[str, Path]:
    """The shipped model sets that are installed (both bundles present), in `SHIPPED_SETS`
    order."""
    return {name: folder for name, folder in SHIPPED_SETS.items()
            if (folder / "arranger.json").is_file() and (folder / "planner.json").is_file()}


def shipped_styles() -> dict[str, list[str]]:
    """The styles each shipped set was trained on (its arranger's, which its planner shares)."""
    return {name: list(read_bundle_meta(folder, "arranger")["styles"])
            for name, folder in shipped_sets().items()}


def set_for_style(style: str) -> Path:
    """The folder of the first shipped set that knows `style`; BundleError listing them all."""
    for name, styles in shipped_styles().items():
        if style in styles:
            return shipped_sets()[name]
    known = [s for styles in shipped_styles().values() for s in styles]
    raise BundleError(f"unknown style {style!r} (known: {', '.join(known)})")


STYLE_MODELS = "styles"  # a set's own models for one of its styles: SET/styles/STYLE/


def model_for_style(folder: str | Path, style: str | None, kind: str) -> Path:
    """The folder of the `kind` model ('planner' or 'arranger') to use for `style` in the set
    `folder`: the set's own model for that style (`styles/STYLE/KIND.json`) when it ships one,
    else the set's."""
    own = Path(folder) / STYLE_MODELS / str(style)
    return own if style and (own / f"{kind}.json").is_file() else Path(folder)


def arranger_for_style(folder: str | Path, style: str | None) -> Path:
    """The folder of the arranger to use for `style` in the set `folder` (`model_for_style`)."""
    return model_for_style(folder, style, "arranger")


def planner_for_style(folder: str | Path, style: str | None) -> Path:
    """The folder of the planner to use for `style` in the set `folder` (`model_for_style`);
    a style's own planner takes its set's form model (`load_planner`)."""
    return model_for_style(folder, style, "planner")


def set_for_role_map(role_map: str | None) -> Path:
    """The folder of the first shipped set whose arranger plays songs of `role_map` (`band`,
    `satb`); the first set for another map."""
    sets = shipped_sets()
    if not sets:
        raise BundleError(f"no shipped models in {SHIPPED_DIR}")
    for folder in sets.values():
        if (read_bundle_meta(folder, "arranger").get("role_map") or "satb") == role_map:
            return folder
    return next(iter(sets.values()))
