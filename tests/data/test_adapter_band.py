"""The band corpus: chord names, charts, groove variants at section boundaries, mma renders on
the song's grid, Nottingham tunes, and (with the shared corpora) POP909 and Nottingham songs end
to end."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from structdiff.data.adapters import band
from structdiff.data.adapters.styles import GROOVE_FAMILIES
from structdiff.data.corpus import split_of
from structdiff.data.prepare import CorpusEntry, PrepareError
from structdiff.data.song import (
    PITCH,
    START,
    Chord,
    Plan,
    Section,
    Song,
    Tempo,
    TimeSignature,
    Track,
    bar_grid,
)

DATA = Path("/work/shared/data")
needs_mma = pytest.mark.skipif(shutil.which("mma") is None, reason="mma is not installed")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"no shared corpora at {DATA}")

# A groove built in code, so the chart tests do not depend on the list.
EIGHT_BEAT = band.Groove(
    name="8Beat", family="rock", file="stdlib/8beat", time=4, meters=("4/4", "2/2", "2/4"),
    variations=("8Beat", "8BeatPlus"), fills=("8BeatFill", "8BeatFill"),
    intro="8BeatIntro", end="8BeatEnd",
)

TUNE = """X: 7
T:Test Hornpipe
M:4/4
L:1/8
K:G
D2|"G"G2B2 d2B2|"D"A2F2 "D7"D2D2|"G"G2B2 d2g2|"D"f2a2 g2:|
|:B2|"C"e2e2 "G"d2d2|"Am"c2c2 "D7"B2A2|"G"G2B2 "Em"d2B2|[1"D7/f+"A6:|[2"G"G6||
"""


def chart_song(chords: list[tuple[int, float, int, str, int]], sections: list[Section],
               meter: tuple[int, int] = (4, 4), melody: bool = False) -> Song:
    """A Song of `sections` with chords given as (bar, beat, root, quality, bass), each until
    the next; a melody of one note per bar when asked."""
    ts = [TimeSignature(0, *meter)]
    bar = ts[0].bar_steps(4)
    n_bars = sum(s.n_bars for s in sections)
    end = n_bars * bar
    onsets = [int(b * bar + beat * 4) for b, beat, *_ in chords] + [end]
    plan_chords = [Chord(onsets[i], onsets[i + 1] - onsets[i], r, q, bass)
                   for i, (_, _, r, q, bass) in enumerate(chords)]
    tracks = []
    if melody:
        notes = np.array([[b * bar, bar, 72, 90] for b in range(n_bars)], dtype=np.int32)
        tracks.append(Track("MELODY", 0, False, notes, role="melody"))
    return Song(tracks=tracks, bars=bar_grid(ts, end, 4), end=end, time_signatures=ts,
                tempos=[Tempo(0, 96.0)], plan=Plan(chords=plan_chords, sections=sections),
                role_map="band")


def test_mma_chord_names_cover_every_quality():
    expected = {"maj": "C", "min": "Cm", "dom7": "C7", "maj7": "CM7", "min7": "Cm7",
                "dim": "Cmb5", "aug": "Caug", "sus": "Csus4", "hdim7": "Cm7b5",
                "dim7": "Cdim7"}
    assert {q: band.mma_chord_name(0, q) for q in expected} == expected
    assert band.mma_chord_name(0, "maj", 4) == "C/E"  # slash bass where it differs
    assert band.mma_chord_name(9, "min7", 9) == "Am7"
    assert band.mma_chord_name(10, "dom7", 2) == "Bb7/D"
    assert band.mma_chord_name(0, "N") == "z"
    with pytest.raises(ValueError, match="quality"):
        band.mma_chord_name(0, "maj9")


def test_chart_has_a_line_per_bar_chords_at_their_beats_and_grooves_at_boundaries():
    sections = [Section(0, 1, "i"), Section(1, 3, "A"), Section(4, 3, "B"), Section(7, 2, "A")]
    song = chart_song([(0, 0, 7, "maj", 7), (1, 0, 0, "maj", 4), (1, 2, 9, "min", 9),
                       (2, 0, 2, "dom7", 2), (3, 3, 0, "N", 0), (4, 0, 5, "maj7", 5),
                       (5, 0, 11, "hdim7", 11), (6, 1, 4, "dom7", 4), (7, 0, 0, "maj", 0)],
                      sections)
    chart = band.write_chart(song, EIGHT_BEAT, rnd_seed=5)
    lines = chart.splitlines()
    assert "RndSeed 5" in lines and "Tempo 96" in lines
    bars = [ln for ln in lines if ln[:1].isdigit()]
    assert bars == ["1 G", "2 C/E Am@3", "3 D7", "4 D7 z@4", "5 FM7", "6 Bm7b5",
                    "7 Bm7b5 E7@2", "8 C", "9 C"]
    grooves = [ln.split()[1] for ln in lines if ln.startswith("Groove")]
    # intro; A; its fill; B (the next variation); fill; A again; End on the last bar only
    # (the last section has 2 bars); the library file is named the first time only
    assert grooves == ["stdlib/8beat:8BeatIntro", "8Beat", "8BeatFill", "8BeatPlus",
                       "8BeatFill", "8Beat", "8BeatEnd"]
    before = {ln: lines[i - 1] for i, ln in enumerate(lines) if ln[:1].isdigit()}
    assert before["4 D7 z@4"] == "Groove 8BeatFill"  # the last bar of A, before B starts
    assert before["9 C"] == "Groove 8BeatEnd"


def test_chart_grooves_without_fills_take_the_next_variation_and_two_end_bars():
    groove = band.Groove("T", "rock", "stdlib/50srock", 4, ("4/4",),
                         ("50sRock", "50sRockPlus", "50sRock1"), (None, None, None),
                         None, "50sRockEnd")
    sections = [Section(0, 2, "i"), Section(2, 4, "A"), Section(6, 4, "B"), Section(10, 4, "o")]
    names = band.chart_grooves(sections, 14, groove)
    assert names[:2] == ["50sRock", "50sRock"]  # no intro groove: the first variation
    assert names[2:6] == ["50sRock"] * 3 + ["50sRockPlus"]  # A, then the next variation
    assert names[6:10] == ["50sRockPlus"] * 3 + ["50sRock1"]
    assert names[10:] == ["50sRock1", "50sRock1", "50sRockEnd", "50sRockEnd"]


def test_chart_keeps_four_chords_a_bar_the_bar_line_one_and_the_longest():
    song = chart_song([(0, 0, 0, "maj", 0), (0, 1, 2, "min", 2), (0, 1.5, 4, "min", 4),
                       (0, 2, 5, "maj", 5), (0, 3, 7, "maj", 7)], [Section(0, 1, "A")])
    (line,) = [ln for ln in band.write_chart(song, EIGHT_BEAT).splitlines() if ln[:1].isdigit()]
    assert line == "1 C Dm@2 F@3 G@4"  # Em (half a beat) is the shortest: dropped


def test_layout_reads_2_4_and_6_8_bars_back_on_the_song_grid():
    two_four = chart_song([(0, 0, 0, "maj", 0)], [Section(0, 4, "A")], meter=(2, 4))
    layout = band.chart_layout(two_four, EIGHT_BEAT)
    assert (layout.bar_steps, layout.render_steps_per_quarter, layout.qpm) == (8, 2, 192.0)
    jig = band.Groove("J", "blues", "stdlib/blues68", 6, ("6/8",), ("Blues68",), (None,))
    six_eight = chart_song([(0, 0, 0, "maj", 0)], [Section(0, 4, "A")], meter=(6, 8))
    layout = band.chart_layout(six_eight, jig)
    assert (layout.bar_steps, layout.render_steps_per_quarter, layout.qpm) == (12, 2, 192.0)
    with pytest.raises(band.BandError, match="meter 6/8"):
        band.chart_layout(six_eight, EIGHT_BEAT)


def test_groove_list_covers_the_families_and_meters():
    grooves = band.load_grooves()
    assert set(grooves) <= set(GROOVE_FAMILIES)
    for family in ("rock", "pop", "funk", "swing", "latin", "bossa", "ballad", "country",
                   "waltz"):
        assert grooves[family], family
    assert band.families_for("3/4") == ["waltz"]
    assert all(g.meters == ("3/4",) and g.time == 3 for g in grooves["waltz"])
    assert "waltz" not in band.families_for("4/4")
    names = [g.name for gs in grooves.values() for g in gs]
    assert len(names) == len(set(names))


def test_family_and_groove_draws_depend_on_seed_and_id_only():
    draws = {band.draw_family(0, f"pop909/{i:03d}", "4/4") for i in range(1, 60)}
    assert len(draws) >= 8  # spread over the families
    assert band.draw_family(3, "pop909/001", "4/4") == band.draw_family(3, "pop909/001", "4/4")
    assert band.draw_family(0, "pop909/034", "3/4") == "waltz"
    by_seed = {band.draw_family(s, "pop909/001", "4/4") for s in range(20)}
    assert len(by_seed) > 1


def test_render_roles_follow_programs_and_keep_mma_off_the_melody():
    def role(name, program, drum=False):
        return band.render_role(Track(name, program, drum))

    assert role("Drum", 0, drum=True) == "drums"
    assert role("Bass", 33) == "bass" and role("Walk", 32) == "bass"
    assert role("Chord", 0) == "keys" and role("Chord-Guitar", 25) == "guitar"
    assert role("Chord-Sus", 48) == "strings" and role("Chord-Sus", 16) == "strings"
    assert role("Chord-Sax", 65) == "strings" and role("Arpeggio", 56) == "keys"
    assert role("Bass-Synthdrum", 118) is None


def test_bass_tracks_voiced_on_other_instruments_are_the_bass_where_no_bass_plays():
    # bar 0: a bass-program track plays; bar 1: only the piano-voiced "Bass" track
    real = Track("Bass", 33, False, np.array([[0, 4, 36, 90]], dtype=np.int32))
    piano = Track("Bass-Piano", 0, False, np.array([[0, 4, 48, 90], [16, 4, 45, 90]],
                                                   dtype=np.int32))
    render = Song(tracks=[real, piano], bars=np.array([0, 16]), end=32)
    tracks = band.band_tracks(render, 16)
    assert {(t.role, t.program, int(t.notes[0, START])) for t in tracks} == {
        ("bass", 33, 0), ("bass", 0, 16), ("keys", 0, 0)}
    (alone,) = [t for t in tracks if t.role == "bass" and t.program == 0]
    assert alone.notes[:, PITCH].tolist() == [45]


def test_nottingham_chord_symbols():
    assert band.nottingham_chord("D/f+") == (2, "maj", 6)
    assert band.nottingham_chord("A7/c+") == (9, "dom7", 1)
    assert band.nottingham_chord("B-m") == (10, "min", 10)  # music21 writes flats as -
    assert band.nottingham_chord("Gm/b-") == (7, "min", 10)
    assert band.nottingham_chord("Gd") == (7, "dim", 7)
    assert band.nottingham_chord("Ca") == (0, "aug", 0)
    assert band.nottingham_chord("C6") == (0, "maj", 0)
    assert band.nottingham_chord("D m") == (2, "min", 2)
    assert band.nottingham_chord(" ") is None
    with pytest.raises(band.BandError, match="Cxyz"):
        band.nottingham_chord("Cxyz")


def test_repeats_expand_with_endings_and_pickups():
    def m(number, start=False, end=False, endings=()):
        return band._Measure(number, Fraction(4), [], [], start, end, endings)

    # |: 0 1 :| 2 |: 3 [1 4 :| [2 5 ||
    measures = [m(0, start=True), m(1, end=True), m(2), m(3, start=True),
                m(4, end=True, endings=(1,)), m(5, endings=(2,))]
    order, regions = band.expand_repeats(measures)
    assert order == [0, 1, 0, 1, 2, 3, 4, 3, 5]
    assert [order[r] for r in regions] == [0, 0, 2, 3, 3]
    # a :| with no |: goes back to just after the previous :| (ABC's rule)
    measures = [m(0), m(1, end=True), m(2), m(3, end=True)]
    assert band.expand_repeats(measures)[0] == [0, 1, 0, 1, 2, 3, 2, 3]
    # a 2nd-time ending runs on to the || that closes it: its last bar stays in the part
    measures = [m(0, start=True), m(1, end=True, endings=(1,)), m(2, endings=(2,)), m(3),
                m(4), m(5)]
    measures[3].double_bar = True
    order, parts = band.expand_repeats(measures)
    assert order == [0, 1, 0, 2, 3, 4, 5]
    assert [order[p] for p in parts] == [0, 0, 4]


def test_read_abc_tune_lays_out_pickups_repeats_and_sections():
    song = band.read_abc_tune(TUNE, 4, "test/7")
    assert song.plan.form == "i1 A4 A4 B4 B4"
    assert song.n_bars == 17 and song.end == 17 * 16
    assert song.plan.key.name == "G major" and band.meter_name(song) == "4/4"
    (melody,) = song.tracks
    assert melody.role == "melody"
    assert melody.notes[0].tolist()[:3] == [12, 4, 62]  # the pickup D ends bar 0
    chords = {c.onset: c.name for c in song.plan.chords}
    assert chords[0] == "G"  # the intro bar takes the first chord
    assert chords[32] == "D" and chords[40] == "D7" and chords[16 * 5] == "G"
    assert chords[16 * 12] == "D7/F#" and chords[16 * 16] == "G"  # 1st and 2nd endings
    assert song.tempos[0].qpm == band.NOTTINGHAM_QPM["4/4"]


def test_read_abc_tune_skips_meter_changes_with_a_reason():
    tune = TUNE.replace("|:B2|", "|:B2|\nM:3/4\n")
    with pytest.raises(band.BandError, match=r"meter changes \(3/4, 4/4\)"):
        band.read_abc_tune(tune)


@needs_mma
def test_render_is_on_the_song_grid_with_drums_and_bass_on_the_roots():
    # C C | F F | G C ...: the chord changes at bar 2 must move the bass there, not later
    sections = [Section(0, 4, "A"), Section(4, 4, "B")]
    song = chart_song([(0, 0, 0, "maj", 0), (2, 0, 5, "maj", 5), (4, 0, 7, "maj", 7),
                       (5, 0, 0, "maj", 0), (6, 0, 9, "min", 9), (7, 0, 0, "maj", 0)], sections)
    groove = band.Groove("PopBallad", "ballad", "stdlib/popballad", 4, ("4/4",),
                         ("PopBallad", "PopBalladPlus"), (None, None), None, None)
    tracks = band.render_tracks(song, groove, rnd_seed=1)
    drums = [t for t in tracks if t.role == "drums"]
    assert drums and all(t.is_drum for t in drums)
    assert min(int(t.notes[:, START].min()) for t in drums) == 0  # no count-in, no offset
    assert all(int(t.notes[:, START].max()) < song.end for t in tracks)
    bass = np.concatenate([t.notes for t in tracks if t.role == "bass"])
    roots = [0, 0, 5, 5, 7, 0, 9, 0]
    at_bar = [sorted({int(p) % 12 for s, _, p, _ in bass if b * 16 <= s < b * 16 + 2})
              for b in range(8)]
    on_root = [roots[b] in pcs for b, pcs in enumerate(at_bar)]
    assert np.mean(on_root) >= 0.75
    assert 5 in at_bar[2] and 0 not in at_bar[2]  # the change at bar 2 is heard at bar 2


@needs_mma
def test_groove_check_passes_a_good_groove_and_catches_a_riff_bass():
    assert band._check_groove(EIGHT_BEAT) == []
    riff = band.Groove("HipHop", "hiphop", "alexis/hiphop", 4, ("4/4",), ("HipHop",), (None,))
    (problem,) = band._check_groove(riff)
    assert "ignores the chords" in problem
    wrong_time = band.Groove("8Beat", "waltz", "stdlib/8beat", 3, ("3/4",), ("8Beat",), (None,))
    assert any("time" in p for p in band._check_groove(wrong_time))


@needs_mma
def test_render_is_deterministic_for_a_seed():
    song = chart_song([(0, 0, 0, "maj", 0), (1, 0, 9, "min", 9)],
                      [Section(0, 2, "A"), Section(2, 2, "B")], melody=True)
    a = band.band_song(song, "test/1", "swing", seed=4)
    b = band.band_song(song, "test/1", "swing", seed=4)
    assert a.source == b.source and [t.name for t in a.tracks] == [t.name for t in b.tracks]
    assert all(np.array_equal(x.notes, y.notes) for x, y in zip(a.tracks, b.tracks))


@needs_mma
def test_band_song_keeps_the_melody_plan_and_real_piano_when_chosen():
    song = chart_song([(0, 0, 0, "maj", 0), (2, 0, 7, "dom7", 7)],
                      [Section(0, 2, "A"), Section(2, 2, "B")], melody=True)
    piano = np.array([[0, 8, 60, 70], [16, 8, 62, 70]], dtype=np.int32)
    song.tracks.append(Track("PIANO", 0, False, piano, role="keys"))
    out = band.band_song(song, "test/2", "ballad", seed=0, real_piano=True)
    assert out.plan is song.plan and out.role_map == "band" and out.style == "ballad"
    assert np.array_equal(out.tracks[0].notes, song.tracks[0].notes)
    assert out.tracks[0].role == "melody"
    keys = [t for t in out.tracks if t.role == "keys"]
    assert len(keys) == 1 and np.array_equal(keys[0].notes, piano)  # mma's keys left out
    assert {t.role for t in out.tracks} <= set(band.ROLE_ORDER)
    assert any(t.role == "drums" for t in out.tracks)


def test_list_entries_needs_a_band_root(tmp_path):
    with pytest.raises(PrepareError, match="band corpus root"):
        band.list_entries(tmp_path)


@needs_data
@needs_mma
def test_list_entries_ids_splits_and_styles(tmp_path):
    (tmp_path / "pop909").mkdir()
    (tmp_path / "pop909" / "034").symlink_to(DATA / "pop909" / "034")  # a 3/4 song
    (tmp_path / "pop909" / "001").symlink_to(DATA / "pop909" / "001")
    abc = tmp_path / band.NOTTINGHAM_DIR
    abc.mkdir(parents=True)
    (abc / "waltzes.abc").symlink_to(DATA / band.NOTTINGHAM_DIR / "waltzes.abc")
    entries = {e.id: e for e in band.list_entries(tmp_path)}
    assert entries["band/pop909/034"].style == "waltz"
    assert entries["band/pop909/001"].style in band.families_for("4/4")
    tune = entries["band/nottingham/waltzes/1"]
    assert tune.split == split_of("nottingham/waltzes/1") and tune.style == "waltz"
    assert Path(tune.path).name == "waltzes.abc"
    from structdiff.data.adapters import pop909

    assert entries["band/pop909/001"].split == next(
        e.split for e in pop909.list_entries(tmp_path / "pop909") if e.id == "pop909/001")


@needs_data
@needs_mma
def test_a_nottingham_tune_end_to_end():
    path = DATA / band.NOTTINGHAM_DIR / "hpps.abc"
    entry = CorpusEntry("band/nottingham/hpps/6", str(path), "latin", "train")
    song = band.read_entry(entry, 4, seed=0)
    assert song.plan.form == "i1 A8 A8 B8 B8"  # Beaux of Oakhill: AABB with pickups
    assert song.style == "latin" and song.split == "train" and song.role_map == "band"
    roles = [t.role for t in song.tracks]
    assert roles[0] == "melody" and {"bass", "drums"} <= set(roles)
    assert all(int(t.notes[:, START].max()) < song.end for t in song.tracks)


@needs_data
@needs_mma
def test_a_pop909_song_end_to_end():
    from structdiff.data.adapters.pop909 import read_pop909

    folder = DATA / "pop909" / "001"
    try:
        source = read_pop909(folder, 4)
    except ValueError as e:
        pytest.skip(f"pop909/001 does not read: {e}")
    entry = CorpusEntry("band/pop909/001", str(folder), "funk", "train")
    song = band.read_entry(entry, 4, seed=0)
    assert song.plan.sections == source.plan.sections
    assert song.plan.chords == source.plan.chords and song.plan.key == source.plan.key
    assert song.n_bars == source.n_bars and song.end == source.end
    melody = [t for t in song.tracks if t.role == "melody"]
    assert len(melody) == 1 and np.array_equal(
        melody[0].notes, next(t.notes for t in source.tracks if t.role == "melody"))
    assert song.style == "funk" and {"bass", "drums"} <= {t.role for t in song.tracks}
