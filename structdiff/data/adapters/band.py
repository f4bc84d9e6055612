"""The band corpus: drums, bass and comping rendered with mma under real songs' melodies.

Each song of POP909 (``pop909/NNN/``) and of the Nottingham folk tunes
(``nottingham/ABC_cleaned/*.abc``) keeps its real form, chords, key, tempo and melody; Debian's
`mma` (Musical MIDI Accompaniment) plays a chord chart of it with one of the human-written
grooves listed in ``datasets/band/grooves.yaml``, and the render's tracks become the band's
drums, bass, keys, guitar and strings under the real melody. The plan is the source's plan
exactly, so the corpus pairs known plans with full arrangements in many styles.

How one song is made (`read_entry`):

1. The source Song: POP909 through `structdiff.data.adapters.pop909.read_pop909`; a Nottingham
   tune through `read_abc_tune` (repeats expanded, sections from the repeat structure).
2. Style and groove: a family of `GROOVE_FAMILIES` drawn from (seed, song id) among the families
   with a groove for the song's meter (3/4 songs: waltz only), then one groove of that family.
   The family is drawn when the corpus is listed (`list_entries(root, seed)`), so it is the
   entry's style label, and `read_entry` renders with it.
3. Chart (`write_chart`): tempo, then one line per mma bar with up to 4 chords at their beats;
   the Intro groove under an intro section, a Fill (or the next variation) on the last bar of a
   section, the End groove on the last bars, and one variation per section label.
4. Render (`render_chart`): mma in a temporary folder; the MIDI is read back on the song's grid
   (mma starts at bar 0 with no count-in) and its tracks mapped to band roles (`band_tracks`).
5. The band Song: the source's melody (and, for one POP909 song in `REAL_PIANO_EVERY`, its
   PIANO in place of mma's keys) over the render, the source plan, style = the groove family.

Everything is drawn from ``sha256(seed, song id, what)``, and mma gets its own ``RndSeed`` the
same way, so a seed gives the same corpus on every machine. A song that cannot be rendered
raises `BandError` (a ValueError) with a one-line reason; prepare reports it and goes on.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from structdiff.data.adapters.styles import GROOVE_FAMILIES
from structdiff.data.song import (
    DURATION,
    PITCH,
    PITCH_CLASS_NAMES,
    START,
    Chord,
    Key,
    MusicFileError,
    Plan,
    Section,
    Song,
    Tempo,
    TimeSignature,
    Track,
    bar_grid,
    section_labels,
    sort_notes,
)

if TYPE_CHECKING:
    from structdiff.data.prepare import CorpusEntry

DESCRIPTION = "drums, bass and comping rendered with mma under real songs' melodies and charts"
ROLE_MAP = "band"
GROOVES_PATH = Path(__file__).resolve().parents[3] / "datasets" / "band" / "grooves.yaml"
# files besides this module whose edits change the corpus (prepare hashes them into its shards)
DIGEST_FILES = (GROOVES_PATH, Path(__file__).with_name("pop909.py"))
MMA_TIMEOUT_S = 60.0
REAL_PIANO_EVERY = 3  # one POP909 song in 3 keeps its own PIANO as the keys
MAX_CHORDS_PER_BAR = 4
SECTION_BARS = 8  # Nottingham music without repeats is cut into sections of this many bars
# Nottingham tunes carry no tempo: quarter notes per minute by meter (jigs: 100 dotted quarters)
NOTTINGHAM_QPM = {"4/4": 100.0, "2/2": 100.0, "2/4": 110.0, "3/4": 120.0, "6/8": 150.0}
NOTTINGHAM_DIR = Path("nottingham") / "ABC_cleaned"

# structdiff quality -> mma chord suffix. mma's `dim` is a diminished SEVENTH; the triad is `mb5`.
MMA_SUFFIX = {
    "maj": "", "min": "m", "dom7": "7", "maj7": "M7", "min7": "m7", "dim": "mb5",
    "aug": "aug", "sus": "sus4", "hdim7": "m7b5", "dim7": "dim7",
}
MMA_REST = "z"  # no chord: mma mutes every track but the drums


class BandError(ValueError):
    """A song the band corpus cannot render (prepare skips and reports it)."""


# --- grooves -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Groove:
    """One entry of ``grooves.yaml``: an mma groove and its variants."""

    name: str
    family: str
    file: str  # mma library file without .mma, e.g. "stdlib/popballad"
    time: int  # mma beats per bar
    meters: tuple[str, ...]  # song meters "n/d" it fits; one song bar is one mma bar
    variations: tuple[str, ...]
    fills: tuple[str | None, ...]  # one per variation
    intro: str | None = None
    end: str | None = None

    def command(self, groove: str, loaded: set[str]) -> str:
        """The `Groove` line for one of this groove's names: with its library file the first
        time (mma then reads that whole file, so no other library's groove of the same name is
        picked up), by name alone after that (mma would re-read the file each time)."""
        file, _, name = groove.rpartition(":")
        file = file or self.file
        if file in loaded:
            return f"Groove {name}"
        loaded.add(file)
        return f"Groove {file}:{name}"

    @property
    def names(self) -> list[str]:
        """Every groove name this entry uses (variations, fills, intro, end), once each."""
        out: list[str] = []
        for n in (*self.variations, *self.fills, self.intro, self.end):
            if n is not None and n not in out:
                out.append(n)
        return out


@lru_cache(maxsize=4)
def load_grooves(path: str | Path = GROOVES_PATH) -> dict[str, tuple[Groove, ...]]:
    """The groove list: family -> grooves, families in `GROOVE_FAMILIES` order.

    Raises BandError naming the file and entry for a malformed list.
    """
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        meter_sets = {name: tuple(str(m) for m in meters)
                      for name, meters in spec["meter_sets"].items()}
        families: dict[str, tuple[Groove, ...]] = {}
        for family, entries in spec["families"].items():
            if family not in GROOVE_FAMILIES:
                raise ValueError(f"family {family!r} is not one of GROOVE_FAMILIES")
            grooves = []
            for e in entries:
                variations = tuple(str(v) for v in e["variations"])
                fills = e.get("fills")
                if fills is None or isinstance(fills, str):
                    fills = (fills,) * len(variations)
                if len(fills) != len(variations) or not variations:
                    raise ValueError(f"{e['name']}: one fill per variation, and 1+ variations")
                grooves.append(Groove(
                    name=str(e["name"]), family=family, file=str(e["file"]), time=int(e["time"]),
                    meters=meter_sets[e["meters"]], variations=variations,
                    fills=tuple(None if f is None else str(f) for f in fills),
                    intro=e.get("intro"), end=e.get("end"),
                ))
            families[family] = tuple(grooves)
    except FileNotFoundError:
        raise BandError(f"no groove list at {path}") from None
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise BandError(f"bad groove list {path}: {type(e).__name__}: {e}") from None
    return {f: families[f] for f in GROOVE_FAMILIES if families.get(f)}


def meter_name(song: Song) -> str:
    """``"n/d"`` of the song's one meter; BandError when it changes (mma charts one meter)."""
    meters = {(ts.numerator, ts.denominator) for ts in song.time_signatures} or {(4, 4)}
    if len(meters) > 1:
        names = ", ".join(f"{n}/{d}" for n, d in sorted(meters))
        raise BandError(f"the meter changes ({names}); a chart is in one meter")
    n, d = meters.pop()
    return f"{n}/{d}"


def families_for(meter: str, path: str | Path = GROOVES_PATH) -> list[str]:
    """The families with a groove for `meter`, in `GROOVE_FAMILIES` order."""
    return [f for f, gs in load_grooves(path).items() if any(meter in g.meters for g in gs)]


def _draw(seed: int, song_id: str, what: str, n: int) -> int:
    """A number in [0, n) drawn from (seed, song id, what): the same on every machine."""
    digest = hashlib.sha256(f"{seed}\0{song_id}\0{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


def draw_family(seed: int, song_id: str, meter: str) -> str:
    """The song's groove family: drawn uniformly among the families that fit its meter."""
    families = families_for(meter)
    if not families:
        raise BandError(f"no mma groove in the list fits the meter {meter}")
    return families[_draw(seed, song_id, "family", len(families))]


def draw_groove(seed: int, song_id: str, family: str, meter: str) -> Groove:
    """One groove of `family` that fits `meter`, drawn from (seed, song id)."""
    grooves = [g for g in load_grooves().get(family, ()) if meter in g.meters]
    if not grooves:
        raise BandError(f"no {family} groove in the list fits the meter {meter}")
    return grooves[_draw(seed, song_id, "groove", len(grooves))]


# --- chart ---------------------------------------------------------------------------------


def mma_chord_name(root: int, quality: str, bass: int | None = None) -> str:
    """The mma spelling of a chord: ``C``, ``Cm``, ``C7``, ``CM7``, ``Cm7``, ``Cmb5`` (the
    triad: mma's ``dim`` is a seventh), ``Caug``, ``Csus4``, ``Cm7b5``, ``Cdim7``, with ``/E``
    where the bass is not the root; ``z`` (rest) for ``N``."""
    if quality == "N":
        return MMA_REST
    if quality not in MMA_SUFFIX:
        raise ValueError(f"unknown chord quality {quality!r} (known: {', '.join(MMA_SUFFIX)})")
    name = PITCH_CLASS_NAMES[root % 12] + MMA_SUFFIX[quality]
    if bass is not None and bass % 12 != root % 12:
        name += "/" + PITCH_CLASS_NAMES[bass % 12]
    return name


@dataclass(frozen=True)
class ChartLayout:
    """How the song's bars sit in mma bars (one song bar is one mma bar)."""

    bar_steps: int  # steps of one bar
    render_steps_per_quarter: int  # read the render at this many steps per MIDI quarter
    qpm: float  # mma's tempo (MIDI quarters per minute) that keeps the song's speed


def chart_layout(song: Song, groove: Groove) -> ChartLayout:
    """The layout of `song` under `groove`; BandError when the groove does not fit.

    mma writes each of the groove's `time` beats as a MIDI quarter, so a bar of `bar_steps`
    steps is read back at bar_steps / time steps per MIDI quarter, at a tempo of
    song qpm * time / (quarters in a song bar).
    """
    meter = meter_name(song)
    if meter not in groove.meters:
        raise BandError(f"groove {groove.name} does not fit the meter {meter}")
    bar_steps = song.time_signatures[0].bar_steps(song.steps_per_quarter) if (
        song.time_signatures) else 4 * song.steps_per_quarter
    lengths = np.diff(np.append(song.bars, song.end))
    if len(lengths) > 1 and np.any(lengths[:-1] != bar_steps):
        raise BandError("the song's bars are not all one meter's length (a pickup bar?)")
    render_spq = Fraction(bar_steps, groove.time)
    if render_spq.denominator != 1:
        raise BandError(f"{song.steps_per_quarter} steps per quarter do not divide the "
                        f"{groove.time} beats of {groove.name}")
    qpm = song.tempo_qpm * groove.time * song.steps_per_quarter / bar_steps
    return ChartLayout(bar_steps, int(render_spq), round(qpm, 2))


def _chart_chords(chords: list[Chord], start: int, stop: int, beat_steps: Fraction
                  ) -> list[str]:
    """The chord tokens of one mma bar [start, stop): the chord at the bar line, then up to
    3 more (the longest) as ``name@beat``; gaps and N are rests."""
    spans: list[tuple[int, int, str]] = []  # (onset, end, name) inside the bar
    pos = start
    for c in chords:
        a, b = max(c.onset, start), min(c.onset + c.duration, stop)
        if b <= a:
            continue
        if a > pos:
            spans.append((pos, a, MMA_REST))
        spans.append((a, b, mma_chord_name(c.root, c.quality, c.bass)))
        pos = b
    if pos < stop:
        spans.append((pos, stop, MMA_REST))
    merged: list[list] = []
    for a, b, name in spans:
        if merged and merged[-1][2] == name:
            merged[-1][1] = b
        else:
            merged.append([a, b, name])
    if len(merged) > MAX_CHORDS_PER_BAR:
        # keep the bar-line chord and the longest others; a dropped chord's time goes to the
        # chord before it
        rest = sorted(merged[1:], key=lambda s: (-(s[1] - s[0]), s[0]))[: MAX_CHORDS_PER_BAR - 1]
        merged = [merged[0], *sorted(rest, key=lambda s: s[0])]
    tokens = [merged[0][2]]
    for a, _, name in merged[1:]:
        beat = 1 + Fraction(a - start) / beat_steps
        tokens.append(f"{name}@{_beat_text(beat)}")
    return tokens


def _beat_text(beat: Fraction) -> str:
    return str(int(beat)) if beat.denominator == 1 else f"{float(beat):.3f}".rstrip("0")


def chart_grooves(sections: list[Section], n_bars: int, groove: Groove) -> list[str]:
    """The groove name of every bar `[n_bars]`: the Intro under an intro section ('i'), the
    variation of each other section label (labels take the variations in the order they first
    appear), a Fill (or the next variation) on a section's last bar before another section,
    and the End groove on the last bar (the last 2 when the last section has 4+)."""
    if not sections:
        sections = [Section(0, n_bars, "A")]
    section_of = np.zeros(n_bars, dtype=np.int64)
    for i, s in enumerate(sections):
        section_of[s.start_bar:min(s.start_bar + s.n_bars, n_bars)] = i
    order: list[str] = []
    for s in sections:
        if s.label != "i" and s.label not in order:
            order.append(s.label)
    n_var = len(groove.variations)
    names = []
    for j in range(n_bars):
        s = sections[section_of[j]]
        if s.label == "i":
            names.append(groove.intro or groove.variations[0])
            continue
        v = order.index(s.label) % n_var
        last_of_section = j + 1 < n_bars and section_of[j + 1] != section_of[j]
        long_enough = j > 0 and section_of[j - 1] == section_of[j]
        if last_of_section and long_enough:
            fill = groove.fills[v]
            names.append(fill if fill else groove.variations[(v + 1) % n_var])
        else:
            names.append(groove.variations[v])
    if groove.end:
        last = section_of[-1]
        n_end = 2 if int((section_of == last).sum()) >= 4 else 1
        for j in range(max(0, n_bars - n_end), n_bars):
            names[j] = groove.end
    return names


def write_chart(song: Song, groove: Groove, rnd_seed: int = 0, title: str = "",
                grooves: list[str] | None = None) -> str:
    """The mma chart of `song` (its plan's chords and sections, its tempo and meter) played
    with `groove`: one line per mma bar, a `Groove` line wherever the groove changes.
    `grooves` (one name per mma bar) overrides `chart_grooves`."""
    if song.plan is None:
        raise BandError("the song has no plan (chords and sections) to chart")
    layout = chart_layout(song, groove)
    beat_steps = Fraction(layout.bar_steps, groove.time)
    names = grooves if grooves is not None else chart_grooves(
        song.plan.sections, song.n_bars, groove)
    if len(names) != song.n_bars:
        raise ValueError(f"grooves: one per bar ({song.n_bars}), got {len(names)}")
    chords = sorted(song.plan.chords, key=lambda c: c.onset)
    lines = [f"// {title}" if title else "// structdiff band corpus",
             f"// groove {groove.name} ({groove.family}), {meter_name(song)}",
             f"RndSeed {rnd_seed}", f"Tempo {layout.qpm:g}"]
    current, loaded = None, set()
    for j in range(song.n_bars):
        if names[j] != current:
            lines.append(groove.command(names[j], loaded))
            current = names[j]
        start = int(song.bars[j])
        tokens = _chart_chords(chords, start, start + layout.bar_steps, beat_steps)
        lines.append(f"{j + 1} {' '.join(tokens)}")
    return "\n".join(lines) + "\n"


# --- render --------------------------------------------------------------------------------


def mma_path() -> str:
    """The mma executable; BandError saying how to install it when it is missing."""
    path = shutil.which("mma")
    if path is None:
        raise BandError("mma is not installed (Debian/Ubuntu: apt-get install mma)")
    return path


def render_chart(chart: str, steps_per_quarter: int, timeout: float = MMA_TIMEOUT_S) -> Song:
    """Run mma on a chart; the render read at `steps_per_quarter` steps per MIDI quarter
    (no role map). BandError with mma's own first error line when it fails."""
    from structdiff.data.io import read_song

    mma = mma_path()
    with tempfile.TemporaryDirectory(prefix="structdiff-mma-") as tmp:
        chart_path, midi_path = Path(tmp, "chart.mma"), Path(tmp, "chart.mid")
        chart_path.write_text(chart, encoding="utf-8")
        try:
            run = subprocess.run([mma, "-w", str(chart_path), "-f", str(midi_path)],
                                 cwd=tmp, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BandError(f"mma took more than {timeout:g} s") from None
        output = f"{run.stdout}\n{run.stderr}"
        if run.returncode != 0 or not midi_path.is_file():
            errors = [ln.strip() for ln in output.splitlines() if ln.strip().startswith("Error")]
            reason = errors[0] if errors else (output.strip().splitlines() or ["no output"])[-1]
            raise BandError(f"mma failed: {reason}"[:300])
        m = re.search(r"Creating new midi file \((\d+) bars", output)
        song = read_song(midi_path, steps_per_quarter, role_map=None)
    song.source = f"mma render ({m.group(1) if m else '?'} bars)"
    return song


def render_role(track: Track) -> str | None:
    """The band role of one track of an mma render by its General MIDI program (None: left
    out); `band_tracks` makes mma's Bass and Walk tracks the bass where no bass plays.

    Drums are drums. 0-23 keys, 24-31 guitar, 32-39 bass, 40-55 and 88-95 strings, as in the
    band role map. Horns and leads that mma uses for comping (56-87) never take the melody:
    their chords are strings (a section pad), their lines keys. Sustained (`Sus`) keys are
    pads: strings. Percussive and effect voices (115-127) are left out; other voices (synth
    effects, ethnic) are keys.
    """
    if track.is_drum:
        return "drums"
    p, name = track.program, track.name.lower()
    if 32 <= p <= 39:
        return "bass"
    if 24 <= p <= 31:
        return "guitar"
    if 40 <= p <= 55 or 88 <= p <= 95:
        return "strings"
    if 56 <= p <= 87:
        return "strings" if name.startswith("chord") else "keys"
    if p >= 115:
        return None
    return "strings" if "sus" in name else "keys"


def band_tracks(render: Song, bar_steps: int) -> list[Track]:
    """The tracks of an mma render with band roles (`render_role`), cut by role where needed.

    mma's Bass and Walk tracks are sometimes voiced on another instrument (a waltz's piano left
    hand, a bossa guitar's thumb, an organ in a dance groove's verse): in the bars where no
    bass-program track plays, their notes are the bass; elsewhere their instrument's role.
    """
    real_bass = [t for t in render.tracks if render_role(t) == "bass" and t.n_notes]
    bass_bars = set(np.concatenate([t.notes[:, START] // bar_steps for t in real_bass]).tolist()
                    ) if real_bass else set()
    tracks = []
    for t in render.tracks:
        role = render_role(t)
        if (not t.is_drum and role != "bass" and t.program < 115 and t.n_notes
                and t.name.lower().startswith(("bass", "walk"))):
            alone = ~np.isin(t.notes[:, START] // bar_steps, list(bass_bars))
            if alone.any():
                tracks.append(replace(t, notes=t.notes[alone], role="bass"))
            t = replace(t, notes=t.notes[~alone])
        if role is not None and t.n_notes:
            tracks.append(replace(t, role=role))
    return tracks


def render_tracks(song: Song, groove: Groove, rnd_seed: int,
                  grooves: list[str] | None = None) -> list[Track]:
    """mma's tracks for `song` under `groove` (`grooves`: see `write_chart`), on the song's
    grid from its first bar, cut at its end, with band roles set (`band_tracks`)."""
    layout = chart_layout(song, groove)
    chart = write_chart(song, groove, rnd_seed, grooves=grooves)
    render = render_chart(chart, layout.render_steps_per_quarter)
    m = re.search(r"\((\d+) bars", render.source)
    if m and int(m.group(1)) != song.n_bars:
        raise BandError(f"mma rendered {m.group(1)} bars of a {song.n_bars}-bar chart")
    origin, end = int(song.bars[0]), song.end
    tracks = []
    for t in band_tracks(render, layout.bar_steps):
        notes = t.notes.copy()
        notes[:, START] += origin
        notes = notes[notes[:, START] < end]
        if not len(notes):
            continue
        notes[:, DURATION] = np.minimum(notes[:, DURATION], end - notes[:, START])
        # a render read at fewer steps than mma's grid (2/4, 6/8) can land two notes of one
        # pitch on one step: keep the longest
        notes = notes[np.lexsort((-notes[:, DURATION], notes[:, PITCH], notes[:, START]))]
        first = np.ones(len(notes), dtype=bool)
        first[1:] = np.any(notes[1:, [START, PITCH]] != notes[:-1, [START, PITCH]], axis=1)
        tracks.append(replace(t, name=f"mma {t.name}", notes=sort_notes(notes[first])))
    return tracks


# --- the band song -------------------------------------------------------------------------


ROLE_ORDER = ("melody", "bass", "keys", "guitar", "strings", "drums")


def band_song(source: Song, song_id: str, family: str, seed: int, real_piano: bool = False
              ) -> Song:
    """The band Song of `source` (a Song with a plan and a melody track): its melody (and its
    keys when `real_piano`) over mma's render with a groove of `family`."""
    if source.plan is None:
        raise BandError("the song has no plan to chart")
    melody = [t for t in source.tracks if t.role == "melody" and t.n_notes]
    if not melody:
        raise BandError("the song has no melody track")
    groove = draw_groove(seed, song_id, family, meter_name(source))
    rendered = render_tracks(source, groove, _draw(seed, song_id, "mma", 2**31 - 1))
    if not any(t.role == "drums" for t in rendered):
        raise BandError(f"the render of {groove.name} has no drums")
    kept = [replace(t, name="Melody", notes=t.notes.copy()) for t in melody]
    if real_piano:
        piano = [replace(t, name="Piano", notes=t.notes.copy())
                 for t in source.tracks if t.role == "keys" and t.n_notes]
        if piano:
            kept += piano
            rendered = [t for t in rendered if t.role != "keys"]
    tracks = sorted(kept + rendered, key=lambda t: ROLE_ORDER.index(t.role))
    return Song(
        tracks=tracks,
        bars=source.bars.copy(),
        end=source.end,
        time_signatures=list(source.time_signatures),
        tempos=list(source.tempos),
        key_signature=source.key_signature,
        steps_per_quarter=source.steps_per_quarter,
        source=f"band/{song_id} ({groove.family} groove {groove.name})",
        plan=source.plan,
        role_map=ROLE_MAP,
        style=groove.family,
        split=source.split,
    )


# --- Nottingham tunes ----------------------------------------------------------------------


_X_LINE = re.compile(r"^X:\s*(\d+)\s*$", re.MULTILINE)
_FIELD = re.compile(r"^([A-Za-z]):\s*(.*?)\s*$")
_INLINE_METER = re.compile(r"\[M:\s*([^\]]*?)\s*\]")
_DOUBLE_REPEAT = re.compile(r"(?<![|:]):{2}(?![|:])")
_NOTT_CHORD = re.compile(r"^([A-G])([#b-]?)([^/]*)(?:/([A-Ga-g])([#b+-]*))?$")
_NOTT_QUALITY = {
    "": "maj", "M": "maj", "maj": "maj", "6": "maj", "add9": "maj",
    "m": "min", "min": "min", "m6": "min",
    "7": "dom7", "9": "dom7", "7b9": "dom7", "a7": "dom7", "aug7": "dom7", "13": "dom7",
    "M7": "maj7", "maj7": "maj7",
    "m7": "min7", "m9": "min7", "min7": "min7",
    "d": "dim", "dim": "dim", "o": "dim",
    "d7": "dim7", "dim7": "dim7", "o7": "dim7",
    "a": "aug", "aug": "aug", "+": "aug",
    "sus": "sus", "sus4": "sus", "sus2": "sus", "7sus4": "sus",
    "m7b5": "hdim7", "m7-5": "hdim7",
}


def abc_tunes(text: str) -> list[tuple[int, str]]:
    """The tunes of an ABC book as (X number, the tune's text), in file order."""
    starts = [(m.start(), int(m.group(1))) for m in _X_LINE.finditer(text)]
    return [(x, text[a: starts[i + 1][0] if i + 1 < len(starts) else len(text)])
            for i, (a, x) in enumerate(starts)]


def abc_meters(tune: str) -> list[str]:
    """The meters the tune's music is in, in order, once each (``C`` is 4/4, ``C|`` 2/2): the
    last ``M:`` field before the first line of music (some tunes set 4/4, then 6/8, in their
    header), then every ``M:`` line or inline ``[M:...]`` field among the music."""
    meters: list[str] = []
    current, in_music = None, False
    for line in tune.splitlines():
        field = _FIELD.match(line)
        found = ([field.group(2)] if field and field.group(1) == "M"
                 else _INLINE_METER.findall(line) if in_music else [])
        if not field and line.strip() and not line.lstrip().startswith("%"):
            if not in_music and current is not None:
                meters.append(current)
            in_music = True
        for value in found:
            value = value.split("%")[0].strip()
            current = {"C": "4/4", "C|": "2/2"}.get(value, value)
            if in_music and current not in meters:
                meters.append(current)
    if not meters and current is not None:
        meters.append(current)
    return meters


def abc_meter(tune: str) -> str | None:
    """The meter the tune's music starts in (`abc_meters`)."""
    meters = abc_meters(tune)
    return meters[0] if meters else None


def nottingham_chord(figure: str) -> tuple[int, str, int] | None:
    """`(root, quality, bass)` of a Nottingham chord symbol as music21's ABC reader passes it
    on (parentheses gone, flats as ``-``): ``D/f+`` is D over F#, ``B-m`` B-flat minor, ``Gd``
    G diminished, ``Ca`` C augmented, ``C6`` C; None for an empty one. Raises BandError for
    a symbol it does not know."""
    figure = re.sub(r"\s+", "", figure)
    if not figure:
        return None
    m = _NOTT_CHORD.match(figure)
    if not m or m.group(3) not in _NOTT_QUALITY:
        raise BandError(f"unknown chord symbol {figure!r}")
    letters = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    root = (letters[m.group(1)] + (m.group(2) == "#") - (m.group(2) in ("b", "-"))) % 12
    bass = root
    if m.group(4):
        acc = m.group(5)
        bass = (letters[m.group(4).upper()] + acc.count("#") + acc.count("+")
                - acc.count("b") - acc.count("-")) % 12
    return root, _NOTT_QUALITY[m.group(3)], bass


@dataclass
class _Measure:
    """One measure of a parsed tune, before repeats are expanded."""

    number: int
    length: Fraction  # quarter notes of music in it (a pickup is short)
    notes: list[tuple[Fraction, Fraction, int, str | None]]  # offset, duration, pitch, tie
    chords: list[tuple[Fraction, str]]  # offset, figure
    repeat_start: bool
    repeat_end: bool
    endings: tuple[int, ...]  # the 1st/2nd-time bracket numbers over it
    double_bar: bool = False  # it ends with `||` or `|]`


@lru_cache(maxsize=1)
def _chord_figure_class() -> type:
    """A light stand-in for music21's ChordSymbol that keeps only the figure text."""
    from music21 import base

    class ChordFigure(base.Music21Object):
        def __init__(self, figure: str = "", **keywords):
            super().__init__(**keywords)
            self.figure = figure

    return ChordFigure


@contextmanager
def _figures_for_chord_symbols():
    """While a tune is parsed, music21's ABC reader makes a `ChordFigure` of each chord
    annotation instead of a full ChordSymbol: building the ChordSymbol's pitches is half the
    parse time, and `nottingham_chord` reads the figure itself (music21 drops a figure it
    cannot parse, which would silently lose a chord)."""
    from types import SimpleNamespace

    from music21.abcFormat import translate

    figure = _chord_figure_class()
    saved = translate.harmony
    translate.harmony = SimpleNamespace(ChordSymbol=figure, NoChord=figure)
    try:
        yield
    finally:
        translate.harmony = saved


def _parse_measures(tune: str) -> tuple[list[_Measure], Key | None, str]:
    """The measures of one ABC tune read with music21, its key and its meter."""
    from music21 import chord as m21chord
    from music21 import converter, note, spanner, stream

    meters = abc_meters(tune)
    if len(meters) > 1:
        raise BandError(f"the meter changes ({', '.join(sorted(meters))}); a chart is in one "
                        "meter")
    # music21 reads ABC's `::` (end one repeat, start the next) as plain bar lines
    body = "\n".join(line if _FIELD.match(line) else _DOUBLE_REPEAT.sub(":||:", line)
                     for line in tune.splitlines())
    try:
        with warnings.catch_warnings(), _figures_for_chord_symbols():
            warnings.simplefilter("ignore")
            score = converter.parse(body, format="abc")
    except Exception as e:  # music21's ABC parser raises many types on a bad tune
        raise MusicFileError(f"music21 cannot read the tune: {type(e).__name__}: {e}") from None
    part = score.parts[0] if score.parts else score
    endings: dict[int, tuple[int, ...]] = {}
    for bracket in part.spannerBundle.getByClass(spanner.RepeatBracket):
        numbers = tuple(bracket.numberRange or ())
        for m in bracket.getSpannedElements():
            endings[id(m)] = numbers
    measures, key = [], None
    for m in part.getElementsByClass(stream.Measure):
        if key is None:
            for k in m.getElementsByClass("Key"):
                tonic, mode = k.tonic.pitchClass, k.mode
                key = Key(tonic, "minor" if mode in ("minor", "dorian", "phrygian",
                                                     "aeolian", "locrian") else "major")
        notes = []
        for n in m.recurse().notes:
            if n.duration.quarterLength == 0:  # grace notes
                continue
            offset = Fraction(n.getOffsetInHierarchy(m)).limit_denominator(96)
            dur = Fraction(n.duration.quarterLength).limit_denominator(96)
            tie = n.tie.type if n.tie is not None else None
            pitches = n.pitches if isinstance(n, m21chord.Chord) else (n.pitch,)
            if isinstance(n, note.Note | m21chord.Chord):
                notes += [(offset, dur, int(p.midi), tie) for p in pitches]
        chords = [(Fraction(c.offset).limit_denominator(96), c.figure)
                  for c in m.getElementsByClass(_chord_figure_class())]
        left, right = m.leftBarline, m.rightBarline
        measures.append(_Measure(
            number=int(m.number),
            length=Fraction(m.duration.quarterLength).limit_denominator(96),
            notes=notes, chords=chords,
            repeat_start=getattr(left, "direction", None) == "start",
            repeat_end=getattr(right, "direction", None) == "end",
            endings=endings.get(id(m), ()),
            double_bar=right is not None and getattr(right, "direction", None) is None
            and right.type not in ("regular", "dotted", "dashed", "none"),
        ))
    if not measures:
        raise MusicFileError("no measures in the tune")
    return measures, key, meters[0] if meters else "4/4"


def expand_repeats(measures: list[_Measure]) -> tuple[list[int], list[int]]:
    """Measure indices in playing order, and the positions in that order where each part
    (a region of the form) starts.

    ABC's rule: ``:|`` goes back to the last ``|:``, or else to just after the previous
    ``:|`` (the start of the tune for the first); a repeated region is played twice, its
    1st-time bars the first time and its 2nd-time bars the second. A part starts at a
    ``|:``, at the second pass of a repeat, after a ``||`` (the Nottingham files close every
    2nd-time ending with one) and after a repeat that has no 2nd-time ending.
    """
    order: list[int] = []
    part_starts = [0]

    def new_part() -> None:
        if order and part_starts[-1] != len(order):
            part_starts.append(len(order))

    start, i, second_pass, jumped_from = 0, 0, False, -1
    while i < len(measures):
        m = measures[i]
        replay = second_pass and i <= jumped_from
        if second_pass and i > jumped_from and not m.endings:
            second_pass, start = False, i  # the repeat is over; a later :| comes back here
            if i - 1 == jumped_from:
                new_part()
        if not replay and (m.repeat_start or (i > 0 and measures[i - 1].double_bar)):
            start = i if m.repeat_start else start
            new_part()
        if m.endings and (2 if second_pass else 1) not in m.endings:
            i += 1
            continue
        order.append(i)
        if m.repeat_end and not second_pass:
            second_pass, jumped_from, i = True, i, start
            new_part()
            continue
        if m.repeat_end and second_pass and i > jumped_from:
            second_pass, start = False, i + 1  # a 2nd-time bar that repeats: not followed
        i += 1
    return order, part_starts


def read_abc_tune(tune: str, steps_per_quarter: int = 4, tune_id: str = "") -> Song:
    """A Nottingham tune as a melody-only Song with its plan; see `NOTTINGHAM_QPM` for tempo.

    Repeats are expanded (`expand_repeats`). A pickup becomes a full first bar (the melody at
    its end, the first chord under it) labelled as a 1-bar intro ('i'); an incomplete last bar
    is filled to a full one. Sections: each pass through a repeated part is one section, the
    same part the same label (A8 A8 B8 B8); music with no repeats is cut into 8-bar
    sections labelled by their chords. Raises BandError/MusicFileError with a one-line reason
    for a tune that cannot be charted (a meter change, bars that do not add up).
    """
    measures, key, meter = _parse_measures(tune)
    if meter not in NOTTINGHAM_QPM:
        raise BandError(f"no mma groove in the list fits the meter {meter}")
    num, den = (int(x) for x in meter.split("/"))
    bar_q = Fraction(4 * num, den)
    order, part_starts = expand_repeats(measures)
    # lay the measures out end to end; a short first measure is a pickup padded to a bar
    first = measures[order[0]]
    pad = bar_q - first.length if first.length < bar_q else Fraction(0)
    offsets, t = [], pad
    for i in order:
        offsets.append(t)
        t += measures[i].length
    total_bars = math.ceil(t / bar_q)
    for pos, i in enumerate(order):
        if measures[i].length == bar_q and offsets[pos] % bar_q != 0:
            raise BandError(f"measure {measures[i].number} falls across a bar line after the "
                            "repeats are expanded (incomplete measures do not pair up)")
    spq = steps_per_quarter

    def step(q: Fraction) -> int:
        return int(round(q * spq))

    # melody: tied notes joined
    rows: list[list[int]] = []
    open_ties: dict[int, int] = {}
    for pos, i in enumerate(order):
        for off, dur, pitch, tie in measures[i].notes:
            a, b = step(offsets[pos] + off), step(offsets[pos] + off + dur)
            if tie in ("stop", "continue") and pitch in open_ties:
                row = rows[open_ties[pitch]]
                row[1] = max(row[1], b - row[0])
                if tie == "stop":
                    del open_ties[pitch]
                continue
            rows.append([a, max(1, b - a), pitch, 80])
            if tie == "start":
                open_ties[pitch] = len(rows) - 1
    if not rows:
        raise MusicFileError("the tune has no notes")
    notes = sort_notes(np.asarray(rows, dtype=np.int32))
    end = total_bars * step(bar_q)

    # chords: each until the next; the first also under the pickup bar
    marks: list[tuple[int, tuple[int, str, int]]] = []
    for pos, i in enumerate(order):
        for off, figure in measures[i].chords:
            chord = nottingham_chord(figure)
            s = step(offsets[pos] + off)
            if chord is not None and not (marks and marks[-1][0] == s):
                marks.append((s, chord))
    if not marks:
        raise BandError("the tune has no chord symbols")
    marks[0] = (0, marks[0][1])
    chords: list[Chord] = []
    for j, (s, (root, quality, bass)) in enumerate(marks):
        stop = marks[j + 1][0] if j + 1 < len(marks) else end
        if stop <= s:
            continue
        if chords and (chords[-1].root, chords[-1].quality, chords[-1].bass) == (
                root, quality, bass):
            last = chords[-1]
            chords[-1] = Chord(last.onset, stop - last.onset, root, quality, bass)
        else:
            chords.append(Chord(s, stop - s, root, quality, bass))

    sections = _tune_sections(order, part_starts, offsets, pad > 0, bar_q, total_bars,
                              chords, spq)
    time_signatures = [TimeSignature(0, num, den)]
    return Song(
        tracks=[Track("Melody", 73, False, notes, role="melody")],  # GM 73: flute
        bars=bar_grid(time_signatures, end, spq),
        end=end,
        time_signatures=time_signatures,
        tempos=[Tempo(0, NOTTINGHAM_QPM[meter])],
        key_signature=key,
        steps_per_quarter=spq,
        source=f"nottingham/{tune_id}" if tune_id else "nottingham",
        plan=Plan(key=key, chords=chords, sections=sections,
                  phrase_ends=[s.start_bar + s.n_bars - 1 for s in sections]),
        role_map=ROLE_MAP,
    )


def _tune_sections(order: list[int], part_starts: list[int], offsets: list[Fraction],
                   pickup: bool, bar_q: Fraction, total_bars: int, chords: list[Chord],
                   spq: int) -> list[Section]:
    """Sections of an expanded tune: a 1-bar intro for a pickup, one section per pass through
    a repeated part (the same part the same label), 8-bar sections labelled by their chords
    in the parts played once."""
    bar_steps = int(bar_q * spq)
    first_bar = 1 if pickup else 0
    # a part starts at the first bar line at or after its first measure (a part that starts
    # with a pickup starts at the bar after it); identified by its first measure
    cuts = [(max(math.ceil(offsets[p] / bar_q), first_bar), order[p]) for p in part_starts]
    cuts = [c for c in cuts if c[0] < total_bars]
    passes: dict[int, int] = {}
    for _, m in cuts:
        passes[m] = passes.get(m, 0) + 1
    spans: list[tuple[int, int, tuple]] = []  # (start bar, n bars, identity)
    for j, (bar, m) in enumerate(cuts):
        stop = cuts[j + 1][0] if j + 1 < len(cuts) else total_bars
        if stop <= bar:
            continue
        if passes[m] > 1:
            spans.append((bar, stop - bar, ("part", m)))
            continue
        for a in range(bar, stop, SECTION_BARS):
            b = min(a + SECTION_BARS, stop)
            content = tuple((c.onset - a * bar_steps, c.duration, c.root, c.quality, c.bass)
                            for c in chords if a * bar_steps <= c.onset < b * bar_steps)
            spans.append((a, b - a, ("chords", b - a, content)))
    labels: dict[tuple, str] = {}
    names = section_labels()
    sections = [Section(0, 1, "i")] if pickup else []
    for start, n, identity in spans:
        if identity not in labels:
            labels[identity] = next(names)
        sections.append(Section(start, n, labels[identity]))
    return sections


# --- corpus adapter ------------------------------------------------------------------------


def _pop909_meter(folder: Path) -> str | None:
    """3/4 or 4/4 from a POP909 song's beat file (its flags every 3 beats in triple meter);
    None when it cannot be read (the song is then skipped when read)."""
    from structdiff.data.adapters.pop909 import Pop909Error, beats_per_bar_of, read_beats

    try:
        _, half, _ = read_beats(folder / "beat_midi.txt")
    except (Pop909Error, OSError):
        return None
    return f"{beats_per_bar_of(half)}/4"


def _nottingham_entries(folder: Path, seed: int) -> list[CorpusEntry]:
    from structdiff.data.corpus import split_of
    from structdiff.data.prepare import CorpusEntry

    entries = []
    for path in sorted(folder.glob("*.abc")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for x, tune in abc_tunes(text):
            source_id = f"nottingham/{path.stem}/{x}"
            meter = abc_meter(tune)
            style = draw_family(seed, source_id, meter) if meter and families_for(meter) else None
            entries.append(CorpusEntry(f"band/{source_id}", str(path), style,
                                       split_of(source_id)))
    return entries


def _pop909_entries(folder: Path, seed: int) -> list[CorpusEntry]:
    from structdiff.data.adapters import pop909
    from structdiff.data.prepare import CorpusEntry

    entries = []
    for e in pop909.list_entries(folder):
        meter = _pop909_meter(Path(e.path))
        style = draw_family(seed, e.id, meter) if meter else None
        entries.append(CorpusEntry(f"band/{e.id}", e.path, style, e.split))
    return entries


def list_entries(root: Path, seed: int = 0) -> list[CorpusEntry]:
    """One entry per POP909 song (``root/pop909/NNN``) and Nottingham tune
    (``root/nottingham/ABC_cleaned/*.abc``): ids ``band/pop909/NNN`` and
    ``band/nottingham/FILE/X``, the split of the source song, the groove family as the style
    (None for a meter no groove fits: reading it reports why)."""
    from structdiff.data.prepare import PrepareError

    root = Path(root)
    pop, nott = root / "pop909", root / NOTTINGHAM_DIR
    if not pop.is_dir() and not nott.is_dir():
        raise PrepareError(f"not a band corpus root (no pop909/ or {NOTTINGHAM_DIR}/): {root}")
    try:
        mma_path()
        load_grooves()
    except BandError as e:
        raise PrepareError(str(e)) from None
    entries = []
    if pop.is_dir():
        entries += _pop909_entries(pop, seed)
    if nott.is_dir():
        entries += _nottingham_entries(nott, seed)
    return entries


def read_entry(entry: CorpusEntry, steps_per_quarter: int = 4, seed: int = 0) -> Song:
    """The band Song of one entry of `list_entries`: its style (the family the listing drew)
    is the groove family; the groove, the POP909 piano share and mma's RndSeed come from
    `seed`."""
    source_id = entry.id.removeprefix("band/")
    if source_id.startswith("pop909/"):
        from structdiff.data.adapters.pop909 import read_pop909

        source = read_pop909(entry.path, steps_per_quarter)
        real_piano = _draw(seed, source_id, "piano", REAL_PIANO_EVERY) == 0
    elif source_id.startswith("nottingham/"):
        x = int(source_id.rsplit("/", 1)[1])
        text = Path(entry.path).read_text(encoding="utf-8", errors="replace")
        tunes = dict(abc_tunes(text))
        if x not in tunes:
            raise MusicFileError(f"no tune X:{x} in {Path(entry.path).name}")
        source = read_abc_tune(tunes[x], steps_per_quarter, source_id.split("/", 1)[1])
        real_piano = False
    else:
        raise BandError(f"not a band corpus id: {entry.id}")
    if entry.style is None:
        raise BandError(f"no mma groove in the list fits the meter {meter_name(source)}")
    source.split = entry.split
    song = band_song(source, source_id, entry.style, seed, real_piano)
    song.split = entry.split
    return song


# --- checking the groove list --------------------------------------------------------------


def check_grooves(path: str | Path = GROOVES_PATH) -> list[str]:
    """Render every groove of the list over a short chart; one line per problem (none: all
    fine). Checks that each name exists, the groove's bar is `time` beats long, and the render
    has drums and a bass."""
    problems = []
    for grooves in load_grooves(path).values():
        for g in grooves:
            problems += _check_groove(g)
    return problems


def _check_groove(g: Groove) -> list[str]:
    """Render each variation for 4 bars (C A F G), then the intro, fills and end for a bar
    each, and check the render: drums and a bass, bass notes on chord tones at the bar lines
    of the variations (a riff that ignores the chords fails), bars of `time` beats."""
    meter = g.meters[0]
    num, den = (int(x) for x in meter.split("/"))
    ts = [TimeSignature(0, num, den)]
    bar_steps = ts[0].bar_steps(4)
    names = [v for v in g.variations for _ in range(4)]
    names += [n for n in g.names if n not in g.variations]
    end = len(names) * bar_steps
    roots = [0, 9, 5, 7] * len(names)
    chords = [Chord(b * bar_steps, bar_steps, roots[b], "maj", roots[b])
              for b in range(len(names))]
    song = Song(tracks=[], bars=bar_grid(ts, end, 4), end=end, time_signatures=ts,
                tempos=[Tempo(0, 100.0)], plan=Plan(chords=chords))
    where = f"{g.family}/{g.name}"
    try:
        chart = write_chart(song, g, 1, grooves=names)
        render = render_chart(chart, chart_layout(song, g).render_steps_per_quarter)
    except BandError as e:
        return [f"{where}: {e}"]
    tracks = band_tracks(render, bar_steps)
    problems = [f"{where}: no {role} in the render" for role in ("drums", "bass")
                if not any(t.role == role for t in tracks)]
    bass = [t.notes for t in tracks if t.role == "bass"]
    if bass:
        notes = np.concatenate(bass)
        beat = bar_steps // g.time
        tones, late = [], []
        for b, c in enumerate(chords[: 4 * len(g.variations)]):
            first = notes[(notes[:, START] >= c.onset) & (notes[:, START] < c.onset + beat)]
            if len(first):
                low = int(first[:, PITCH].min()) % 12
                tones.append((low - c.root) % 12 in (0, 4, 7))
                late.append(b > 0 and low == chords[b - 1].root and low != c.root)
        if np.mean(tones or [0]) < 0.6:  # walking basses pass notes too
            problems.append(f"{where}: the bass is on a chord tone at {np.mean(tones or [0]):.0%}"
                            " of the bar lines it plays on (a riff that ignores the chords?)")
        if np.mean(late or [0]) > 0.25:
            problems.append(f"{where}: the bass holds the previous chord's root at "
                            f"{np.mean(late):.0%} of the bar lines (it lags the chords)")
    last = max((int(t.notes[:, START].max()) for t in render.tracks if t.n_notes), default=-1)
    if not end - bar_steps <= last <= end:
        problems.append(f"{where}: the last note starts at step {last}, not in the last bar "
                        f"[{end - bar_steps}, {end}): is its time really {g.time}?")
    return problems


def _summary(grooves: dict[str, tuple[Groove, ...]]) -> Iterable[str]:
    for family, gs in grooves.items():
        meters = sorted({m for g in gs for m in g.meters})
        yield f"{family:8s} {len(gs):2d} grooves  meters {', '.join(meters)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the band corpus's groove list")
    parser.add_argument("--check-grooves", action="store_true",
                        help="render every groove of the list and report problems")
    args = parser.parse_args(argv)
    for line in _summary(load_grooves()):
        print(line)
    if args.check_grooves:
        problems = check_grooves()
        print("\n".join(problems) if problems else "every groove renders")
        raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
