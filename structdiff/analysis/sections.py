"""Phrases and sections of a real song from bar-level self-similarity.

A song with a melody (a track of role `melody` that plays in most bars, as band and pop songs
have) is read as people label pop forms (`melody_sections`): spans where the melody rests are
sections of their own (intro, outro, interludes), the melody's spans are cut into phrases, and
phrases that repeat the melody share a label. Tuned on POP909's training split against its
human forms (`evaluation/sections_pop909.py`).

Other songs (chorales, quartets, any texture without such a melody) go through `segment`:

1. Bar features: which pitches start where in the bar (for literal repeats), the bar's
   pitch-class profile and its onset rhythm (for varied repeats).
2. Candidate boundaries: phrase ends (fermatas, rests in every part, a cadence onto the tonic
   on a long note), the starts and ends of repeated passages (diagonal stripes of the
   self-similarity matrix), and novelty peaks (Foote's checkerboard kernel) where the material
   changes.
3. Boundaries are taken strongest first, none closer than `min_bars` to another; each
   segment then takes the label of the most similar earlier segment when that similarity is
   high, else a new letter.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from structdiff.data.song import (
    DURATION,
    PITCH,
    START,
    Chord,
    Section,
    Song,
    Track,
    section_labels,
)


def bar_features(song: Song, n_positions: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bar: pitch-class profile `[L, 12]`, onset rhythm `[L, n_positions]` (both L2
    normalized; zero rows for empty bars) and which (step in bar, pitch) onsets it has
    `[L, U]` (bool; one column per distinct onset the song has)."""
    chroma, rhythm, bar_idx, kinds = _bar_profiles(song, n_positions)
    events = np.zeros((song.n_bars, 0), dtype=bool)
    if len(kinds):
        distinct, column = np.unique(kinds, return_inverse=True)
        events = np.zeros((song.n_bars, len(distinct)), dtype=bool)
        events[bar_idx, column] = True
    return chroma, rhythm, events


def _bar_profiles(song: Song, n_positions: int) -> tuple[np.ndarray, ...]:
    """`bar_features`' profiles, and each note's bar `[N]` and onset kind `[N]` (its step in
    the bar and pitch as one integer) from which it finds the bars' onsets."""
    L = song.n_bars
    chroma = np.zeros((L, 12))
    rhythm = np.zeros((L, n_positions))
    longest = int((song.bar_ends - song.bars).max()) if L else 1
    bar_idx = kinds = np.zeros(0, dtype=np.int64)
    notes = song.all_notes(sort=False)
    if len(notes):
        starts, durs, pitches = notes[:, START], notes[:, DURATION], notes[:, PITCH]
        bar_idx = song.bar_of(starts)
        lengths = song.bar_ends - song.bars
        # a bar is placed at its written end when it is a pickup (shorter than the next bar)
        full = np.maximum(lengths, np.append(lengths[1:], lengths[-1:]))
        offset = starts - song.bars[bar_idx] + (full[bar_idx] - lengths[bar_idx]) * (bar_idx == 0)
        pos = np.minimum(offset * n_positions // np.maximum(full[bar_idx], 1), n_positions - 1)
        # bincount adds in input order, as np.add.at does (the same sums, far faster)
        chroma = np.bincount(bar_idx * 12 + pitches % 12, weights=durs,
                             minlength=L * 12).reshape(L, 12)
        rhythm = np.bincount(bar_idx * n_positions + pos % n_positions, weights=np.ones(len(pos)),
                             minlength=L * n_positions).reshape(L, n_positions)
        kinds = (np.minimum(offset, longest - 1) * 128 + pitches).astype(np.int64)
    for m in (chroma, rhythm):
        norm = np.sqrt(np.add.reduce(m * m, axis=1, keepdims=True))  # np.linalg.norm's sum
        np.divide(m, norm, out=m, where=norm > 0)
    return chroma, rhythm, np.asarray(bar_idx, dtype=np.int64), kinds


def self_similarity(song: Song) -> np.ndarray:
    """Bar-level self-similarity `[L, L]` in [0, 1]: half literal (Jaccard of (position, pitch)
    onsets), a quarter pitch-class profile, a quarter rhythm."""
    from structdiff.analysis import kernels

    chroma, rhythm, bar_idx, kinds = _bar_profiles(song, 16)
    literal = kernels.onset_jaccard(bar_idx, kinds, song.n_bars)  # float32, as it always was
    # the products stay numpy's (BLAS): the sums and the clip are done as numpy did them
    return kernels.bar_similarity(literal, chroma @ chroma.T, rhythm @ rhythm.T)


def phrase_ends(song: Song, chords: list[Chord] | None = None) -> list[int]:
    """Bars on which a phrase ends: a fermata, a rest of a beat or more in every part, or
    (with chords) a dominant-to-tonic cadence arriving on the bar's last long chord."""
    ends: set[int] = set()
    for step in song.fermatas:
        ends.add(int(song.bar_of(max(step - 1, 0))))
    notes = song.all_notes(sort=False)
    if len(notes):
        sounding = (np.bincount(notes[:, START], minlength=song.end + 1)
                    - np.bincount(notes[:, START] + notes[:, DURATION], minlength=song.end + 1))
        silent = np.cumsum(sounding)[: song.end] == 0
        first, last = notes[:, START].min(), (notes[:, START] + notes[:, DURATION]).max()
        edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            if first < a and b < last and b - a >= song.beat_steps(int(a)):
                ends.add(int(song.bar_of(max(int(a) - 1, 0))))
    if chords:
        for prev, cur in zip(chords, chords[1:]):
            long_enough = cur.duration >= 2 * song.beat_steps(cur.onset)
            if (prev.root - cur.root) % 12 == 7 and cur.quality in ("maj", "min") and long_enough:
                ends.add(int(song.bar_of(cur.onset)))
    return sorted(e for e in ends if e < song.n_bars - 1)


def novelty(sim: np.ndarray, half: int = 2) -> np.ndarray:
    """Foote novelty `[L]`: checkerboard kernel of 2*half bars along the diagonal."""
    from structdiff.analysis import kernels

    return kernels.novelty(np.ascontiguousarray(sim, dtype=np.float64), int(half))


def repeat_boundaries(sim: np.ndarray, threshold: float = 0.8, min_run: int = 2) -> set[int]:
    """Starts and ends of repeated passages: runs of >= `min_run` similar bars along a diagonal.

    Runs longer than their lag, or whose bars are all alike (a bar repeated over and over, an
    ostinato), mark a uniform passage rather than two copies and give no boundaries."""
    from structdiff.analysis import kernels

    runs = kernels.repeat_runs(np.ascontiguousarray(sim, dtype=np.float64), float(threshold),
                               int(min_run))
    bounds: set[int] = set()
    for a, b, lag in runs.tolist():
        bounds |= {a, b, a + lag, b + lag}
    return bounds


# How much each kind of evidence counts when boundaries compete for the same place.
_STRENGTH = {"phrase": 3.0, "repeat": 2.0, "novelty": 1.0}


def segment(
    song: Song,
    chords: list[Chord] | None = None,
    min_bars: int | None = None,
    label_threshold: float = 0.7,
    novelty_threshold: float = 0.2,
) -> tuple[list[Section], list[int]]:
    """Sections (a label per bar; repeated material shares a label) and phrase-end bars.

    A song with a melody track that plays in at least `MIN_MELODY_SHARE` of its bars goes to
    `melody_sections` (its phrases end its sections) unless `min_bars` is given. Otherwise:
    `min_bars` (default: 2 below 32 bars, else 4 or more so that a movement gets at most ~24
    sections) is the shortest section, `4 * min_bars` the longest. Boundaries are taken
    strongest first (phrase ends, then repeats, then novelty peaks), each at least `min_bars`
    from those already taken; longer segments are split at their novelty maximum.
    """
    L = song.n_bars
    melody = melody_notes(song)
    melodic = melodic_bars(song, melody) if melody is not None and min_bars is None else None
    if melodic is not None and L and np.count_nonzero(melodic) / L >= MIN_MELODY_SHARE:
        sections = melody_sections(song, melody, melodic=melodic)
        return sections, [s.start_bar + s.n_bars - 1 for s in sections[:-1]]
    ends = phrase_ends(song, chords)
    if min_bars is None:
        min_bars = 2 if L < 32 else max(4, L // 24)
    max_bars = 4 * min_bars
    if L < 2 * min_bars:
        return [Section(0, L, "A")], ends
    sim = self_similarity(song)
    nov = novelty(sim, half=max(2, min_bars))
    candidates: dict[int, float] = {}

    def offer(bar: int, strength: float) -> None:
        if 0 < bar < L:
            candidates[bar] = max(candidates.get(bar, 0.0), strength)

    for e in ends:
        offer(e + 1, _STRENGTH["phrase"])
    for b in repeat_boundaries(sim, min_run=max(2, min_bars)):
        offer(b, _STRENGTH["repeat"])
    for i in range(1, L - 1):
        if nov[i] >= novelty_threshold and nov[i] >= nov[i - 1] and nov[i] >= nov[i + 1]:
            offer(i, _STRENGTH["novelty"] * (1 + nov[i]))
    chosen = [0, L]
    for bar, _ in sorted(candidates.items(), key=lambda kv: (-kv[1], kv[0])):
        if all(abs(bar - c) >= min_bars for c in chosen):
            chosen.append(bar)
    chosen.sort()
    # split what is still longer than max_bars where the material changes most
    i = 0
    while i < len(chosen) - 1:
        a, b = chosen[i], chosen[i + 1]
        if b - a > max_bars:
            inner = np.arange(a + min_bars, b - min_bars + 1)
            score = nov[inner] + 1e-3 * (inner % 4 == a % 4)  # ties: keep 4-bar phrasing
            chosen.insert(i + 1, int(inner[np.argmax(score)]))
        else:
            i += 1
    segments = list(zip(chosen[:-1], chosen[1:]))
    alike = _segment_similarities(sim, segments)
    labels: list[str] = []
    for i in range(len(segments)):
        best, best_sim = None, label_threshold
        for j in range(i):
            s = alike[i][j]
            if s >= best_sim:
                best, best_sim = labels[j], s
        labels.append(best or _new_label(labels))
    return [Section(a, b - a, lab) for (a, b), lab in zip(segments, labels)], ends


def melody_notes(song: Song) -> np.ndarray | None:
    """The notes `[N, 4]` of the song's `melody` tracks, None when it has none with notes."""
    parts = [t.notes for t in song.tracks if t.role == "melody" and t.n_notes]
    return np.concatenate(parts) if parts else None


# The melody path needs a melody that starts notes in at least this share of the bars: POP909's
# songs all have 0.57 or more (median 0.77); a game track whose "melody" plays in a quarter of
# its bars is better cut by the texture as a whole.
MIN_MELODY_SHARE = 0.5


def melodic_bars(song: Song, melody: np.ndarray) -> np.ndarray:
    """Per bar `[L]` bool: the melody `[N, 4]` starts a note in it."""
    bars = np.zeros(song.n_bars, dtype=bool)
    if len(melody):
        bars[song.bar_of(melody[:, START])] = True
    return bars


def melody_share(song: Song, melody: np.ndarray) -> float:
    """The share of the song's bars in which the melody `[N, 4]` starts a note."""
    return float(melodic_bars(song, melody).mean()) if song.n_bars else 0.0


# Lengths in bars of the melodic phrases of POP909's human forms (training split, both
# annotators): the prior of `melody_sections`' phrase cuts. 4 and 8 bars are three in four.
PHRASE_LENGTH_COUNTS = {1: 188, 2: 161, 3: 144, 4: 3096, 5: 337, 6: 197, 7: 103, 8: 4378,
                        9: 568, 10: 252, 11: 40, 12: 142, 13: 53, 14: 49, 15: 34, 16: 371}
MAX_PHRASE = max(PHRASE_LENGTH_COUNTS)


@functools.cache
def _phrase_costs() -> np.ndarray:
    """-log prior `[MAX_PHRASE + 1]` of a phrase of each length (index 0 unused; cached:
    read-only)."""
    counts = np.array([PHRASE_LENGTH_COUNTS.get(n, 0) for n in range(MAX_PHRASE + 1)], float)
    costs = -np.log((counts + 0.5) / counts[1:].sum())
    costs.flags.writeable = False
    return costs


def melody_silence(song: Song, melody: np.ndarray) -> np.ndarray:
    """Per bar b `[L]`: the longest rest of the melody from the middle of bar b - 1 to one
    beat into bar b, in units of two beats, at most 1 (0 for bar 0): where a phrase ends and
    the next one (often with a pickup) begins."""
    L = song.n_bars
    out = np.zeros(L)
    if L < 2:
        return out
    from structdiff.analysis import kernels

    starts = song.bars[1:].astype(np.int64)
    lo = starts - (starts - song.bars[:-1]) // 2
    beats = song.bar_meters()[0][1:]
    onsets = melody[:, START].astype(np.int64)
    longest = kernels.silent_runs(onsets, onsets + melody[:, DURATION], int(song.end), lo,
                                  starts + beats)
    out[1:] = np.minimum(longest / (2 * beats), 1.0)
    return out


def melody_sections(
    song: Song,
    melody: np.ndarray,
    min_rest_bars: int = 2,
    rest_weight: float = 1.0,
    repeat_weight: float = 2.0,
    label_threshold: float = 0.5,
    *,
    melodic: np.ndarray | None = None,
) -> list[Section]:
    """Sections of a song with a melody `[N, 4]` (notes), as people label pop forms: one per
    phrase (a verse of two like phrases is `A4 A4`, as POP909's human forms write it).
    `melodic` is `melodic_bars(song, melody)` where the caller has it already.

    1. Bars without a melody onset are rests; a run of at least `min_rest_bars` of them is a
       section of its own: `i` at the start, `o` at the end, `x` between (interludes).
    2. Each span of melody is cut into phrases by dynamic programming: a phrase's cost is the
       -log prior of its length (`PHRASE_LENGTH_COUNTS`), less `rest_weight` times the
       melody's rest at its start (`melody_silence`) and `repeat_weight` where a repeated
       passage of the melody starts or ends (`repeat_boundaries` of its self-similarity).
    3. A phrase takes the label of the most similar earlier phrase (melody only, aligned at
       their starts) when that similarity is at least `label_threshold`, else a new letter.
    4. Two labels that always follow each other (every X is followed by Y and every Y preceded
       by X) are one section, e.g. a chorus of two different 4-bar phrases.
    """
    L = song.n_bars
    if L == 0:
        return []
    if melodic is None:
        melodic = melodic_bars(song, melody)
    cuts = [0, *(np.flatnonzero(np.diff(melodic.astype(np.int8))) + 1).tolist(), L]
    runs = [[a, b, bool(melodic[a])] for a, b in zip(cuts[:-1], cuts[1:])]  # [start, end, melodic]
    for run in runs:  # a short rest inside the melody belongs to it
        if not run[2] and run[1] - run[0] < min_rest_bars and 0 < run[0] and run[1] < L:
            run[2] = True
    spans: list[list] = []
    for run in runs:
        if spans and spans[-1][2] == run[2]:
            spans[-1][1] = run[1]
        else:
            spans.append(list(run))

    from structdiff.analysis import kernels

    alone = replace(song, tracks=[Track("melody", 0, False, melody, role="melody")], plan=None)
    sim = self_similarity(alone)
    rests = melody_silence(song, melody).tolist()
    repeats = repeat_boundaries(sim, threshold=0.8, min_run=2)
    costs = _phrase_costs()
    segments: list[tuple[int, int, bool]] = []
    for a, e, is_melody in spans:
        if not is_melody:
            segments.append((a, e, False))
            continue
        n = e - a
        bonus = np.array([0.0] + [rest_weight * rests[a + i] + repeat_weight * ((a + i) in repeats)
                                  for i in range(1, n)] + [0.0])
        back = kernels.phrase_cuts(costs, bonus, n).tolist()
        cuts = [n]
        while cuts[-1] > 0:
            cuts.append(int(back[cuts[-1]]))
        cuts.reverse()
        segments += [(a + x, a + y, True) for x, y in zip(cuts[:-1], cuts[1:])]

    labels: list[str] = []
    fresh = (f"M{k}" for k in range(10 * L + 1))  # working names, renamed below
    alike = _segment_similarities(sim, [(a, b) for a, b, _ in segments])
    for k, (a, b, is_melody) in enumerate(segments):
        if not is_melody:
            labels.append("i" if a == 0 else "o" if b == L else "x")
            continue
        name, best_sim = None, label_threshold
        for j in range(k):
            if segments[j][2]:
                s = alike[k][j]
                if s >= best_sim:
                    name, best_sim = labels[j], s
        labels.append(name or next(fresh))
    merged = _merge_companions([(a, b, lab) for (a, b, _), lab in zip(segments, labels)])
    letters = section_labels()
    names: dict[str, str] = {}
    for _, _, lab in merged:
        if lab.startswith("M") and lab not in names:
            names[lab] = next(letters)
    return [Section(a, b - a, names.get(lab, lab)) for a, b, lab in merged]


def _merge_companions(segments: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Join two melodic labels that always come as a pair (step 4 of `melody_sections`)."""
    while True:
        seq = [lab for _, _, lab in segments]
        pair = None
        for x in dict.fromkeys(seq):
            if not x.startswith("M"):
                continue
            after = {seq[k + 1] if k + 1 < len(seq) else None
                     for k, lab in enumerate(seq) if lab == x}
            y = next(iter(after)) if len(after) == 1 else None
            if y is None or y == x or not y.startswith("M"):
                continue
            if all(k > 0 and seq[k - 1] == x for k, lab in enumerate(seq) if lab == y):
                pair = (x, y)
                break
        if pair is None:
            return segments
        joined, k = [], 0
        while k < len(segments):
            a, b, lab = segments[k]
            if lab == pair[0]:
                joined.append((a, segments[k + 1][1], lab))
                k += 2
            else:
                joined.append(segments[k])
                k += 1
        segments = joined


def _segment_similarities(sim: np.ndarray, segments: list[tuple[int, int]]) -> list[list[float]]:
    """Entry [i][j], j < i: the mean bar-to-bar similarity of segment i `[a, b)` against
    segment j, aligned at their starts, scaled down by their length ratio."""
    from structdiff.analysis import kernels

    bounds = np.asarray(segments, dtype=np.int64).reshape(-1, 2)
    return kernels.segment_similarities(np.ascontiguousarray(sim, dtype=np.float64),
                                        bounds[:, 0].copy(), bounds[:, 1].copy()).tolist()


def _new_label(labels: list[str]) -> str:
    """The first label of `section_labels()` not used yet."""
    used = set(labels)
    return next(name for name in section_labels() if name not in used)


def labels_per_bar(sections: list[Section]) -> list[str]:
    return [s.label for s in sections for _ in range(s.n_bars)]
