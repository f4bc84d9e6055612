import numpy as np
import pytest

from structdiff.analysis.chords import (
    LINE_WEIGHT,
    QUALITIES,
    QUALITY_INTERVALS,
    chord_name,
    line_weights,
    parse_chord_name,
    recognize_chords,
    segment_bounds,
    viterbi,
)
from structdiff.data.song import Chord, Song, TimeSignature, Track, bar_grid


def make_song(
    notes: list[tuple[int, int, int]], numerator: int = 4, denominator: int = 4, pickup: int = 0
) -> Song:
    """A one-track song from `(start, duration, pitch)` triples on the 16th grid."""
    rows = np.asarray([(s, d, p, 80) for s, d, p in notes], dtype=np.int32).reshape(-1, 4)
    ts = [TimeSignature(0, numerator, denominator)]
    end = int((rows[:, 0] + rows[:, 1]).max()) if len(rows) else 16
    bars = bar_grid(ts, end, 4, pickup=pickup)
    return Song([Track("keys", 0, False, rows)], bars, max(end, int(bars[-1]) + 1), ts)


def block(pitches: list[int], start: int = 0, duration: int = 16) -> list[tuple[int, int, int]]:
    return [(start, duration, p) for p in pitches]


def labels(chords: list[Chord]) -> list[tuple[int, str, int]]:
    return [(c.root, c.quality, c.bass) for c in chords]


def test_c_major_triad_held_for_a_bar():
    chords = recognize_chords(make_song(block([48, 64, 67, 72])))
    assert chords == [Chord(0, 16, 0, "maj", 0)]


@pytest.mark.parametrize(
    "pitches, expected",
    [
        ([47, 62, 65, 67], (7, "dom7", 11)),  # G7 with B in the bass
        ([45, 60, 64, 69], (9, "min", 9)),  # Am
        ([47, 62, 65, 71], (11, "dim", 11)),  # Bdim
        ([50, 65, 69, 72], (2, "min7", 2)),  # Dm7
        ([52, 60, 67, 72], (0, "maj", 4)),  # C/E
    ],
)
def test_block_chords(pitches, expected):
    assert labels(recognize_chords(make_song(block(pitches)))) == [expected]


def test_two_chords_per_bar_are_separated():
    song = make_song(block([48, 64, 67, 72], 0, 8) + block([43, 62, 67, 71], 8, 8))
    assert recognize_chords(song) == [Chord(0, 8, 0, "maj", 0), Chord(8, 8, 7, "maj", 7)]


def test_passing_tones_make_no_new_chord():
    # C major held a bar; the soprano runs E-F-G-A-G in eighths (F and A pass on off-beats).
    melody = [(0, 4, 76), (4, 2, 76), (6, 2, 77), (8, 2, 79), (10, 2, 81), (12, 4, 79)]
    song = make_song(block([48, 60, 64]) + melody)
    assert labels(recognize_chords(song)) == [(0, "maj", 0)]


def test_chords_cover_the_song_and_silence_is_n():
    notes = block([48, 64, 67]) + block([43, 62, 67, 71], 32, 16)
    chords = recognize_chords(make_song(notes))
    assert labels(chords) == [(0, "maj", 0), (0, "N", 0), (7, "maj", 7)]
    assert chords[0].onset == 0 and chords[-1].onset + chords[-1].duration == 48
    for a, b in zip(chords, chords[1:], strict=False):
        assert a.onset + a.duration == b.onset


@pytest.mark.parametrize(
    "numerator, denominator, per_bar", [(4, 4, 4), (3, 4, 3), (6, 8, 2), (2, 2, 2)]
)
def test_one_candidate_per_beat(numerator, denominator, per_bar):
    bar = numerator * 16 // denominator
    song = make_song(block([48, 64, 67], 0, 2 * bar), numerator, denominator)
    bounds, _ = segment_bounds(song)
    assert len(bounds) - 1 == 2 * per_bar
    assert bounds[0] == 0 and bounds[-1] == song.end


def test_pickup_is_divided_from_its_end():
    # A one-and-a-half-beat pickup in 4/4: its segments start on the half beat and on the beat.
    song = make_song(block([43, 62, 67, 71], 0, 6) + block([48, 64, 67, 72], 6, 16), pickup=6)
    bounds, _ = segment_bounds(song)
    assert bounds[:4].tolist() == [0, 2, 6, 10]
    assert labels(recognize_chords(song)) == [(7, "maj", 7), (0, "maj", 0)]


def test_empty_song_is_one_n_chord():
    song = make_song([])
    assert recognize_chords(song) == [Chord(0, song.end, 0, "N", 0)]


def test_drums_are_ignored():
    song = make_song(block([45, 60, 64, 69]))
    hits = np.asarray([(s, 1, 35 + s % 3, 100) for s in range(16)], dtype=np.int32)
    song.tracks.append(Track("drums", 0, True, hits))
    assert labels(recognize_chords(song)) == [(9, "min", 9)]


@pytest.mark.parametrize("quality", [q for q in QUALITIES if q != "N"])
def test_chord_names_round_trip(quality):
    for root in range(12):
        assert parse_chord_name(chord_name(root, quality)) == (root, quality, root)
        for interval in QUALITY_INTERVALS[quality][1:]:
            bass = (root + interval) % 12
            assert parse_chord_name(chord_name(root, quality, bass)) == (root, quality, bass)
    assert parse_chord_name(chord_name(0, "N")) == (0, "N", 0)


@pytest.mark.parametrize("text", ["", "H7", "Cxyz", "C/H", "7", "Am/", "C#m7b5/Q"])
def test_bad_chord_names_raise(text):
    with pytest.raises(ValueError, match="unknown chord symbol"):
        parse_chord_name(text)


def test_unknown_quality_raises():
    with pytest.raises(ValueError, match="unknown chord quality"):
        chord_name(0, "min9")


def test_viterbi_keeps_a_state_through_a_weak_rival():
    emissions = np.array([[1.0, 0.0], [0.0, 0.1], [1.0, 0.0]])
    assert viterbi(emissions, change_penalty=0.5).tolist() == [0, 0, 0]
    assert viterbi(emissions, change_penalty=0.01).tolist() == [0, 1, 0]


def test_reference_vocabulary_and_agreement():
    from structdiff.analysis.chord_eval import agreement, score_candidates, vocabulary_quality

    assert vocabulary_quality({0, 4, 7, 10}) == "dom7"
    assert vocabulary_quality({0, 4, 7, 10, 2}) == "dom7"  # a ninth chord
    assert vocabulary_quality({0, 3, 7, 11}) == "min"  # minor-major seventh
    assert vocabulary_quality({0, 3, 6}) == "dim"
    assert score_candidates("248(2).12") == ["bwv248.12-2.mxl", "bwv248.12.mxl"]
    assert score_candidates("269") == ["bwv269.mxl"]
    reference = [Chord(0, 12, 7, "dom7", 11), Chord(12, 4, 0, "maj", 0)]
    predicted = [Chord(0, 8, 7, "maj", 7), Chord(8, 8, 0, "maj", 0)]
    scores = agreement(reference, predicted, 20)
    assert scores["steps"] == 16
    assert scores["root"] == pytest.approx(12 / 16)
    assert scores["root_quality"] == pytest.approx(4 / 16)
    assert scores["triad_quality"] == pytest.approx(12 / 16)
    assert scores["bass"] == pytest.approx(4 / 16)


def test_chorale_against_expert_analysis():
    """Aus meines Herzens Grunde (BWV 269) against its Riemenschneider analysis (about 1 s)."""
    from structdiff.analysis.chord_eval import analysis_paths, evaluate_analysis

    # bwv66.6 (the usual demo chorale) has no analysis among the 20; number 1 has.
    analysis = next(p for p in analysis_paths() if p.stem == "riemenschneider001")
    result = evaluate_analysis(analysis)
    assert result is not None and result.score == "bwv269.mxl"
    assert result.quarter_notes > 50 and not result.unaligned_measures
    assert result.root >= 0.75
    assert result.bass >= 0.75


def test_chord_names_are_spelled_in_the_key():
    from structdiff.analysis.chords import chord_name
    from structdiff.data.song import Key

    assert chord_name(4, "maj", 8, Key(9, "major")) == "E/G#"
    assert chord_name(10, "maj", None, Key(5, "major")) == "Bb"
    assert chord_name(1, "dom7", None, Key(6, "minor")) == "C#7"
    assert chord_name(3, "min", None, Key(0, "minor")) == "Ebm"


def _two_tracks(melody: list[tuple[int, int, int]], keys: list[tuple[int, int, int]]) -> Song:
    """A melody track over a keys track, one 4/4 bar."""
    def rows(notes):
        return np.asarray([(s, d, p, 80) for s, d, p in notes], dtype=np.int32).reshape(-1, 4)

    ts = [TimeSignature(0, 4, 4)]
    return Song([Track("melody", 0, False, rows(melody)), Track("keys", 0, False, rows(keys))],
                bar_grid(ts, 16, 4), 16, ts)


def test_a_melody_over_an_accompaniment_weighs_less():
    # short C major chords on every beat under a melody that holds A through the bar: by
    # duration alone the A makes it A minor; the accompaniment says C
    keys = [(4 * beat, 1, p) for beat in range(4) for p in (48, 52, 55)]
    song = _two_tracks([(0, 16, 69)], keys)
    assert line_weights(song) == [LINE_WEIGHT, 1.0]
    assert labels(recognize_chords(song)) == [(0, "maj", 0)]


def test_lines_without_an_accompaniment_all_count_fully():
    # two single lines (a bicinium, a chorale's voices): no accompaniment, nothing weighs less
    song = _two_tracks([(0, 16, 69)], [(0, 8, 48), (8, 8, 52)])
    assert line_weights(song) == [1.0, 1.0]
    assert labels(recognize_chords(song))[0][:2] == (9, "min")


def test_a_bass_line_under_an_accompaniment_counts_fully():
    ts = [TimeSignature(0, 4, 4)]
    rows = [np.asarray(r, dtype=np.int32) for r in (
        [(0, 16, 72, 80)], [(0, 16, 60, 80), (0, 16, 64, 80), (0, 16, 67, 80)],
        [(0, 8, 36, 80), (8, 8, 43, 80)])]
    song = Song([Track("lead", 0, False, rows[0]), Track("keys", 0, False, rows[1]),
                 Track("bass", 33, False, rows[2]), Track("drums", 0, True, rows[0])],
                bar_grid(ts, 16, 4), 16, ts)
    assert line_weights(song) == [LINE_WEIGHT, 1.0, 1.0, 0.0]
