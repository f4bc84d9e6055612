import os
import stat

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib import colormaps

from structdiff.data.io import read_song
from structdiff.data.song import Chord, Key, Plan, Section, Song, Tempo, TimeSignature, Track
from structdiff.render import Layout, pitch_name, place_labels, render_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DPI = 80


def make_song(n_bars: int = 4, drums: bool = True, notes_per_bar: int = 4) -> Song:
    """Melody and bass in 4/4 on a 16th grid; kick, snare and hi-hat when `drums`."""
    bar = 16
    step = bar // notes_per_bar
    starts = np.arange(0, n_bars * bar, step)
    scale = np.array([60, 62, 64, 65, 67, 69, 71, 72])
    melody = np.stack([starts, np.full_like(starts, step), scale[np.arange(len(starts)) % 8],
                       np.full_like(starts, 127)], 1)
    bass_starts = np.arange(0, n_bars * bar, 8)
    bass = np.stack([bass_starts, np.full_like(bass_starts, 8),
                     np.where(bass_starts % 32 < 16, 36, 43), np.full_like(bass_starts, 100)], 1)
    tracks = [Track("Flute", 73, False, melody, role="melody"),
              Track("Bass", 33, False, bass, role="bass")]
    if drums:
        hits = [(s, 36) for s in range(0, n_bars * bar, 8)]
        hits += [(s, 38) for s in range(4, n_bars * bar, 8)]
        hits += [(s, 42) for s in range(0, n_bars * bar, 2)]
        kit = np.array([(s, 1, p, 90) for s, p in sorted(hits)])
        tracks.append(Track("Drums", 0, True, kit, role="drums"))
    return Song(tracks=tracks, bars=np.arange(0, n_bars * bar, bar), end=n_bars * bar,
                time_signatures=[TimeSignature(0, 4, 4)], tempos=[Tempo(0, 110.0)],
                key_signature=Key(0, "major"), source="/data/test song.mid")


def make_plan(song: Song) -> Plan:
    progression = [(0, "maj"), (7, "dom7")]
    chords = [Chord(int(b), 16, *progression[i % 2], progression[i % 2][0])
              for i, b in enumerate(song.bars)]
    half = song.n_bars // 2
    return Plan(key=Key(0, "major"), chords=chords,
                sections=[Section(0, half, "A"), Section(half, song.n_bars - half, "B")])


def read_png(path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return mpimg.imread(path)


def test_render_draws_notes_plan_and_drums_into_a_png(tmp_path):
    song = make_song()
    path = render_png(song, tmp_path / "out" / "song.png", plan=make_plan(song), dpi=DPI)
    assert path == tmp_path / "out" / "song.png"
    assert path.stat().st_size > 10_000
    image = read_png(path)
    assert image.shape[1] == Layout().min_width * DPI  # a 4-bar song gets the narrowest figure
    assert 4 * DPI < image.shape[0] < 12 * DPI
    # The melody (full velocity, so fully opaque) fills whole rectangles with its colour.
    flute = np.asarray(colormaps["tab10"](0)[:3])
    assert (np.abs(image[..., :3] - flute).max(axis=-1) < 0.01).sum() > 200
    assert sorted(p.name for p in path.parent.iterdir()) == ["song.png"]  # no temp file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not a private temp file


def test_render_without_plan_leaves_out_the_header(tmp_path):
    song = make_song(drums=False)
    assert song.plan is None
    bare = read_png(render_png(song, tmp_path / "bare.png", dpi=DPI))
    song.plan = make_plan(song)  # used when no plan is passed
    planned = read_png(render_png(song, tmp_path / "planned.png", dpi=DPI))
    assert bare.shape[1] == planned.shape[1]
    assert bare.shape[0] < planned.shape[0]


def test_long_song_width_is_capped(tmp_path):
    song = make_song(n_bars=300, notes_per_bar=8)  # 2400 melody + 600 bass notes + drums
    image = read_png(render_png(song, tmp_path / "long.png", plan=make_plan(song), dpi=20))
    assert image.shape[1] == Layout().max_width * 20


def test_render_chorale(tmp_path):
    song = read_song("music21:bach/bwv66.6")
    path = render_png(song, tmp_path / "bwv66.6.png", dpi=DPI)
    assert path.stat().st_size > 10_000
    assert read_png(path).shape[1] == Layout().min_width * DPI


def test_render_rejects_bad_arguments(tmp_path):
    song = make_song()
    with pytest.raises(ValueError, match="must end in .png"):
        render_png(song, tmp_path / "song.jpg")
    with pytest.raises(ValueError, match="dpi must be > 0, got 0"):
        render_png(song, tmp_path / "song.png", dpi=0)
    assert list(tmp_path.iterdir()) == []


def test_place_labels_staggers_then_skips_overlaps():
    x = np.array([0.0, 1.0, 2.0, 10.0])
    widths = np.array([3.0, 3.0, 3.0, 1.0])
    assert place_labels(x, widths) == [0, None, None, 0]
    assert place_labels(x, widths, rows=2) == [0, 1, None, 0]


def test_pitch_name():
    assert [pitch_name(p) for p in (60, 61, 21, 127)] == ["C4", "C#4", "A0", "G9"]
