"""The POP909 adapter: form strings, Harte chords, alignment, a song folder built in code, and
real songs read with their human plan (those skip when /work/shared/data/pop909 is absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import miditoolkit
import numpy as np
import pytest

from structdiff.analysis.schema import analysis_dict, plan_from_dict
from structdiff.data.adapters import pop909
from structdiff.data.adapters.pop909 import (
    Pop909Error,
    align_form,
    harte_chord,
    parse_form,
    read_chord_lines,
    read_forms,
    read_pop909,
    read_pop909_measured,
    seconds_to_beats,
)
from structdiff.data.corpus import SPLITS, split_of
from structdiff.data.plan_constraints import parse_form as parse_plan_form
from structdiff.data.plan_tensor import PlanGrid, decode_plan, encode_song_plan, letter_labels
from structdiff.data.prepare import CorpusEntry, PrepareError
from structdiff.data.song import Chord, MusicFileError, Plan, Section

POP909 = Path("/work/shared/data/pop909")
needs_corpus = pytest.mark.skipif(
    not (POP909 / "001" / "001.mid").is_file(), reason=f"no POP909 corpus at {POP909}"
)


# --- form strings and chords ---------------------------------------------------------------


def test_parse_form_keeps_case_and_repeats():
    sections = parse_form("i4A4B8A4A4b4o3\n")
    assert [(s.start_bar, s.n_bars, s.label) for s in sections] == [
        (0, 4, "i"), (4, 4, "A"), (8, 8, "B"), (16, 4, "A"), (20, 4, "A"), (24, 4, "b"),
        (28, 3, "o"),
    ]
    # the labels round-trip through the plan's form string and its parser
    assert parse_plan_form(Plan(sections=sections).form) == sections
    assert parse_form("i4 A12 x1") == [Section(0, 4, "i"), Section(4, 12, "A"), Section(16, 1, "x")]


@pytest.mark.parametrize("text", ["", "A0", "4A", "A4?", "AB", "A4B"])
def test_parse_form_rejects_bad_strings(text):
    with pytest.raises(ValueError, match="form"):
        parse_form(text)


@pytest.mark.parametrize(("name", "expected"), [
    ("C:maj", (0, "maj", 0)),
    ("A:min7", (9, "min7", 9)),
    ("G:7", (7, "dom7", 7)),
    ("B:hdim7", (11, "hdim7", 11)),
    ("F#:dim7", (6, "dim7", 6)),
    ("Eb:maj7", (3, "maj7", 3)),
    ("Ab:aug", (8, "aug", 8)),
    ("Bb:sus2", (10, "sus", 10)),
    ("C#:min7/b7", (1, "min7", 11)),
    ("B:maj/3", (11, "maj", 3)),
    ("D:9", (2, "dom7", 2)),
    ("Eb:maj9", (3, "maj7", 3)),
    ("F:min9", (5, "min7", 5)),
    ("A:maj6", (9, "maj", 9)),
    ("E:min6", (4, "min", 4)),
    ("A:minmaj7", (9, "min", 9)),
    ("G:sus4(b7)", (7, "sus", 7)),
    ("E:maj(b7)", (4, "dom7", 4)),
    ("C:maj(9)/5", (0, "maj", 7)),
    ("F:min(9)", (5, "min", 5)),
    ("B:sus4(b7,", (11, "sus", 11)),  # cut off in the corpus
    ("N", (0, "N", 0)),
])
def test_harte_chord_maps_onto_the_vocabulary(name, expected):
    assert harte_chord(name) == expected


def test_harte_chord_bass_and_errors():
    assert harte_chord("C#:min(2)/", bass=3) == (1, "min", 3)  # cut-off degree: the column's
    assert harte_chord("C:maj", bass=11) == (0, "maj", 0)  # a readable name wins
    for bad in ("C:foo", "H:maj", "C:maj/x", "Cmaj"):
        with pytest.raises(ValueError, match="Harte chord"):
            harte_chord(bad)


def test_read_chord_lines_takes_the_odd_lines_of_the_corpus(tmp_path):
    path = tmp_path / "finalized_chord.txt"
    path.write_text("B:maj [3, 6, 11] 11 2 \nN []  7\nAb:maj [0, 3, 8] 8 4 2\n"
                    "Bb:sus4(b7, 9) [0, 2, 5, 8, 10] 10 1\nG:sus4(b7)\x01 [0, 2, 5, 7] 7 3\n\n")
    lines = read_chord_lines(path)
    assert [(c.name, c.bass, c.beats) for c in lines] == [
        ("B:maj", 11, 2), ("N", None, 7), ("Ab:maj", 8, 4), ("Bb:sus4(b7, 9)", 10, 1),
        ("G:sus4(b7)", 7, 3),
    ]
    assert lines[0].pitch_classes == (3, 6, 11)
    path.write_text("B:maj 11 2\n")
    with pytest.raises(Pop909Error, match="line 1"):
        read_chord_lines(path)


# --- grid and alignment --------------------------------------------------------------------


def test_seconds_to_beats_interpolates_and_extrapolates():
    beat_times = np.array([1.0, 1.5, 2.5, 3.0])  # beats of 0.5, 1.0 and 0.5 s
    beats = seconds_to_beats(np.array([0.5, 1.25, 2.0, 3.0, 3.25]), beat_times)
    np.testing.assert_allclose(beats, [-1.0, 0.5, 1.5, 3.0, 3.5])


def _melody(n_bars: int, seed: int = 0) -> np.ndarray:
    """melody.txt-like notes `[N, 3]` (start, duration, pitch) in 16ths: 3 notes a bar."""
    rng = np.random.default_rng(seed)
    starts = np.array([16 * b + o for b in range(n_bars) for o in (0, 6, 8)])
    return np.stack([starts, np.full(len(starts), 2), rng.integers(60, 72, len(starts))], axis=1)


def test_align_form_finds_the_offset_and_a_timeline_that_parts():
    melody = _melody(32)
    midi = melody[:, 0] + 20  # the form starts 5 beats into the MIDI, one note a 16th late
    midi[5] += 1
    a = align_form(melody, midi, melody[:, 2])
    assert (a.offset, a.score, a.worst_window, a.beat) == (20, 1.0, 1.0, 5)

    # two extra beats in the MIDI from bar 16 on: the second half no longer matches
    parted = np.where(melody[:, 0] >= 256, midi + 8, midi)
    b = align_form(melody, parted, melody[:, 2])
    assert b.worst_window < 0.2 and b.score < 0.6 and b.worst_bar in (0, 16)


# --- a song folder built in code -----------------------------------------------------------

CHORDS = [("C:maj", [0, 4, 7], 0), ("A:min7", [0, 4, 7, 9], 9), ("G:7", [2, 5, 7, 11], 7),
          ("F:maj/3", [0, 5, 9], 9)]


def _write_song(folder: Path, *, form="i1A2b1", chords=None, chord_beats=4, melody_shift=0,
                bar_lines_at_start=True, beats_per_bar=4, melody_pitch_shift=0) -> np.ndarray:
    """A POP909-like folder: one lead-in bar, 4 bars of music under `form`, one tail bar, on
    irregular beats; returns the melody notes `[N, 3]` written to melody.txt (16ths from the
    form's start)."""
    folder.mkdir(parents=True, exist_ok=True)
    song_id = folder.name
    n_form = 4
    n_beats = (n_form + 2) * beats_per_bar
    rng = np.random.default_rng(1)
    beat_times = 0.2 + np.concatenate([[0.0], np.cumsum(0.5 + rng.uniform(-0.04, 0.04,
                                                                          n_beats - 1))])
    lead = beats_per_bar  # the form starts after one bar
    with open(folder / "beat_midi.txt", "w") as f:
        for i, t in enumerate(beat_times):
            k = i - (0 if bar_lines_at_start else 1)
            half = k % (3 if beats_per_bar == 3 else 2) == 0
            bar = k % (6 if beats_per_bar == 3 else 4) == 0
            f.write(f"{t} {float(half)} {float(bar)}\n")

    melody = _melody(n_form, seed=2)
    melody[:, 0] = melody[:, 0] * beats_per_bar // 4
    rows, t = [], 0
    for start, length, pitch in melody.tolist():
        if start > t:
            rows.append(f"0 {start - t}")
        rows.append(f"{pitch + melody_pitch_shift} {length}")
        t = start + length
    (folder / "melody.txt").write_text("\n".join(rows) + "\n")

    def seconds(beat):
        return np.interp(beat, np.arange(n_beats), beat_times)

    midi = miditoolkit.MidiFile(ticks_per_beat=480)
    midi.tempo_changes = [miditoolkit.TempoChange(120.0, 0)]  # 960 ticks a second

    def note(pitch, beat, beats):
        start = round(seconds(beat) * 960)
        return miditoolkit.Note(90, int(pitch), start, round(seconds(beat + beats) * 960))

    form_beat = lead + melody_shift / 4
    mel = [note(p, form_beat + s / 4, d / 4) for s, d, p in melody.tolist()]
    mel += [note(50, 1.0, 1.0), note(51, lead + n_form * beats_per_bar + 1, 1.0)]  # dropped
    piano = []
    for bar in range(n_form):
        name, pcs, _ = CHORDS[bar % len(CHORDS)]
        for beat in (0, 2):
            piano += [note(48 + pc, lead + bar * beats_per_bar + beat, 1.5) for pc in pcs]
    bridge = [note(72, lead + 1, 2.0), note(77, lead + n_form * beats_per_bar - 1, 3.0)]
    for name, notes in (("MELODY", mel), ("BRIDGE", bridge), ("PIANO", piano)):
        inst = miditoolkit.Instrument(0, name=name)
        inst.notes = notes
        midi.instruments.append(inst)
    midi.dump(str(folder / f"{song_id}.mid"))

    chords = chords if chords is not None else [
        f"{name} {pcs} {bass} {chord_beats}" for name, pcs, bass in CHORDS
    ][:n_form] + ["C:maj [0, 4, 7] 0 2"]  # runs past the form's end
    (folder / "finalized_chord.txt").write_text("\n".join(chords) + "\n")
    (folder / "human_label1.txt").write_text(form)
    (folder / "human_label2.txt").write_text("i1A3")
    (folder / "analyzed_key.txt").write_text("C:maj\n")
    (folder / "tempo.txt").write_text("120")
    return melody


def test_read_a_song_folder_built_in_code(tmp_path):
    melody = _write_song(tmp_path / "001")
    measured = read_pop909_measured(tmp_path / "001")
    song = measured.song
    assert song.end == 64 and song.bars.tolist() == [0, 16, 32, 48]
    assert [ts.numerator for ts in song.time_signatures] == [4]
    assert song.tempo_qpm == 120.0 and song.source == "pop909/001"
    assert (song.role_map, song.style) == ("band", "pop")
    assert [(t.name, t.role, t.program) for t in song.tracks] == [
        ("MELODY", "melody", 80), ("BRIDGE", "strings", 48), ("PIANO", "keys", 0)]
    mel = song.tracks[0].notes
    # the lead-in and tail notes are gone; the rest sits where melody.txt has it
    np.testing.assert_array_equal(mel[:, [0, 2]], melody[:, [0, 2]])
    assert measured.dropped_notes == 2 and measured.lead_in_beats == 4 and measured.on_downbeat
    assert song.tracks[1].notes[-1, 0] + song.tracks[1].notes[-1, 1] == song.end  # cut at end
    plan = song.plan
    assert plan.form == "i1 A2 b1" and plan.phrase_ends == [0, 2, 3]
    assert plan.key.name == "C major"
    assert [(c.onset, c.duration, c.name) for c in plan.chords] == [
        (0, 16, "C"), (16, 16, "Am7"), (32, 16, "G7"), (48, 16, "F/A")]
    assert measured.chord_fit == 1.0


def test_steps_per_quarter_scales_the_grid(tmp_path):
    melody = _write_song(tmp_path / "001")
    song = read_pop909(tmp_path / "001", steps_per_quarter=8)
    assert song.end == 128 and song.plan.chords[1] == Chord(32, 32, 9, "min7", 9)
    np.testing.assert_array_equal(song.tracks[0].notes[:, 0], melody[:, 0] * 2)


def test_form_start_off_the_beat_files_bar_lines_is_kept(tmp_path):
    _write_song(tmp_path / "001", bar_lines_at_start=False)
    measured = read_pop909_measured(tmp_path / "001")
    assert not measured.on_downbeat and measured.song.n_bars == 4


def test_three_four_from_the_beat_file(tmp_path):
    _write_song(tmp_path / "034", beats_per_bar=3, chord_beats=3,
                chords=[f"{n} {p} {b} 3" for n, p, b in CHORDS])
    song = read_pop909(tmp_path / "034")
    assert song.time_signatures[0].numerator == 3 and song.bars.tolist() == [0, 12, 24, 36]
    assert [c.duration for c in song.plan.chords] == [12, 12, 12, 12]


@pytest.mark.parametrize(("change", "reason"), [
    (dict(melody_shift=2), "off the beat"),
    (dict(melody_pitch_shift=5), "alignment"),
    (dict(form="i1A2b1A4", chords=[f"C:maj [0, 4, 7] 0 {4 * 8}"]), "too long"),
    (dict(chords=["C:maj [0, 4, 7] 0 8"]), "chords: finalized_chord.txt lasts 8 beats"),
    (dict(chords=[f"{n} {p} {b} 3" for n, p, b in CHORDS]), "meter: .* bars of 3 beats"),
    (dict(chords=["C:foo [0] 0 16"]), "Harte chord"),
    (dict(form="i1A2b"), "human_label1.txt"),
])
def test_songs_that_do_not_fit_are_skipped_with_a_reason(tmp_path, change, reason):
    _write_song(tmp_path / "001", **change)
    with pytest.raises(Pop909Error, match=reason):
        read_pop909(tmp_path / "001")


def test_missing_and_broken_files(tmp_path):
    _write_song(tmp_path / "001")
    (tmp_path / "001" / "melody.txt").unlink()
    with pytest.raises(Pop909Error, match="missing 001/melody.txt"):
        read_pop909(tmp_path / "001")
    _write_song(tmp_path / "002")
    (tmp_path / "002" / "002.mid").write_bytes(b"MThd not a midi file")
    with pytest.raises(MusicFileError, match="002.mid"):
        read_pop909(tmp_path / "002")
    _write_song(tmp_path / "003")
    (tmp_path / "003" / "beat_midi.txt").write_text("0.5 1 1\n")
    with pytest.raises(Pop909Error, match="beat_midi.txt"):
        read_pop909(tmp_path / "003")


# --- corpus adapter ------------------------------------------------------------------------


def test_list_entries_and_read_entry(tmp_path):
    _write_song(tmp_path / "001")
    (tmp_path / "002").mkdir()  # no 002.mid: not a song
    (tmp_path / "notes").mkdir()
    entries = pop909.list_entries(tmp_path)
    assert entries == [CorpusEntry("pop909/001", str(tmp_path / "001"), "pop",
                                   split_of("pop909/001"))]
    song = pop909.read_entry(entries[0], 4, 0)
    assert song.split == entries[0].split and song.plan.form == "i1 A2 b1"
    with pytest.raises(PrepareError, match="POP909"):
        pop909.list_entries(tmp_path / "002")


def test_committed_split_files_follow_the_hash_rule(tmp_path):
    committed = pop909.read_splits()
    assert len(committed) == 909
    assert all(split_of(i) == s for i, s in committed.items())
    assert pop909.write_splits(tmp_path) == {
        s: sum(v == s for v in committed.values()) for s in SPLITS}
    for split in SPLITS:
        assert (tmp_path / f"{split}.txt").read_text() == (
            pop909.SPLIT_DIR / f"{split}.txt").read_text()


# --- real songs ----------------------------------------------------------------------------


def _first_chord(folder: Path):
    line = read_chord_lines(folder / "finalized_chord.txt")[0]
    return harte_chord(line.name, line.bass)


@needs_corpus
@pytest.mark.parametrize(("song_id", "beats_per_bar"), [("001", 4), ("002", 4), ("034", 3)])
def test_real_songs_carry_their_human_plan(song_id, beats_per_bar):
    folder = POP909 / song_id
    song = read_pop909(folder)
    plan = song.plan
    form, _ = read_forms(folder)
    assert plan.sections == form
    assert song.n_bars == sum(s.n_bars for s in plan.sections)
    assert song.time_signatures[0].numerator == beats_per_bar
    assert song.end == song.n_bars * beats_per_bar * 4
    assert plan.phrase_ends == [s.start_bar + s.n_bars - 1 for s in plan.sections]
    # the first melody notes are melody.txt's (same pitch, onset within a 16th)
    expected = pop909.read_melody_txt(folder / "melody.txt")[:12]
    melody = song.tracks[0].notes
    assert song.tracks[0].role == "melody"
    assert np.array_equal(melody[:12, 2], expected[:, 2])
    assert np.abs(melody[:12, 0] - expected[:, 0]).max() <= 1
    # the chord at bar 0 is finalized_chord.txt's first one
    c = plan.chords[0]
    assert c.onset == 0 and (c.root, c.quality, c.bass) == _first_chord(folder)
    assert plan.chords[-1].onset + plan.chords[-1].duration <= song.end
    assert all(n.notes[:, 0].min() >= 0 and (n.notes[:, 0] + n.notes[:, 1]).max() <= song.end
               for n in song.tracks)
    # the plan survives the plan JSON and the plan tensor with its lower-case labels
    assert plan_from_dict(analysis_dict(song, plan)).sections == plan.sections
    decoded = decode_plan(encode_song_plan(song).x, PlanGrid.from_song(song), plan.key,
                          letter_labels(plan.sections))
    assert decoded.sections == plan.sections


@needs_corpus
def test_real_song_with_a_missing_file_is_skipped(tmp_path):
    folder = tmp_path / "001"
    shutil.copytree(POP909 / "001", folder)
    (folder / "finalized_chord.txt").unlink()
    with pytest.raises(Pop909Error, match="missing 001/finalized_chord.txt"):
        pop909.read_entry(CorpusEntry("pop909/001", str(folder), "pop", "train"))
