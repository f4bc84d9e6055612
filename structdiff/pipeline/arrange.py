"""Arrange a plan: notes for every track at once, window by window, repeats reused.

The arranger works on windows of `WINDOW_STEPS` steps aligned to bar lines. The first window
starts at bar 1; every later one starts a quarter window back, so it sees the end of what came
before as known context and writes the bars after it. Whatever the caller keeps (whole tracks
for accompaniment or regeneration, the opening for continuation) is known context in every
window and comes back unchanged.

When a section label repeats, the bars of its earlier realization are reused (long-range
structure): with `variation` 0 they are copied, with 0 < `variation` <= 1 they guide the new
bars, which start from them noised part of the way (`structdiff.diffusion.sample`'s guide),
1 being a fresh realization.

A masked arranger (`ArrangerConfig.diffusion == "masked"`) unmasks each window's tokens in
`steps` rounds instead (`structdiff.diffusion.masked.sample_masked`); its bundle's `order`,
`resample` (Gibbs rounds after the unmasking), `resample_rate`, `temperature`, `top_p` and
`shape_from` (2: temperature and top_p shape the pitch, not the choice of REST, HOLD or a new
note) set how, and `sampler` is not used; its `voice_leading` leans each draw away from
parallel fifths and octaves (`structdiff.pipeline.voice_leading`; `voice_leading_direct`:
direct ones in the outer voices too, true for the same nats or a number of its own), its
`dissonance` away from notes off the chord reached or left by leap (with
`dissonance_both_sides`, the notes beside them lean too: `voice_leading.resolution_bias`), its
`interval_lean` (role -> nats per melodic interval, `voice_leading.interval_table`) toward the
lines' intervals of its corpus, its `completeness` away from notes that leave three or more
voices on fewer than three pitch classes (`voice_leading.completeness_bias`), its `compass`
(role -> lowest and highest pitch) keeps each voice in its range; with `lean_keeps_onsets` the
leans change only which pitch a new note takes, not whether one starts
(`voice_leading.within_pitches`). Known bars and tracks are
unmasked from the start; a variation starts from the repeated bars with a share `variation`
of their tokens masked again; the harmony lean and guidance act on its logits the same way.

Notes are generated transposed to C (or A minor) and moved back to the plan's key; velocities
follow each section's intensity.

`harmony` > 0 leans the sampler toward the plan's chords: at every denoising step, the logits
of striking a pitch that is not a tone of the chord sounding at that step are lowered by
`harmony`, and so are those of holding a note where the current estimate holds a pitch that
is off the chord there (`held_off_chord`). 0 leaves the model alone; passing and neighbour
tones get rarer as it grows. At the default, `DEFAULT_HARMONY`, arranged test plans sit on
their chords as much as the real songs do on their analyzed ones; 1.5 comes nearer the real
songs' dissonance rate (`evaluation/results/arranger_quality*.md`, README).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from structdiff.analysis.chords import CHORD_TONES, QUALITIES
from structdiff.data.arrange_tensor import (
    INTENSITIES,
    INTENSITY_CUTS,
    WINDOW_STEPS,
    feature_slice,
    key_shift,
    step_plan,
    token_features,
    transpose_song,
)
from structdiff.data.parts import PartLayout, Parts, decode_parts, encode_parts
from structdiff.data.song import DURATION, PITCH, START, VELOCITY, Plan, Song
from structdiff.data.tokens import HOLD, N_SPECIAL
from structdiff.diffusion import ClassifierFreeGuidance, NoiseSchedule, sample
from structdiff.diffusion.masked import MASK, sample_masked
from structdiff.models.arranger import Arranger, ArrangerConfig
from structdiff.models.bundle import load_state, read_bundle_meta
from structdiff.pipeline.voice_leading import (
    compass_bias,
    completeness_bias,
    dissonance_bias,
    interval_bias,
    interval_table,
    resolution_bias,
    sounding_lines,
    voice_leading_bias,
    within_pitches,
)

VELOCITY_OF_INTENSITY = (60, 78, 96, 80)  # low, mid, high, unknown
DEFAULT_HARMONY = 2.0
MASKED_OPTIONS = ("order", "resample", "resample_rate", "temperature", "top_p",
                  "shape_from")  # of sample_masked


@dataclass
class ArrangerBundle:
    model: Arranger
    noise: NoiseSchedule
    styles: list[str]
    roles: list[str]
    pitch_low: int
    n_pitches: int
    meta: dict

    @property
    def layout(self) -> PartLayout:
        """The arranger's role slots, their kinds and pitch ranges."""
        kinds = self.meta.get("kinds") or ["mono"] * len(self.roles)
        return PartLayout(tuple(self.roles), tuple(kinds), self.pitch_low, self.n_pitches,
                          int(self.meta.get("poly_low", 36)),
                          int(self.meta.get("poly_pitches", 48)))

    @property
    def intensity_cuts(self) -> tuple[float, float]:
        """Note densities between the intensity levels the arranger was trained with."""
        return tuple(self.meta.get("intensity_cuts") or INTENSITY_CUTS)

    @property
    def plan_bass(self) -> bool:
        """Whether the network is told the plan chords' bass (False: trained with `bass_drop`,
        its bass line chooses the inversions, and the song's plan is told them,
        `sounded_bass`)."""
        return bool(self.meta.get("plan_bass", True))

    @property
    def programs(self) -> dict[str, int]:
        """The default GM program of each role that has one (from its role map)."""
        return {r: int(p) for r, p in (self.meta.get("programs") or {}).items()}


def load_arranger(folder: str | Path | None = None) -> ArrangerBundle:
    """The arranger bundle in `folder` (default: the one shipped in the package)."""
    meta = read_bundle_meta(folder, "arranger")
    model = load_state(Arranger(ArrangerConfig(**meta["config"])), folder, "arranger")
    return ArrangerBundle(model, NoiseSchedule(**meta["noise"]), list(meta["styles"]),
                          list(meta["roles"]), int(meta["pitch_low"]), int(meta["n_pitches"]),
                          meta)


def repeat_sources(song: Song, plan: Plan) -> np.ndarray:
    """For each bar `[L]`, the bar of an earlier section with the same label it repeats (the
    same position in the section, the same length), else -1. Intro and outro never repeat."""
    src = np.full(song.n_bars, -1, dtype=np.int64)
    lengths = song.bar_ends - song.bars
    first: dict[str, tuple[int, int]] = {}
    for s in plan.sections:
        if s.label in ("i", "o"):
            continue
        if s.label not in first:
            first[s.label] = (s.start_bar, s.n_bars)
            continue
        start, n = first[s.label]
        for j in range(min(n, s.n_bars)):
            bar, source = s.start_bar + j, start + j
            if bar < song.n_bars and source < bar and lengths[bar] == lengths[source]:
                src[bar] = source
    return src


def repeat_chords(song: Song, plan: Plan, from_bar: int = 0) -> Plan:
    """The plan with every repeated bar (`repeat_sources`) from `from_bar` on given the chords
    of the bar it repeats, so that a repeated section's music and its chords agree. Other bars
    keep theirs."""
    src = repeat_sources(song, plan)
    src[:from_bar] = -1
    if not (src >= 0).any():
        return plan
    # which of the plan's chords sounds at each step (-1: none); repeated bars take their
    # source bar's, then runs of one chord become chords again
    T = int(song.end)
    which = np.full(T, -1, dtype=np.int64)
    for i, c in enumerate(plan.chords):
        which[max(c.onset, 0) : min(c.onset + c.duration, T)] = i
    for b in np.nonzero(src >= 0)[0]:
        lo, n, slo = int(song.bars[b]), int(song.bar_ends[b] - song.bars[b]), int(song.bars[src[b]])
        which[lo : lo + n] = which[slo : slo + n].copy()
    starts = np.flatnonzero(np.diff(which, prepend=-2))
    chords = [replace(plan.chords[which[a]], onset=int(a), duration=int(e - a))
              for a, e in zip(starts, [*starts[1:], T]) if which[a] >= 0]
    merged: list = []
    for c in chords:  # a chord cut in two by a bar line of the copy joins up again
        last = merged[-1] if merged else None
        if (last is not None and last.onset + last.duration == c.onset
                and (last.root, last.quality, last.bass) == (c.root, c.quality, c.bass)):
            merged[-1] = replace(last, duration=last.duration + c.duration)
        else:
            merged.append(c)
    return replace(plan, chords=merged)


def sounded_bass(plan: Plan, notes: list[np.ndarray], from_step: int = 0) -> Plan:
    """The plan with each chord from `from_step` on given the bass the parts sound: the pitch
    class of the lowest of `notes` (pitched notes `[N, 4]`, one array per part) sounding at
    the chord's onset, where it is one of the chord's tones; other chords keep theirs. For an
    arranger that is not told the plan's bass (`plan_bass: false`), whose bass line chooses
    the inversions."""
    every = np.concatenate([n for n in notes if len(n)]) if any(len(n) for n in notes) else None
    if every is None:
        return plan
    start, end = every[:, START], every[:, START] + every[:, DURATION]
    chords = []
    for c in plan.chords:
        if c.onset >= from_step and c.quality != "N":
            sounding = every[(start <= c.onset) & (c.onset < end), PITCH]
            if len(sounding):
                pc = int(sounding.min()) % 12
                if CHORD_TONES[QUALITIES.index(c.quality), c.root % 12, pc]:
                    c = replace(c, bass=pc)
        chords.append(c)
    return replace(plan, chords=chords)


def harmony_bias(sp, vocab: int, pitch_low: int, strength: float,
                 n_special: int = N_SPECIAL) -> np.ndarray:
    """Logit offsets `[T, vocab]`: -strength for striking a non-chord tone under a chord (the
    chords of `sp` are relative to the tonic, the tokens' pitches transposed to C), else 0.
    The first `n_special` values are not pitches (rest and hold; 0 for a roll's pitches)."""
    T = sp.n_steps
    bias = np.zeros((T, vocab), dtype=np.float32)
    if strength == 0.0:
        return bias
    has_chord = (sp.root < 12) & (sp.quality != QUALITIES.index("N"))
    pcs = (pitch_low + np.arange(vocab - n_special)) % 12
    step_tones = CHORD_TONES[sp.quality[has_chord], sp.root[has_chord]]  # [T', 12]
    bias[has_chord, n_special:] = np.where(step_tones[:, pcs], 0.0, -strength)
    return bias


def held_off_chord(logits: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Where the current estimate (argmax of `logits` `[B, K, W, V]`) holds a note whose pitch
    is off the chord sounding at that step (`bias` `[1, 1, W, V]` < 0 for it): bool `[B, K, W]`."""
    tok = logits.argmax(dim=-1)
    line = sounding_lines(tok)  # the pitch index sounding at each step (< 0: none)
    struck = line.clamp(min=0) + N_SPECIAL  # its token
    b = bias.expand(tok.shape[0], tok.shape[1], -1, -1)
    off = b.gather(-1, struck.unsqueeze(-1)).squeeze(-1) < 0
    return (tok == HOLD) & (line >= 0) & off


def arrange(
    bundle: ArrangerBundle,
    song: Song,
    plan: Plan,
    roles: list[str],
    *,
    known_roles: tuple[str, ...] = (),
    known_until: int = 0,
    known_from: int | None = None,
    style: str | None = None,
    intensities: list[int] | None = None,
    seed: int = 0,
    steps: int = 20,
    sampler: str = "ddim",
    guidance_scale: float = 1.0,
    variation: float = 0.0,
    harmony: float = DEFAULT_HARMONY,
    progress: bool = False,
    window: int = WINDOW_STEPS,
    context_steps: int | None = None,
    resample: int | None = None,
    voice_leading: float | None = None,
    dissonance: float | None = None,
    interval_scale: float | None = None,
    completeness: float | None = None,
) -> dict[str, np.ndarray]:
    """Notes `[N, 4]` per role of `roles` that the arranger writes for `plan` on `song`'s bars.

    `song` gives the bars, the meter and any known material: the tracks of `known_roles` are
    kept whole, every role's steps before `known_until` and, with `known_from`, every role's
    steps from there on (infilling between two known sides). Known notes are not returned
    (the caller keeps the originals). `intensities` gives each section's level
    (index into INTENSITIES; default: measured from the song's notes, else unknown).
    `window` (steps, a multiple of the model's steps per token) and `context_steps` (how far
    back a window starts, default a quarter window) trade context for speed: a live session
    writes an urgent bar in a short window. `resample`: a masked arranger's Gibbs rounds
    after the unmasking (default: its bundle's; a live session passes 0). `voice_leading`:
    a masked arranger's lean against parallel fifths and octaves, and, with its bundle's
    `voice_leading_direct`, direct ones between the top role played and the bass
    (`voice_leading_bias`; default: its bundle's `voice_leading`, else 0). `dissonance`: its
    lean against notes off the plan's chord approached or left by leap (`dissonance_bias`;
    default: its bundle's `dissonance`, else 0). `interval_scale` multiplies its bundle's
    `interval_lean` (the lean on each voice's melodic intervals; default 1, 0 turns it off).
    `completeness`: its lean against a note that leaves three or more sounding voices on
    fewer than three pitch classes (`completeness_bias`; default: its bundle's
    `completeness`, else 0).
    Raises ValueError with a one-line message for bad values.
    """
    unknown_roles = [r for r in roles if r not in bundle.roles]
    if unknown_roles:
        raise ValueError(f"unknown role {unknown_roles[0]!r} for this arranger "
                         f"(roles: {', '.join(bundle.roles)})")
    if not roles:
        raise ValueError("no roles to play")
    if style is not None and style not in bundle.styles:
        raise ValueError(f"unknown style {style!r} (known: {', '.join(bundle.styles)})")
    if not 0.0 <= variation <= 1.0:
        raise ValueError(f"variation must be in 0..1, got {variation}")
    if not 0.0 <= harmony <= 100.0:
        raise ValueError(f"harmony must be in 0..100, got {harmony}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if voice_leading is None:
        voice_leading = float(bundle.meta.get("voice_leading", 0.0))
    if dissonance is None:
        dissonance = float(bundle.meta.get("dissonance", 0.0))
    if completeness is None:
        completeness = float(bundle.meta.get("completeness", 0.0))
    for name, value in (("voice_leading", voice_leading), ("dissonance", dissonance),
                        ("completeness", completeness)):
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"{name} must be in 0..100, got {value}")
    interval_scale = 1.0 if interval_scale is None else float(interval_scale)
    if not 0.0 <= interval_scale <= 4.0:
        raise ValueError(f"interval_lean must be in 0..4, got {interval_scale}")
    masked = None  # the samplers are Gaussian ones: a masked arranger unmasks as its bundle says
    if bundle.model.cfg.diffusion == "masked":
        masked = {k: bundle.meta[k] for k in MASKED_OPTIONS if k in bundle.meta}
        if resample is not None:
            masked["resample"] = int(resample)
    if song.n_bars < 1 or song.end < 1:
        raise ValueError("the song has no bars to arrange")
    lengths = song.bar_ends - song.bars
    W = window
    back = W // 4 if context_steps is None else context_steps
    if W < 1 or W % bundle.model.cfg.steps_per_token or not 0 <= back < W:
        raise ValueError(f"window must be a multiple of {bundle.model.cfg.steps_per_token} "
                         f"steps with 0 <= context_steps < window, got {window}, {context_steps}")
    if int(lengths.max()) > W - back:
        raise ValueError(f"bars longer than {W - back} steps don't fit the arranger's window")

    model = bundle.model
    layout = bundle.layout
    T, K = int(song.end), len(bundle.roles)
    shift = key_shift(plan.key)
    moved = transpose_song(song, shift)
    canvas = _x0(model, encode_parts(moved, layout, 0, T))  # [K, T, C]
    silent = _x0(model, encode_parts(replace(song, tracks=[]), layout, 0, 1))  # [K, 1, C]
    present = np.array([r in roles for r in bundle.roles])
    done = np.zeros((K, T), dtype=bool)
    for k, r in enumerate(bundle.roles):
        if r in known_roles:
            done[k] = True
        if not present[k]:
            canvas[k], done[k] = silent[k], True
    done[present, :known_until] = True
    if known_from is not None:
        done[present, known_from:] = True
    sp = step_plan(song, plan, intensities, cuts=bundle.intensity_cuts)
    src = repeat_sources(song, plan)
    biases = None
    if harmony:
        biases = {"bias": harmony_bias(sp, model.cfg.vocab, bundle.pitch_low, harmony)}
        if layout.slots("poly"):
            biases["poly_bias"] = harmony_bias(sp, layout.poly_pitches, layout.poly_low,
                                               harmony, n_special=0)

    if dissonance and masked is not None:  # -1 where a pitch is off the chord, per step
        biases = {**(biases or {}), "off_chord": harmony_bias(sp, model.cfg.vocab,
                                                              bundle.pitch_low, 1.0)}

    n_styles = len(bundle.styles)
    style_index = torch.tensor([bundle.styles.index(style) if style else n_styles])
    present_t = torch.from_numpy(present)[None]
    # the outer voices whose direct fifths and octaves the voice-leading lean also avoids
    # (with the bundle's `voice_leading_direct`): the first role played (the roles come from
    # the top) and the bass (else the last role played)
    playing = np.flatnonzero(present)
    bottom = bundle.roles.index("bass") if "bass" in roles else int(playing[-1])
    # `voice_leading_direct`: true (direct ones cost the lean's nats) or a number of nats
    direct_lean = bundle.meta.get("voice_leading_direct", False)
    outer = (int(playing[0]), bottom) if (int(playing[0]) != bottom and direct_lean) else None
    direct_strength = (float(direct_lean) if not isinstance(direct_lean, bool) and outer
                       else None)

    # a masked arranger's leans on each voice's melodic intervals (the bundle's
    # `interval_lean`) and toward its compass (`compass`: role -> [lowest, highest], 1 nat per
    # semitone outside it)
    intervals = compass = None
    keep_onsets = bool(bundle.meta.get("lean_keeps_onsets", False))
    # the dissonance lean on both notes of each pair (`resolution_bias` beside `dissonance_bias`)
    both_sides = bool(bundle.meta.get("dissonance_both_sides", False))
    if masked is not None:
        intervals = interval_scale * interval_table(bundle.meta.get("interval_lean"),
                                                    bundle.roles)
        intervals[~torch.from_numpy(present)] = 0.0
        intervals = intervals if bool(intervals.ne(0).any()) else None
        if bundle.meta.get("compass"):
            compass = compass_bias(model.cfg.vocab, bundle.pitch_low, shift,
                                   bundle.meta["compass"], bundle.roles)[None, :, None, :]

    def lean(out: dict, c: dict) -> dict:
        """The network's outputs leaned toward the plan's chords (`harmony`)."""
        if "bias" in c and "mono" in out:
            logits = out["mono"] + c["bias"]
            # holding a note whose pitch is off the chord now costs as much as striking one
            logits[..., HOLD] -= harmony * held_off_chord(logits, c["bias"])
            out["mono"] = logits
        if "poly_bias" in c and "poly" in out:  # striking or holding an off-chord pitch
            out["poly"] = out["poly"] + c["poly_bias"][..., None]
        return out

    if masked is not None:
        def denoiser(tokens, t, c):  # logits of masked tokens
            logits = lean({"mono": model.masked_logits(tokens, t, c)}, c)["mono"]
            leans = []
            if voice_leading:
                leans.append(voice_leading_bias(tokens, logits.shape[-1], voice_leading, outer,
                                                direct_strength))
            if dissonance:
                leans.append(dissonance_bias(tokens, c["off_chord"] < 0, dissonance))
                if both_sides:  # the note after (or before) a dissonance leans too
                    leans.append(resolution_bias(tokens, c["off_chord"] < 0, dissonance))
            if completeness:
                leans.append(completeness_bias(tokens, logits.shape[-1], completeness))
            if intervals is not None:
                leans.append(interval_bias(tokens, logits.shape[-1], intervals))
            if compass is not None:
                leans.append(compass.expand_as(logits))
            if not leans:
                return logits
            if keep_onsets:
                return within_pitches(logits, sum(leans))
            return logits + sum(leans)
    else:
        def denoiser(x_t, t, c):
            return model.x0_from_output(lean(model(x_t, t, c), c))

    generator = torch.Generator().manual_seed(seed)
    bars, ends = song.bars, song.bar_ends
    bar_at = {int(b): i for i, b in enumerate(bars.tolist())}
    pos = 0
    bar_progress = tqdm(total=song.n_bars, desc="arranging", unit="bar", disable=not progress)
    while pos < T:
        b = bar_at[pos]
        if done[present, pos : int(ends[b])].all():  # known already: nothing to write
            pos = int(ends[b])
            bar_progress.update(1)
            continue
        if variation == 0.0 and src[b] >= 0:
            lo, n = int(bars[src[b]]), int(lengths[b])
            free = ~done[:, pos : pos + n]
            canvas[:, pos : pos + n][free] = canvas[:, lo : lo + n][free]
            done[present, pos : pos + n] = True
            pos = int(ends[b])
            bar_progress.update(1)
            continue
        # the window: a quarter window of what came before, then new bars up to its end
        ws = 0 if pos == 0 else int(bars[bars <= pos - back].max(initial=0))
        if ends[b] > ws + W:  # long bars before: less context, so that this bar fits
            ws = int(bars[bars >= ends[b] - W].min())
        new_end, bb = pos, b
        while bb < song.n_bars and ends[bb] <= ws + W:
            if bb > b and variation == 0.0 and src[bb] >= 0:
                break
            new_end, bb = int(ends[bb]), bb + 1
        x0 = _arrange_window(
            model, bundle.noise, canvas, silent, done, src, sp, song, ws, pos, new_end,
            variation, style_index, present_t, denoiser, guidance_scale, n_styles, steps,
            sampler, generator, biases, W, masked,
            register=shift if model.cfg.register else None,
            plan_bass=bundle.plan_bass,
        )
        free = ~done[:, pos:new_end]
        canvas[:, pos:new_end][free] = x0[:, pos - ws : new_end - ws][free]
        done[present, pos:new_end] = True
        bar_progress.update(bb - b)
        pos = new_end
    bar_progress.close()

    with torch.no_grad():
        parts = model.decode_x0(torch.from_numpy(canvas)[None])
    notes = decode_parts(Parts(**{k: v[0].numpy() for k, v in parts.items()}), layout)
    out = {}
    for role in roles:
        if role in known_roles:
            continue
        n = notes[role].copy()
        if known_until:
            n = n[n[:, START] >= known_until]
        if known_from is not None:
            n = n[n[:, START] < known_from]
        if layout.kind_of(role) != "drums":  # drum keys are instruments, not pitches
            n[:, PITCH] -= shift
        n[:, VELOCITY] = np.asarray(VELOCITY_OF_INTENSITY)[sp.intensity[n[:, START]]]
        out[role] = n
    return out


def _x0(model: Arranger, parts: Parts) -> np.ndarray:
    """Clean x0 values `[K, T, C]` of parts."""
    with torch.no_grad():
        x0 = model.encode_x0(*(torch.from_numpy(a)[None] for a in
                               (parts.tokens, parts.roll, parts.hits)))
    return x0[0].numpy()


def _strike_held_notes(model, canvas: np.ndarray, window: np.ndarray, known: np.ndarray,
                       ws: int, look_back: int = 4 * WINDOW_STEPS) -> None:
    """A window that starts inside a held note of a known mono part starts with `HOLD`, which
    training never shows: there a note sounding across a window's start is struck at it
    (`encode_tokens`). Put the note's pitch token at the window's first step instead (in place;
    known steps are never written back, so the song keeps its held note)."""
    if ws == 0:
        return
    E = model.cfg.emb_dim
    slots = [k for k in model.slots("mono", canvas.shape[0]) if known[k, 0]]
    if not slots:
        return
    with torch.no_grad():
        first = model.nearest_tokens(torch.from_numpy(window[slots, 0, :E])).numpy()
        held = [k for k, t in zip(slots, first.tolist()) if t == HOLD]
        if not held:
            return
        lo = max(0, ws - look_back)
        before = model.nearest_tokens(torch.from_numpy(canvas[held, lo:ws, :E])).numpy()
        emb = model.token_embeddings().numpy()
    for k, tokens in zip(held, before):
        onsets = np.flatnonzero(tokens != HOLD)
        if len(onsets) and tokens[onsets[-1]] >= N_SPECIAL:  # a note, not a rest
            window[k, 0] = 0.0
            window[k, 0, :E] = emb[tokens[onsets[-1]]]


def _arrange_window(model, noise, canvas, silent, done, src, sp, song, ws, pos, new_end,
                    variation, style_index, present_t, denoiser, guidance_scale, n_styles, steps,
                    sampler, generator, biases=None, W: int = WINDOW_STEPS,
                    masked: dict | None = None, register: int | None = None,
                    plan_bass: bool = True) -> np.ndarray:
    """Sample the window [ws, ws + W): clean x0 values `[K, W, C]`. `masked`: the
    `sample_masked` options of a masked arranger (else it is a Gaussian one); `register`:
    the semitones the song was moved to C, for a network that reads it; without
    `plan_bass` the network is not told the chords' bass."""
    K, T, C = canvas.shape
    hi = min(T, ws + W)
    window = np.repeat(silent, W, axis=1)  # padding past the song's end is known silence
    window[:, : hi - ws] = canvas[:, ws:hi]
    known = np.ones((K, W), dtype=bool)
    known[:, : hi - ws] = done[:, ws:hi]
    _strike_held_notes(model, canvas, window, known, ws)
    plan = torch.from_numpy(token_features(sp, ws, W, bass=plan_bass))[None]
    cond = {"style": style_index, "plan": plan, "present": present_t}
    if register is not None:
        cond["register"] = torch.tensor([register])
    for name, bias in (biases or {}).items():
        window_bias = np.zeros((W, bias.shape[1]), dtype=np.float32)
        window_bias[: hi - ws] = bias[ws:hi]
        cond[name] = torch.from_numpy(window_bias)[None, None]  # [1, 1, W, V]

    guide = guide_mask = None
    if variation > 0.0:
        gwindow = window.copy()
        gmask = np.zeros((K, W), dtype=bool)
        for b in range(int(song.bar_of(pos)), int(song.bar_of(new_end - 1)) + 1):
            if src[b] < 0:
                continue
            lo, n, slo = int(song.bars[b]), int(song.bar_ends[b] - song.bars[b]), int(
                song.bars[src[b]])
            gwindow[:, lo - ws : lo - ws + n] = canvas[:, slo : slo + n]
            gmask[:, lo - ws : lo - ws + n] = ~known[:, lo - ws : lo - ws + n]
        if gmask.any():
            guide = torch.from_numpy(gwindow)[None]
            guide_mask = torch.from_numpy(gmask)[None, :, :, None]

    fn = denoiser
    if guidance_scale != 1.0:
        unknown = torch.zeros(len(INTENSITIES) + 1)
        unknown[len(INTENSITIES)] = 1
        null_plan = plan.clone()
        real = null_plan[..., feature_slice("pad").start] < 0.5
        null_plan[..., feature_slice("intensity")][real] = unknown
        fn = ClassifierFreeGuidance(denoiser, guidance_scale,
                                    {"style": n_styles, "plan": null_plan})
    with torch.no_grad():
        x0 = torch.from_numpy(window)[None]
        if masked is not None:
            E = model.cfg.emb_dim
            given = model.nearest_tokens(x0[..., :E])
            mask = torch.from_numpy(known)[None]
            # the known tokens are also the network's context, as in training (read with the
            # unknown ones masked, so that no pitch is read from a window's unwritten steps)
            m = mask[..., None].to(x0.dtype).expand(-1, -1, -1, C)
            context = model.masked_input(given.masked_fill(~mask, MASK)) * m
            cond = {**cond, "context": context, "mask": m}
            tokens = sample_masked(
                fn, (1, K, W), noise.num_train_timesteps, cond, steps, generator=generator,
                known=given, mask=mask,
                guide=None if guide is None else model.nearest_tokens(guide[..., :E]),
                guide_mask=None if guide is None else guide_mask[..., 0],
                guide_strength=variation if guide is not None else 1.0, **masked)
            return model.masked_input(tokens)[0].numpy()
        x = sample(fn, (1, K, W, C), noise, cond, sampler, steps,
                   generator=generator, known=x0,
                   mask=torch.from_numpy(known)[None, :, :, None],
                   guide=guide, guide_mask=guide_mask,
                   guide_strength=variation if guide is not None else 1.0)
        return model.snap(x)[0].numpy()
