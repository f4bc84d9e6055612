import math

import numpy as np
import pytest

from structdiff.analysis.sections import labels_per_bar
from structdiff.data.song import START, Plan, Section, Song, TimeSignature, Track
from structdiff.metrics.structure import (
    SCALES,
    bar_ssm,
    form_adherence,
    label_similarity_ratio,
    structure_metrics,
    structureness,
)
from tests.analysis.test_sections import BAR, abab_song

ABAB = list("AAAABBBBAAAABBBB")


def _shuffled(song: Song, seed: int = 0) -> Song:
    """The same song with its bars in a seeded random order (no note crosses a bar line)."""
    order = np.random.default_rng(seed).permutation(song.n_bars)  # new bar k plays old order[k]
    new_bar = np.argsort(order)
    tracks = []
    for t in song.tracks:
        notes = t.notes.copy()
        old = song.bar_of(notes[:, START])
        notes[:, START] += (new_bar[old] - old) * BAR
        tracks.append(Track(t.name, t.program, t.is_drum, notes, t.role))
    return Song(tracks, song.bars, song.end, time_signatures=song.time_signatures)


def _si(ssm: np.ndarray) -> list[float]:
    return [structureness(ssm, lo, hi) for lo, hi in SCALES.values()]


def test_bar_ssm_is_a_similarity_and_empty_bars_match_nothing():
    song = abab_song()
    notes = song.tracks[0].notes
    song.tracks[0].notes = notes[song.bar_of(notes[:, START]) != 5]
    song.tracks[1].notes = song.tracks[1].notes[song.bar_of(song.tracks[1].notes[:, START]) != 5]
    ssm = bar_ssm(song)
    assert ssm.shape == (16, 16)
    assert np.allclose(ssm, ssm.T) and np.allclose(np.diagonal(ssm), 1.0)
    assert ssm.min() >= 0.0 and ssm.max() <= 1.0
    assert np.all(np.delete(ssm[5], 5) == 0.0)
    assert np.isclose(ssm[0, 8], 1.0)  # the repeat of A


def test_repeated_form_beats_its_shuffled_bars():
    song, shuffled = abab_song(), _shuffled(abab_song())
    assert sorted(map(tuple, shuffled.all_notes()[:, 1:])) == sorted(
        map(tuple, song.all_notes()[:, 1:])
    )
    ssm, ssm_shuffled = bar_ssm(song), bar_ssm(shuffled)
    for si, si_shuffled in zip(_si(ssm), _si(ssm_shuffled)):
        assert si > si_shuffled
    assert _si(ssm)[2] == pytest.approx(0.5)  # A B heard twice, exactly: score 1/2, coverage 1/2
    assert _si(ssm_shuffled)[2] < 0.1
    ils = label_similarity_ratio(ssm, ABAB)
    assert ils > 1.2
    assert label_similarity_ratio(ssm_shuffled, ABAB) < ils - 0.2


def test_structureness_of_a_repeated_ssm_beats_a_random_one():
    rng = np.random.default_rng(0)
    noise = rng.random((32, 32))
    noise = (noise + noise.T) / 2
    np.fill_diagonal(noise, 1.0)
    repeated = np.kron(np.ones((4, 4)), np.eye(8))  # one 8-bar segment played 4 times
    assert structureness(repeated, 8, 8) == pytest.approx(0.75)  # (K - 1) / K for K = 4
    assert structureness(noise, 8, 8) < 0.1
    for lo, hi in SCALES.values():
        assert structureness(noise, lo, hi) < structureness(repeated, lo, hi)


def test_structureness_arguments():
    assert math.isnan(structureness(np.eye(7), 4, 8))  # no two 4-bar segments fit
    assert structureness(np.eye(8), 4, 8) == 0.0  # nothing repeats
    with pytest.raises(ValueError, match="min_bars"):
        structureness(np.eye(8), 0, 4)
    with pytest.raises(ValueError, match="square"):
        structureness(np.ones((4, 5)), 1, 2)
    with pytest.raises(ValueError, match="threshold"):
        structureness(np.eye(8), 2, 4, threshold=1.0)


def test_label_similarity_ratio_on_a_hand_ssm():
    ssm = np.array([
        [1.0, 0.9, 0.2, 0.4],
        [0.9, 1.0, 0.3, 0.1],
        [0.2, 0.3, 1.0, 0.7],
        [0.4, 0.1, 0.7, 1.0],
    ])
    # same label: (0.9 + 0.7) / 2 = 0.8; different: (0.2 + 0.4 + 0.3 + 0.1) / 4 = 0.25
    assert label_similarity_ratio(ssm, list("AABB")) == pytest.approx(3.2)
    assert math.isnan(label_similarity_ratio(ssm, list("AAAA")))
    assert math.isnan(label_similarity_ratio(ssm, list("ABCD")))
    with pytest.raises(ValueError, match="one label per bar"):
        label_similarity_ratio(ssm, list("AAB"))


def test_form_adherence_is_the_pairwise_f_measure():
    assert form_adherence(list("AABBAA"), list("XXYYXX")) == 1.0
    # plan pairs {01, 23}, song pairs {01, 02, 12}: precision 1/3, recall 1/2
    assert form_adherence(list("AABB"), list("AAAB")) == pytest.approx(0.4)
    assert form_adherence(list("AABB"), list("ABCD")) == 0.0
    assert form_adherence(list("ABCD"), list("DCBA")) == 1.0
    assert math.isnan(form_adherence(["A"], ["B"]))
    with pytest.raises(ValueError, match="same number of bars"):
        form_adherence(list("AAB"), list("AA"))


def test_structure_metrics_of_a_planned_song():
    song = abab_song()
    plan = Plan(sections=[Section(0, 4, "A"), Section(4, 4, "B"), Section(8, 4, "A"),
                          Section(12, 4, "B")])
    one_section = Plan(sections=[Section(0, 16, "A")])
    assert labels_per_bar(plan.sections) == ABAB
    given = structure_metrics(song, plan, one_section, given=True)
    assert set(given) == {"si_short", "si_mid", "si_long", "ils_ratio", "form_adherence"}
    assert given["si_long"] == pytest.approx(0.5)
    assert given["ils_ratio"] > 1.2
    assert 0.0 < given["form_adherence"] < 1.0
    assert structure_metrics(song, plan, plan, given=True)["form_adherence"] == 1.0
    assert math.isnan(structure_metrics(song, plan, one_section, given=False)["form_adherence"])


def test_short_song_gives_nan_at_long_scales():
    notes = np.array([[bar * BAR, 4, 60 + bar, 80] for bar in range(4)])
    song = Song([Track("Melody", 0, False, notes)], bars=np.arange(4) * BAR, end=4 * BAR,
                time_signatures=[TimeSignature(0, 4, 4)])
    out = structure_metrics(song, Plan(sections=[Section(0, 4, "A")]), Plan(), given=False)
    assert not math.isnan(out["si_short"])  # two 2-bar segments fit
    assert math.isnan(out["si_mid"]) and math.isnan(out["si_long"])
    assert math.isnan(out["ils_ratio"])  # every pair of bars has the same label
