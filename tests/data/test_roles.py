import numpy as np
import pytest

from structdiff.data.roles import RoleMapError, assign_roles, load_role_map
from structdiff.data.song import Song, Track


def _song(tracks):
    return Song(tracks=tracks, bars=np.array([0]), end=16, source="x.mid")


def _track(name, program, pitch, drum=False):
    return Track(name, program, drum, np.array([[0, 4, pitch, 80]], dtype=np.int32))


def test_band_roles_from_names_programs_and_drums():
    song = _song([
        _track("Lead Vocal", 0, 72), _track("", 33, 40), _track("", 2, 60),
        _track("Gtr", 0, 55), _track("", 49, 64), _track("", 0, 36, drum=True),
        _track("", 120, 60),
    ])
    assign_roles(song, "band")
    assert [t.role for t in song.tracks] == [
        "melody", "bass", "keys", "guitar", "strings", "drums", "keys"
    ]
    assert song.roles == ["melody", "bass", "keys", "guitar", "strings", "drums"]


def test_satb_by_pitch_when_names_say_nothing():
    song = _song([_track(f"P{i}", 0, p) for i, p in enumerate([48, 72, 60, 66])])
    assign_roles(song, "satb")
    assert [t.role for t in song.tracks] == ["bass", "soprano", "tenor", "alto"]


def test_satb_extra_parts_merge_into_nearest_slot():
    tracks = [_track(f"P{i}", 0, p) for i, p in enumerate([80, 74, 68, 62, 56, 50])]
    song = assign_roles(_song(tracks), "satb")
    assert len({t.role for t in song.tracks}) == 5
    assert all(t.role is not None for t in song.tracks)


def test_user_role_map_from_yaml(tmp_path):
    path = tmp_path / "duo.yaml"
    path.write_text("name: duo\nroles:\n  - name: high\n    programs: [[0, 63]]\n"
                    "  - name: low\n    names: ['bass']\n")
    song = assign_roles(_song([_track("Bass", 0, 40), _track("x", 10, 70)]), str(path))
    assert [t.role for t in song.tracks] == ["low", "high"]
    assert song.role_map == "duo"


def test_unknown_and_bad_role_maps(tmp_path):
    with pytest.raises(RoleMapError, match="unknown role map 'nope'.*satb"):
        load_role_map("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles: [{names: ['x']}]")
    with pytest.raises(RoleMapError, match="bad role map"):
        load_role_map(str(bad))


@pytest.mark.parametrize("names, programs, drums, expected", [
    (["MELODY", "BRIDGE", "PIANO"], [0, 0, 0], False, "band"),  # POP909: all program 0
    (["Violin I", "Violin II", "Viola", "Cello"], [40, 40, 41, 42], False, "satb"),
    (["Soprano", "Alto", "Tenor", "Bass"], [0, 0, 0, 0], False, "satb"),
    (["Track 1", "Track 2"], [0, 0], False, "satb"),
    (["Track 1", "Track 2"], [0, 0], True, "band"),
    (["Lead", "Rhythm"], [81, 29], False, "band"),
])
def test_choose_role_map_of_a_midi_file(names, programs, drums, expected):
    from structdiff.data.roles import choose_role_map

    notes = np.array([[0, 4, 60, 80]])
    tracks = [Track(n, p, False, notes) for n, p in zip(names, programs)]
    if drums:
        tracks.append(Track("Drums", 0, True, np.array([[0, 1, 36, 80]])))
    song = Song(tracks, np.array([0]), 16, source="song.mid")
    assert choose_role_map(song) == expected
