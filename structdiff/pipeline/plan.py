"""Write the plan of a song that does not exist yet: form, key and chords, from the planner.

Whatever the user fixes (a form, a chord chart, a key) is given to the planner as known
context and comes back exactly; the planner fills in the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from structdiff.analysis.chords import QUALITIES
from structdiff.data.plan_constraints import constraint_arrays, parse_chord_chart, parse_form
from structdiff.data.plan_constraints import parse_key as parse_key_text
from structdiff.data.plan_tensor import (
    CONDITION_NAMES,
    MAX_LABELS,
    MAX_SLOTS,
    N_FEATURES,
    PLAN_LAYOUT,
    SLOT_FEATURES,
    SLOT_OFFSET,
    PlanGrid,
    chord_group_names,
    decode_plan,
    encode_plan,
    group_slices,
    label_classes,
    letter_labels,
    plan_condition,
    uniform_grid,
)
from structdiff.data.song import Key, Plan, Song, Tempo, TimeSignature
from structdiff.diffusion import ClassifierFreeGuidance, NoiseSchedule, sample
from structdiff.models.bundle import load_state, read_bundle_meta
from structdiff.models.planner import (
    MODES,
    Planner,
    PlannerConfig,
    sample_masked_plan,
    x0_from_logits,
)
from structdiff.pipeline.forms import FormModel, load_forms

# bars of a song the planner sees when it continues it: the last ones (the planner was trained
# on windows of at most 128 bars, so a window of 64 and the new bars stay in what it knows)
CONTEXT_BARS = 64
LABEL = PLAN_LAYOUT[0].slice
SECTION_START = PLAN_LAYOUT[1].slice
PHRASE_END = PLAN_LAYOUT[2].slice


DEFAULT_BARS = 32  # a plan's length without bars, form or a form model's song lengths


@dataclass
class PlannerBundle:
    model: Planner
    noise: NoiseSchedule
    styles: list[str]
    key_counts: dict[str, list[int]]
    meta: dict
    forms: FormModel | None = None  # real forms per style, sampled when none is given


def load_planner(folder: str | Path | None = None) -> PlannerBundle:
    """The planner bundle in `folder` (default: the one shipped in the package), with the form
    model beside it; a style's own planner (`SET/styles/STYLE/`, `planner_for_style`) without
    one takes its set's."""
    from structdiff.models.bundle import STYLE_MODELS

    meta = read_bundle_meta(folder, "planner")
    model = load_state(Planner(PlannerConfig(**meta["config"])), folder, "planner")
    noise = NoiseSchedule(**meta["noise"])
    forms = load_forms(folder)
    if forms is None and folder is not None and Path(folder).parent.name == STYLE_MODELS:
        forms = load_forms(Path(folder).parents[1])
    return PlannerBundle(model, noise, list(meta["styles"]), meta.get("key_counts", {}), meta,
                         forms)


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
    guidance_scale: float | None = None,
    chord_bias: dict[str, float] | None = None,
    temperature: float | None = None,
    progression_scale: float | None = None,
) -> tuple[Plan, Song]:
    """A plan of `n_bars` bars (default: as many as `form` has, else a length the style's songs
    have, drawn from the bundle's form model, else `DEFAULT_BARS`) and an empty song holding
    its grid.

    `form` ("i4 A8 B8 A8 o4"), `chords` ("C G | Am F | ...", bars separated by `|`) and `key`
    ("A minor", "Bb") are kept exactly; the same seed gives the same plan. `chord_bias` adds
    logit offsets to chord qualities (`{"min": 1.5, "maj7": -3}`): a chord vocabulary.
    `progression_scale` scales the bundle's progression lean for the style (`progression_bias`;
    0 turns it off).
    `temperature` divides the planner's logits (below 1: surer chords) and `guidance_scale` is
    classifier-free guidance on style and mode; each defaults to the bundle's setting for the
    style (`sampling_settings`), else 1. Where the bundle has a form model, the phrase ends of
    the form's sections are drawn from it with the form (given or drawn) and the planner
    writes the chords around them (`FormModel.phrase_ends`), and the chord of the last bar's
    second half is drawn from the chords the style's songs end on (`FormModel.final_chord`)
    unless `chords` gives it.
    Raises ValueError with a one-line message for any bad value.
    """
    if style is not None and style not in bundle.styles:
        raise ValueError(f"unknown style {style!r} (known: {', '.join(bundle.styles)})")
    sections = parse_form(form) if form else None
    if n_bars is None and sections is not None:
        n_bars = sum(s.n_bars for s in sections)
    elif n_bars is None:  # as long as the style's songs are (`FormModel.song_length`)
        drawn = (bundle.forms.song_length(style, np.random.default_rng([seed, 4]))
                 if bundle.forms is not None else None)
        n_bars = min(drawn or DEFAULT_BARS, bundle.model.cfg.max_bars)
    if n_bars < 1:
        raise ValueError(f"bars must be >= 1, got {n_bars}")
    if n_bars > bundle.model.cfg.max_bars:
        raise ValueError(f"bars must be <= {bundle.model.cfg.max_bars}, got {n_bars}")
    rng = np.random.default_rng(seed)
    if isinstance(key, str):
        key = parse_key_text(key)
    key = key or choose_key(bundle, style, rng)
    if sections is None and bundle.forms is not None:
        sections = bundle.forms.sample(n_bars, style, np.random.default_rng([seed, 1]))
    grid = uniform_grid(n_bars, *meter)
    chart = parse_chord_chart(chords, grid.n_beats.tolist()) if chords else None
    ends = final = None  # drawn with the form: where phrases end, the chord the song ends on
    if bundle.forms is not None:
        if sections is not None:
            ends = bundle.forms.phrase_ends(sections, style, np.random.default_rng([seed, 2]))
        final = bundle.forms.final_chord(style, key.mode, np.random.default_rng([seed, 3]))
    known, mask = constraint_arrays(n_bars, grid, key, form=sections, chords=chart,
                                    phrase_ends=ends, final_chord=final)

    x = _sample_plan(bundle, grid, key, style, known, mask, seed, steps, sampler, guidance_scale,
                     chord_bias=chord_bias, temperature=temperature,
                     progression_scale=progression_scale)
    names = letter_labels(sections) if sections else None
    plan = decode_plan(x, grid, key, label_names=names, bass_free=free_slots(mask))
    ts = TimeSignature(0, *meter)
    song = Song([], bars=grid.bars, end=grid.end, time_signatures=[ts],
                tempos=[Tempo(0, 120.0)], source="structdiff plan", plan=plan,
                style=style)
    return plan, song


def _sample_plan(bundle: PlannerBundle, grid: PlanGrid, key: Key, style: str | None,
                 known: np.ndarray, mask: np.ndarray, seed: int, steps: int, sampler: str,
                 guidance_scale: float | None, bar_cond: np.ndarray | None = None,
                 chord_bias: dict[str, float] | None = None,
                 temperature: float | None = None,
                 progression_scale: float | None = None) -> np.ndarray:
    """One plan tensor `[L, N_FEATURES]` on `grid`, equal to `known` (one-hot) where `mask`.
    `bar_cond` `[L, C]`: the per-bar conditions (default: `plan_condition(grid)`);
    `chord_bias`: logit offsets by chord quality name, added in every chord slot;
    `temperature`: divides the logits, `guidance_scale`: classifier-free guidance on style
    and mode (each None: the bundle's `sampling` value, else 1); `progression_scale` scales
    the bundle's `progression_lean` for the style (`progression_bias`; None: 1, 0: off)."""
    sampling = sampling_settings(bundle, style)
    mode = key.mode if key is not None else None
    lean = progression_table(sampling.get("progression_lean"), progression_scale, mode=mode)
    degree_q = progression_table(sampling.get("degree_qualities"), progression_scale,
                                 (12, len(QUALITIES)), mode)
    bar_idx, slot_idx, _ = grid.flat_slots()
    order = torch.from_numpy(bar_idx * MAX_SLOTS + slot_idx)  # used slots, in time order
    if temperature is None:
        temperature = float(sampling.get("temperature", 1.0))
    if guidance_scale is None:
        guidance_scale = float(sampling.get("guidance", 1.0))
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n_styles, n_bars = len(bundle.styles), grid.n_bars
    cond = {
        "style": torch.tensor([bundle.styles.index(style) if style else n_styles]),
        "mode": torch.tensor([MODES.index(key.mode)]),
        "slot_valid": torch.from_numpy(grid.slot_valid)[None],
        "bar_cond": torch.from_numpy(plan_condition(grid) if bar_cond is None else bar_cond)[None],
        "pad": torch.zeros(1, n_bars, dtype=torch.bool),
    }
    model = bundle.model

    offsets = quality_offsets(chord_bias)

    masked = model.cfg.diffusion == "masked"

    def denoiser(x_t, t, c):
        logits = model(x_t, t, c)
        if temperature != 1.0:
            logits = logits / temperature
        if offsets is not None:
            logits = logits + offsets
        if lean is not None or degree_q is not None:
            logits = logits + progression_bias(logits, order, lean, degree_q)
        return logits if masked else x0_from_logits(logits)

    if guidance_scale != 1.0:
        denoiser = ClassifierFreeGuidance(denoiser, guidance_scale,
                                          {"style": n_styles, "mode": len(MODES)})
    generator = torch.Generator().manual_seed(seed)
    if masked:  # unmasked over `steps` rounds in the bundle's order; `sampler` does not apply
        with torch.no_grad():
            x = sample_masked_plan(denoiser, cond, bundle.noise.num_train_timesteps, steps,
                                   generator, known=torch.from_numpy(2 * known - 1)[None],
                                   mask=torch.from_numpy(mask)[None],
                                   order=sampling.get("order", "random"),
                                   noise=float(sampling.get("noise", 1.0)))
        return x[0].numpy()
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
    guidance_scale: float | None = None,
    context_bars: int = CONTEXT_BARS,
    chord_bias: dict[str, float] | None = None,
) -> tuple[Plan, Song]:
    """The plan of `song` (its plan `plan`) followed by `n_bars` more bars in its last meter,
    and the song with its bars extended (no notes added). Its key stays.

    The planner sees a window: the last `context_bars` bars of the song (fewer where its
    `max_bars` leaves no room beside the new bars) as known context, then the new bars, so a
    song of any length can be continued. The plan of the song's own bars comes back as it
    was; a label the planner gives the new bars names the same section as in `plan` when it is
    a label of the window, else one that `plan` does not use. `chord_bias` and
    `guidance_scale` as in `generate_plan`.
    Raises ValueError with a one-line message for a bad `n_bars` or `context_bars`.
    """
    max_bars = bundle.model.cfg.max_bars
    if n_bars < 1:
        raise ValueError(f"bars must be >= 1, got {n_bars}")
    if n_bars > max_bars:
        raise ValueError(f"bars must be <= {max_bars}, got {n_bars}")
    if context_bars < 1:
        raise ValueError(f"context_bars must be >= 1, got {context_bars}")
    key = plan.key or Key(0, "major")
    last = song.time_signature_at(int(song.bars[-1]))
    bar_steps = last.bar_steps(song.steps_per_quarter)
    # a short last bar is completed first, then n_bars full bars follow
    end = int(song.bars[-1]) + bar_steps * (n_bars + 1)
    bars = np.concatenate([song.bars, int(song.bars[-1]) + bar_steps * np.arange(1, n_bars + 1)])
    longer = replace(song, bars=bars.astype(np.int64), end=end, plan=None)
    grid = PlanGrid.from_song(longer)
    tensor = encode_plan(plan, grid, key)

    # the window [start, L): cut as training cuts its windows, so the planner sees what it
    # knows: labels renumbered within the window, the song's hypermeter, positions from 0 to 1
    start = song.n_bars - min(context_bars, max_bars - n_bars, song.n_bars)
    n_context = song.n_bars - start
    known, to_song = _window_labels(tensor.x[start:], n_context)
    mask = np.zeros_like(known)
    mask[:n_context] = 1
    if bundle.forms is not None and plan.sections:  # form first: the new bars' sections
        more = bundle.forms.continue_form(plan.sections, n_bars, style,
                                          np.random.default_rng([seed, 1]))
        ends = bundle.forms.phrase_ends(more, style, np.random.default_rng([seed, 2]))
        _fix_window_form(known, mask, more, label_classes(
            sorted(plan.sections, key=lambda s: s.start_bar) + more),
                         to_song, n_context, song.n_bars, ends)
    bar_cond = plan_condition(grid)[start:]
    bar_cond[:, CONDITION_NAMES.index("position")] = (
        np.arange(len(bar_cond)) / max(len(bar_cond) - 1, 1))
    x = _sample_plan(bundle, _grid_rows(grid, start), key, style, known, mask, seed, steps,
                     sampler, guidance_scale, bar_cond=bar_cond, chord_bias=chord_bias)

    # the new bars after the song's own, their labels back in the song's classes; decoding
    # the whole song names the song's classes by its own labels and new ones by unused letters
    full = tensor.x.copy()
    full[song.n_bars :] = _song_labels(x[n_context:], to_song, tensor.x[: song.n_bars])
    # new bars that continue the song's last section take its label: decoding labels a
    # section by most of its bars, and the song's own bars keep theirs
    starts = np.flatnonzero(full[song.n_bars :, SECTION_START].argmax(axis=1) == 1)
    n_more = int(starts[0]) if len(starts) else n_bars
    full[song.n_bars : song.n_bars + n_more, LABEL] = full[song.n_bars - 1, LABEL]
    names = letter_labels(sorted(plan.sections, key=lambda s: s.start_bar))
    bass_free = np.zeros((grid.n_bars, MAX_SLOTS), dtype=bool)
    bass_free[song.n_bars :] = free_slots(mask)[n_context:]
    new_plan = decode_plan(full, grid, key, label_names=names or None, bass_free=bass_free)
    longer.plan = new_plan
    return new_plan, longer


def infill_chords(
    bundle: PlannerBundle,
    song: Song,
    plan: Plan,
    bars: range,
    style: str | None = None,
    seed: int = 0,
    steps: int = 20,
    chord_bias: dict[str, float] | None = None,
    guidance_scale: float | None = None,
    keep: np.ndarray | None = None,
) -> Plan:
    """`plan` (of `song`, at most the planner's `max_bars` bars) with the chords of `bars`
    written anew by the planner, every other bar known on both sides (a bridge between two
    pieces, the end of a loop that leads back to its start). Form and key stay.
    `guidance_scale`: classifier-free guidance on the style (default: the bundle's). `keep`
    `[n_bars, MAX_SLOTS]` bool: chord slots (beats) inside `bars` that stay as `plan` has
    them, known to the planner as it writes the others (a cadence pinned at a phrase end); a
    kept slot holds the chord sounding at its start.
    Raises ValueError with a one-line message for bars outside the song."""
    if not bars or bars.start < 0 or bars.stop > song.n_bars:
        raise ValueError(f"bars {bars.start}..{bars.stop - 1} are not bars of the song "
                         f"(it has {song.n_bars})")
    if keep is not None and np.shape(keep) != (song.n_bars, MAX_SLOTS):
        raise ValueError(f"keep must be [bars, slots] = [{song.n_bars}, {MAX_SLOTS}], "
                         f"got {list(np.shape(keep))}")
    if song.n_bars > bundle.model.cfg.max_bars:
        raise ValueError(f"the planner takes at most {bundle.model.cfg.max_bars} bars, "
                         f"got {song.n_bars}")
    key = plan.key or Key(0, "major")
    grid = PlanGrid.from_song(replace(song, plan=None))
    tensor = encode_plan(plan, grid, key)
    known, _ = _window_labels(tensor.x, song.n_bars)
    mask = np.ones_like(known)
    mask[bars.start : bars.stop, SLOT_OFFSET:] = 0
    if keep is not None:
        for b, slot in zip(*np.nonzero(keep)):
            if bars.start <= b < bars.stop:
                start = SLOT_OFFSET + slot * SLOT_FEATURES
                mask[b, start : start + SLOT_FEATURES] = 1
    x = _sample_plan(bundle, grid, key, style, known, mask, seed, steps, "ddim", guidance_scale,
                     chord_bias=chord_bias)
    names = letter_labels(sorted(plan.sections, key=lambda s: s.start_bar))
    infilled = decode_plan(x, grid, key, label_names=names or None, bass_free=free_slots(mask))
    lo, hi = int(song.bars[bars.start]), int(song.bar_ends[bars.stop - 1])
    kept = [c for c in plan.chords if c.onset + c.duration <= lo or c.onset >= hi]
    cut = [replace(c, duration=lo - c.onset) for c in plan.chords
           if c.onset < lo < c.onset + c.duration]
    new = [replace(c, duration=min(c.duration, hi - c.onset)) for c in infilled.chords
           if lo <= c.onset < hi]
    rest = [replace(c, onset=hi, duration=c.onset + c.duration - hi) for c in plan.chords
            if c.onset < hi < c.onset + c.duration]
    return replace(plan, chords=sorted(kept + cut + new + rest, key=lambda c: c.onset))


def sampling_settings(bundle: PlannerBundle, style: str | None) -> dict:
    """The planner bundle's sampling defaults (`temperature`, `guidance`, and a masked
    planner's `order`, `noise`) for `style`: its meta's `sampling`, overridden by
    `sampling.styles[style]` (the classical planner guides its chorales only)."""
    sampling = dict(bundle.meta.get("sampling", {}))
    per_style = sampling.pop("styles", {})
    sampling.update(per_style.get(style, {}) if style is not None else {})
    return sampling


def progression_table(lean, scale: float | None = None,
                      shape: tuple[int, int] = (12, 12),
                      mode: str | None = None) -> torch.Tensor | None:
    """A progression lean (a bundle's `sampling.progression_lean` `[12, 12]`: nats for a chord
    slot on root b after one on root a, both relative to the tonic; or its `degree_qualities`,
    `shape` `[12, N_QUALITIES]`: nats for quality q on root r), or the table of `mode` in a
    lean that has one per mode (`{"major": table, "minor": table}`), times `scale` (None: 1);
    None for no lean (none in the bundle, none for the mode, or scale 0). Raises ValueError
    for a table of another shape or a scale outside 0..4."""
    if scale is not None and not 0 <= scale <= 4:
        raise ValueError(f"progression lean scale must be in 0..4, got {scale}")
    if isinstance(lean, dict):
        lean = lean.get(mode)
    if lean is None or scale == 0:
        return None
    table = torch.as_tensor(lean, dtype=torch.float32)
    if table.shape != shape or not torch.isfinite(table).all():
        raise ValueError(f"a progression lean is {shape[0]} x {shape[1]} finite numbers, got "
                         f"shape {list(table.shape)}")
    return table * (1.0 if scale is None else float(scale))


def progression_bias(logits: torch.Tensor, order: torch.Tensor, table: torch.Tensor | None,
                     qualities: torch.Tensor | None = None) -> torch.Tensor:
    """Offsets `[B, L, N_FEATURES]` on the chord groups of the used slots: a slot's root r
    gets `table[p, r]` after the previous used slot's root p and `table[r, n]` before the next
    one's n, where p and n are those slots' likeliest roots in `logits` (the planner's current
    guess); with `qualities` `[12, N_QUALITIES]`, its quality q gets `qualities[r, q]` for its
    own likeliest root r. Over the denoising steps this tilts the chord successions and the
    chords on each degree toward the fitted tables, the network still writing every chord, as
    `voice_leading.interval_bias` does for the arranger's melodic intervals. `order`: the used
    slots' flat indices (bar * MAX_SLOTS + slot) in time order (`PlanGrid.flat_slots`)."""
    B, L, _ = logits.shape
    slots = logits[..., SLOT_OFFSET:].reshape(B, L * MAX_SLOTS, SLOT_FEATURES)
    roots = slots[:, order, :12]  # [B, S, 12]
    guess = roots.argmax(-1)  # [B, S]
    bias = torch.zeros_like(roots)
    if table is not None and len(order) > 1:
        table = table.to(logits.dtype)
        bias[:, 1:] += table[guess[:, :-1]]  # entering from the previous slot's root
        bias[:, :-1] += table[:, guess[:, 1:]].permute(1, 2, 0)  # leaving to the next one's
    out = torch.zeros_like(slots)
    out[:, order, :12] = bias
    if qualities is not None:
        out[:, order, 12 : 12 + len(QUALITIES)] = qualities.to(logits.dtype)[guess]
    full = torch.zeros_like(logits)
    full[..., SLOT_OFFSET:] = out.reshape(B, L, MAX_SLOTS * SLOT_FEATURES)
    return full


def free_slots(mask: np.ndarray) -> np.ndarray:
    """`[L, MAX_SLOTS]` bool: the chord slots a sampling `mask` `[L, N_FEATURES]` leaves to
    the planner (none of the slot's features given)."""
    slots = mask[:, SLOT_OFFSET:].reshape(len(mask), MAX_SLOTS, SLOT_FEATURES)
    return ~slots.astype(bool).any(axis=2)


def quality_offsets(chord_bias: dict[str, float] | None) -> torch.Tensor | None:
    """Logit offsets `[N_FEATURES]` that add `chord_bias[quality]` to that quality in every
    chord slot (None for no bias). Raises ValueError for an unknown quality."""
    if not chord_bias:
        return None
    offsets = torch.zeros(N_FEATURES)
    slots = [group_slices()[group].start for group in chord_group_names("quality")]
    for name, value in chord_bias.items():
        if name not in QUALITIES or name == "N":
            raise ValueError(f"unknown chord quality {name!r} (known: "
                             f"{', '.join(q for q in QUALITIES if q != 'N')})")
        offsets[[start + QUALITIES.index(name) for start in slots]] = float(value)
    return offsets


def _grid_rows(grid: PlanGrid, start: int) -> PlanGrid:
    """Bars `[start, L)` of `grid`, at the same steps."""
    return PlanGrid(grid.bars[start:], grid.bar_ends[start:], grid.slot_starts[start:],
                    grid.slot_valid[start:], grid.full_bar_steps[start:], grid.steps_per_quarter)


def _window_labels(x: np.ndarray, n_known: int) -> tuple[np.ndarray, dict[int, int]]:
    """Rows `x` `[W, N_FEATURES]` cut from a song's plan tensor, as the planner sees a song of
    their own: the first `n_known` rows with letter label classes renumbered by first
    appearance and a section starting on row 0, the other rows zero. Also the song's class of
    each window class."""
    x = x.copy()
    x[n_known:] = 0
    if not n_known:
        return x, {}
    labels = x[:n_known, LABEL].argmax(axis=1)
    order: dict[int, int] = {}  # song class -> window class
    for lab in labels.tolist():
        if lab < MAX_LABELS and lab not in order:
            order[lab] = min(len(order), MAX_LABELS - 1)
    x[:n_known, LABEL] = 0
    renumbered = np.array([order.get(lab, lab) for lab in labels.tolist()], dtype=np.int64)
    x[np.arange(n_known), LABEL.start + renumbered] = 1
    x[0, SECTION_START] = (0, 1)
    to_song: dict[int, int] = {}
    for song_class, window_class in order.items():
        to_song.setdefault(window_class, song_class)
    return x, to_song


def _fix_window_form(known: np.ndarray, mask: np.ndarray, sections: list, classes: dict,
                     to_song: dict[int, int], n_context: int, song_bars: int,
                     phrase_ends: dict[int, bool] | None = None) -> None:
    """Fix the label and section starts of a window's new rows (after `n_context` known
    ones) to `sections` (bars numbered in the song, from `song_bars`), their labels' song
    classes `classes` turned into the window's: a class the window has keeps its window
    class, a new one takes the next free one; and the phrase ends of the bars
    `phrase_ends` has (numbered in the song)."""
    from_song = {s: w for w, s in to_song.items()}
    fresh: dict[int, int] = {}
    for s in sections:
        c = classes[s.label]
        if c >= MAX_LABELS:  # intro, outro
            w = c
        elif c in from_song:
            w = from_song[c]
        else:
            w = fresh.setdefault(c, min(len(from_song) + len(fresh), MAX_LABELS - 1))
        for bar in range(s.start_bar, s.start_bar + s.n_bars):
            row = n_context + bar - song_bars
            known[row, LABEL] = 0
            known[row, LABEL.start + w] = 1
            known[row, SECTION_START] = (0, 1) if bar == s.start_bar else (1, 0)
            mask[row, LABEL] = 1
            mask[row, SECTION_START] = 1
    for bar, end in (phrase_ends or {}).items():
        row = n_context + bar - song_bars
        known[row, PHRASE_END] = (0, 1) if end else (1, 0)
        mask[row, PHRASE_END] = 1


def _song_labels(x: np.ndarray, to_song: dict[int, int], song_x: np.ndarray) -> np.ndarray:
    """Sampled rows `x` `[N, N_FEATURES]` of new bars with their label group one-hot in the
    song's classes: a window class as `to_song` maps it, a class the window does not have as
    a class the song (`song_x`, its own rows) does not use either, distinct ones apart and in
    the same order (decoding breaks ties between labels by class)."""
    x = x.copy()
    labels = x[:, LABEL].argmax(axis=1).tolist()
    used = song_x[:, LABEL].argmax(axis=1)
    n_song = int(used[used < MAX_LABELS].max(initial=-1)) + 1
    new = sorted({lab for lab in labels if lab < MAX_LABELS and lab not in to_song})
    fresh = {lab: min(n_song + k, MAX_LABELS - 1) for k, lab in enumerate(new)}
    out = [to_song.get(lab, fresh.get(lab, lab)) for lab in labels]  # intro, outro stay
    x[:, LABEL] = 0
    x[np.arange(len(x)), LABEL.start + np.asarray(out, dtype=np.int64)] = 1
    return x
