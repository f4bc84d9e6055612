"""Forms of real songs, per style: a small model fit on a corpus's forms, sampled first when a
plan is written without `--form` (the planner then fills in key and chords under it, so no bar
of a section can drift to another label).

A form is read as a sequence of sections, each a *move* and a length in bars:

- `i` (intro) first and `o` (outro) last, when the song has them;
- `x`: a span without the melody (an interlude; any lower-case label other than `i`/`o`, as
  POP909's human forms and `structdiff.analysis.sections.melody_sections` write them);
- `new`: a label not used before; `same`: the label of the section before; `back1`, `back2`,
  ...: the label used most recently but one, two, ... (verse-chorus-verse-chorus is `new new
  back1 back1`). Moves relative to what came before generalize over songs where absolute labels
  (`A` is not always the verse) would not.

The model per style counts: how often a song opens with an intro and closes with an outro,
and their lengths; the move after each move (a bigram, from the start `^`); the lengths of new
sections, of `x` spans, and of repeats, and how often a repeat keeps the length its label had
before. Section lengths are also counted per song size (`size_class`: songs of up to 16, 32,
64, ... bars), and a form of n bars draws its lengths from the songs of its size when the style
has at least `MIN_SIZED` sections of that kind there (a 300-bar quartet movement has longer
sections than a 40-bar one), else from all of the style's.

Phrase ends (session 15, issue 11): per section length, the patterns of the bars on which a
phrase ends inside a section (`01` for a two-bar section that ends a phrase on its last bar),
counted over the songs whose plans have phrase ends. `phrase_ends` draws one for every section
of a form whose length has patterns (a repeated label of the same length takes its first
pattern again), and the planner is given them as known, as it is given the sections: its chords
then cadence where its phrases end. Left alone, the planner's own phrase ends fell on 45% of a
chorale's bars (Bach's: 36%), only half of them at a section's end (85%).

Final chords (session 15): per style and mode, the chord each song ends on (root and bass
relative to the tonic, quality), counted over the songs with a key and chords. `final_chord`
draws one, and `generate_plan` gives it to the planner as the chord of the last bar's second
half (the training chorales' full last bars hold their final chord two beats, 56 of 81, or
the whole bar, 21), so a song ends as the style's songs end. Unguided, the classical planner
ended 72% of its chorales on the tonic, guided at 3 (its chorale default) 53%; Bach's: 94%.

Song lengths (session 16): per style, how many bars its songs have. `song_length` draws one,
and `generate_plan` (so `structdiff generate` and `plan`) writes a song of that length when
neither bars nor a form are given (at most `MAX_DRAWN_BARS`): a chorale as long as Bach's
(median 17 bars; 90% of them 10-31) instead of 32 bars, a mass section or a madrigal as long
as theirs. Files fit before it (the band set's) have none, and those songs stay 32 bars.

Sampling draws intro and outro, then moves and lengths until the bars add up exactly: a length
that would overshoot is drawn again among those that fit, and the whole body is drawn again (up
to `TRIES` times) until none had to be. A style the model has no songs of takes the forms of
all its styles pooled. (Tried and dropped: lengths drawn per song's usual phrase length, 4 or 8
bars; on POP909's test split the TV distance of section lengths rose from 0.10 to 0.14.)

`fit_forms` reads prepared corpora (`structdiff train forms`); the shipped planners carry the
fitted model as `forms.json` beside their weights.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from structdiff.data.plan_tensor import MAX_LABELS
from structdiff.data.song import Section, section_labels

MAX_DRAWN_BARS = 128  # the longest song `song_length` draws

FORMS_FILE = "forms.json"
TRIES = 200  # draws of a body until one whose every length fit as drawn
START = "^"
NEW, SAME = "new", "same"
POOLED = "*"  # the pooled styles' entry
MIN_SIZED = 20  # sections of a kind a song size needs before lengths are drawn from it alone
MAX_PATTERN = 64  # the longest section whose phrase-end pattern is counted


def size_class(n_bars: int) -> int:
    """The song-size class of a form of `n_bars`: 0 up to 16 bars, 1 up to 32, 2 up to 64,
    ..., 6 over 512."""
    return int(min(6, max(0, np.ceil(np.log2(max(n_bars, 1) / 16)))))


def moves_of(sections: Sequence[Section]) -> list[tuple[str, int]]:
    """The form as `(move, bars)` pairs (module docstring): `i`, `o`, `x`, `new`, `same`,
    `backK`."""
    return [(move, bars) for move, bars, _ in _replay(sections)[0]]


def _replay(sections: Sequence[Section]) -> tuple[list[tuple[str, int, str]], list[str]]:
    """The form's `(move, bars, label)` triples, and its letter labels, most recent first,
    as they stand after its last section."""
    out: list[tuple[str, int, str]] = []
    recent: list[str] = []
    for k, s in enumerate(sections):
        label = s.label
        if label == "i" and k == 0:
            out.append(("i", s.n_bars, label))
        elif label == "o" and k == len(sections) - 1:
            out.append(("o", s.n_bars, label))
        elif label.islower() or label in ("i", "o"):
            out.append(("x", s.n_bars, label))
        else:
            if label not in recent:
                move = NEW
            elif recent[0] == label:
                move = SAME
            else:
                move = f"back{recent.index(label)}"
            out.append((move, s.n_bars, label))
            if label in recent:
                recent.remove(label)
            recent.insert(0, label)
    return out, recent


@dataclass
class StyleForms:
    """The counts of one style (module docstring)."""

    songs: int = 0
    intros: Counter = field(default_factory=Counter)  # length -> songs
    outros: Counter = field(default_factory=Counter)
    moves: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    lengths: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    keep_length: list[int] = field(default_factory=lambda: [0, 0])  # [kept, repeats]
    # size class -> kind -> length -> sections (`size_class`)
    sized: dict[int, dict[str, Counter]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Counter)))
    # section length -> phrase-end pattern ("0101": a phrase ends on bars 1 and 3) -> sections
    phrases: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))
    # mode -> final chord "root quality bass" (root, bass from the tonic: "0 maj 0") -> songs
    finals: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    song_bars: Counter = field(default_factory=Counter)  # bars -> songs

    def lengths_for(self, song_bars: int | None) -> dict[str, Counter]:
        """The length counts to draw from in a song of `song_bars` (None: all sizes): of its
        size class, per kind, where that class has `MIN_SIZED` sections of the kind."""
        if song_bars is None:
            return self.lengths
        sized = self.sized.get(size_class(song_bars), {})
        return {kind: sized[kind] if sum(sized.get(kind, Counter()).values()) >= MIN_SIZED
                else self.lengths[kind] for kind in ("x", NEW, "repeat")}

    def add(self, sections: Sequence[Section], phrase_ends: Sequence[int] = ()) -> None:
        """Count a form; `phrase_ends` (bar indices) also count its sections' phrase-end
        patterns (a song without any counts none)."""
        ends = set(phrase_ends)
        if ends:
            for s in sections:
                if s.n_bars <= MAX_PATTERN:
                    bars = range(s.start_bar, s.start_bar + s.n_bars)
                    self.phrases[s.n_bars]["".join("1" if b in ends else "0" for b in bars)] += 1
        moves, _ = _replay(sections)
        n_bars = sum(s.n_bars for s in sections)
        size = size_class(n_bars)
        self.songs += 1
        self.song_bars[n_bars] += 1
        if moves and moves[0][0] == "i":
            self.intros[moves[0][1]] += 1
        if moves and moves[-1][0] == "o":
            self.outros[moves[-1][1]] += 1
        prev = START
        last_length: dict[str, int] = {}
        for move, bars, label in moves:
            if move in ("i", "o"):
                continue
            self.moves[prev][move] += 1
            prev = move
            kind = move if move in ("x", NEW) else "repeat"
            self.lengths[kind][bars] += 1
            self.sized[size][kind][bars] += 1
            if move == "x":
                continue
            if move != NEW:
                self.keep_length[1] += 1
                self.keep_length[0] += int(last_length.get(label) == bars)
            last_length[label] = bars

    def to_dict(self) -> dict:
        def plain(c: Counter) -> dict[str, int]:
            return {str(k): int(v) for k, v in sorted(c.items(), key=lambda kv: str(kv[0]))}

        return {"songs": self.songs, "intros": plain(self.intros), "outros": plain(self.outros),
                "moves": {k: plain(v) for k, v in sorted(self.moves.items())},
                "lengths": {k: plain(v) for k, v in sorted(self.lengths.items())},
                "sized": {str(c): {k: plain(v) for k, v in sorted(kinds.items())}
                          for c, kinds in sorted(self.sized.items())},
                "phrases": {str(n): plain(c) for n, c in sorted(self.phrases.items())},
                "finals": {m: plain(c) for m, c in sorted(self.finals.items())},
                "song_bars": plain(self.song_bars),
                "keep_length": list(self.keep_length)}

    @classmethod
    def from_dict(cls, d: dict) -> StyleForms:
        def counter(x: dict, key=int) -> Counter:
            return Counter({key(k): int(v) for k, v in x.items()})

        out = cls(songs=int(d["songs"]), intros=counter(d["intros"]),
                  outros=counter(d["outros"]), keep_length=list(d["keep_length"]))
        for k, v in d["moves"].items():
            out.moves[k] = counter(v, str)
        for k, v in d["lengths"].items():
            out.lengths[k] = counter(v)
        for c, kinds in d.get("sized", {}).items():  # absent in files fit before it existed
            for k, v in kinds.items():
                out.sized[int(c)][k] = counter(v)
        for n, v in d.get("phrases", {}).items():  # absent before session 15: none drawn
            out.phrases[int(n)] = counter(v, str)
        for m, v in d.get("finals", {}).items():
            out.finals[m] = counter(v, str)
        out.song_bars = counter(d.get("song_bars", {}))  # absent before session 16: none
        return out

    def merge(self, other: StyleForms) -> None:
        self.songs += other.songs
        self.intros += other.intros
        self.outros += other.outros
        for k, v in other.moves.items():
            self.moves[k] += v
        for k, v in other.lengths.items():
            self.lengths[k] += v
        for c, kinds in other.sized.items():
            for k, v in kinds.items():
                self.sized[c][k] += v
        for n, v in other.phrases.items():
            self.phrases[n] += v
        self.song_bars += other.song_bars
        for m, v in other.finals.items():
            self.finals[m] += v
        self.keep_length = [a + b for a, b in zip(self.keep_length, other.keep_length)]


def _draw(counts: Counter, rng: np.random.Generator, allowed=None):
    # in a fixed order, so that a model read back from its file draws the same
    items = sorted(((k, v) for k, v in counts.items()
                    if v > 0 and (allowed is None or allowed(k))), key=lambda kv: str(kv[0]))
    if not items:
        return None
    keys, weights = zip(*items)
    p = np.asarray(weights, dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


class FormModel:
    """Forms per style (module docstring)."""

    def __init__(self, styles: dict[str, StyleForms] | None = None):
        self.styles: dict[str, StyleForms] = dict(styles or {})

    # -- fitting and files --------------------------------------------------------------------

    def add(self, style: str | None, sections: Sequence[Section],
            phrase_ends: Sequence[int] = (), final: tuple[str, int, str, int] | None = None
            ) -> None:
        """Count a song's form, its phrase ends, and its `final` chord: (mode, root from the
        tonic, quality, bass from the tonic)."""
        if not sections:
            return
        forms = self.styles.setdefault(style or POOLED, StyleForms())
        forms.add(sections, phrase_ends)
        if final is not None:
            mode, root, quality, bass = final
            forms.finals[mode][f"{root % 12} {quality} {bass % 12}"] += 1

    def pooled(self) -> StyleForms:
        out = StyleForms()
        for forms in self.styles.values():
            out.merge(forms)
        return out

    def for_style(self, style: str | None) -> StyleForms:
        """The style's counts; the pooled ones for a style it has no songs of (or None)."""
        if style is not None and style in self.styles and self.styles[style].songs:
            return self.styles[style]
        return self.pooled()

    def to_dict(self) -> dict:
        return {"kind": "forms", "styles": {s: f.to_dict() for s, f in sorted(self.styles.items())}}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FormModel:
        """The model in `path`; ValueError with one line when it is not a forms file."""
        try:
            d = json.loads(Path(path).read_text())
            if d.get("kind") != "forms":
                raise ValueError("not a forms file")
            return cls({s: StyleForms.from_dict(f) for s, f in d["styles"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"cannot read the form model {path}: {e}") from None

    # -- sampling ----------------------------------------------------------------------------

    def sample(self, n_bars: int, style: str | None, rng: np.random.Generator,
               max_labels: int = MAX_LABELS) -> list[Section]:
        """A form of exactly `n_bars` bars in the manner of `style` (module docstring), with
        at most `max_labels` distinct labels (`x` among them; `i`/`o` aside): past that, a
        section repeats an earlier label."""
        if n_bars < 1:
            raise ValueError(f"bars must be >= 1, got {n_bars}")
        f = self.for_style(style)
        if not f.songs:
            return [Section(0, n_bars, "A")]
        intro = outro = 0
        if rng.random() < sum(f.intros.values()) / f.songs:
            intro = _draw(f.intros, rng) or 0
        if rng.random() < sum(f.outros.values()) / f.songs:
            outro = _draw(f.outros, rng) or 0
        if n_bars - intro - outro < min(4, n_bars):  # too short for them: the body only
            intro = outro = 0
        body_bars = n_bars - intro - outro
        body: list[tuple[str, int]] = []
        for _ in range(TRIES):
            body, forced = self._body(f, body_bars, rng, max_labels - 1, song_bars=n_bars)
            if not forced:
                break
        moves = ([("i", intro)] if intro else []) + body + ([("o", outro)] if outro else [])
        return _sections(moves)

    def phrase_ends(self, sections: Sequence[Section], style: str | None,
                    rng: np.random.Generator) -> dict[int, bool]:
        """Whether a phrase ends on each bar of `sections` (bars as the sections number them),
        for the sections whose length the style's songs have phrase-end patterns of: one
        pattern drawn per section, a repeated label of the same length taking its first one.
        Bars of other sections are left out (the planner writes their phrase ends)."""
        f = self.for_style(style)
        out: dict[int, bool] = {}
        drawn: dict[tuple[str, int], str] = {}
        for s in sorted(sections, key=lambda s: s.start_bar):
            pattern = drawn.get((s.label, s.n_bars)) or _draw(f.phrases.get(s.n_bars, Counter()),
                                                              rng)
            if pattern is None:
                continue
            drawn[(s.label, s.n_bars)] = pattern
            out.update({s.start_bar + k: bit == "1" for k, bit in enumerate(pattern)})
        return out

    def final_chord(self, style: str | None, mode: str, rng: np.random.Generator
                    ) -> tuple[int, str, int] | None:
        """A chord the style's songs in `mode` end on: (root from the tonic, quality, bass
        from the tonic), drawn as often as they do; None when none were counted."""
        drawn = _draw(self.for_style(style).finals.get(mode, Counter()), rng)
        if drawn is None:
            return None
        root, quality, bass = drawn.split()
        return int(root), quality, int(bass)

    def song_length(self, style: str | None, rng: np.random.Generator) -> int | None:
        """A length in bars the style's songs have, drawn as often as they have it, at most
        `MAX_DRAWN_BARS` (a 400-bar quartet movement is asked for with `--bars`); None when
        none were counted."""
        drawn = _draw(self.for_style(style).song_bars, rng)
        return None if drawn is None else min(int(drawn), MAX_DRAWN_BARS)

    def continue_form(self, sections: Sequence[Section], n_bars: int, style: str | None,
                      rng: np.random.Generator, max_labels: int = MAX_LABELS
                      ) -> list[Section]:
        """Sections of `n_bars` more bars after the form `sections` (the bars after its end,
        numbered from its end), drawn as the form's next moves: they go back to its labels or
        bring new ones (letters it does not use), with no intro or outro. At most
        `max_labels` distinct labels in the whole form."""
        if n_bars < 1:
            raise ValueError(f"bars must be >= 1, got {n_bars}")
        f = self.for_style(style)
        sections = sorted(sections, key=lambda s: s.start_bar)
        start = sum(s.n_bars for s in sections)
        if not f.songs:
            return [Section(start, n_bars, sections[-1].label if sections else "A")]
        moves, used = _replay(sections)
        body_moves = [m for m in moves if m[0] not in ("i", "o")]
        prev = body_moves[-1][0] if body_moves else START
        last_length = {label: bars for move, bars, label in body_moves if move != "x"}
        letters = {s.label for s in sections} - {"i", "o"}
        body: list[tuple[str, int]] = []
        for _ in range(TRIES):
            body, forced = self._body(f, n_bars, rng, max_labels - len(letters) + len(used) - 1,
                                      prev, used, last_length, song_bars=start + n_bars)
            if not forced:
                break
        return _sections(body, start, taken={s.label for s in sections})

    def _body(self, f: StyleForms, n_bars: int, rng: np.random.Generator, max_letters: int,
              prev: str = START, used: Sequence[str] = (),
              last_length: dict[str, int] | None = None, song_bars: int | None = None
              ) -> tuple[list[tuple[str, int]], bool]:
        """Moves and lengths of exactly `n_bars` bars, and whether a length had to be drawn
        among those that fit (only lengths up to the bars left are ever drawn). `prev`, `used`
        (labels, most recent first) and `last_length` (of each label): the form so far, when
        the body continues one; at most `max_letters` labels in `used` in the end.
        `song_bars`: the whole song's bars, whose size class the lengths are drawn from."""
        lengths = f.lengths_for(song_bars)
        body: list[tuple[str, int]] = []
        total = 0
        used = list(used)  # move targets, most recent first; new ones "#0", "#1", ...
        last_length = dict(last_length or {})
        n_new = 0
        keep = f.keep_length[0] / f.keep_length[1] if f.keep_length[1] else 0.0
        forced = False

        def length(*counts: Counter) -> int:
            """A length from the first of `counts` that has one, among those that fit."""
            nonlocal forced
            left = n_bars - total
            for c in counts:
                bars = _draw(c, rng)
                if bars is None:
                    continue
                if bars > left:
                    forced = True
                    bars = _draw(c, rng, lambda b: b <= left) or left
                return bars
            forced = True
            return min(4, left)

        while total < n_bars:
            counts = f.moves.get(prev) or f.moves.get(START) or Counter({NEW: 1})

            def possible(move: str) -> bool:
                if move == SAME:
                    return bool(used)
                if move.startswith("back"):
                    return int(move[4:]) < len(used)
                return move == "x" or (move == NEW and len(used) < max_letters)

            move = _draw(counts, rng, possible) or (
                NEW if len(used) < max_letters or not used else f"back{len(used) - 1}")
            prev = move
            if move == "x":
                bars = length(lengths["x"])
                body.append(("x", bars))
                total += bars
                continue
            if move == NEW:
                label = f"#{n_new}"
                n_new += 1
                bars = length(lengths[NEW])
            else:
                label = used[0 if move == SAME else int(move[4:])]
                if label in last_length and rng.random() < keep and (
                        last_length[label] <= n_bars - total):
                    bars = last_length[label]
                else:
                    bars = length(lengths["repeat"], lengths[NEW])
                used.remove(label)
            used.insert(0, label)
            last_length[label] = bars
            body.append((label, bars))
            total += bars
        return body, forced


def _sections(moves: list[tuple[str, int]], start: int = 0, taken: set[str] = frozenset()
              ) -> list[Section]:
    """Sections from `(label or move, bars)` from bar `start`: working labels `#0`, `#1`, ...
    become letters in first-appearance order, skipping the `taken` ones."""
    names: dict[str, str] = {}
    letters = (name for name in section_labels() if name not in taken)
    out = []
    for label, bars in moves:
        if label.startswith("#"):
            if label not in names:
                names[label] = next(letters)
            label = names[label]
        out.append(Section(start, int(bars), label))
        start += int(bars)
    return out


def form_text(sections: Iterable[Section]) -> str:
    """`i4 A8 B8 ...`: the form string `--form` takes."""
    return " ".join(f"{s.label}{s.n_bars}" for s in sections)


def fit_forms(prepared: Sequence[str | Path], split: str = "train",
              progress: bool = True) -> FormModel:
    """The form model of the `split` songs with plans of the prepared corpora (each song
    under its style)."""
    from tqdm.auto import tqdm

    from structdiff.data.prepare import load_prepared

    model = FormModel()
    for folder in prepared:
        if not (Path(folder) / "manifest.json").is_file():
            raise ValueError(f"no prepared corpus at {folder}: run `structdiff prepare` first")
        for song in tqdm(load_prepared(folder, split), desc=f"forms of {folder}",
                         unit="song", disable=not progress):
            if song.plan is not None and song.plan.sections:
                model.add(song.style, song.plan.sections, song.plan.phrase_ends,
                          final_chord(song.plan))
    if not model.styles:
        raise ValueError(f"no {split} songs with forms in {', '.join(map(str, prepared))}")
    return model


def final_chord(plan) -> tuple[str, int, str, int] | None:
    """`(mode, root, quality, bass)` of the last chord of `plan` (not a no-chord), root and
    bass from its key's tonic; None without a key or chords."""
    chords = [c for c in plan.chords if c.quality != "N"]
    if plan.key is None or not chords:
        return None
    last, tonic = chords[-1], plan.key.tonic
    return plan.key.mode, (last.root - tonic) % 12, last.quality, (last.bass - tonic) % 12


def load_forms(folder: str | Path | None) -> FormModel | None:
    """The form model beside a planner's weights (`forms.json`), None when it has none;
    `BundleError` when it cannot be read."""
    from structdiff.models.bundle import SHIPPED_DIR, BundleError

    path = Path(folder or SHIPPED_DIR) / FORMS_FILE
    if not path.is_file():
        return None
    try:
        return FormModel.load(path)
    except ValueError as e:
        raise BundleError(str(e)) from None
