"""Chord vocabulary, names, and chord recognition.

Vocabulary (DESIGN.md): root (12) x quality + bass, plus `N` (no chord).
"""

from __future__ import annotations

import re

from structdiff.data.song import PITCH_CLASS_NAMES

# Intervals above the root of each quality.
QUALITY_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus": (0, 5, 7),
    "dom7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "hdim7": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
}
QUALITIES = tuple(QUALITY_INTERVALS) + ("N",)

_SUFFIX = {
    "maj": "", "min": "m", "dim": "dim", "aug": "aug", "sus": "sus4",
    "dom7": "7", "maj7": "maj7", "min7": "m7", "hdim7": "m7b5", "dim7": "dim7",
}
# Accepted spellings of each quality when parsing a chord symbol.
_ALIASES = {
    "": "maj", "M": "maj", "maj": "maj", "major": "maj",
    "m": "min", "min": "min", "-": "min", "minor": "min",
    "dim": "dim", "o": "dim", "°": "dim",
    "aug": "aug", "+": "aug",
    "sus": "sus", "sus4": "sus", "sus2": "sus",
    "7": "dom7", "dom7": "dom7",
    "maj7": "maj7", "M7": "maj7", "Δ": "maj7", "Δ7": "maj7",
    "m7": "min7", "min7": "min7", "-7": "min7",
    "m7b5": "hdim7", "ø": "hdim7", "ø7": "hdim7", "hdim7": "hdim7",
    "dim7": "dim7", "o7": "dim7", "°7": "dim7",
}
_NOTE = r"([A-Ga-g])([#b]*)"
_CHORD_RE = re.compile(rf"^{_NOTE}([^/]*)(?:/{_NOTE})?$")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def chord_name(root: int, quality: str, bass: int | None = None) -> str:
    """`C`, `Am`, `G7/B`, `Bm7b5`; `N` for no chord."""
    if quality == "N":
        return "N"
    if quality not in _SUFFIX:
        raise ValueError(f"unknown chord quality {quality!r} (known: {', '.join(QUALITIES)})")
    name = PITCH_CLASS_NAMES[root % 12] + _SUFFIX[quality]
    if bass is not None and bass % 12 != root % 12:
        name += "/" + PITCH_CLASS_NAMES[bass % 12]
    return name


def _pitch_class(letter: str, accidentals: str) -> int:
    return (_LETTER_PC[letter.upper()] + accidentals.count("#") - accidentals.count("b")) % 12


def parse_chord_name(text: str) -> tuple[int, str, int]:
    """`(root, quality, bass)` of a chord symbol such as `F#m7/A`; `N` is `(0, "N", 0)`.

    Raises `ValueError` naming the symbol when it is not in the vocabulary.
    """
    text = text.strip()
    if text in ("N", "N.C.", "NC"):
        return 0, "N", 0
    m = _CHORD_RE.match(text)
    if not m or m.group(3) not in _ALIASES:
        raise ValueError(f"unknown chord symbol {text!r} (e.g. C, Am, G7, Bdim, Fmaj7/A, N)")
    root = _pitch_class(m.group(1), m.group(2))
    bass = _pitch_class(m.group(4), m.group(5)) if m.group(4) else root
    return root, _ALIASES[m.group(3)], bass


def chord_pitch_classes(root: int, quality: str) -> set[int]:
    if quality == "N":
        return set()
    return {(root + i) % 12 for i in QUALITY_INTERVALS[quality]}


# --- chord recognition -------------------------------------------------------------------------

# Recognized qualities (all of the vocabulary but N) and their index in the emission columns.
_RECOGNIZED = tuple(q for q in QUALITIES if q != "N")
_N_INDEX = len(_RECOGNIZED) * 12  # the state for "no chord"
# Log-prior of each quality: triads unless the seventh is really there; aug and sus are rare.
_QUALITY_PRIOR = {
    "maj": 0.0, "min": 0.0, "dim": -0.15, "aug": -0.5, "sus": -0.5,
    "dom7": -0.12, "maj7": -0.25, "min7": -0.2, "hdim7": -0.2, "dim7": -0.2,
}
_NON_CHORD_TONE = -1.0  # template weight of a pitch class outside the chord
_BASS_WEIGHT = 0.5  # extra weight of the lowest sounding pitch class
_ROOT_IN_BASS = 0.1  # bonus when the bass is the root (root position is the common case)
_CHANGE_PENALTY = 0.15  # cost of a chord change, in units of one beat's emission
_DIATONIC_BONUS = 0.05  # bonus for chords whose tones all belong to the estimated key


def chord_templates() -> np.ndarray:
    """Template weights `[Q * 12, 12]` of every recognized chord over the 12 pitch classes.

    Row `q * 12 + root` (q indexes `_RECOGNIZED`): 1 on chord tones, `_NON_CHORD_TONE` elsewhere.
    """
    rows = np.full((len(_RECOGNIZED), 12, 12), _NON_CHORD_TONE)
    for q, quality in enumerate(_RECOGNIZED):
        for root in range(12):
            rows[q, root, [(root + i) % 12 for i in QUALITY_INTERVALS[quality]]] = 1.0
    return rows.reshape(-1, 12)
