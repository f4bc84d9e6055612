"""Game soundtracks: folders of multi-track MIDI files (Freedoom's level music, Simutrans).

Every ``.mid``/``.midi`` file under the root (the ``game/`` folder or one of its subfolders) is a
song: id ``game/<path relative to the root>`` (``game/freedoom/freedoom1_D_E1M1.mid`` when the
root is ``game/``), split by `structdiff.data.corpus.split_of` on that id, style ``game``. Tracks
get band roles from their names and GM programs; the files carry no annotations, so the plan is
left to the analysis that ``structdiff prepare`` runs. How to rebuild the folder from the Debian
packages: ``datasets/game/``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from structdiff.data.corpus import split_of
from structdiff.data.io import read_song
from structdiff.data.prepare import CorpusEntry, PrepareError
from structdiff.data.roles import assign_roles
from structdiff.data.song import START, Song, TimeSignature, bar_grid

ROLE_MAP = "band"
DESCRIPTION = "game soundtrack MIDI (Freedoom, Simutrans): band roles, plan from the analysis"

STYLE = "game"
_SUFFIXES = (".mid", ".midi")
COLLECTIONS = ("freedoom", "simutrans")  # the subfolders of the shared game/ folder
# A pitched-channel track named as drums plays GM drum keys: Simutrans 48 "Techno movement" puts
# its hi-hats (42/46) on "DrumR" and maracas (70) on "DrumL", program 24, which the band map
# would call guitar.
_DRUM_NAME = re.compile(r"^(?!.*steel).*(drum|perc)", re.IGNORECASE)  # steel drums are pitched


def list_entries(root: Path) -> list[CorpusEntry]:
    """One entry per MIDI file under `root`, sorted by id."""
    root = Path(root)
    if not root.is_dir():
        raise PrepareError(f"no such folder: {root}")
    # A collection folder as root keeps its name in the id, so that ids and splits do not depend
    # on which level the user points at.
    base = root.parent if root.name in COLLECTIONS else root
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file())
    entries = []
    for path in paths:
        song_id = f"game/{path.relative_to(base).as_posix()}"
        entries.append(CorpusEntry(song_id, str(path), STYLE, split_of(song_id)))
    return entries


def read_entry(entry: CorpusEntry, steps_per_quarter: int, seed: int) -> Song:
    """The file as a Song with band roles, style ``game`` and no plan (`seed` is unused).

    A track on a pitched channel whose name says drums or percussion is read as a drum track;
    the bar lines are cleaned of two sequencer habits (`clean_bar_lines`).
    """
    song = clean_bar_lines(read_song(entry.path, steps_per_quarter, role_map=None))
    for track in song.tracks:
        if not track.is_drum and _DRUM_NAME.search(track.name):
            track.is_drum = True
    assign_roles(song, ROLE_MAP)
    # prepare analyzes only a song without a plan, and a plan read from markers has no chords:
    # of the shared files only Simutrans 50 has section markers (A, A2, B, ...), 40 and 44 have
    # other marker text that read_song takes for one or two sections.
    song.plan = None
    song.source = entry.id
    song.style = STYLE
    song.split = entry.split
    return song


def clean_bar_lines(song: Song) -> Song:
    """`song` without the bar lines that sequencer habits put in, in place.

    - A time signature restated unchanged is no bar line: Simutrans 03 restates its 4/4 one beat
      in (a one-beat first bar, every kick on beat 1 then falls on beat 2), 07 at a bar's second
      beat.
    - A "setup" bar shorter than a quarter note, with no note starting in it, is cut, and everything
      moves earlier by its length: Simutrans 44-52 open with a 1/8 bar at 60 qpm (marker
      "Setup"), 53 with a 1/16 bar, before the song's real meter and tempo.
    """
    meters: list[TimeSignature] = []
    for ts in song.time_signatures:
        if not meters or (ts.numerator, ts.denominator) != (meters[-1].numerator,
                                                           meters[-1].denominator):
            meters.append(ts)
    song.time_signatures = meters
    song.bars = bar_grid(meters, song.end, song.steps_per_quarter)
    setup = int(song.bars[1]) if song.n_bars > 1 else 0
    onsets = [t.notes[:, START] for t in song.tracks if t.n_notes]
    first_onset = min(int(o.min()) for o in onsets) if onsets else 0
    if 0 < setup < song.steps_per_quarter and first_onset >= setup:
        for track in song.tracks:
            track.notes = track.notes.copy()
            track.notes[:, START] -= setup
        song.time_signatures = _shifted(meters, setup)
        song.tempos = _shifted(song.tempos, setup)
        song.fermatas = [max(0, f - setup) for f in song.fermatas]
        song.end -= setup
        song.bars = bar_grid(song.time_signatures, song.end, song.steps_per_quarter)
    song.end = max(song.end, int(song.bars[-1]) + 1)
    return song


def _shifted(events: list, steps: int) -> list:
    """Time signatures or tempos `steps` earlier, sorted; of those at one step, the last."""
    by_step = {}
    for e in sorted(events, key=lambda e: e.step):
        by_step[max(0, e.step - steps)] = replace(e, step=max(0, e.step - steps))
    return [by_step[step] for step in sorted(by_step)]
