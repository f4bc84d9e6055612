"""Piano-roll pictures of a song: `render_png(song, path)`.

One picture shows the whole song so that a plan can be checked by eye against the notes: bars
along x (bar numbers at bar lines), MIDI pitch along y, one colour per track, drums in their own
lane below the roll, sections as shaded bands labelled at the top, chord names in a strip above
the roll. Drawing uses matplotlib's object API on an Agg canvas, so it never opens a window and
leaves pyplot's global state alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from structdiff.data.song import (
    DURATION,
    PITCH,
    PITCH_CLASS_NAMES,
    START,
    VELOCITY,
    Plan,
    Song,
    Track,
)

# Short General MIDI percussion names for the drum lane; other keys show as their number.
GM_DRUM_NAMES = {
    35: "kick 2", 36: "kick", 37: "side stick", 38: "snare", 39: "clap", 40: "snare 2",
    41: "floor tom lo", 42: "hh closed", 43: "floor tom hi", 44: "hh pedal", 45: "tom lo",
    46: "hh open", 47: "tom lo-mid", 48: "tom hi-mid", 49: "crash", 50: "tom hi", 51: "ride",
    52: "china", 53: "ride bell", 54: "tambourine", 55: "splash", 56: "cowbell", 57: "crash 2",
    59: "ride 2",
}
BLACK_KEYS = {1, 3, 6, 8, 10}


@dataclass(frozen=True)
class Layout:
    """Sizes in inches; the figure width follows the song's length between the limits."""

    min_width: float = 12.0
    max_width: float = 40.0
    inches_per_quarter: float = 0.12  # before the limits: 10 bars of 4/4 stay at min_width
    left: float = 0.85  # room for pitch and drum names
    right: float = 0.3
    title: float = 0.62
    header_row: float = 0.2  # one row of section labels or chord names
    pitch_row: float = 0.075  # height of one semitone in the roll
    min_roll: float = 2.6
    max_roll: float = 7.0
    drum_row: float = 0.16  # one drum instrument in the drum lane
    min_drums: float = 0.55
    max_drums: float = 1.6
    gap: float = 0.06
    bottom: float = 0.5  # bar numbers and the axis label
    pitch_margin: int = 2  # semitones of air above and below the used range
    font: float = 8.0  # points; chord names, section labels, ticks


def place_labels(x: np.ndarray, widths: np.ndarray, rows: int = 1, pad: float = 0.0) -> list:
    """Row for each label in `rows` staggered rows, or None where it would overlap.

    `x` [N] are left edges in ascending order and `widths` [N] the label widths, both in the same
    units. Labels are taken greedily left to right: each goes in the first row whose last label
    ends (plus `pad`) before it starts, so the first label is always kept.
    """
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    row_end = [-np.inf] * rows
    placed: list[int | None] = []
    for left, width in zip(x, widths, strict=True):
        row = next((r for r in range(rows) if left >= row_end[r] + pad), None)
        if row is not None:
            row_end[row] = left + width
        placed.append(row)
    return placed


def render_png(
    song: Song,
    path: str | Path,
    plan: Plan | None = None,
    title: str | None = None,
    dpi: int = 100,
    layout: Layout = Layout(),
    bands: Sequence[tuple[int, int, str]] = (),
) -> Path:
    """Draw `song` as a piano roll into the PNG file `path` and return that path.

    `plan` (default: `song.plan`) adds sections and chord names. `title` replaces the source
    name at the top; key, meter and tempo are always shown under it. `bands` `(start step,
    end step, name)` colour spans of the roll and name them (a soundtrack's states; one
    colour per name). The file is written
    atomically (a temp file in the same folder, then renamed); its folder is created.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"render_png writes PNG files; path must end in .png, got {path}")
    if dpi <= 0:
        raise ValueError(f"dpi must be > 0, got {dpi}")
    plan = plan if plan is not None else song.plan
    fig = _draw(song, plan, title, layout, bands)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened with "x" (not mkstemp, whose files are private) keeps the umask.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            fig.savefig(f, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _draw(song: Song, plan: Plan | None, title: str | None, lay: Layout,
          bands: Sequence[tuple[int, int, str]] = ()) -> Figure:
    tracks = [t for t in song.tracks if t.n_notes]
    pitched = [t for t in tracks if not t.is_drum]
    drums = [t for t in tracks if t.is_drum]
    colours = _track_colours(tracks)
    start = int(song.bars[0]) if song.n_bars else 0
    end = max(int(song.end), start + 1)

    chords = sorted(plan.chords, key=lambda c: c.onset) if plan else []
    sections = [s for s in (plan.sections if plan else []) if 0 <= s.start_bar < song.n_bars]
    drum_pitches = sorted({int(p) for t in drums for p in t.notes[:, PITCH]})
    lo, hi = _pitch_range(pitched, lay.pitch_margin)

    # Figure size in inches, top to bottom: title, header strip, roll, drum lane, bar numbers.
    quarters = (end - start) / song.steps_per_quarter
    width = float(np.clip(lay.left + lay.right + quarters * lay.inches_per_quarter,
                          lay.min_width, lay.max_width))
    axis_w = width - lay.left - lay.right
    steps_per_inch = (end - start) / axis_w
    chord_names = [plan.chord_label(c) for c in chords]
    chord_rows = _place_chords(chord_names, chords, steps_per_inch, lay.font)
    n_chord_rows = 0 if not chords else 2 if 1 in chord_rows else 1
    header_h = ((1 if sections else 0) + n_chord_rows) * lay.header_row
    roll_h = float(np.clip((hi - lo + 1) * lay.pitch_row, lay.min_roll, lay.max_roll))
    drums_h = (float(np.clip(len(drum_pitches) * lay.drum_row, lay.min_drums, lay.max_drums))
               if drum_pitches else 0.0)
    height = (lay.title + header_h + (lay.gap if header_h else 0) + roll_h
              + (lay.gap + drums_h if drums_h else 0) + lay.bottom)

    fig = Figure(figsize=(width, height))

    def axes_at(top: float, h: float, **kwargs):
        return fig.add_axes((lay.left / width, (height - top - h) / height,
                             axis_w / width, h / height), **kwargs)

    top = lay.title
    header = None
    if header_h:
        header = axes_at(top, header_h)
        top += header_h + lay.gap
    roll = axes_at(top, roll_h, sharex=header) if header else axes_at(top, roll_h)
    top += roll_h
    lane = None
    if drums_h:
        lane = axes_at(top + lay.gap, drums_h, sharex=roll)
    bottom_ax = lane if lane is not None else roll

    roll.set_xlim(start, end)
    _draw_pitch_grid(roll, lo, hi, start, end, lay.font)
    for t in pitched:
        _draw_notes(roll, t.notes, colours[id(t)])
    if lane is not None:
        _draw_drums(lane, drums, drum_pitches, colours, lay.font)

    timed = [a for a in (roll, lane) if a is not None]
    _draw_bands(bands, timed, lay.font)
    _draw_sections(song, sections, [a for a in (header, roll, lane) if a is not None], end)
    _draw_bar_lines(song, timed, bottom_ax, steps_per_inch, lay.font)
    if header is not None:
        _draw_header(header, song, sections, chords, chord_names, chord_rows, n_chord_rows, end,
                     steps_per_inch, lay.font)

    _draw_title(fig, song, plan, title, tracks, colours, width, height, lay)
    return fig


def _draw_bands(bands: Sequence[tuple[int, int, str]], axes: list, font: float) -> None:
    """Coloured spans behind the notes, one colour per name, each named at the roll's top."""
    names = list(dict.fromkeys(name for _, _, name in bands))
    cmap = colormaps["Set2"]
    colour = {n: cmap(i % cmap.N) for i, n in enumerate(names)}
    for start, end, name in bands:
        for ax in axes:
            ax.axvspan(start, end, facecolor=colour[name], alpha=0.22, edgecolor="none",
                       zorder=0.2)
        axes[0].text(start, 1.0, f" {name}", transform=axes[0].get_xaxis_transform(),
                     ha="left", va="top", fontsize=font + 1, fontweight="bold",
                     color=tuple(0.6 * c for c in colour[name][:3]), zorder=5, clip_on=True)


def _track_colours(tracks: list[Track]) -> dict[int, tuple]:
    cmap = colormaps["tab10" if len(tracks) <= 10 else "tab20"]
    return {id(t): cmap(i % cmap.N) for i, t in enumerate(tracks)}


def _pitch_range(pitched: list[Track], margin: int) -> tuple[int, int]:
    if not pitched:
        return 48, 72
    pitches = np.concatenate([t.notes[:, PITCH] for t in pitched])
    return max(0, int(pitches.min()) - margin), min(127, int(pitches.max()) + margin)


def pitch_name(pitch: int) -> str:
    """`C4` for MIDI 60."""
    return f"{PITCH_CLASS_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _draw_pitch_grid(ax, lo: int, hi: int, start: int, end: int, font: float) -> None:
    ax.set_ylim(lo - 0.5, hi + 0.5)
    black = [p for p in range(lo, hi + 1) if p % 12 in BLACK_KEYS]
    if black:
        ax.add_collection(PolyCollection(
            [[(start, p - 0.5), (start, p + 0.5), (end, p + 0.5), (end, p - 0.5)] for p in black],
            facecolors="0.955", edgecolors="none", zorder=0))
    ticks = [p for p in range(lo, hi + 1) if p % 12 == 0]
    if len(ticks) < 2:  # a narrow range: name C, E and G
        ticks = [p for p in range(lo, hi + 1) if p % 12 in (0, 4, 7)]
    ax.set_yticks(ticks, [pitch_name(p) for p in ticks], fontsize=font)
    ax.hlines([p - 0.5 for p in ticks if p % 12 == 0], start, end,
              colors="0.78", linewidths=0.5, zorder=0.5)
    ax.tick_params(axis="y", length=2)
    ax.set_ylabel("pitch", fontsize=font)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _draw_notes(ax, notes: np.ndarray, colour: tuple) -> None:
    """Notes [N, 4] as one collection of rectangles, opacity following velocity."""
    x0 = notes[:, START].astype(float)
    x1 = x0 + np.maximum(notes[:, DURATION], 1)
    y = notes[:, PITCH].astype(float)
    verts = np.stack([np.stack([x0, y - 0.42], 1), np.stack([x0, y + 0.42], 1),
                      np.stack([x1, y + 0.42], 1), np.stack([x1, y - 0.42], 1)], axis=1)
    faces = np.tile(np.asarray(colour, float), (len(notes), 1))
    faces[:, 3] = 0.45 + 0.55 * np.clip(notes[:, VELOCITY], 0, 127) / 127
    edge = tuple(0.6 * c for c in colour[:3])
    ax.add_collection(PolyCollection(verts, facecolors=faces, edgecolors=edge,
                                     linewidths=0.35, zorder=2))


def _draw_drums(ax, drums: list[Track], pitches: list[int], colours: dict, font: float) -> None:
    row = {p: i for i, p in enumerate(pitches)}
    for t in drums:
        rgba = np.tile(np.asarray(colours[id(t)], float), (t.n_notes, 1))
        rgba[:, 3] = 0.45 + 0.55 * np.clip(t.notes[:, VELOCITY], 0, 127) / 127
        ax.scatter(t.notes[:, START], [row[int(p)] for p in t.notes[:, PITCH]],
                   s=9, marker="o", c=rgba, linewidths=0, zorder=2)
    ax.set_ylim(-0.6, len(pitches) - 0.4)
    ax.set_yticks(range(len(pitches)),
                  [GM_DRUM_NAMES.get(p, f"drum {p}") for p in pitches], fontsize=font - 1.5)
    ax.tick_params(axis="y", length=2)
    ax.hlines(range(len(pitches)), *ax.get_xlim(), colors="0.92", linewidths=0.4, zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _section_span(song: Song, start_bar: int, n_bars: int, end: int) -> tuple[int, int]:
    stop_bar = start_bar + max(n_bars, 1)
    stop = int(song.bars[stop_bar]) if stop_bar < song.n_bars else end
    return int(song.bars[start_bar]), stop


def _draw_sections(song: Song, sections: list, axes: list, end: int) -> None:
    for i, s in enumerate(sections):
        a, b = _section_span(song, s.start_bar, s.n_bars, end)
        for ax in axes:
            if i % 2:
                ax.axvspan(a, b, facecolor="tab:blue", alpha=0.06, linewidth=0, zorder=0)
            ax.axvline(a, color="0.35", linewidth=1.0, zorder=3)


def _bar_number_offset(song: Song) -> int:
    """0 when the first bar is a pickup (it is bar 0 in the score), else 1."""
    lengths = np.diff(song.bars)
    return 0 if len(lengths) >= 2 and lengths[0] < lengths[1] else 1


def _draw_bar_lines(song: Song, axes: list, bottom_ax, steps_per_inch: float, font: float):
    bars = song.bars.astype(float)
    offset = _bar_number_offset(song)
    # Label every 1, 2, 4, 8... bars, whatever keeps the numbers ~0.35 in apart.
    mean_bar = float(np.mean(np.diff(np.append(bars, song.end)))) if len(bars) else 1.0
    every = 1
    while every * mean_bar / steps_per_inch < 0.35 and every < len(bars):
        every *= 2
    numbers = np.arange(len(bars)) + offset
    labelled = (numbers - 1) % every == 0 if offset else numbers % every == 0
    for ax in axes:
        ax.vlines(bars[~labelled], 0, 1, transform=ax.get_xaxis_transform(),
                  colors="0.86", linewidths=0.4, zorder=1)
        ax.vlines(bars[labelled], 0, 1, transform=ax.get_xaxis_transform(),
                  colors="0.7", linewidths=0.5, zorder=1)
        ax.tick_params(axis="x", labelbottom=ax is bottom_ax, length=2)
    bottom_ax.set_xticks(bars[labelled], [str(n) for n in numbers[labelled]], fontsize=font)
    bottom_ax.set_xlabel("bar", fontsize=font)


def _text_width(text: str, font: float, steps_per_inch: float, bold: bool = False) -> float:
    """Approximate width of `text` in steps: an average glyph is ~0.6 em wide."""
    return len(text) * font * (0.68 if bold else 0.6) / 72 * steps_per_inch


def _chord_pad(steps_per_inch: float) -> float:
    return 0.04 * steps_per_inch  # between a chord's onset line and its name


def _place_chords(names: list[str], chords: list, steps_per_inch: float, font: float) -> list:
    """Row (0 or 1) of each chord name in the header, None for names thinned out."""
    pad = _chord_pad(steps_per_inch)
    x = np.array([c.onset + pad for c in chords], float)
    widths = np.array([_text_width(n, font, steps_per_inch) for n in names])
    return place_labels(x, widths, rows=2, pad=2 * pad)


def _draw_header(ax, song: Song, sections: list, chords: list, names: list[str], chord_rows: list,
                 n_chord_rows: int, end: int, steps_per_inch: float, font: float) -> None:
    """Section labels on the top row; chord names on one or two staggered rows below it."""
    n_rows = (1 if sections else 0) + n_chord_rows
    ax.set_ylim(0, n_rows)
    ax.set_yticks([])
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("0.6")
    if sections:
        pad = 0.08 * steps_per_inch
        spans = [_section_span(song, s.start_bar, s.n_bars, end) for s in sections]
        x = np.array([a + pad for a, _ in spans], float)
        widths = np.array([_text_width(s.label, font + 1, steps_per_inch, bold=True)
                           for s in sections])
        for s, xi, row in zip(sections, x, place_labels(x, widths, pad=pad), strict=True):
            if row is not None:
                ax.text(xi, n_rows - 0.5, s.label, fontsize=font + 1, fontweight="bold",
                        va="center", ha="left", clip_on=True)
    pad = _chord_pad(steps_per_inch)
    onsets, row_tops = [], []
    for c, name, row in zip(chords, names, chord_rows, strict=True):
        if row is None:
            continue
        # Each name's onset tick stays in its own row so it never crosses the other row's text.
        onsets.append(c.onset)
        row_tops.append(n_chord_rows - row)
        ax.text(c.onset + pad, n_chord_rows - 0.5 - row, name, fontsize=font, va="center",
                ha="left", color="0.55" if name == "N" else "0.1", clip_on=True)
    if onsets:
        tops = np.asarray(row_tops, float)
        ax.vlines(onsets, tops - 1, tops, colors="0.7", linewidths=0.5)


def _subtitle(song: Song, plan: Plan | None) -> str:
    parts = []
    key = plan.key if plan and plan.key else song.key_signature
    if key:
        parts.append(key.name)
    meters = []
    for ts in song.time_signatures or []:
        m = f"{ts.numerator}/{ts.denominator}"
        if m not in meters:
            meters.append(m)
    if meters:
        parts.append(meters[0] + (f" (+{len(meters) - 1} more)" if len(meters) > 1 else ""))
    tempos = sorted({round(t.qpm) for t in song.tempos})
    if tempos:
        qpm = f"{tempos[0]}" if len(tempos) == 1 else f"{tempos[0]}-{tempos[-1]}"
        parts.append(f"\u2669 = {qpm}")
    parts.append(f"{song.n_bars} bars")
    if plan and plan.sections:
        parts.append(f"form {plan.form}")
    return "  \u00b7  ".join(parts)


def _draw_title(fig: Figure, song: Song, plan: Plan | None, title: str | None,
                tracks: list[Track], colours: dict, width: float, height: float,
                lay: Layout) -> None:
    source = song.source
    if source and ":" not in source.split("/")[0]:
        source = Path(source).name
    heading = title or source or "untitled"
    x = lay.left / width
    fig.text(x, 1 - 0.2 / height, heading, fontsize=lay.font + 4, fontweight="bold",
             va="center", ha="left")
    fig.text(x, 1 - 0.45 / height, _subtitle(song, plan), fontsize=lay.font + 1,
             color="0.3", va="center", ha="left")
    handles = []
    for t in tracks:
        label = f"{t.name} ({t.role})" if t.role else t.name
        if t.is_drum:
            handles.append(Line2D([], [], marker="o", linestyle="none", markersize=4,
                                  color=colours[id(t)], label=label))
        else:
            handles.append(Patch(facecolor=colours[id(t)], edgecolor="none", label=label))
    if handles:
        fig.legend(handles=handles, loc="upper right", fontsize=lay.font,
                   bbox_to_anchor=(1 - lay.right / width, 1 - 0.08 / height),
                   ncol=min(len(handles), max(1, int(width / 6) * 2)), frameon=False,
                   handlelength=1.2, columnspacing=1.2, borderaxespad=0)
