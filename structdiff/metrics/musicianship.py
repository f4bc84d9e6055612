"""Real or generated? Music-theory features of 4-bar windows and a classifier two-sample test.

A musician hears at once what distribution metrics miss: hollow chords, parallel octaves,
lines that leap without recovering, a bass that repeats instead of walking. `window_features`
describes every 4-bar window of a song by measures a music theorist would name, none of them
metadata (no velocity, program, tempo, track name or absolute key):

- texture: incomplete chords, seventh chords, bare two-note sonorities, neighbouring parts on
  one pitch, voice crossing, a part that falls silent mid-line while the others go on;
- voice leading: parallel fifths and octaves between parts, direct fifths and octaves in the
  outer parts;
- lines: steps, repeated notes, leaps turned back, the bass's steps and repeats;
- dissonance: notes off the chord, and how many of them are approached and left by step
  (passing and neighbour tones);
- rhythm: the shares of sixteenths, eighths, quarters and longer notes, onsets per beat and
  off the beat;
- band texture: the bass on the chord's root, comping voicings, kick, snare and hi-hat hits
  per bar, the backbeat, a bar's drum pattern against the next.

`two_sample_test` asks a classifier to tell the windows of two sets apart, with song-grouped
cross-validation (no song in both training and test folds), a shuffled-label control, balanced
accuracy and AUC with bootstrap intervals over songs, and the most telling features in words.
Two classifiers of different make run: a logistic regression on standardized features (its
coefficients say which features tell) and gradient-boosted trees (which find what a linear
rule misses). A set indistinguishable from real scores near 0.5 on both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from structdiff.data.drums import HIHAT_CLASSES, KICK, SNARE, drum_class
from structdiff.data.song import DURATION, PITCH, START, Plan, Song

WINDOW_BARS = 4
SEVENTHS = ((0, 4, 7, 10), (0, 4, 7, 11), (0, 3, 7, 10), (0, 3, 6, 10), (0, 3, 6, 9))
LEAP = 5  # semitones: a fourth or more

# name -> what it measures, in words (the report says the telling ones this way)
FEATURES: dict[str, str] = {
    "thin_chords": "sonorities of three or more parts with fewer than 3 pitch classes",
    "seventh_chords": "sonorities that hold a seventh chord",
    "bare_dyads": "sonorities of two or more parts with only 2 pitch classes",
    "shared_pitch": "neighbouring parts on the same pitch",
    "voice_crossing": "an upper part below the part under it",
    "silent_gaps": "a part silent inside its line while two others sound",
    "parallel_fifths": "parallel fifths between two parts",
    "parallel_octaves": "parallel octaves or unisons between two parts",
    "direct_outer": "direct fifths or octaves in the outer parts (upper part leaping)",
    "step_motion": "melodic steps (1-2 semitones) among a part's intervals",
    "repeated_notes": "repeated notes among a part's intervals",
    "leap_recovery": "leaps followed by motion the other way",
    "bass_steps": "steps among the bass's intervals",
    "bass_repeats": "repeated notes in the bass",
    "off_chord": "notes struck off the chord sounding",
    "passing_neighbour": "off-chord notes approached and left by step",
    "sixteenths": "sixteenth-note durations",
    "eighths": "eighth-note durations",
    "quarters": "quarter-note durations",
    "long_notes": "durations of a half note or more",
    "onsets_per_beat": "note onsets per beat per part",
    "off_beat": "onsets off the beat",
    "pitch_class_entropy": "pitch-class entropy (bits)",
    "bass_on_root": "bass notes on the chord's root",
    "voicing_size": "notes struck together in a chordal part",
    "kick_per_bar": "kick hits per bar",
    "snare_per_bar": "snare hits per bar",
    "hihat_per_bar": "hi-hat hits per bar",
    "backbeat": "snare hits on beats 2 and 4",
    "drum_bar_repeat": "a bar's drum pattern repeated in the next",
}
FEATURE_NAMES = tuple(FEATURES)


def window_features(song: Song, plan: Plan | None = None) -> np.ndarray:
    """Features `[W, F]` (F = len(FEATURE_NAMES), column order `FEATURE_NAMES`) of the song's
    windows of `WINDOW_BARS` bars that hold notes; `nan` where a feature has nothing to count
    (no drums, one part). `plan` gives the chords (default: the song's own plan)."""
    plan = plan if plan is not None else song.plan
    parts = _parts(song)
    rows = []
    for w in range(0, song.n_bars, WINDOW_BARS):
        lo = int(song.bars[w])
        hi = int(song.bars[w + WINDOW_BARS]) if w + WINDOW_BARS < song.n_bars else int(song.end)
        if hi <= lo:
            continue
        row = _window(song, parts, plan, lo, hi, w)
        if row is not None:
            rows.append(row)
    return np.array(rows, dtype=float).reshape(-1, len(FEATURE_NAMES))


ROLE_FEATURES = ("step_motion", "repeated_notes", "leap_recovery")


def named_metrics(song: Song, windows: np.ndarray) -> dict[str, float]:
    """The features as named song metrics: each one's mean over the song's `windows` (`[W,
    F]`, from `window_features`; features with nothing to count in any window left out), and
    `ROLE_FEATURES` per role, `NAME/ROLE`, over the whole part (monophonic parts only)."""
    out = {}
    for i, name in enumerate(FEATURE_NAMES):
        column = windows[:, i] if len(windows) else np.zeros(0)
        if np.any(~np.isnan(column)):
            out[name] = float(np.nanmean(column))
    for role in dict.fromkeys(t.role for t in song.tracks if t.role and not t.is_drum):
        notes = [t.notes for t in song.tracks if t.role == role and not t.is_drum and t.n_notes]
        if not notes:
            continue
        n = np.concatenate(notes)
        if _chordal(n):  # no line to follow
            continue
        total, steps, repeats, leaps, recovered = _line_counts(n).tolist()
        for name, value in zip(ROLE_FEATURES, (_share(steps, total), _share(repeats, total),
                                               _share(recovered, leaps))):
            if not math.isnan(value):
                out[f"{name}/{role}"] = value
    return out


@dataclass
class _Part:
    notes: np.ndarray  # [N, 4], sorted by start
    line: np.ndarray  # [T] the highest pitch sounding at each step, -1 for none
    chordal: bool  # more than one note at once, often


def _parts(song: Song) -> list[_Part]:
    """The pitched tracks, highest first by mean pitch (the order voices are read in)."""
    T = int(song.end)
    out = []
    for t in song.tracks:
        if t.is_drum or not t.n_notes:
            continue
        notes = t.notes[np.lexsort((-t.notes[:, PITCH], t.notes[:, START]))]
        line = np.full(T + 1, -1, dtype=np.int64)
        for s, d, p, _ in notes[np.argsort(notes[:, PITCH], kind="stable")].tolist():
            line[s : min(s + max(d, 1), T)] = np.maximum(line[s : min(s + max(d, 1), T)], p)
        out.append(_Part(notes, line[:T], _chordal(notes)))
    out.sort(key=lambda p: -float(p.notes[:, PITCH].mean()))
    return out


def _chordal(notes: np.ndarray) -> bool:
    """More than one note struck at once at over 30% of a part's onsets."""
    starts, counts = np.unique(notes[:, START], return_counts=True)
    return bool(len(starts)) and float(np.mean(counts > 1)) > 0.3


def _share(hits: float, total: float) -> float:
    return hits / total if total else math.nan


def _window(song: Song, parts: list[_Part], plan: Plan | None, lo: int, hi: int,
            first_bar: int) -> list[float] | None:
    f = dict.fromkeys(FEATURE_NAMES, math.nan)
    inside = [p.notes[(p.notes[:, START] >= lo) & (p.notes[:, START] < hi)] for p in parts]
    drums = [t.notes[(t.notes[:, START] >= lo) & (t.notes[:, START] < hi)]
             for t in song.tracks if t.is_drum and t.n_notes]
    drum_notes = np.concatenate(drums) if drums else np.zeros((0, 4), np.int64)
    if not sum(len(n) for n in inside) and not len(drum_notes):
        return None
    beat = song.beat_steps(lo)
    n_bars = max(1, int(np.searchsorted(song.bars, hi) - first_bar))

    if inside and sum(len(n) for n in inside):
        _texture(f, parts, inside, lo, hi)
        _lines(f, parts, inside)
        _rhythm(f, inside, beat, lo, hi)
        _harmony(f, parts, inside, plan, lo, hi)
    if len(drum_notes):
        _drums(f, drum_notes, song, lo, hi, beat, n_bars, first_bar)
    return [f[name] for name in FEATURE_NAMES]


def _texture(f: dict, parts: list[_Part], inside: list[np.ndarray], lo: int, hi: int) -> None:
    lines = np.stack([p.line[lo:hi] for p in parts])  # [K, T]
    onset = np.zeros(hi - lo, dtype=bool)
    for n in inside:
        onset[n[:, START] - lo] = True
    steps = np.flatnonzero(onset)
    sounding_all = [_sounding(parts, lo + t) for t in steps]
    n_parts = np.array([(lines[:, t] >= 0).sum() for t in steps])
    pcs = np.array([len({p % 12 for p in s}) for s in sounding_all])
    three = n_parts >= 3
    f["thin_chords"] = _share(float((pcs[three] < 3).sum()), float(three.sum()))
    full = pcs >= 3
    sevenths = sum(1 for s, ok in zip(sounding_all, full) if ok and _has_seventh(s))
    f["seventh_chords"] = _share(sevenths, float(full.sum()))
    two = n_parts >= 2
    f["bare_dyads"] = _share(float((pcs[two] == 2).sum()), float(two.sum()))
    if len(parts) >= 2:
        upper, lower = lines[:-1], lines[1:]
        both = (upper >= 0) & (lower >= 0)
        f["shared_pitch"] = _share(float(((upper == lower) & both).sum()), float(both.sum()))
        f["voice_crossing"] = _share(float(((upper < lower) & both).sum()), float(both.sum()))
        _parallels(f, lines, onset)
    _gaps(f, lines)


def _gaps(f: dict, lines: np.ndarray) -> None:
    """Steps where a part is silent between its first and last sounding step of the window
    while at least two other parts sound, among the steps inside those spans."""
    on = lines >= 0  # [K, T]
    gaps = inside = 0
    for k in range(len(lines)):
        steps = np.flatnonzero(on[k])
        if len(steps) < 2:
            continue
        span = slice(int(steps[0]), int(steps[-1]) + 1)
        others = on[:, span].sum(axis=0) - on[k, span]
        inside += int(steps[-1] - steps[0] + 1)
        gaps += int((~on[k, span] & (others >= 2)).sum())
    f["silent_gaps"] = _share(gaps, inside)


def _sounding(parts: list[_Part], step: int) -> list[int]:
    out = []
    for p in parts:
        n = p.notes
        on = (n[:, START] <= step) & (n[:, START] + np.maximum(n[:, DURATION], 1) > step)
        out.extend(n[on, PITCH].tolist())
    return out


def _has_seventh(pitches: list[int]) -> bool:
    pcs = {p % 12 for p in pitches}
    return any({(r + i) % 12 for i in shape} <= pcs for r in pcs for shape in SEVENTHS)


def _parallels(f: dict, lines: np.ndarray, onset: np.ndarray) -> None:
    """Parallel and direct perfect intervals between the parts' top lines, from one onset
    step to the next where both parts sound at both."""
    steps = np.flatnonzero(onset)
    K = len(lines)
    fifths = octaves = motions = 0
    direct = outer = 0
    for a, b in zip(steps[:-1], steps[1:]):
        for i in range(K):
            for j in range(i + 1, K):
                p0, q0, p1, q1 = lines[i, a], lines[j, a], lines[i, b], lines[j, b]
                if min(p0, q0, p1, q1) < 0 or (p0 == p1 and q0 == q1):
                    continue
                motions += 1
                same = (p1 - p0) * (q1 - q0) > 0
                before, after = (p0 - q0) % 12, (p1 - q1) % 12
                if same and before == after == 7:
                    fifths += 1
                if same and before == after == 0:
                    octaves += 1
                if i == 0 and j == K - 1:
                    outer += 1
                    if same and after in (0, 7) and before != after and abs(p1 - p0) > 2:
                        direct += 1
    f["parallel_fifths"] = _share(fifths, motions)
    f["parallel_octaves"] = _share(octaves, motions)
    f["direct_outer"] = _share(direct, outer)


def _line_counts(notes: np.ndarray) -> np.ndarray:
    """Intervals, steps, repeats, leaps and leaps turned back `[5]` of a part's top line."""
    if len(notes) < 2:
        return np.zeros(5, dtype=np.int64)
    iv = np.diff(_onset_notes(notes)[:, PITCH].astype(np.int64))
    leap = np.abs(iv[:-1]) >= LEAP
    back = iv[:-1] * iv[1:] < 0
    return np.array([len(iv), int(((np.abs(iv) >= 1) & (np.abs(iv) <= 2)).sum()),
                     int((iv == 0).sum()), int(leap.sum()), int((leap & back).sum())])


def _lines(f: dict, parts: list[_Part], inside: list[np.ndarray]) -> None:
    total, steps, repeats, leaps, recovered = sum(
        (_line_counts(n) for p, n in zip(parts, inside) if not p.chordal),
        np.zeros(5, dtype=np.int64)).tolist()
    f["step_motion"] = _share(steps, total)
    f["repeated_notes"] = _share(repeats, total)
    f["leap_recovery"] = _share(recovered, leaps)
    bass = inside[-1] if inside else None
    if bass is not None and len(bass) >= 2:
        iv = np.diff(_onset_notes(bass, highest=not parts[-1].chordal)[:, PITCH]
                     .astype(np.int64))
        f["bass_steps"] = _share(float(((np.abs(iv) >= 1) & (np.abs(iv) <= 2)).sum()), len(iv))
        f["bass_repeats"] = _share(float((iv == 0).sum()), len(iv))


def _onset_notes(n: np.ndarray, highest: bool = True) -> np.ndarray:
    """One note `[M, 4]` per onset step of notes `n`, in time order: the highest (or lowest)
    struck there."""
    n = n[np.lexsort((-n[:, PITCH] if highest else n[:, PITCH], n[:, START]))]
    return n[np.r_[True, n[1:, START] != n[:-1, START]]]


def _rhythm(f: dict, inside: list[np.ndarray], beat: int, lo: int, hi: int) -> None:
    notes = np.concatenate([n for n in inside if len(n)])
    d = notes[:, DURATION]
    unit = max(beat // 4, 1)  # a sixteenth in 4/4
    f["sixteenths"] = float(np.mean(d <= unit))
    f["eighths"] = float(np.mean((d > unit) & (d <= 2 * unit)))
    f["quarters"] = float(np.mean((d > 2 * unit) & (d <= 4 * unit)))
    f["long_notes"] = float(np.mean(d >= 8 * unit))
    active = sum(1 for n in inside if len(n))
    onsets = sum(len(np.unique(n[:, START])) for n in inside if len(n))
    f["onsets_per_beat"] = onsets / (active * (hi - lo) / beat)
    f["off_beat"] = float(np.mean((notes[:, START] - lo) % beat != 0))
    counts = np.bincount(notes[:, PITCH] % 12, minlength=12).astype(float)
    p = counts / counts.sum()
    f["pitch_class_entropy"] = float(-(p[p > 0] * np.log2(p[p > 0])).sum())


def _harmony(f: dict, parts: list[_Part], inside: list[np.ndarray], plan: Plan | None, lo: int,
             hi: int) -> None:
    if plan is None or not plan.chords:
        return
    from structdiff.analysis.chords import CHORD_TONES, QUALITIES

    chords = [c for c in plan.chords if c.onset < hi and c.onset + c.duration > lo
              and c.quality != "N"]
    if not chords:
        return
    starts = np.array([c.onset for c in chords])

    def chord_at(step: int):
        i = int(np.searchsorted(starts, step, side="right")) - 1
        c = chords[max(i, 0)]
        return c if c.onset <= step < c.onset + c.duration else None

    off = approached = 0
    struck = 0
    for p, n in zip(parts, inside):
        if not len(n):
            continue
        top = n[np.lexsort((-n[:, PITCH], n[:, START]))]
        pitches = top[:, PITCH].tolist()
        for k, (s, _, pitch, _) in enumerate(top.tolist()):
            c = chord_at(s)
            if c is None:
                continue
            struck += 1
            if CHORD_TONES[QUALITIES.index(c.quality), c.root][pitch % 12]:
                continue
            off += 1
            if 0 < k < len(pitches) - 1 and not p.chordal:
                if 1 <= abs(pitch - pitches[k - 1]) <= 2 and 1 <= abs(pitches[k + 1] - pitch) <= 2:
                    approached += 1
    f["off_chord"] = _share(off, struck)
    f["passing_neighbour"] = _share(approached, off)
    bass = inside[-1]
    if len(bass) and len(parts) >= 2:
        lowest = _onset_notes(bass, highest=False).tolist()
        roots = [(c.root, pitch % 12) for s, _, pitch, _ in lowest
                 if (c := chord_at(s)) is not None]
        f["bass_on_root"] = _share(sum(r == q for r, q in roots), len(roots))
    chordal = [n for p, n in zip(parts, inside) if p.chordal and len(n)]
    if chordal:
        sizes = np.concatenate([np.unique(n[:, START], return_counts=True)[1] for n in chordal])
        f["voicing_size"] = float(sizes.mean())


def _drums(f: dict, notes: np.ndarray, song: Song, lo: int, hi: int, beat: int, n_bars: int,
           first_bar: int) -> None:
    keys = notes[:, PITCH]
    classes = drum_class(np.clip(keys, 0, 127))
    kick, snare = classes == KICK, classes == SNARE
    hihat = np.isin(classes, HIHAT_CLASSES)
    f["kick_per_bar"] = float(kick.sum()) / n_bars
    f["snare_per_bar"] = float(snare.sum()) / n_bars
    f["hihat_per_bar"] = float(hihat.sum()) / n_bars
    bar_of = np.searchsorted(song.bars, notes[:, START], side="right") - 1
    in_bar = notes[:, START] - song.bars[bar_of]
    beat_index = in_bar // beat
    on_beat = in_bar % beat == 0
    f["backbeat"] = _share(float((snare & on_beat & np.isin(beat_index, (1, 3))).sum()),
                           float(snare.sum()))
    patterns = []
    for b in range(first_bar, first_bar + n_bars):
        sel = bar_of == b
        patterns.append(frozenset(zip(in_bar[sel].tolist(), keys[sel].tolist())))
    pairs = [(a, b) for a, b in zip(patterns[:-1], patterns[1:]) if a or b]
    f["drum_bar_repeat"] = _share(sum(a == b for a, b in pairs), len(pairs))


# -- the test --------------------------------------------------------------------------------


def two_sample_test(real: list[np.ndarray], generated: list[np.ndarray], folds: int = 5,
                    seed: int = 0, n_boot: int = 1000) -> dict:
    """Can a classifier tell `generated` windows from `real` ones? Each list holds one
    `[W, F]` array per song. Returns, per classifier ("logistic", "trees"): out-of-fold
    balanced accuracy and AUC with 95% bootstrap intervals over songs; the same with the
    songs' labels shuffled ("shuffled"); and the most telling features ("telling": name,
    words, real and generated means, direction). Raises ValueError when a set has fewer than
    two songs with windows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    real = [r for r in real if len(r)]
    generated = [g for g in generated if len(g)]
    if len(real) < 2 or len(generated) < 2:
        raise ValueError(f"the classifier test needs at least 2 songs with notes in each set, "
                         f"got {len(real)} real and {len(generated)} generated")
    X = np.concatenate(real + generated)
    song_label = np.array([0] * len(real) + [1] * len(generated))
    groups = np.concatenate([np.full(len(a), i) for i, a in enumerate(real + generated)])
    y = song_label[groups]
    usable = ~np.all(np.isnan(X), axis=0)
    X = X[:, usable]
    names = [n for n, ok in zip(FEATURE_NAMES, usable) if ok]
    k = int(min(folds, len(real), len(generated)))

    def logistic():
        return make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(),
                             LogisticRegression(C=0.5, max_iter=5000, class_weight="balanced"))

    def trees():
        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05,
                                              class_weight="balanced", random_state=seed)

    rng = np.random.default_rng(seed)
    out: dict = {"n_real_songs": len(real), "n_generated_songs": len(generated),
                 "n_real_windows": int((y == 0).sum()),
                 "n_generated_windows": int((y == 1).sum()), "folds": k}
    for name, make in (("logistic", logistic), ("trees", trees)):
        p = _out_of_fold(make, X, y, groups, song_label, k, seed)
        out[name] = _scores(y, p, groups, rng, n_boot)
    shuffled = rng.permutation(song_label)
    p = _out_of_fold(logistic, X, shuffled[groups], groups, shuffled, k, seed)
    out["shuffled"] = _scores(shuffled[groups], p, groups, rng, n_boot)
    out["telling"] = _telling(logistic().fit(X, y), X, y, names)
    out["means"] = {n: {"reference": _nanmean(X[y == 0, i]), "generated": _nanmean(X[y == 1, i])}
                    for i, n in enumerate(names)}
    return out


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else math.nan


def _out_of_fold(make, X, y, groups, song_label, k, seed) -> np.ndarray:
    from sklearn.model_selection import StratifiedGroupKFold

    p = np.zeros(len(y))
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for train, test in splitter.split(X, y, groups):
        model = make().fit(X[train], y[train])
        p[test] = model.predict_proba(X[test])[:, 1]
    return p


def _scores(y: np.ndarray, p: np.ndarray, groups: np.ndarray, rng, n_boot: int) -> dict:
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    def both(idx):
        yy, pp = y[idx], p[idx]
        if len(np.unique(yy)) < 2:
            return math.nan, math.nan
        return balanced_accuracy_score(yy, pp >= 0.5), roc_auc_score(yy, pp)

    acc, auc = both(np.arange(len(y)))
    songs = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in songs}
    boot = []
    for _ in range(n_boot):
        pick = rng.choice(songs, len(songs), replace=True)
        boot.append(both(np.concatenate([members[g] for g in pick])))
    boot = np.array(boot)
    lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    return {"balanced_accuracy": float(acc), "auc": float(auc),
            "balanced_accuracy_ci": [float(lo[0]), float(hi[0])],
            "auc_ci": [float(lo[1]), float(hi[1])]}


def _telling(model, X: np.ndarray, y: np.ndarray, names: list[str], top: int = 6) -> list[dict]:
    coef = model[-1].coef_[0]
    order = np.argsort(-np.abs(coef))[:top]
    out = []
    for i in order:
        real = float(np.nanmean(X[y == 0, i])) if np.any(~np.isnan(X[y == 0, i])) else math.nan
        gen = float(np.nanmean(X[y == 1, i])) if np.any(~np.isnan(X[y == 1, i])) else math.nan
        out.append({"feature": names[i], "words": FEATURES[names[i]], "weight": float(coef[i]),
                    "real": real, "generated": gen,
                    "direction": "more" if coef[i] > 0 else "fewer"})
    return out


TEST_TITLE = "Real or generated? A classifier two-sample test"


def classifier_markdown(result: dict, title: str = TEST_TITLE, means: bool = True) -> str:
    """The test's section of `report.md` (with `means`, every measure's mean per set)."""
    def row(name, label):
        r = result[name]
        return (f"| {label} | {r['balanced_accuracy']:.2f} "
                f"[{r['balanced_accuracy_ci'][0]:.2f}, {r['balanced_accuracy_ci'][1]:.2f}] | "
                f"{r['auc']:.2f} [{r['auc_ci'][0]:.2f}, {r['auc_ci'][1]:.2f}] |")

    lines = [f"## {title}", "",
             f"{result['n_generated_windows']} generated windows ({result['n_generated_songs']} "
             f"songs) against {result['n_real_windows']} reference windows "
             f"({result['n_real_songs']} songs), {WINDOW_BARS} bars each; {result['folds']}-fold "
             "cross-validation grouped by song; 95% intervals from 1,000 bootstraps over "
             "songs. 0.5 is chance: the closer, the less the sets can be told apart.", "",
             "| classifier | balanced accuracy | AUC |", "|---|---|---|",
             row("logistic", "logistic regression"), row("trees", "gradient-boosted trees"),
             row("shuffled", "control: shuffled song labels"), "",
             "What tells them apart most (logistic regression, standardized weights):", ""]
    for t in result["telling"]:
        lines.append(f"- {t['words']}: generated {t['generated']:.2f}, reference "
                     f"{t['real']:.2f} (`{t['feature']}`)")
    if means and result.get("means"):
        lines += ["", "Every measure, its mean over the windows:", "",
                  "| measure | reference | generated |", "|---|---:|---:|"]
        for name, m in result["means"].items():
            lines.append(f"| {FEATURES[name]} (`{name}`) | {m['reference']:.3f} | "
                         f"{m['generated']:.3f} |")
    return "\n".join(lines) + "\n"
