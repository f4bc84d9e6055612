"""What a user fixes in a plan (a form, a chord chart, a key) as known features and a mask.

The planner inpaints: features under `mask` take the `known` values at every sampling step,
the rest are generated. Decoding a plan sampled that way gives the fixed parts back exactly
(sections with the user's own letters when `decode_plan` gets `letter_labels(form)`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from structdiff.analysis.chords import parse_chord_name
from structdiff.data.plan_tensor import (
    MAX_LABELS,
    N_FEATURES,
    PLAN_LAYOUT,
    PlanGrid,
    chord_classes,
    label_classes,
    letter_labels,
)
from structdiff.data.song import Key, Section

ChordSymbol = tuple[int, str, int]  # (root, quality, bass) as parse_chord_name gives it

_FORM_TOKEN = re.compile(r"^([A-Za-z]+)(\d+)$")


def parse_form(text: str) -> list[Section]:
    """Sections of a form such as ``i4 A8 B8 A8 o4``: whitespace-separated tokens, each a label
    of letters (case-sensitive; ``i`` is an intro and ``o`` an outro) and a bar count >= 1."""
    sections: list[Section] = []
    start = 0
    for token in text.split():
        m = _FORM_TOKEN.match(token)
        if not m:
            raise ValueError(
                f"bad form token {token!r} (expected a label and a bar count, e.g. A8)"
            )
        n = int(m.group(2))
        if n < 1:
            raise ValueError(f"bad form token {token!r} (a section needs at least 1 bar)")
        sections.append(Section(start, n, m.group(1)))
        start += n
    if not sections:
        raise ValueError(f"empty form {text!r} (expected e.g. A8 B8 A8)")
    return sections


def parse_chord_chart(
    text: str, beats_per_bar: int | Sequence[int] | None = None
) -> list[list[ChordSymbol]]:
    """Chords of a chart such as ``C G | Am F | G7 | C``, one list per bar as written.

    Bars are separated by ``|`` (a leading or trailing ``|`` is allowed); a bar holding only
    ``%`` repeats the previous bar; ``N`` is no chord. A bar's chords share its beats evenly
    (see `spread_over_beats`). With `beats_per_bar` (one count for all bars, or one per bar,
    e.g. `grid.n_beats`) a bar with more chords than beats is an error here already.
    Raises `ValueError` naming the bar or the symbol.
    """
    body = text.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    bars: list[list[ChordSymbol]] = []
    for i, cell in enumerate(body.split("|")):
        symbols = cell.split()
        if symbols == ["%"]:
            if not bars:
                raise ValueError("bar 1 of the chord chart is '%' but there is no bar to repeat")
            bars.append(list(bars[-1]))
            continue
        if not symbols:
            raise ValueError(
                f"bar {i + 1} of the chord chart is empty (write N for no chord, % to repeat)"
            )
        bars.append([parse_chord_name(s) for s in symbols])
    if beats_per_bar is not None:
        counts = (
            [beats_per_bar] * len(bars) if isinstance(beats_per_bar, int) else list(beats_per_bar)
        )
        for i, (chords, beats) in enumerate(zip(bars, counts)):
            _check_fits(i, chords, int(beats))
    return bars


def _check_fits(bar: int, chords: Sequence[ChordSymbol], beats: int) -> None:
    if len(chords) > beats:
        raise ValueError(
            f"bar {bar + 1} of the chord chart has {len(chords)} chords but only {beats} beats"
        )


def spread_over_beats(chords: Sequence[ChordSymbol], beats: int) -> list[ChordSymbol]:
    """One chord per beat: `chords` share `beats` evenly, earlier chords taking the beats left
    over (3 chords in 4/4: 2 + 1 + 1 beats)."""
    if not chords or len(chords) > beats:
        raise ValueError(f"cannot spread {len(chords)} chords over {beats} beats")
    parts = np.array_split(np.arange(beats), len(chords))
    return [c for c, part in zip(chords, parts) for _ in part]


def parse_key(text: str) -> Key:
    """A key from ``C major``, ``A minor``, ``Am``, ``F#``, ``Bbm``, ``C# minor`` (``maj``,
    ``min`` and ``m`` also; no mode is major)."""
    m = re.match(
        r"^\s*([A-Ga-g])([#b♯♭]?)\s*(major|minor|maj|min|m)?\s*$", text, flags=re.IGNORECASE
    )
    # a lone "M" is not a mode: "AM" reads as a typo, not as A major
    if not m or (m.group(3) and m.group(3) != "m" and len(m.group(3)) == 1):
        raise ValueError(f"bad key {text!r} (expected e.g. C major, A minor, Am, F#, Bbm)")
    letter, accidental, mode = m.group(1).upper(), m.group(2), (m.group(3) or "major").lower()
    tonic = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[letter]
    tonic += {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)
    return Key(tonic % 12, "minor" if mode in ("minor", "min", "m") else "major")


def constraint_arrays(
    n_bars: int,
    grid: PlanGrid,
    key: Key | None,
    form: Sequence[Section] | None = None,
    chords: Sequence[Sequence[ChordSymbol]] | None = None,
    phrase_ends: dict[int, bool] | None = None,
    final_chord: tuple[int, str, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Known features `[L, N_FEATURES]` float32 (one-hot where fixed, 0 elsewhere) and the mask
    `[L, N_FEATURES]` bool of exactly the features the user fixed.

    A `form` (e.g. from `parse_form`) fixes the label and section_start groups of every bar;
    its bars must add up to `n_bars`. A chord chart (`parse_chord_chart`) fixes the root,
    quality and bass groups of the used slots of the bars it covers, from bar 0 (a shorter
    chart leaves the later bars free); chords are stored relative to `key`, which must be known
    (given by the user or chosen first). Unused slots are not masked: `slot_valid` covers them.
    `phrase_ends` (bar -> whether a phrase ends on it, e.g. `FormModel.phrase_ends`) fixes the
    phrase_end group of those bars. `final_chord` (root, quality, bass from the tonic, e.g.
    `FormModel.final_chord`) fixes the second half of the last bar's used slots (two beats of
    four), unless the chart reaches the last bar.
    """
    if n_bars < 1:
        raise ValueError(f"bars must be >= 1, got {n_bars}")
    if grid.n_bars != n_bars:
        raise ValueError(f"grid has {grid.n_bars} bars, --bars is {n_bars}")
    groups = {g.name: g for g in PLAN_LAYOUT}
    known = np.zeros((n_bars, N_FEATURES), dtype=np.float32)
    mask = np.zeros((n_bars, N_FEATURES), dtype=bool)

    def fix(bar: int, group: str, cls: int) -> None:
        g = groups[group]
        known[bar, g.offset + cls] = 1.0
        mask[bar, g.slice] = True

    if form is not None:
        total = sum(s.n_bars for s in form)
        if total != n_bars:
            raise ValueError(f"form has {total} bars, --bars is {n_bars}")
        start = 0
        for s in form:
            if s.start_bar != start or s.n_bars < 1:
                raise ValueError(f"form sections must follow each other from bar 0: {s}")
            start += s.n_bars
        n_letters = len(letter_labels(form))
        if n_letters > MAX_LABELS:
            raise ValueError(
                f"form has {n_letters} different labels, at most {MAX_LABELS} are supported"
            )
        classes = label_classes(form)
        for s in form:
            for bar in range(s.start_bar, s.start_bar + s.n_bars):
                fix(bar, "label", classes[s.label])
                fix(bar, "section_start", int(bar == s.start_bar))

    for bar, end in (phrase_ends or {}).items():
        if not 0 <= bar < n_bars:
            raise ValueError(f"phrase end at bar {bar}, outside the {n_bars} bars")
        fix(bar, "phrase_end", int(end))

    if chords is not None:
        if len(chords) > n_bars:
            raise ValueError(f"chord chart has {len(chords)} bars, --bars is {n_bars}")
        if key is None:
            raise ValueError("a chord chart needs a key: give one or choose it first")
        beats = grid.n_beats
        for bar, bar_chords in enumerate(chords):
            _check_fits(bar, bar_chords, int(beats[bar]))
            for slot, chord in enumerate(spread_over_beats(bar_chords, int(beats[bar]))):
                root, quality, bass = chord_classes(chord, key.tonic)
                fix(bar, f"root{slot}", root)
                fix(bar, f"quality{slot}", quality)
                fix(bar, f"bass{slot}", bass)

    if final_chord is not None and (chords is None or len(chords) < n_bars):
        root, quality, bass = chord_classes(final_chord, 0)
        used = int(grid.slot_valid[n_bars - 1].sum())
        for slot in range(used // 2, used):
            fix(n_bars - 1, f"root{slot}", root)
            fix(n_bars - 1, f"quality{slot}", quality)
            fix(n_bars - 1, f"bass{slot}", bass)
    return known, mask
