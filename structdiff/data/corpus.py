"""Corpora: the multi-voice scores bundled with music21, and any folder of music files.

The embedded corpus is what ships inside the music21 package (``music21/corpus``), so it needs
no download. Only multi-voice score collections are listed, each file with a style label:

=================  ==========================================================================
style              collections
=================  ==========================================================================
chorale            bach (four-part chorales)
renaissance_mass   palestrina (mass movements)
madrigal           monteverdi, lusitano
medieval           trecento, ciconia, luca
string_quartet     beethoven, haydn, mozart (quartets)
classical_other    handel, corelli, cpebach, chopin, schubert, schumann_*, beach, weber, verdi,
                   joplin, johnson_j_r, liliuokalani, schoenberg, webern, and the two keyboard
                   pieces found among the above (bach/bwv846, mozart/k545)
=================  ==========================================================================

Left out: ``.abc`` tune books (monophonic, many tunes per file; josquin ships only as abc),
Roman-numeral analyses (``.rntxt``), formats we cannot read (``.mus``, ``.musx``) and the demo,
exercise and lead-sheet folders. Where one piece comes in several formats (``bwv277.mxl`` and
``bwv277.krn``) one is kept, by ``FORMAT_PREFERENCE``.

A file's id is its path relative to the corpus folder (``bach/bwv66.6.mxl``). Its split comes
from a SHA-256 of its *group* (the id without a version suffix, so ``bwv248.23-2`` and
``bwv248.23-s`` fall together): 80% train, 10% validation, 10% test. The rule depends on the id
alone, so it is the same on every machine and a new corpus version moves no old file.
Regenerate the committed split files with ``python -m structdiff.data.corpus --write-splits``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from pathlib import Path

from structdiff.data.io import MUSIC_SUFFIXES

SPLITS = ("train", "validation", "test")
SPLIT_PERCENT = {"train": 80, "validation": 10, "test": 10}

STYLES = (
    "chorale",
    "renaissance_mass",
    "madrigal",
    "medieval",
    "string_quartet",
    "classical_other",
)


def style_index(styles, style: str | None) -> int:
    """A training example's style label: its index in a model's `styles`; any other style (or
    none) is the extra last label, `len(styles)`."""
    return styles.index(style) if style in styles else len(styles)


COLLECTION_STYLES = {
    "bach": "chorale",
    "palestrina": "renaissance_mass",
    "monteverdi": "madrigal",
    "lusitano": "madrigal",
    "trecento": "medieval",
    "ciconia": "medieval",
    "luca": "medieval",
    "beethoven": "string_quartet",
    "haydn": "string_quartet",
    "mozart": "string_quartet",
    **{
        name: "classical_other"
        for name in (
            "handel", "corelli", "cpebach", "chopin", "schubert", "schumann_clara",
            "schumann_robert", "beach", "weber", "verdi", "joplin", "johnson_j_r",
            "liliuokalani", "schoenberg", "webern",
        )
    },
}

# Pieces whose collection label would be wrong: keyboard works among chorales and quartets.
STYLE_EXCEPTIONS = {
    "bach/bwv846": "classical_other",  # Well-Tempered Clavier, prelude in C
    "mozart/k545": "classical_other",  # piano sonata
}

# When one piece exists in several formats, keep the first of these (MusicXML keeps part names).
FORMAT_PREFERENCE = (".mxl", ".musicxml", ".xml", ".krn", ".mid", ".midi")

DATASET_DIR = Path(__file__).resolve().parents[2] / "datasets" / "music21"

# Version suffixes that mark another take on the same piece: bwv248.23-s, Credo_63_a.
_BACH_GROUP = re.compile(r"^(bwv\d+(?:\.\d+)?)")
_LETTER_VARIANT = re.compile(r"_[a-z]$")


def music21_corpus_dir() -> Path:
    """The folder of the corpus bundled with the installed music21 package."""
    import music21

    return Path(music21.__file__).resolve().parent / "corpus"


def list_music_files(folder: str | Path) -> list[Path]:
    """Every music file under `folder` (suffix in MUSIC_SUFFIXES, any case), sorted by path.

    Hidden files and folders (``.DS_Store``, macOS ``._song.mid`` forks) are not listed.
    """
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in MUSIC_SUFFIXES:
                found.append(Path(root, name))
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def corpus_style(file_id: str) -> str:
    """The style label of an id of the embedded corpus, e.g. ``chorale`` for ``bach/...``."""
    collection, _, rest = file_id.partition("/")
    for prefix, style in STYLE_EXCEPTIONS.items():
        if file_id.startswith(prefix + ".") or file_id.startswith(prefix + "/"):
            return style
    if collection not in COLLECTION_STYLES or not rest:
        raise ValueError(f"not an id of the listed music21 corpus: {file_id!r}")
    return COLLECTION_STYLES[collection]


def split_group(file_id: str) -> str:
    """The id with its suffix and version marker removed; one group never spans two splits."""
    folder, _, name = file_id.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    bach = _BACH_GROUP.match(stem) if folder == "bach" else None
    stem = bach.group(1) if bach else _LETTER_VARIANT.sub("", stem)
    return f"{folder}/{stem}" if folder else stem


def split_of(file_id: str) -> str:
    """``train``, ``validation`` or ``test`` for an id, from a SHA-256 of its group."""
    digest = hashlib.sha256(split_group(file_id).encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    for split in SPLITS:
        if bucket < SPLIT_PERCENT[split]:
            return split
        bucket -= SPLIT_PERCENT[split]
    raise AssertionError("split percentages must sum to 100")


def music21_corpus(corpus_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """The listed multi-voice score files of the embedded corpus as sorted `(id, path)` pairs."""
    corpus_dir = Path(corpus_dir) if corpus_dir is not None else music21_corpus_dir()
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"no music21 corpus folder at {corpus_dir}")
    by_piece: dict[str, Path] = {}
    for collection in sorted(COLLECTION_STYLES):
        if not (corpus_dir / collection).is_dir():
            continue
        for path in list_music_files(corpus_dir / collection):
            rel = path.relative_to(corpus_dir).as_posix()
            piece = rel[: -len(path.suffix)]
            kept = by_piece.get(piece)
            if kept is None or _preference(path) < _preference(kept):
                by_piece[piece] = path
    pairs = [(p.relative_to(corpus_dir).as_posix(), p) for p in by_piece.values()]
    return sorted(pairs)


def _preference(path: Path) -> int:
    order = {suffix: i for i, suffix in enumerate(FORMAT_PREFERENCE)}
    return order.get(path.suffix.lower(), len(order))


def write_splits(out_dir: str | Path = DATASET_DIR, corpus_dir: str | Path | None = None) -> dict:
    """Write ``train.txt``, ``validation.txt``, ``test.txt`` and ``styles.tsv``; counts per split.

    Files are written atomically, one id per line, sorted.
    """
    ids = [file_id for file_id, _ in music21_corpus(corpus_dir)]
    counts = write_split_files(ids, out_dir)
    _write_text(Path(out_dir) / "styles.tsv",
                "".join(f"{i}\t{corpus_style(i)}\n" for i in ids))
    return counts


def write_split_files(ids: list[str], out_dir: str | Path) -> dict[str, int]:
    """``train.txt``, ``validation.txt`` and ``test.txt`` in `out_dir`: `ids` by `split_of`,
    one a line, in the given order, each file written atomically; counts per split."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_split = {split: [i for i in ids if split_of(i) == split] for split in SPLITS}
    for split, members in by_split.items():
        _write_text(out_dir / f"{split}.txt", "".join(f"{i}\n" for i in members))
    return {split: len(members) for split, members in by_split.items()}


def read_split(split: str, folder: str | Path = DATASET_DIR) -> list[str]:
    """The ids listed in a committed split file."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = Path(folder) / f"{split}.txt"
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-splits", action="store_true", help="write the split files")
    parser.add_argument("--out", default=str(DATASET_DIR), help="folder for the split files")
    args = parser.parse_args(argv)
    if args.write_splits:
        counts = write_splits(args.out)
        print(f"wrote splits to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    else:
        for file_id, _ in music21_corpus():
            print(f"{file_id}\t{corpus_style(file_id)}\t{split_of(file_id)}")


if __name__ == "__main__":
    main()
