import numpy as np
import pytest

from structdiff.analysis.sections import labels_per_bar, phrase_ends, segment, self_similarity
from structdiff.data.song import Song, TimeSignature, Track

BAR = 16  # steps in a 4/4 bar on the 16th grid


def _section_a(rest: bool):
    """Four bars of quarter-note melody in C over a whole-note bass, a cadence and a rest."""
    melody = [[60, 62, 64, 65], [67, 65, 64, 62], [64, 65, 67, 69], [72]]
    mel, bass = [], []
    for bar, pitches in enumerate(melody):
        for i, p in enumerate(pitches):
            dur = 4 if len(pitches) > 1 else (8 if rest else 16)
            mel.append([bar * BAR + i * 4, dur, p, 80])
        bass.append([bar * BAR, 8 if (rest and bar == 3) else 16, [48, 43, 45, 48][bar], 80])
    return mel, bass


def _section_b(rest: bool):
    """Four bars of eighth notes in a higher register over a moving bass, ending on G."""
    mel, bass = [], []
    for bar in range(4):
        for i in range(8 if bar < 3 else 1):
            mel.append([bar * BAR + i * 2, 2 if bar < 3 else (8 if rest else 16),
                        [77, 76, 74, 72, 71, 74, 79, 77][i] if bar < 3 else 79, 80])
        for i in range(4 if bar < 3 else 1):
            bass.append([bar * BAR + i * 4, 4 if bar < 3 else (8 if rest else 16),
                         [41, 43, 38, 43][i], 80])
    return mel, bass


def abab_song(rest: bool = True) -> Song:
    mel, bass = [], []
    for k, part in enumerate([_section_a, _section_b, _section_a, _section_b]):
        m, b = part(rest)
        mel += [[s + k * 4 * BAR, d, p, v] for s, d, p, v in m]
        bass += [[s + k * 4 * BAR, d, p, v] for s, d, p, v in b]
    tracks = [
        Track("Melody", 0, False, np.asarray(mel, dtype=np.int32), role="melody"),
        Track("Bass", 33, False, np.asarray(bass, dtype=np.int32), role="bass"),
    ]
    return Song(tracks, bars=np.arange(16) * BAR, end=16 * BAR,
                time_signatures=[TimeSignature(0, 4, 4)])


@pytest.mark.parametrize("rest", [True, False])
def test_abab_form_comes_back(rest):
    # without the melody path (min_bars given): bar-level self-similarity of every part
    sections, _ = segment(abab_song(rest), min_bars=2)
    assert [(s.label, s.n_bars) for s in sections] == [("A", 4), ("B", 4), ("A", 4), ("B", 4)]
    assert labels_per_bar(sections) == list("AAAABBBBAAAABBBB")


def test_a_song_with_a_melody_is_cut_into_repeated_phrases():
    # pop phrases are mostly 8 bars (PHRASE_LENGTH_COUNTS): A+B, played twice, is one
    sections, ends = segment(abab_song(True))
    assert labels_per_bar(sections) == list("AAAAAAAABBBBBBBB".replace("B", "A"))
    assert [(s.start_bar, s.n_bars) for s in sections] == [(0, 8), (8, 8)]
    assert ends == [7]


def _pop_song() -> Song:
    """intro (4 bars, no melody) | verse a a | chorus b c | interlude (2) | a a | b c | outro
    (4): a bass throughout; the melody rests in the intro, interlude and outro."""
    a_mel, a_bass = _section_a(True)
    b_mel, b_bass = _section_b(True)
    parts = {"a": (a_mel, a_bass, 0), "b": (b_mel, b_bass, 0), "c": (b_mel, b_bass, -7)}
    form = [("-", 4), "a", "a", "b", "c", ("-", 2), "a", "a", "b", "c", ("-", 4)]
    mel, bass, bar = [], [], 0
    for part in form:
        if isinstance(part, tuple):  # no melody: a bass note a bar
            bass += [[(bar + i) * BAR, BAR, 36, 80] for i in range(part[1])]
            bar += part[1]
            continue
        m, b, moved = parts[part]
        mel += [[s + bar * BAR, d, p + moved, v] for s, d, p, v in m]
        bass += [[s + bar * BAR, d, p, v] for s, d, p, v in b]
        bar += 4
    tracks = [
        Track("Melody", 0, False, np.asarray(mel, dtype=np.int32), role="melody"),
        Track("Bass", 33, False, np.asarray(bass, dtype=np.int32), role="bass"),
    ]
    return Song(tracks, bars=np.arange(bar) * BAR, end=bar * BAR,
                time_signatures=[TimeSignature(0, 4, 4)])


def test_a_pop_form_comes_back_with_its_rests_and_its_chorus():
    sections, ends = segment(_pop_song())
    got = labels_per_bar(sections)
    form = [("i", 4), ("A", 8), ("B", 8), ("x", 2), ("A", 8), ("B", 8), ("o", 4)]
    assert got == [label for label, n in form for _ in range(n)]
    assert ends == [s.start_bar + s.n_bars - 1 for s in sections[:-1]]


def test_rests_in_every_part_end_phrases():
    assert phrase_ends(abab_song(rest=True)) == [3, 7, 11]


def test_self_similarity_sees_the_repeat():
    sim = self_similarity(abab_song())
    assert sim.shape == (16, 16)
    assert np.allclose(np.diagonal(sim, offset=8), 1.0)
    assert sim[0, 4] < 0.5


def test_fermatas_end_phrases_on_a_real_chorale():
    from structdiff.data.io import read_song

    song = read_song("music21:bach/bwv66.6")
    sections, ends = segment(song)
    fermata_bars = {int(song.bar_of(f - 1)) for f in song.fermatas}
    assert set(ends) >= fermata_bars - {song.n_bars - 1}
    assert sum(s.n_bars for s in sections) == song.n_bars
    assert sections[0].start_bar == 0
