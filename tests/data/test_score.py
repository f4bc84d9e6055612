import pytest

from structdiff.data.io import read_song, resolve_path
from structdiff.data.song import Key, MusicFileError


def test_chorale_from_musicxml_has_pickup_parts_and_fermatas():
    song = read_song("music21:bach/bwv66.6")
    assert [t.name for t in song.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [t.role for t in song.tracks] == ["soprano", "alto", "tenor", "bass"]
    # one-beat pickup, then 4/4 bars
    assert song.bars[:3].tolist() == [0, 4, 20]
    assert song.key_signature.tonic == Key(6, "minor").tonic  # three sharps: A major / F# minor
    assert len(song.fermatas) >= 4
    assert song.source == "music21:bach/bwv66.6"


def test_kern_file_reads():
    path = resolve_path("music21:palestrina/Agnus_01")
    assert path.suffix == ".krn"
    song = read_song(path)
    assert len(song.tracks) >= 3 and all(t.n_notes > 10 for t in song.tracks)
    assert song.role_map == "satb"


def test_string_quartet_gets_voice_roles():
    song = read_song("music21:haydn/opus74no1/movement3")
    roles = [t.role for t in song.tracks]
    assert roles == ["soprano", "alto", "tenor", "bass"]
    assert song.time_signatures[0].numerator == 3


def test_five_voice_madrigal_uses_fifth_slot():
    song = read_song("music21:monteverdi/madrigal.3.1")
    assert sorted(t.role for t in song.tracks) == sorted(
        ["soprano", "alto", "tenor", "bass", "quintus"]
    )


def test_broken_musicxml_is_a_one_line_error(tmp_path):
    path = tmp_path / "broken.musicxml"
    path.write_text("<score-partwise><part id='P1'><measure")
    with pytest.raises(MusicFileError) as info:
        read_song(path)
    assert "\n" not in str(info.value)


def test_unknown_corpus_work():
    with pytest.raises(MusicFileError, match="no work named"):
        read_song("music21:nobody/nothing")


def test_repeats_are_written_out():
    """bwv379 repeats its first section (the Stollen, 5 bars): 9 bars printed, 14 played."""
    import music21

    from structdiff.data.score import song_from_music21

    path = resolve_path("music21:bach/bwv379")
    played = read_song(path)
    printed = song_from_music21(music21.converter.parse(str(path)), expand_repeats=False)
    assert (played.n_bars, printed.n_bars) == (14, 9)
    soprano = played.tracks[0].notes
    opening = soprano[soprano[:, 0] < played.bars[2]]
    shift = played.bars[5] - played.bars[0]
    again = soprano[(soprano[:, 0] >= shift) & (soprano[:, 0] < shift + played.bars[2])]
    assert len(opening) and again[:, 2].tolist() == opening[:, 2].tolist()
