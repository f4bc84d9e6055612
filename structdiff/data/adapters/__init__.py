"""Corpus adapters: corpora whose songs need more than reading one music file.

An adapter lists a corpus's songs and reads each one into a `Song` with its own annotations as
the plan (a human form, beat-aligned chords, a key), its style label and its split, so that
everything after `structdiff prepare --corpus NAME` sees only Songs with plans. Each is a module
of this package with:

- ``DESCRIPTION`` (one line) and ``ROLE_MAP`` (the role map its tracks are put in);
- ``list_entries(root: Path) -> list[CorpusEntry]`` (``structdiff.data.prepare.CorpusEntry``:
  a stable id, the path the reader needs, style, split); it raises ``PrepareError`` when `root`
  is not that corpus;
- ``read_entry(entry, steps_per_quarter: int, seed: int) -> Song``, which raises a one-line
  error for a song that must be skipped (prepare reports it and goes on);
- optionally ``DIGEST_FILES``, the files besides the module whose edits change what it reads
  (prepare hashes them, with the module, into its shards' names, so stale shards are redone),
  and a ``seed`` keyword of ``list_entries`` when it draws labels at random.

The recipes that say what each corpus is, its licence and how to get it are in ``datasets/``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ADAPTERS = {
    "pop909": "POP909 pop songs with their human forms, chords and keys as the plan",
    "groove": "Groove MIDI drum performances with style and beat/fill labels (drums only)",
    "game": "folders of multi-track game soundtrack MIDI, analyzed",
    "band": "drums, bass and comping rendered with mma under real songs' melodies and charts",
}


def get_adapter(name: str) -> ModuleType:
    """The adapter module `name`; PrepareError naming the known ones for another name."""
    from structdiff.data.prepare import PrepareError

    if name not in ADAPTERS:
        raise PrepareError(f"unknown corpus {name!r} (known: {', '.join(ADAPTERS)})")
    return importlib.import_module(f"structdiff.data.adapters.{name}")
