"""Written scores of cue sheets: a session run on the simulated clock over the timeline.

`render_soundtrack` plays the cue sheet's timeline through a `Session` (one code path with
live play): each entry's change is scheduled on its first bar, its stinger on the first bar of
the state's own music. What comes back is the score as one Song with a marker per state, the
states as bands, and for every state a loop: its own bars, with the last one written again
knowing the loop's start on both sides, so that it leads back into the first.
`write_soundtrack` writes `score.mid`, `score.STATE.loop.mid`, `score.ROLE.stem.mid`,
`score.plan.json`, `score.png` (states as coloured bands) and `score.wav` where a synthesizer
is installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from structdiff.data.song import Song
from structdiff.pipeline.arrange import ArrangerBundle
from structdiff.pipeline.cue import CueError, CueSheet, check_cue
from structdiff.pipeline.plan import PlannerBundle, infill_chords
from structdiff.pipeline.session import Bar, BarSpec, Session, bar_chords, song_of_bars

LOOP_TRIES = 8  # candidates for a loop's last bars
LOOP_BARS = 2  # bars a loop writes anew at its end


@dataclass
class Soundtrack:
    """A written score and what goes with it."""

    song: Song
    bars: list[Bar]
    markers: list[tuple[int, str]]  # (step, "state:NAME" | "transition:KIND" | "stinger:NAME")
    bands: list[tuple[int, int, str]]  # (start step, end step, state) of each timeline entry
    loops: dict[str, Song] = field(default_factory=dict)
    seams: dict[str, dict[str, float]] = field(default_factory=dict)  # state -> seam, typical
    seconds: float = 0.0  # spent writing


def render_soundtrack(cue: CueSheet, planner: PlannerBundle, arranger: ArrangerBundle, *,
                      seed: int | None = None, steps: int | None = None,
                      harmony: float | None = None, loops: bool = True,
                      progress: bool = False) -> Soundtrack:
    """The cue sheet's timeline as one score (see the module's docstring). Raises CueError
    for a sheet without a timeline or with styles and roles the models lack."""
    if not cue.timeline:
        raise CueError(f"{cue.source}: timeline: empty (a written score needs one; a sheet "
                       f"without one is for `structdiff live`)")
    styles = [s for s in arranger.styles if s in planner.styles]
    check_cue(cue, styles, arranger.roles)
    session = Session(cue, planner, arranger, state=cue.timeline[0].state,
                      seed=cue.seed if seed is None else seed, steps=steps, harmony=harmony,
                      clock="simulated")
    start = 0
    for i, entry in enumerate(cue.timeline):
        if i:
            session.at_bar(start, "set_state", entry.state, transition=entry.transition)
        if entry.stinger:
            session.at_bar(start + entry.transition.bars, "stinger", entry.stinger)
        start += entry.bars
    bars = list(tqdm(session.bars(cue.total_bars), total=cue.total_bars, desc="writing",
                     unit="bar", disable=not progress))
    song, _ = song_of_bars(bars, cue.meter, session.programs,
                           track_names=_track_names(session.programs))
    song = replace(song, source=Path(cue.source).stem, style=cue.style)
    starts = np.asarray(song.bars.tolist() + [song.end])
    markers = [(int(starts[b.index]) + step, text) for b in bars for step, text in b.markers]
    bands, first = [], 0
    for entry in cue.timeline:
        bands.append((int(starts[first]), int(starts[first + entry.bars]), entry.state))
        first += entry.bars
    out = Soundtrack(song, bars, markers, bands)
    if loops:
        first = 0
        for entry in cue.timeline:
            own = [b for b in bars[first : first + entry.bars]
                   if b.state == entry.state and b.transition is None]
            first += entry.bars
            if entry.state in out.loops or len(own) < 2:
                continue
            loop, seam = _loop(session, own)
            out.loops[entry.state] = loop
            out.seams[entry.state] = seam
    out.seconds = session.composer.seconds
    return out


def _loop(session: Session, own: list[Bar], tries: int = LOOP_TRIES
          ) -> tuple[Song, dict[str, float]]:
    """The state's bars as a loop: its last bars written again between the others and the
    first two (both known), `tries` times: on the plan's own chords and on chords the planner
    infills knowing the loop's start after them, each with its own seed. The candidate whose
    seam (last bar -> first) is most like its neighbours (`bar_ssm`: pitch-class and rhythm
    cosines) is kept; its seam similarity comes back beside the loop's typical bar-to-bar
    one."""
    from structdiff.metrics.structure import bar_ssm

    n_new = LOOP_BARS if len(own) > 2 * LOOP_BARS else 1
    tail = own[-n_new:]
    head = [replace(b, markers=[], extra=[]) for b in own[:2]]
    body = [replace(b, extra=[], markers=[]) for b in own[:-n_new]]
    state = session.cue.state(tail[0].state)
    window = body[-(session.planner.model.cfg.max_bars - n_new - 2):] + tail + head
    song, _ = song_of_bars(window, session.cue.meter, session.programs)
    first = len(window) - n_new - len(head)
    best = None
    for k in range(tries):
        plans = [b.plan for b in tail]
        if k % 2:
            plan = infill_chords(session.planner, song, replace(song.plan, key=tail[0].key),
                                 range(first, first + n_new),
                                 style=session.composer.style_of(state),
                                 seed=session.seed + tail[0].index + k,
                                 steps=session.composer.steps,
                                 chord_bias=state.qualities or None)
            plans = [replace(p, chords=bar_chords(song, plan, first + i))
                     for i, p in enumerate(plans)]
        specs = [BarSpec(p, state, b.key, b.intensity, tuple(b.notes), b.tempo)
                 for p, b in zip(plans, tail)]
        # a different seed per try: the bar's index moves the composer's seed
        candidates = session.composer.compose(body, specs, tail[0].index + 1_000 * k,
                                              future=head)
        loop_bars = body + [replace(c, index=b.index) for c, b in zip(candidates, tail)]
        around, _ = song_of_bars(loop_bars + head[:1], session.cue.meter, session.programs)
        ssm = bar_ssm(around)
        n = len(loop_bars)
        seam = float(ssm[n - 1, n]) + 0.5 * float(ssm[n - 2, n - 1])
        if best is None or seam > best[0]:
            best = (seam, loop_bars, ssm)
    _, loop_bars, ssm = best
    n = len(loop_bars)
    song, _ = song_of_bars(loop_bars, session.cue.meter, session.programs,
                           track_names=_track_names(session.programs))
    steps = [float(ssm[i, i + 1]) for i in range(n - 1)]
    return song, {"seam": float(ssm[n - 1, n]), "typical": float(np.median(steps)),
                  "bars": float(n)}


def _track_names(programs: dict[str, int]) -> dict[str, str]:
    """The names `generate` gives tracks: `Melody (Lead 1 (square))`, `Drums`."""
    from structdiff.pipeline.generate import track_name

    return {r: track_name(r, p, r == "drums") for r, p in programs.items()}


def write_soundtrack(track: Soundtrack, out: Path, png: bool = True, wav: bool = True,
                     stems: bool = True) -> list[str]:
    """Write the score, its loops and stems, plan, picture and audio; lines to print."""
    from structdiff.analysis.schema import analysis_dict
    from structdiff.data.midi import write_midi
    from structdiff.metrics.report import write_atomic
    from structdiff.pipeline.generate import write_picture_and_audio

    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    lines = []
    write_midi(track.song, out, markers=track.markers)
    states = ", ".join(f"{s} {_n_bars(track.song, a, b)}" for a, b, s in track.bands)
    lines.append(f"wrote {out} ({track.song.n_bars} bars: {states})")
    for state, loop in track.loops.items():
        path = stem.with_name(f"{stem.name}.{state}.loop.mid")
        write_midi(loop, path, markers=[(0, f"state:{state}"), (int(loop.end), "loop:end")])
        seam = track.seams[state]
        lines.append(f"wrote {path} ({loop.n_bars} bars; seam similarity {seam['seam']:.2f}, "
                     f"typical bar to bar {seam['typical']:.2f})")
    if stems:
        for t in track.song.tracks:
            if not t.n_notes:
                continue
            name = t.role or "-".join(t.name.lower().replace("(", "").replace(")", "").split())
            path = stem.with_name(f"{stem.name}.{name}.stem.mid")
            write_midi(replace(track.song, tracks=[t]), path, markers=track.markers)
            lines.append(f"wrote {path}")
    plan_path = stem.with_name(stem.name + ".plan.json")
    data = analysis_dict(track.song, track.song.plan)
    data["states"] = [{"state": s, "start_bar": int(np.searchsorted(track.song.bars, a)),
                       "bars": _n_bars(track.song, a, b)} for a, b, s in track.bands]
    data["markers"] = [{"bar": int(track.song.bar_of(step)), "step": int(step), "text": text}
                       for step, text in track.markers]
    data["loops"] = {s: {"bars": int(v["bars"]), "seam_similarity": round(v["seam"], 3),
                         "typical_similarity": round(v["typical"], 3)}
                     for s, v in track.seams.items()}
    write_atomic(plan_path, json.dumps(data, indent=2))
    lines.append(f"wrote {plan_path}")
    return lines + write_picture_and_audio(track.song, out, png, wav, bands=track.bands)


def _n_bars(song: Song, start: int, end: int) -> int:
    """Bars of `song` that start in [start, end)."""
    return int(np.searchsorted(song.bars, end) - np.searchsorted(song.bars, start))
