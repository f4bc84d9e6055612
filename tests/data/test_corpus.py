from pathlib import Path

import pytest

from structdiff.data.corpus import (
    DATASET_DIR,
    SPLITS,
    STYLES,
    corpus_style,
    list_music_files,
    music21_corpus,
    read_split,
    split_group,
    split_of,
    write_splits,
)


@pytest.fixture(scope="module")
def corpus_ids():
    return [file_id for file_id, _ in music21_corpus()]


def test_corpus_lists_multivoice_scores_once(corpus_ids):
    assert len(corpus_ids) > 1500
    assert corpus_ids == sorted(corpus_ids)
    assert "bach/bwv66.6.mxl" in corpus_ids
    assert any(i.startswith("palestrina/") and i.endswith(".krn") for i in corpus_ids)
    assert any(i.startswith("mozart/k458/") for i in corpus_ids)
    assert not any(i.endswith((".abc", ".rntxt", ".mus", ".musx")) for i in corpus_ids)
    left_out = ("demos/", "essenFolksong/", "bach/choraleAnalyses")
    assert not any(i.startswith(left_out) for i in corpus_ids)
    # bwv277 ships as .mxl and .krn: one is kept, the MusicXML
    assert "bach/bwv277.mxl" in corpus_ids and "bach/bwv277.krn" not in corpus_ids
    assert "beethoven/opus18no1/movement1.krn" not in corpus_ids


def test_styles_per_collection():
    assert corpus_style("bach/bwv66.6.mxl") == "chorale"
    assert corpus_style("bach/bwv846.mxl") == "classical_other"
    assert corpus_style("palestrina/Agnus_00.krn") == "renaissance_mass"
    assert corpus_style("monteverdi/madrigal.3.1.mxl") == "madrigal"
    assert corpus_style("trecento/PMFC_04-Cara mi donna.xml") == "medieval"
    assert corpus_style("haydn/opus74no1/movement1.mxl") == "string_quartet"
    assert corpus_style("mozart/k545/movement1_exposition.mxl") == "classical_other"
    with pytest.raises(ValueError, match="not an id"):
        corpus_style("essenFolksong/han1.abc")


def test_every_listed_file_has_a_known_style(corpus_ids):
    assert {corpus_style(i) for i in corpus_ids} == set(STYLES)


def test_split_rule_is_pinned_and_keeps_versions_together():
    # fixed values: the rule must never change silently (it would move files between splits)
    assert split_of("bach/bwv66.6.mxl") == "train"
    assert split_of("bach/bwv103.6.mxl") == "test"
    assert split_of("bach/bwv115.6.mxl") == "validation"
    assert split_of("palestrina/Agnus_00.krn") == "test"
    assert split_group("bach/bwv248.23-s.mxl") == split_group("bach/bwv248.23-2.mxl")
    assert split_of("bach/bwv248.23-s.mxl") == split_of("bach/bwv248.23-2.mxl")
    assert split_group("palestrina/Credo_63_a.krn") == "palestrina/Credo_63"
    assert split_group("palestrina/Agnus_00.krn") == "palestrina/Agnus_00"
    assert split_group("bach/bwv66.6.mxl") == "bach/bwv66.6"


def test_split_is_sha256_of_the_group():
    # recomputed here independently of the code under test
    import hashlib

    def bucket(group):
        return int.from_bytes(hashlib.sha256(group.encode()).digest()[:8], "big") % 100

    for file_id in ("bach/bwv66.6.mxl", "palestrina/Agnus_00.krn", "mozart/k80/movement1.mxl"):
        b = bucket(split_group(file_id))
        expected = "train" if b < 80 else "validation" if b < 90 else "test"
        assert split_of(file_id) == expected


def test_committed_split_files_match_the_rule(tmp_path, corpus_ids):
    counts = write_splits(tmp_path)
    for split in SPLITS:
        assert (tmp_path / f"{split}.txt").read_text() == (DATASET_DIR / f"{split}.txt").read_text()
    assert (tmp_path / "styles.tsv").read_text() == (DATASET_DIR / "styles.tsv").read_text()
    members = {split: read_split(split) for split in SPLITS}
    assert {s: len(m) for s, m in members.items()} == counts
    union = [i for m in members.values() for i in m]
    assert len(union) == len(set(union)), "splits overlap"
    assert sorted(union) == corpus_ids
    assert all(split_of(i) == split for split, m in members.items() for i in m)
    # roughly 80/10/10
    assert 0.75 < counts["train"] / len(corpus_ids) < 0.85
    assert min(counts["validation"], counts["test"]) > 0.05 * len(corpus_ids)


def test_list_music_files_recursive_any_case_sorted(tmp_path):
    for rel in ["b/z.MID", "a.mid", "b/a/x.krn", "song.MusicXML", "notes.txt", ".hidden.mid",
                ".git/c.mid", "b/._junk.mid", "c.midi", "d.mxl"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_music_files(tmp_path)]
    assert found == ["a.mid", "b/a/x.krn", "b/z.MID", "c.midi", "d.mxl", "song.MusicXML"]
    assert all(isinstance(p, Path) for p in list_music_files(tmp_path))
