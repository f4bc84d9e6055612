"""Whole songs: plan (or take a plan), arrange, and write MIDI, plan JSON, picture and audio.

Four ways in, one way out:

- `new_song`: a plan from the planner (or a given one), arranged for the chosen instruments;
- `accompany`: a song's tracks kept, the other roles written around them;
- `continue_song`: a song extended by some bars, its plan continued by the planner;
- `regenerate`: one role of a song written anew, everything else kept;

and `write_outputs` writes `song.mid`, `song.plan.json`, `song.png` and `song.wav` (when a
synthesizer is installed). Everything is drawn from one seed: the same seed writes the same
bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np

from structdiff.data.arrange_tensor import INTENSITIES
from structdiff.data.roles import load_role_map
from structdiff.data.song import Plan, Song, Tempo, Track, sort_notes
from structdiff.pipeline.arrange import (
    DEFAULT_HARMONY,
    ArrangerBundle,
    arrange,
    repeat_chords,
    sounded_bass,
)
from structdiff.pipeline.plan import PlannerBundle, extend_plan, generate_plan

DEFAULT_INSTRUMENTS = {"soprano": 40, "alto": 40, "tenor": 41, "bass": 42, "quintus": 41}
DEFAULT_ROLES = ("soprano", "alto", "tenor", "bass")


@cache
def gm_program_names() -> tuple[str, ...]:
    """The 128 General MIDI program names (from pretty_midi, which MusPy installs; pypianoroll
    has the same table but imports matplotlib with it, 1.5 s of a cold start)."""
    from pretty_midi import program_to_instrument_name

    return tuple(program_to_instrument_name(i) for i in range(128))


def parse_program(text: str) -> int:
    """A GM program from a number 0-127 or a name (`violin`, `Church Organ`, `choir aahs`),
    or a part of a name that only one program has (`harpsichord`)."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        if not 0 <= value <= 127:
            raise ValueError(f"GM program numbers are 0-127, got {value}")
        return value
    names = gm_program_names()
    want = text.lower().replace("_", " ")
    exact = [i for i, n in enumerate(names) if n.lower() == want]
    if exact:
        return exact[0]
    partial = [i for i, n in enumerate(names) if want in n.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        options = ", ".join(names[i] for i in partial[:6])
        raise ValueError(f"instrument {text!r} is ambiguous: {options}")
    raise ValueError(f"unknown GM instrument {text!r} (a number 0-127 or a name such as "
                     f"'violin', 'church organ', 'choir aahs')")


def default_programs(arranger: ArrangerBundle) -> dict[str, int]:
    """The ensemble an arranger plays unless told otherwise, role to GM program: every role of
    a band arranger with its role map's program (drums: 0, on channel 10); the string quartet
    on soprano, alto, tenor and bass for the classical one."""
    if arranger.programs:
        return {r: arranger.programs.get(r, 0) for r in arranger.roles}
    return {r: DEFAULT_INSTRUMENTS[r] for r in DEFAULT_ROLES if r in arranger.roles}


def parse_instruments(text: str | None, roles: list[str],
                      defaults: dict[str, int] | None = None) -> dict[str, int]:
    """`"soprano=flute,alto=clarinet,bass=cello"` (or `"soprano=73 bass=42"`) -> role to GM
    program, in the given order; only these roles play. A role of `defaults` named alone
    (`"melody=flute,bass,drums"`) plays its default program. None: `defaults` (by default the
    string quartet on soprano, alto, tenor and bass)."""
    if text is None or not text.strip():
        if defaults is not None:
            return {r: p for r, p in defaults.items() if r in roles}
        return {r: DEFAULT_INSTRUMENTS[r] for r in DEFAULT_ROLES if r in roles}
    out: dict[str, int] = {}
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item and defaults is not None and item in defaults:
            out[item] = defaults[item]  # a role alone plays on its default instrument
            continue
        if "=" not in item:
            raise ValueError(f"--instruments takes ROLE=INSTRUMENT items, got {item!r} "
                             f"(roles: {', '.join(roles)})")
        role, name = (s.strip() for s in item.split("=", 1))
        if role not in roles:
            raise ValueError(f"unknown role {role!r} (roles: {', '.join(roles)})")
        out[role] = parse_program(name)
    if not out:
        raise ValueError("--instruments names no role")
    return out


def parse_intensity(text: str | None, plan: Plan) -> list[int] | None:
    """Section intensities: one level for all (`high`), one per section in order
    (`low,mid,high,mid`), or per label (`A=low,B=high`). None: unknown (the model decides)."""
    if text is None or not text.strip():
        return None
    levels = {name: i for i, name in enumerate(INTENSITIES)}

    def level(word: str) -> int:
        word = word.strip().lower()
        if word not in levels:
            raise ValueError(f"intensity must be one of {', '.join(INTENSITIES)}, got {word!r}")
        return levels[word]

    items = [s for s in text.replace(" ", ",").split(",") if s.strip()]
    if all("=" in s for s in items):
        by_label = {}
        for s in items:
            label, word = s.split("=", 1)
            by_label[label.strip()] = level(word)
        labels = {s.label for s in plan.sections}
        for label in by_label:
            if label not in labels:
                raise ValueError(f"intensity for section {label!r}, which the form lacks "
                                 f"(form: {plan.form})")
        return [by_label.get(s.label, len(INTENSITIES)) for s in plan.sections]
    if any("=" in s for s in items):
        raise ValueError("--intensity: give levels per label (A=low,B=high) or a list, not both")
    values = [level(s) for s in items]
    if len(values) == 1:
        return values * len(plan.sections)
    if len(values) != len(plan.sections):
        raise ValueError(f"--intensity has {len(values)} levels for {len(plan.sections)} "
                         f"sections (form: {plan.form})")
    return values


@dataclass
class Options:
    """Sampling options shared by every mode."""

    style: str | None = None
    seed: int = 0
    steps: int = 20
    sampler: str = "ddim"
    guidance: float | None = None  # None: the planner's own (its bundle's), none on the arranger
    variation: float = 0.0
    harmony: float = DEFAULT_HARMONY
    intensity: str | None = None
    progress: bool = False
    gibbs: int | None = None  # a masked arranger's Gibbs rounds (None: its bundle's)
    voice_leading: float | None = None  # a masked arranger's lean (None: its bundle's)
    interval_lean: float | None = None  # the scale of its interval lean (None: 1, the bundle's)
    dissonance: float | None = None  # a masked arranger's dissonance lean (None: its bundle's)
    completeness: float | None = None  # its lean toward complete chords (None: its bundle's)

    def arrange_kwargs(self) -> dict:
        """The keyword arguments of `arrange` these options set."""
        return {"style": self.style, "seed": self.seed, "steps": self.steps,
                "sampler": self.sampler,
                "guidance_scale": 1.0 if self.guidance is None else self.guidance,
                "variation": self.variation, "harmony": self.harmony,
                "progress": self.progress, "resample": self.gibbs,
                "voice_leading": self.voice_leading, "interval_scale": self.interval_lean,
                "dissonance": self.dissonance, "completeness": self.completeness}


def track_name(role: str, program: int, is_drum: bool = False) -> str:
    """A generated track's name: `Bass (Electric Bass (finger))`, `Drums`."""
    if is_drum:
        return role.capitalize()
    return f"{role.capitalize()} ({gm_program_names()[program]})"


def _bass_as_played(song: Song, arranger: ArrangerBundle, from_step: int = 0) -> Song:
    """`song` with its plan's chords from `from_step` on given the bass its parts play
    (`sounded_bass`) where the arranger was not told the plan's bass (`plan_bass: false`):
    the plan file then says what sounds."""
    if arranger.plan_bass or song.plan is None:
        return song
    notes = [t.notes for t in song.tracks if not t.is_drum]
    return replace(song, plan=sounded_bass(song.plan, notes, from_step))


def _arranged_song(song: Song, plan: Plan, notes: dict[str, np.ndarray],
                   programs: dict[str, int], kept: list[Track],
                   arranger: ArrangerBundle) -> Song:
    """`song` with the arranged notes as new tracks beside the `kept` ones, in the role map's
    order (the satb map's high-to-low order for voices)."""
    layout = arranger.layout
    role_map = arranger.meta.get("role_map") or "satb"
    tracks = list(kept)
    for role, program in programs.items():
        if role in notes:
            drum = layout.kind_of(role) == "drums"
            tracks.append(Track(track_name(role, program, drum), program, drum, notes[role],
                                role))
    rm = load_role_map(role_map)
    order = {r: i for i, r in enumerate(rm.pitch_order if rm.exclusive else rm.roles)}
    tracks.sort(key=lambda t: order.get(t.role or "", len(order)))
    return _bass_as_played(replace(song, tracks=tracks, plan=plan,
                                   role_map=song.role_map or role_map), arranger)


def new_song(planner: PlannerBundle, arranger: ArrangerBundle, opts: Options, *,
             plan_song: Song | None = None, n_bars: int | None = None, form: str | None = None,
             chords: str | None = None, key: str | None = None, meter=(4, 4),
             instruments: str | None = None, tempo: float | None = None) -> Song:
    """A new song: the plan of `plan_song` (a given plan's empty song) or one from the planner
    (`n_bars`, `form`, `chords`, `key`, `meter` fixed where given), then arranged. A planned
    section that repeats a label takes the chords of its first occurrence unless `chords`
    fixes them. `tempo` in quarter notes per minute (default: the given plan's, else 100)."""
    programs = parse_instruments(instruments, arranger.roles, default_programs(arranger))
    if plan_song is None:
        plan, plan_song = generate_plan(planner, n_bars, style=opts.style, key=key, form=form,
                                        chords=chords, meter=meter, seed=opts.seed,
                                        steps=opts.steps, sampler=opts.sampler,
                                        guidance_scale=opts.guidance)
        if chords is None:  # a repeated section repeats its chords (a user's chart is kept)
            plan_song.plan = repeat_chords(plan_song, plan)
    else:
        tempo = tempo or (plan_song.tempo_qpm if plan_song.tempos else None)
    plan = plan_song.plan
    song = replace(plan_song, tempos=[Tempo(0, float(tempo or 100.0))],
                   source="structdiff generate",
                   style=opts.style)
    notes = arrange(arranger, song, plan, list(programs),
                    intensities=parse_intensity(opts.intensity, plan), **opts.arrange_kwargs())
    return _arranged_song(song, plan, notes, programs, [], arranger)


def _song_roles(song: Song, arranger: ArrangerBundle) -> list[str]:
    roles = [r for r in song.roles if r in arranger.roles]
    if not roles:
        raise ValueError(f"{song.source}: no track fills a role of the arranger "
                         f"({', '.join(arranger.roles)}); its tracks were read with the "
                         f"{song.role_map} role map (--roles chooses another)")
    return roles


def accompany(arranger: ArrangerBundle, song: Song, opts: Options,
              instruments: str | None = None) -> Song:
    """`song`'s tracks kept; the roles of `instruments` it lacks (default: the missing ones
    of the arranger's ensemble, `default_programs`) written around them, on its plan."""
    have = _song_roles(song, arranger)
    programs = parse_instruments(instruments, arranger.roles, default_programs(arranger))
    programs = {r: p for r, p in programs.items() if r not in have}
    if not programs:
        raise ValueError(f"{song.source} already fills every role asked for "
                         f"({', '.join(have)}); name others with --instruments")
    notes = arrange(arranger, song, song.plan, have + list(programs), known_roles=tuple(have),
                    intensities=parse_intensity(opts.intensity, song.plan),
                    **opts.arrange_kwargs())
    return _arranged_song(song, song.plan, notes, programs, list(song.tracks), arranger)


def continue_song(planner: PlannerBundle, arranger: ArrangerBundle, song: Song, n_bars: int,
                  opts: Options) -> Song:
    """`song` and `n_bars` more bars: the planner continues its plan, the arranger its notes
    (the song's own bars are known context and stay as they are)."""
    roles = _song_roles(song, arranger)
    plan, longer = extend_plan(planner, song, song.plan, n_bars, style=opts.style,
                               seed=opts.seed, steps=opts.steps, sampler=opts.sampler,
                               guidance_scale=opts.guidance)
    plan = repeat_chords(longer, plan, from_bar=song.n_bars)
    longer = replace(longer, tracks=song.tracks, plan=plan)
    notes = arrange(arranger, longer, plan, roles, known_until=int(song.end),
                    intensities=parse_intensity(opts.intensity, plan), **opts.arrange_kwargs())
    tracks = []
    for t in song.tracks:
        more = notes.pop(t.role, None) if t.role else None
        if more is not None and len(more):
            t = replace(t, notes=sort_notes(np.concatenate([t.notes, more])))
        tracks.append(t)
    return _bass_as_played(replace(longer, tracks=tracks, plan=plan), arranger, int(song.end))


def regenerate(arranger: ArrangerBundle, song: Song, role: str, opts: Options) -> Song:
    """`song` with the track(s) of `role` written anew around all the others."""
    roles = _song_roles(song, arranger)
    if role not in arranger.roles:
        raise ValueError(f"unknown role {role!r} (roles: {', '.join(arranger.roles)})")
    if role not in roles:
        raise ValueError(f"{song.source} has no {role} track (it has: {', '.join(roles)})")
    others = tuple(r for r in roles if r != role)
    notes = arrange(arranger, song, song.plan, roles, known_roles=others,
                    intensities=parse_intensity(opts.intensity, song.plan),
                    **opts.arrange_kwargs())
    tracks, placed = [], False
    for t in song.tracks:
        if t.role != role:
            tracks.append(t)
        elif not placed:
            tracks.append(replace(t, notes=notes[role]))
            placed = True
    return _bass_as_played(replace(song, tracks=tracks), arranger)


def write_outputs(song: Song, out: Path, png: bool = True, wav: bool = True) -> list[str]:
    """Write `out` (MIDI), `out`'s `.plan.json`, `.png` and `.wav` beside it; lines to print
    (what was written, or how to enable audio)."""
    from structdiff.analysis.schema import analysis_dict
    from structdiff.data.midi import write_midi
    from structdiff.metrics.report import write_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    lines = []
    write_midi(song, out)
    lines.append(f"wrote {out}")
    plan_path = stem.with_name(stem.name + ".plan.json")
    write_atomic(plan_path, json.dumps(analysis_dict(song, song.plan), indent=2))
    lines.append(f"wrote {plan_path}")
    return lines + write_picture_and_audio(song, out, png, wav)


def write_picture_and_audio(song: Song, out: Path, png: bool = True, wav: bool = True,
                            bands=()) -> list[str]:
    """`out`'s `.png` (with `bands`, see `render_png`) and `.wav` (when a synthesizer is
    installed) beside the MIDI file `out`; lines to print."""
    from structdiff.data.audio import SynthesizerMissing, render_wav

    stem = out.with_suffix("")
    lines = []
    if png:
        from structdiff.render import render_png

        png_path = stem.with_name(stem.name + ".png")  # "take.2.mid" -> "take.2.png"
        render_png(song, png_path, bands=bands)
        lines.append(f"wrote {png_path}")
    if wav:
        wav_path = stem.with_name(stem.name + ".wav")
        try:
            render_wav(out, wav_path)
            lines.append(f"wrote {wav_path}")
        except SynthesizerMissing as e:
            lines.append(f"no {wav_path.name}: {e}")
    return lines
