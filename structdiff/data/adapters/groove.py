"""The Groove MIDI Dataset (Magenta, v1.0.0): human drum performances on a Roland TD-11 kit.

The corpus folder holds ``info.csv`` (drummer, session, id, style, bpm, beat_type, time_signature,
midi_filename, audio_filename, duration, split) and the MIDI files it names: 1,150 one-track drum
performances, 4/4 but for five in 3/4, five in 6/8, one in 5/4 and one in 5/8.

Each csv row with its MIDI file present is one song: id ``groove/<csv id>``
(``groove/drummer1/session1/1``), split from the csv's split column, style the family of its csv
style and meter (`structdiff.data.adapters.styles.groove_family`). The single track is the band
map's ``drums``. Its notes are renamed from the TD-11's kit to General MIDI (`TD11_TO_GM`), time
signature from the csv, tempo from the file (it agrees with the csv's bpm).

The plan has no key and no chords (a drum track has neither), one section ``A`` over all bars,
and phrase ends that teach the arranger where fills go:

- ``fill`` performances (476 of the 647 are one bar, 134 two; a two-bar one is mostly a pickup
  bar, then the fill): the fill's bar, which is the last bar, or the one before it when the last
  bar holds only the landing on its first beat (1-3 hits: a crash, a kick; 56 of the 647).
- ``beat`` performances: the last bar of every four (bars 3, 7, 11, ... counting from 0), the
  phrase length of the band corpus's sections. Over the 4/4 beat performances of 8 bars or more,
  a bar with 25% more hits than its file's median (a fill) falls on these bars 1.6 times as often
  as on the others (538 against 310-350 per other position of the four): drummers do phrase in
  fours, though most fours end without a fill, and the arranger learns that rate.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from structdiff.data.adapters.styles import groove_family
from structdiff.data.corpus import SPLITS
from structdiff.data.io import read_song
from structdiff.data.prepare import CorpusEntry, PrepareError
from structdiff.data.song import (
    PITCH,
    START,
    MusicFileError,
    Plan,
    Section,
    Song,
    TimeSignature,
    bar_grid,
)

ROLE_MAP = "band"
DESCRIPTION = "Groove MIDI Dataset: 1,150 human drum performances, split and style from info.csv"

INFO_CSV = "info.csv"
_COLUMNS = {"id", "style", "bpm", "beat_type", "time_signature", "midi_filename", "split"}
PHRASE_BARS = 4  # a beat performance's phrase length (see the module docstring)

# Roland TD-11 note -> General MIDI drum note, for the notes whose GM meaning is another drum
# (the Groove MIDI paper's Table 2 names the pads). A rim or edge hit becomes its drum's head or
# bow note; notes not listed already mean in GM what the TD-11 plays (36 kick, 38 snare head,
# 40 snare rim -> GM electric snare, 37 side stick, 42/46 hi-hat bow, 44 pedal hi-hat, 48/45/43
# toms 1-3, 49/57 crash 1/2 bow, 51 ride bow, 53 ride bell).
TD11_TO_GM = {
    22: 42,  # hi-hat closed, edge -> closed hi-hat
    26: 46,  # hi-hat open, edge -> open hi-hat
    50: 48,  # tom 1 rim (GM high tom) -> tom 1 head, hi-mid tom
    47: 45,  # tom 2 rim (GM low-mid tom) -> tom 2 head, low tom
    58: 43,  # tom 3 rim (GM vibraslap) -> tom 3 head, high floor tom
    55: 49,  # crash 1 edge (GM splash) -> crash 1
    52: 57,  # crash 2 edge (GM Chinese cymbal) -> crash 2
    59: 51,  # ride edge (GM ride 2) -> ride
}


def list_entries(root: Path) -> list[CorpusEntry]:
    """One entry per ``info.csv`` row whose MIDI file exists under `root`, in csv order."""
    root = Path(root)
    rows = _read_info(root)
    entries = []
    for row in rows:
        path = root / row["midi_filename"]
        if not path.is_file():
            continue
        split = row["split"].strip()
        if split not in SPLITS:
            raise PrepareError(f"{root / INFO_CSV}: split {split!r} of {row['id']} is not one of "
                               f"{', '.join(SPLITS)}")
        try:
            style = groove_family(row["style"], row["time_signature"])
        except ValueError as e:
            raise PrepareError(f"{root / INFO_CSV}: {e}") from None
        entries.append(CorpusEntry(f"groove/{row['id'].strip()}", str(path), style, split))
    return entries


def read_entry(entry: CorpusEntry, steps_per_quarter: int, seed: int) -> Song:
    """The performance as a one-track drum Song with its plan (`seed` is unused: no choices).

    The beat type and time signature are read from the file name, which the dataset writes as
    ``<n>_<style>_<bpm>_<beat|fill>_<num>-<den>.mid``.
    """
    path = Path(entry.path)
    beat_type, numerator, denominator = _name_fields(path)
    song = read_song(path, steps_per_quarter, role_map=ROLE_MAP)
    drums = [t for t in song.tracks if t.is_drum and t.n_notes]
    if len(drums) != 1 or len(song.tracks) != 1:
        raise MusicFileError(f"expected one drum track, found {len(song.tracks)} tracks "
                             f"({len(drums)} drum tracks with notes)")
    track = drums[0]
    track.name = "Drums"
    track.notes = normalize_drums(track.notes)
    song.time_signatures = [TimeSignature(0, numerator, denominator)]
    song.bars = bar_grid(song.time_signatures, song.end, steps_per_quarter)
    song.end = max(song.end, int(song.bars[-1]) + 1)
    song.source = entry.id
    song.style = entry.style
    song.split = entry.split
    song.plan = Plan(
        sections=[Section(0, song.n_bars, "A")],
        phrase_ends=groove_phrase_ends(song, beat_type),
    )
    return song


def normalize_drums(notes: np.ndarray) -> np.ndarray:
    """`notes` [N, 4] with TD-11 pitches renamed to General MIDI (`TD11_TO_GM`); a new array."""
    out = notes.copy()
    table = np.arange(128)
    for td11, gm in TD11_TO_GM.items():
        table[td11] = gm
    out[:, PITCH] = table[out[:, PITCH]]
    return out


def groove_phrase_ends(song: Song, beat_type: str) -> list[int]:
    """Phrase-end bars of a performance: its fill's bar, or every `PHRASE_BARS`-th bar of a beat."""
    if beat_type == "beat":
        return list(range(PHRASE_BARS - 1, song.n_bars, PHRASE_BARS))
    onsets = np.concatenate([t.notes[:, START] for t in song.tracks])
    last = int(song.bar_of(onsets.max()))
    in_last = onsets[song.bar_of(onsets) == last] - song.bars[last]
    if last > 0 and in_last.max() < song.beat_steps(int(song.bars[last])):
        last -= 1  # the last bar is only the landing of the fill
    return [last]


def _read_info(root: Path) -> list[dict]:
    info = root / INFO_CSV
    if not info.is_file():
        raise PrepareError(f"not the Groove MIDI Dataset (no {INFO_CSV}): {root}")
    with info.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = _COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise PrepareError(f"{info} lacks the Groove MIDI columns {', '.join(sorted(missing))}")
        return list(reader)


def _name_fields(path: Path) -> tuple[str, int, int]:
    """(beat type, numerator, denominator) from a Groove MIDI file name."""
    fields = path.stem.split("_")
    meter = fields[-1].split("-") if len(fields) >= 5 else []
    if len(meter) != 2 or not all(m.isdigit() for m in meter) or fields[-2] not in ("beat", "fill"):
        raise MusicFileError(
            f"not a Groove MIDI file name (<n>_<style>_<bpm>_<beat|fill>_<num>-<den>.mid): "
            f"{path.name}"
        )
    numerator, denominator = int(meter[0]), int(meter[1])
    if numerator < 1 or denominator not in (1, 2, 4, 8, 16, 32):
        raise MusicFileError(f"bad time signature {fields[-1]} in the file name {path.name}")
    return fields[-2], numerator, denominator
