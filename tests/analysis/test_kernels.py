"""The compiled analysis loops (`structdiff.analysis.kernels`) against plain numpy references.

The references below are the numpy code each kernel replaced (kept here, not in the package):
the kernels must give the same results bit for bit where the docstrings say so, on random
inputs that include the awkward cases (empty segments, -inf scores, notes past the end).
"""

from __future__ import annotations

import numpy as np
import pytest

from structdiff.analysis import kernels
from structdiff.analysis.chords import (
    _N_STATE,
    _N_TONES,
    _RECOGNIZED,
    _TONES,
    QUALITY_INTERVALS,
    chord_name,
    recognize_chords,
)
from structdiff.data.io import read_song


def viterbi_reference(emissions: np.ndarray, change_penalty: float) -> np.ndarray:
    n_segments, n_states = emissions.shape
    back = np.zeros((n_segments, n_states), dtype=np.int64)
    states = np.arange(n_states)
    score = emissions[0].copy()
    for s in range(1, n_segments):
        best = int(np.argmax(score))
        switch = score[best] - change_penalty
        stay = score >= switch
        back[s] = np.where(stay, states, best)
        score = np.where(stay, score, switch) + emissions[s]
    path = np.empty(n_segments, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for s in range(n_segments - 1, 0, -1):
        path[s - 1] = back[s, path[s]]
    return path


def pitch_class_segments_reference(starts, ends, pitches, weight, bounds):
    n_steps = int(bounds[-1])
    counts = np.zeros((n_steps + 1, 128), dtype=np.int32)
    np.add.at(counts, (starts, pitches), 1)
    np.add.at(counts, (ends, pitches), -1)
    sounding = np.cumsum(counts, axis=0)[:n_steps] > 0
    pc = pitches % 12
    active = np.zeros((n_steps + 1, 12))
    np.add.at(active, (starts, pc), weight)
    np.add.at(active, (ends, pc), -weight)
    pc_sounding = np.pad(sounding, ((0, 0), (0, 4))).reshape(n_steps, 11, 12).any(axis=1)
    pcs = np.where(pc_sounding, np.cumsum(active, axis=0)[:n_steps], 0.0)
    has_note = sounding.any(axis=1)
    bass = np.zeros((n_steps, 12))
    bass[np.flatnonzero(has_note), np.argmax(sounding, axis=1)[has_note] % 12] = 1.0

    def per_segment(x):
        total = np.concatenate([np.zeros((1, 12)), np.cumsum(x, axis=0)])
        return total[bounds[1:]] - total[bounds[:-1]]

    return per_segment(pcs), per_segment(bass)


@pytest.mark.parametrize("seed", range(40))
def test_viterbi_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    n_segments, n_states = int(rng.integers(1, 60)), int(rng.integers(1, 30))
    emissions = rng.normal(size=(n_segments, n_states)).round(int(rng.integers(0, 3)))  # ties
    emissions[rng.random(emissions.shape) < 0.2] = -np.inf
    penalty = float(rng.choice([0.0, 0.15, 1.0]))
    assert np.array_equal(kernels.viterbi(emissions, penalty),
                          viterbi_reference(emissions, penalty))


def test_viterbi_keeps_a_chord_through_a_passing_blip():
    # state 0 wins every segment but one by less than the change penalty: the path stays
    emissions = np.array([[1.0, 0.0], [1.0, 0.0], [0.9, 1.0], [1.0, 0.0]])
    assert kernels.viterbi(emissions, 0.5).tolist() == [0, 0, 0, 0]
    assert kernels.viterbi(emissions, 0.0).tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize("seed", range(40))
def test_pitch_class_segments_match_numpy_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n_steps = int(rng.integers(1, 200))
    n_notes = int(rng.integers(0, 80))
    starts = rng.integers(0, n_steps + 1, n_notes)
    ends = np.minimum(starts + rng.integers(0, 40, n_notes), n_steps)
    pitches = rng.integers(0, 128, n_notes)
    weight = rng.choice([1.0, 0.1, 0.35], n_notes)
    inner = np.sort(rng.integers(0, n_steps + 1, int(rng.integers(0, 12))))
    bounds = np.concatenate([[0], inner, [n_steps]]).astype(np.int64)  # some segments empty
    got = kernels.pitch_class_segments(starts, ends, pitches, weight, bounds)
    want = pitch_class_segments_reference(starts, ends, pitches, weight, bounds)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)


def test_pairwise_sum_is_numpys_sum():
    rng = np.random.default_rng(0)
    for n in [*range(1, 300), 1000, 4099]:
        x = rng.random(n) * 10.0 ** rng.integers(-3, 6)
        assert kernels._pairwise_sum(x, n) == np.sum(x)
        assert kernels._pairwise_sum(x, n) / n == x.mean()


def test_segment_similarities_match_the_mean_of_the_aligned_diagonal():
    rng = np.random.default_rng(1)
    sim = rng.random((40, 40))
    segments = [(0, 4), (4, 12), (12, 16), (16, 30), (30, 40)]
    got = kernels.segment_similarities(sim, np.array([a for a, _ in segments]),
                                       np.array([b for _, b in segments]))
    for i, (a, b) in enumerate(segments):
        for j, (c, d) in enumerate(segments):
            n = min(b - a, d - c)
            want = float(sim[np.arange(a, a + n), np.arange(c, c + n)].mean()) * n / max(
                b - a, d - c) if j < i else 0.0
            assert got[i, j] == want


def test_longest_runs_follow_python_slices():
    flags = np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 1], dtype=bool)
    lo = np.array([0, 2, 4, 8, -3, 9, 5])
    hi = np.array([10, 5, 6, 20, 10, 9, 3])
    want = []
    for a, b in zip(lo.tolist(), hi.tolist()):
        runs = "".join("1" if f else "0" for f in flags[a:b]).split("0")
        want.append(max((len(r) for r in runs), default=0))
    assert kernels.longest_runs(flags, lo, hi).tolist() == want


def novelty_reference(sim, half):
    out = np.zeros(len(sim))
    for i in range(half, len(sim) - half + 1):
        past, future = sim[i - half: i, i - half: i], sim[i: i + half, i: i + half]
        cross = sim[i - half: i, i: i + half]
        out[i] = (past.mean() + future.mean()) / 2 - cross.mean()
    return out


def repeat_reference(sim, threshold, min_run):
    bounds = set()
    for lag in range(1, len(sim)):
        diag = np.diagonal(sim, offset=lag) >= threshold
        edges = np.flatnonzero(np.diff(np.concatenate([[0], diag.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            n = b - a
            inner = sim[a:b, a:b]
            uniform = (inner.sum() - n) / (n * n - n) >= threshold if n > 1 else True
            if min_run <= n <= lag and not uniform:
                bounds |= {int(a), int(b), int(a + lag), int(b + lag)}
    return bounds


@pytest.mark.parametrize("seed", range(10))
def test_novelty_and_repeats_match_numpy(seed):
    rng = np.random.default_rng(seed)
    L = int(rng.integers(2, 60))
    blocks = rng.integers(0, 4, L)  # bars of a few kinds: repeats and changes to find
    sim = np.where(blocks[:, None] == blocks[None, :], 0.9, 0.2) + rng.random((L, L)) * 0.05
    np.fill_diagonal(sim, 1.0)
    for half in (2, 3, 9):
        assert np.array_equal(kernels.novelty(sim, half), novelty_reference(sim, half))
    runs = kernels.repeat_runs(sim, 0.8, 2)
    got = set()
    for a, b, lag in runs.tolist():
        got |= {a, b, a + lag, b + lag}
    assert got == repeat_reference(sim, 0.8, 2)


def test_chord_labels_pick_the_lowest_chord_tone_and_merge():
    # C major over C, C major over E (first inversion), then N, then G with no bass evidence
    c, g = _RECOGNIZED.index("maj") * 12 + 0, _RECOGNIZED.index("maj") * 12 + 7
    path = np.array([c, c, c, _N_STATE, g])
    bounds = np.array([0, 4, 8, 12, 16, 20])
    bass = np.zeros((5, 12))
    bass[0, 0] = bass[1, 0] = 4
    bass[2, 4], bass[2, 0] = 3, 1
    bass[4, 2] = 0  # nothing low at all: the chord's bass falls back to argmax (0)
    got = kernels.chord_labels(path, bounds, bass, _TONES, _N_TONES, _N_STATE).tolist()
    maj = _RECOGNIZED.index("maj")
    assert got == [[0, 8, 0, maj, 0], [8, 4, 0, maj, 4], [12, 4, 0, -1, 0], [16, 4, 7, maj, 0]]
    assert all(len(QUALITY_INTERVALS[q]) == n for q, n in zip(_RECOGNIZED, _N_TONES.tolist()))


def test_recognize_chords_on_a_real_chorale_is_unchanged_by_the_kernels():
    # bwv66.6's first two bars as the numpy code read them before the kernels (session 7)
    song = read_song("music21:bach/bwv66.6")
    chords = recognize_chords(song)
    assert len(chords) == 33 and sum(c.duration for c in chords) == song.end
    assert [(c.onset, chord_name(c.root, c.quality, c.bass)) for c in chords[:8]] == [
        (0, "A"), (4, "F#m"), (8, "E/Ab"), (12, "A"), (16, "E/Ab"), (20, "A"), (24, "E7"),
        (28, "A")]


def test_residue_contrasts_match_numpys_means():
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 7, 50, 401):
        values = rng.random(n) * 3
        for m in (3, 4):
            got = kernels.residue_contrasts(values, m)
            for d in range(m):
                lines, others = values[d::m], np.delete(values, np.arange(d, n, m))
                if len(lines) < 2 or not len(others):
                    assert np.isnan(got[d])
                else:
                    assert got[d] == float(lines.mean() - others.mean())


def test_track_profiles_match_mono_share_and_numpys_median():
    rng = np.random.default_rng(5)
    tracks = [np.stack([rng.integers(0, 200, n), rng.integers(0, 9, n), rng.integers(20, 100, n)],
                       axis=1) for n in (1, 2, 5, 40, 41)]
    notes = np.concatenate(tracks).astype(np.int64)
    offsets = np.cumsum([0] + [len(t) for t in tracks])
    shares, medians = kernels.track_profiles(notes[:, 0].copy(), notes[:, 1].copy(),
                                             notes[:, 2].copy(), offsets)
    for t, share, median in zip(tracks, shares.tolist(), medians.tolist()):
        assert median == float(np.median(t[:, 2]))
        count = np.zeros(t[:, 0].max() + t[:, 1].max() + 2, dtype=int)
        for s, d in t[:, :2]:
            count[s:s + d] += 1
        sounding = count[count > 0]
        assert share == ((sounding == 1).mean() if len(sounding) else 1.0)


def test_phase_weights_match_numpy():
    from structdiff.analysis.beats import PHASE_TOLERANCE, PHASES

    rng = np.random.default_rng(7)
    for tpq in (96, 480, 384):
        n = 300
        times = rng.integers(0, 100 * tpq, n)
        times[:50] = (times[:50] // tpq) * tpq + tpq // 48  # exactly half a candidate away
        durations, pitches = rng.integers(1, 4 * tpq, n), rng.integers(30, 90, n)
        weight = np.clip(durations / tpq, 0.25, 2.0) + (pitches < 55) * 0.5
        position = np.round((times % tpq) / tpq * PHASES).astype(np.int64) % PHASES
        votes = np.bincount(position, weights=weight, minlength=PHASES)
        want = np.zeros(PHASES)
        for d in range(-PHASE_TOLERANCE, PHASE_TOLERANCE + 1):
            want += (PHASE_TOLERANCE + 1 - abs(d)) * np.roll(votes, d)
        got = kernels.phase_weights(times, durations, pitches, tpq, PHASES, PHASE_TOLERANCE)
        assert np.array_equal(got, want)


def test_bar_evidence_matches_numpy():
    from structdiff.analysis.beats import CHANGE_WEIGHT, STRENGTH_WEIGHT

    rng = np.random.default_rng(8)
    tpq, n, shift = 480, 400, 37
    times = np.sort(rng.integers(0, 200 * tpq, n))
    durations, pitches = rng.integers(1, 4 * tpq, n), rng.integers(30, 90, n)
    drums = rng.random(n) < 0.2
    t = times + shift
    beat = np.floor((t + tpq // 8) / tpq).astype(np.int64)
    n_beats = int(beat.max()) + 1
    pitched = ~drums
    chroma = np.zeros((n_beats, 12))
    np.add.at(chroma, (beat[pitched], pitches[pitched] % 12),
              np.clip(durations[pitched] / tpq, 0.25, 4.0))
    norm = np.linalg.norm(chroma, axis=1, keepdims=True)
    unit = np.divide(chroma, norm, out=np.zeros_like(chroma), where=norm > 0)
    change = np.zeros(n_beats)
    change[1:] = 1.0 - (unit[1:] * unit[:-1]).sum(axis=1)
    change[norm[:, 0] == 0] = 0.0
    on_beat = np.abs(t - beat * tpq) <= tpq // 8
    strength = np.zeros(n_beats)
    np.add.at(strength, beat[on_beat], np.clip(durations[on_beat] / tpq, 0.25, 4.0)
              * (1.0 + (pitched[on_beat] & (pitches[on_beat] < 55))))
    strength = strength / max(float(strength.mean()), 1e-9)
    want = CHANGE_WEIGHT * change + STRENGTH_WEIGHT * strength
    got = kernels.bar_evidence(times, durations, pitches, drums, tpq, shift, CHANGE_WEIGHT,
                               STRENGTH_WEIGHT)
    assert np.array_equal(got, want)


def self_similarity_reference(song):
    """The numpy `self_similarity` the `onset_jaccard` kernel replaced."""
    from structdiff.analysis.sections import bar_features

    chroma, rhythm, events = bar_features(song)
    onsets = events.astype(np.float32)
    both = onsets @ onsets.T
    count = onsets.sum(axis=1)
    union = count[:, None] + count[None, :] - both
    literal = np.divide(both, union, out=np.ones_like(both), where=union > 0)
    sim = 0.5 * literal + 0.25 * (chroma @ chroma.T) + 0.25 * (rhythm @ rhythm.T)
    return np.clip(sim, 0.0, 1.0)


@pytest.mark.parametrize("seed", range(12))
def test_self_similarity_matches_numpy_bit_for_bit(seed):
    from structdiff.analysis.sections import self_similarity
    from structdiff.data.song import Song, TimeSignature, Track

    rng = np.random.default_rng(seed)
    n_bars = int(rng.integers(1, 40))
    n = int(rng.integers(0, 300)) if seed else 0  # seed 0: no notes at all
    # repeated onsets (same bar, step, pitch) and empty bars included
    notes = np.stack([rng.integers(0, n_bars * 16, n) // 2 * 2, rng.integers(1, 8, n),
                      rng.integers(50, 60, n), np.full(n, 90)], axis=1).astype(np.int32)
    pickup = int(rng.integers(0, 2)) * 4
    tracks = [Track("a", 0, False, notes[: n // 2]), Track("b", 0, False, notes[n // 2:])]
    song = Song(tracks=tracks,
                bars=np.concatenate([[0], np.arange(pickup or 16, n_bars * 16, 16)]),
                end=n_bars * 16 + 8, time_signatures=[TimeSignature(0, 4, 4)], tempos=[])
    got = self_similarity(song)
    np.testing.assert_array_equal(got, self_similarity_reference(song))
    assert got.dtype == np.float64


def test_self_similarity_matches_numpy_on_a_real_band_song(band_midi):
    from structdiff.analysis.sections import self_similarity

    song = read_song(band_midi)
    np.testing.assert_array_equal(self_similarity(song), self_similarity_reference(song))


@pytest.mark.parametrize("seed", range(20))
def test_in_note_order_says_what_sort_notes_would_leave_alone(seed):
    from structdiff.data.song import sort_notes

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 40))
    notes = np.stack([np.sort(rng.integers(0, 8, n)), rng.integers(1, 3, n),
                      rng.integers(60, 63, n), np.full(n, 80)], axis=1).astype(np.int32)
    if seed % 2:  # half of them in order
        notes = sort_notes(notes)
    in_order = bool(np.array_equal(sort_notes(notes), notes))
    assert kernels.in_note_order(notes) == in_order
    assert kernels.in_note_order(sort_notes(notes))


def test_tempos_from_arrays_match_symusics_objects():
    import symusic

    from structdiff.data.midi import _dedupe_by_step, _tempos
    from structdiff.data.song import Tempo

    score = symusic.Score(4)
    for time, qpm in [(0, 120.0), (8, 97.3), (8, 61.0), (3, 240.0), (8, 77.7), (20, 33.3)]:
        score.tempos.append(symusic.Tempo(time, qpm))
    objects = _dedupe_by_step([Tempo(int(t.time), float(t.qpm)) for t in score.tempos])
    assert _tempos(score.tempos.numpy()) == objects
    assert [t.step for t in objects] == [0, 3, 8, 20]
    assert _tempos(symusic.Score(4).tempos.numpy()) == []


def phase_refined_reference(times, durations, pitches, tpq, centre, window):
    from structdiff.analysis.beats import _onset_weight

    offset = (times - centre + tpq / 2) % tpq - tpq / 2
    near = np.abs(offset) <= window
    weight = _onset_weight(durations, pitches, tpq)
    if near.any():
        centre += float(np.average(offset[near], weights=weight[near]))
    return centre


@pytest.mark.parametrize("seed", range(12))
def test_phase_refined_matches_numpys_average_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([0, 1, 5, 9, 130, 300, 2000]))
    tpq = int(rng.choice([96, 480, 384]))
    times = rng.integers(0, 200 * tpq, n)
    durations = rng.integers(1, 3 * tpq, n)
    pitches = rng.integers(20, 100, n)
    for candidate in (0, 3, 12, 23):
        centre = candidate * tpq / 24
        window = 1.5 * tpq / 24 * float(rng.choice([1, 8]))  # a wide one: most onsets near
        got = kernels.phase_refined(times, durations, pitches, tpq, centre, window)
        want = phase_refined_reference(times, durations, pitches, tpq, centre, window)
        assert got == want, (n, tpq, candidate)


def melody_silence_runs_reference(starts, durations, end, lo, hi):
    sounding = np.zeros(end + 1, dtype=np.int64)
    if len(starts):
        sounding = (np.bincount(np.minimum(starts, end), minlength=end + 1)
                    - np.bincount(np.minimum(starts + durations, end), minlength=end + 1))
    silent = np.cumsum(sounding)[:end] == 0
    return kernels.longest_runs(silent, lo, hi)


@pytest.mark.parametrize("seed", range(12))
def test_silent_runs_match_numpys_sounding_count(seed):
    rng = np.random.default_rng(seed)
    end = int(rng.integers(1, 400))
    n = int(rng.choice([0, 1, 10, 60]))
    starts = rng.integers(0, end + 20, n)  # some past the end
    durations = rng.integers(0, 40, n)
    lo = rng.integers(0, end, 30)
    hi = lo + rng.integers(0, 50, 30)  # some past the end
    got = kernels.silent_runs(starts, starts + durations, end, lo, hi)
    np.testing.assert_array_equal(got, melody_silence_runs_reference(starts, durations, end, lo,
                                                                     hi))


@pytest.mark.parametrize("seed", range(10))
def test_note_order_is_sort_notes_order(seed):
    from structdiff.data.song import sort_notes

    rng = np.random.default_rng(seed)
    n = int(rng.choice([0, 1, 7, 200, 3000]))
    notes = np.stack([rng.integers(0, 64, n), rng.integers(0, 4, n), rng.integers(60, 64, n),
                      rng.integers(1, 128, n)], axis=1).astype(np.int32)  # many ties
    order = kernels.note_order(notes)
    assert len(order) == n
    np.testing.assert_array_equal(notes[order], sort_notes(notes))
    if n:
        wide = notes.copy()
        wide[0, 1] = 2**26  # a duration past the packed key: the caller must sort itself
        assert len(kernels.note_order(wide)) == 0
