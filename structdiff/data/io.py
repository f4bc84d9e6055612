"""One entry point for every music file: `read_song(path)`.

Also resolves `music21:NAME` references to files of the corpus bundled with music21
(e.g. `music21:bach/bwv66.6`), so examples and demos need no data to fetch.
"""

from __future__ import annotations

import errno
import stat
from pathlib import Path

from structdiff.data.song import MusicFileError, Song

MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")
MUSIC_SUFFIXES = MIDI_SUFFIXES + SCORE_SUFFIXES
CORPUS_PREFIX = "music21:"


def resolve_path(ref: str | Path) -> Path:
    """A path, or a `music21:NAME` reference to the corpus bundled with music21."""
    ref = str(ref)
    if not ref.startswith(CORPUS_PREFIX):
        return Path(ref)
    from music21 import corpus
    from music21.exceptions21 import CorpusException

    name = ref[len(CORPUS_PREFIX):]
    try:
        found = corpus.getWork(name)
    except CorpusException:
        found = None
    if isinstance(found, list):
        found = [f for f in found if Path(f).suffix.lower() in MUSIC_SUFFIXES]
        found = found[0] if found else None
    if not found:
        raise MusicFileError(f"no work named {name!r} in the music21 corpus")
    return Path(found)


def is_music_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in MUSIC_SUFFIXES


def read_song(
    ref: str | Path, steps_per_quarter: int = 4, role_map: str | None = "auto"
) -> Song:
    """Read a MIDI, MusicXML or kern file into a `Song` on a grid of `steps_per_quarter`.

    Tracks get roles from `role_map` (a built-in name, a YAML path, `auto`, or None for none).
    Raises `MusicFileError` with a one-line reason for anything that is not readable music.
    """
    path = resolve_path(ref)
    try:
        st = path.stat()  # one system call for what exists(), is_file() and the size ask
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EBADF):
            raise
        raise MusicFileError(f"no such file: {path}") from None
    if not stat.S_ISREG(st.st_mode):
        raise MusicFileError(f"not a file: {path}")
    suffix = path.suffix.lower()
    if suffix not in MUSIC_SUFFIXES:
        raise MusicFileError(
            f"not a music file (expected {', '.join(MUSIC_SUFFIXES)}): {path}"
        )
    if st.st_size == 0:
        raise MusicFileError(f"empty file: {path}")
    if steps_per_quarter < 1:
        raise ValueError(f"steps_per_quarter must be >= 1, got {steps_per_quarter}")
    if suffix in MIDI_SUFFIXES:
        from structdiff.data.midi import read_midi

        song = read_midi(path, steps_per_quarter)
    else:
        from structdiff.data.score import read_score

        song = read_score(path, steps_per_quarter)
    if str(ref).startswith(CORPUS_PREFIX):
        song.source = str(ref)
    if not any(t.n_notes for t in song.tracks):
        raise MusicFileError(f"no notes in {path}")
    if role_map is not None:
        from structdiff.data.roles import assign_roles

        assign_roles(song, role_map)
    return song
