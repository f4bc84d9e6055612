"""Write the plan of a song that does not exist yet: form, key and chords, from the planner.

Whatever the user fixes (a form, a chord chart, a key) is given to the planner as known
context and comes back exactly; the planner fills in the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from structdiff.data.plan_constraints import constraint_arrays, parse_chord_chart, parse_form
from structdiff.data.plan_constraints import parse_key as parse_key_text
from structdiff.data.plan_tensor import (
    N_FEATURES,
    PlanGrid,
    decode_plan,
    encode_plan,
    letter_labels,
    plan_condition,
    uniform_grid,
)
from structdiff.data.song import Key, Plan, Song, Tempo, TimeSignature
from structdiff.diffusion import ClassifierFreeGuidance, NoiseSchedule, sample
from structdiff.models.bundle import load_state, read_bundle_meta
from structdiff.models.planner import MODES, Planner, PlannerConfig, x0_from_logits


@dataclass
class PlannerBundle:
    model: Planner
    noise: NoiseSchedule
    styles: list[str]
    key_counts: dict[str, list[int]]
    meta: dict


def load_planner(folder: str | Path | None = None) -> PlannerBundle:
    """The planner bundle in `folder` (default: the one shipped in the package)."""
    meta = read_bundle_meta(folder, "planner")
    model = load_state(Planner(PlannerConfig(**meta["config"])), folder, "planner")
    noise = NoiseSchedule(**meta["noise"])
    return PlannerBundle(model, noise, list(meta["styles"]), meta.get("key_counts", {}), meta)


def choose_key(bundle: PlannerBundle, style: str | None, rng: np.random.Generator) -> Key:
    """A key drawn from the keys of the training songs of `style` (all styles without one)."""
    counts = np.zeros(24)
    for name, c in bundle.key_counts.items():
        if style is None or name == style:
            counts += np.asarray(c, dtype=float)
    if counts.sum() == 0:
        counts[:] = 1
    index = int(rng.choice(24, p=counts / counts.sum()))
    return Key(index % 12, "minor" if index >= 12 else "major")


def generate_plan(
    bundle: PlannerBundle,
    n_bars: int | None = None,
    style: str | None = None,
    key: Key | str | None = None,
    form: str | None = None,
    chords: str | None = None,
    meter: tuple[int, int] = (4, 4),
    seed: int = 0,
    steps: int = 20,
    sampler: str = "ddim",
    guidance_scale: float = 1.0,
) -> tuple[Plan, Song]:
    """A plan of `n_bars` bars (or as many as `form` has) and an empty song holding its grid.

    `form` ("i4 A8 B8 A8 o4"), `chords` ("C G | Am F | ...", bars separated by `|`) and `key`
    ("A minor", "Bb") are kept exactly; the same seed gives the same plan.
    Raises ValueError with a one-line message for any bad value.
    """
    if style is not None and style not in bundle.styles:
        raise ValueError(f"unknown style {style!r} (known: {', '.join(bundle.styles)})")
    sections = parse_form(form) if form else None
    if n_bars is None:
        if sections is None:
            raise ValueError("give the number of bars (--bars) or a form (--form)")
        n_bars = sum(s.n_bars for s in sections)
    if n_bars < 1:
        raise ValueError(f"bars must be >= 1, got {n_bars}")
    if n_bars > bundle.model.cfg.max_bars:
        raise ValueError(f"bars must be <= {bundle.model.cfg.max_bars}, got {n_bars}")
    rng = np.random.default_rng(seed)
    if isinstance(key, str):
        key = parse_key_text(key)
    key = key or choose_key(bundle, style, rng)
    grid = uniform_grid(n_bars, *meter)
    chart = parse_chord_chart(chords, grid.n_beats.tolist()) if chords else None
    known, mask = constraint_arrays(n_bars, grid, key, form=sections, chords=chart)

    x = _sample_plan(bundle, grid, key, style, known, mask, seed, steps, sampler, guidance_scale)
    names = letter_labels(sections) if sections else None
    plan = decode_plan(x, grid, key, label_names=names)
    ts = TimeSignature(0, *meter)
    song = Song([], bars=grid.bars, end=grid.end, time_signatures=[ts],
                tempos=[Tempo(0, 120.0)], source="structdiff plan", plan=plan,
                style=style)
    return plan, song


def _sample_plan(bundle: PlannerBundle, grid: PlanGrid, key: Key, style: str | None,
                 known: np.ndarray, mask: np.ndarray, seed: int, steps: int, sampler: str,
                 guidance_scale: float) -> np.ndarray:
    """One plan tensor `[L, N_FEATURES]` on `grid`, equal to `known` (one-hot) where `mask`."""
    n_styles, n_bars = len(bundle.styles), grid.n_bars
    cond = {
        "style": torch.tensor([bundle.styles.index(style) if style else n_styles]),
        "mode": torch.tensor([MODES.index(key.mode)]),
        "slot_valid": torch.from_numpy(grid.slot_valid)[None],
        "bar_cond": torch.from_numpy(plan_condition(grid))[None],
        "pad": torch.zeros(1, n_bars, dtype=torch.bool),
    }
    model = bundle.model

    def denoiser(x_t, t, c):
        return x0_from_logits(model(x_t, t, c))

    if guidance_scale != 1.0:
        denoiser = ClassifierFreeGuidance(denoiser, guidance_scale,
                                          {"style": n_styles, "mode": len(MODES)})
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x = sample(
            denoiser, (1, n_bars, N_FEATURES), bundle.noise, cond, sampler, steps,
            generator=generator,
            known=torch.from_numpy(2 * known - 1)[None],
            mask=torch.from_numpy(mask)[None],
        )
    return x[0].numpy()


def extend_plan(
    bundle: PlannerBundle,
    song: Song,
    plan: Plan,
    n_bars: int,
    style: str | None = None,
    seed: int = 0,
    steps: int = 20,
    sampler: str = "ddim",
    guidance_scale: float = 1.0,
) -> tuple[Plan, Song]:
    """The plan of `song` (its plan `plan`) followed by `n_bars` more bars in its last meter,
    and the song with its bars extended (no notes added). The plan of the existing bars is
    given to the planner as known context; its key stays."""
    if n_bars < 1:
        raise ValueError(f"bars must be >= 1, got {n_bars}")
    total = song.n_bars + n_bars
    if total > bundle.model.cfg.max_bars:
        raise ValueError(f"the song would have {total} bars; the planner takes at most "
                         f"{bundle.model.cfg.max_bars}")
    key = plan.key or Key(0, "major")
    last = song.time_signature_at(int(song.bars[-1]))
    bar_steps = last.bar_steps(song.steps_per_quarter)
    # a short last bar is completed first, then n_bars full bars follow
    end = int(song.bars[-1]) + bar_steps * (n_bars + 1)
    bars = np.concatenate([song.bars, int(song.bars[-1]) + bar_steps * np.arange(1, n_bars + 1)])
    longer = replace(song, bars=bars.astype(np.int64), end=end, plan=None)
    grid = PlanGrid.from_song(longer)
    tensor = encode_plan(plan, grid, key)
    mask = np.zeros_like(tensor.x)
    mask[: song.n_bars] = 1
    x = _sample_plan(bundle, grid, key, style, tensor.x, mask, seed, steps, sampler,
                     guidance_scale)
    names = [s.label for s in plan.sections if s.label not in ("i", "o")] or None
    new_plan = decode_plan(x, grid, key, label_names=_unique(names) if names else None)
    longer.plan = new_plan
    return new_plan, longer


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
