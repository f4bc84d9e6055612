import json
import multiprocessing
import os

import mido
import pytest

from structdiff.data.corpus import corpus_style, split_of
from structdiff.data.prepare import PrepareError, load_prepared, prepare

from ..conftest import note_msgs, write_mido

TIMING_KEYS = ("seconds", "files_per_s", "files_parsed", "shards")
needs_fork = pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork",
    reason="workers see a monkeypatched module only when forked",
)


def _scale(n, start=60, ticks=480):
    return [(i * ticks, (i + 1) * ticks, start + (i % 8), 80) for i in range(n)]


@pytest.fixture
def mixed_folder(tmp_path):
    """Three good MIDI files, three broken ones and a text file, in nested folders."""
    root = tmp_path / "in"
    (root / "pop").mkdir(parents=True)
    tempo = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0)]
    write_mido(
        root / "type1.mid",
        [tempo, note_msgs(_scale(16), 0, 0, "Piano"), note_msgs(_scale(8, 36, 960), 1, 33, "Bass")],
    )
    # type 0: one track, two channels (piano and strings), split into two tracks by the reader
    merged = sorted(
        [(t, 1, m) for t, m in _abs(note_msgs(_scale(16), 0, 0))]
        + [(t, 2, m) for t, m in _abs(note_msgs(_scale(4, 48, 1920), 2, 48))],
        key=lambda x: (x[0], x[1]),
    )
    msgs, now = list(tempo), 0
    for t, _, m in merged:
        msgs.append(m.copy(time=t - now))
        now = t
    write_mido(root / "pop" / "type0.mid", [msgs], type=0)
    drums = [(i * 240, i * 240 + 120, 36 if i % 2 else 42, 100) for i in range(32)]
    write_mido(
        root / "pop" / "drums.MID",
        [tempo, note_msgs(drums, 9, name="Drums"), note_msgs(_scale(8), 0, 73, "Flute")],
    )
    (root / "empty.mid").write_bytes(b"")
    (root / "text.mid").write_text("this is a text file, renamed\n")
    data = (root / "type1.mid").read_bytes()
    (root / "pop" / "truncated.mid").write_bytes(data[: len(data) // 2])
    (root / "readme.txt").write_text("not music")
    return root


def _abs(msgs):
    now = 0
    for m in msgs:
        now += m.time
        if not m.is_meta:
            yield now, m


GOOD = ["pop/drums.MID", "pop/type0.mid", "type1.mid"]
BAD = {
    "empty.mid": "empty file",
    "text.mid": "not a MIDI file",
    "pop/truncated.mid": "truncated or corrupt MIDI",
}


def _stable(report):
    return {k: v for k, v in report.items() if k not in TIMING_KEYS}


def test_prepare_loads_good_files_and_reports_bad_ones(mixed_folder, tmp_path):
    out = tmp_path / "out"
    report = prepare(mixed_folder, out, workers=2, analyze=False, shard_size=2, progress=False)
    assert (report["found"], report["loaded"], report["skipped"]) == (6, 3, 3)
    assert report["other_files_ignored"] == 1
    reasons = {x["file"]: x["reason"] for x in report["skipped_files"]}
    assert sorted(reasons) == sorted(BAD)
    for file, start in BAD.items():
        assert reasons[file].startswith(start), reasons[file]
        assert "\n" not in reasons[file] and str(mixed_folder) not in reasons[file]
    assert report["shards"] == {"total": 3, "written": 3, "reused": 0, "removed_stale": 0}

    songs = list(load_prepared(out))
    assert sorted(os.path.relpath(s.source, mixed_folder) for s in songs) == GOOD
    by_name = {os.path.basename(s.source): s for s in songs}
    assert [t.n_notes for t in by_name["type1.mid"].tracks] == [16, 8]
    assert sorted(t.program for t in by_name["type0.mid"].tracks) == [0, 48]
    drums = by_name["drums.MID"]
    assert [t.role for t in drums.tracks if t.is_drum] == ["drums"]
    assert all(s.split == split_of(os.path.relpath(s.source, mixed_folder)) for s in songs)

    md = (out / "report.md").read_text()
    assert "found: 6, loaded: 3, skipped: 3" in md
    assert all(f"`{file}`" in md for file in BAD)
    assert json.loads((out / "report.json").read_text()) == report
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["steps_per_quarter"] == 4
    assert len(manifest["shards"]) == 3 and sum(s["songs"] for s in manifest["shards"]) == 3


def test_rerun_skips_finished_shards_and_gives_the_same_report(mixed_folder, tmp_path):
    out = tmp_path / "out"
    first = prepare(mixed_folder, out, workers=1, analyze=False, shard_size=2, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    second = prepare(mixed_folder, out, workers=1, analyze=False, shard_size=2, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")} == stamps
    assert second["shards"]["reused"] == 3 and second["files_parsed"] == 0
    assert _stable(second) == _stable(first)

    # a changed file rewrites its own shard only
    (mixed_folder / "empty.mid").write_bytes((mixed_folder / "type1.mid").read_bytes())
    third = prepare(mixed_folder, out, workers=1, analyze=False, shard_size=2, progress=False)
    assert third["shards"]["written"] == 1 and third["shards"]["removed_stale"] == 1
    assert (third["loaded"], third["skipped"]) == (4, 2)
    assert len(list(out.glob("shard-*.npz"))) == 3


def test_changed_settings_rewrite_instead_of_mixing(mixed_folder, tmp_path):
    out = tmp_path / "out"
    prepare(mixed_folder, out, workers=1, analyze=False, progress=False)
    report = prepare(
        mixed_folder, out, workers=1, analyze=False, steps_per_quarter=8, progress=False
    )
    assert report["shards"]["written"] == 1 and report["shards"]["removed_stale"] == 1
    songs = list(load_prepared(out))
    assert len(songs) == 3 and {s.steps_per_quarter for s in songs} == {8}


def test_load_prepared_by_split_and_errors(mixed_folder, tmp_path):
    out = tmp_path / "out"
    prepare(mixed_folder, out, workers=1, analyze=False, progress=False)
    by_split = {split: len(list(load_prepared(out, split))) for split in ("train", "test")}
    expected = {split: sum(split_of(f) == split for f in GOOD) for split in ("train", "test")}
    assert by_split == expected
    with pytest.raises(ValueError, match="split must be one of"):
        load_prepared(out, "dev")
    with pytest.raises(PrepareError, match="no manifest.json"):
        load_prepared(tmp_path)
    with pytest.raises(PrepareError, match="no such folder"):
        prepare(tmp_path / "nowhere", out, progress=False)


@needs_fork
def test_a_crashing_worker_costs_only_its_file(mixed_folder, tmp_path, monkeypatch):
    import structdiff.data.io as io

    read_song = io.read_song

    def crash_on_type0(path, *args, **kwargs):
        if str(path).endswith("type0.mid"):
            os._exit(3)  # what a segfault in a parser looks like to the pool
        return read_song(path, *args, **kwargs)

    monkeypatch.setattr(io, "read_song", crash_on_type0)
    out = tmp_path / "out"
    report = prepare(mixed_folder, out, workers=2, analyze=False, shard_size=2, progress=False)
    reasons = {x["file"]: x["reason"] for x in report["skipped_files"]}
    assert "worker process died" in reasons["pop/type0.mid"]
    assert report["loaded"] == 2 and report["skipped"] == 4
    assert len(list(load_prepared(out))) == 2


@needs_fork
def test_analysis_errors_keep_the_song(mixed_folder, tmp_path, monkeypatch):
    import structdiff.analysis as analysis

    def broken(song):
        raise RuntimeError("analysis not ready\nsecond line")

    monkeypatch.setattr(analysis, "analyze", broken)
    report = prepare(mixed_folder, tmp_path / "out", workers=1, progress=False)
    assert report["loaded"] == 3
    assert [x["reason"] for x in report["analysis_errors"]] == [
        "RuntimeError: analysis not ready"
    ] * 3


def test_music21_entries_carry_style_and_split(tmp_path):
    from structdiff.data.prepare import CorpusEntry, _Job, _read_entry, music21_corpus

    file_id, path = next((i, p) for i, p in music21_corpus() if i == "bach/bwv66.6.mxl")
    entry = CorpusEntry(file_id, str(path), corpus_style(file_id), split_of(file_id))
    job = _Job(0, "shard-00000-0000000000", (entry,), str(tmp_path), 4, "auto", True, True)
    song, status = _read_entry(entry, job)
    assert song.source == "music21:bach/bwv66.6.mxl"
    assert (song.style, song.split) == ("chorale", "train")
    assert song.roles == ["soprano", "alto", "tenor", "bass"]
    assert status["loaded"] and "analysis_error" not in status
    assert song.plan is not None and song.plan.chords


def test_empty_folder_gives_an_empty_corpus(tmp_path):
    (tmp_path / "in").mkdir()
    report = prepare(tmp_path / "in", tmp_path / "out", workers=2, progress=False)
    assert (report["found"], report["loaded"], report["shards"]["total"]) == (0, 0, 0)
    assert list(load_prepared(tmp_path / "out")) == []


def test_prepare_command_reports_and_exits_0(mixed_folder, tmp_path, capsys):
    from structdiff.cli import main

    out = tmp_path / "cli_out"
    assert main(["prepare", str(mixed_folder), "--out", str(out), "--workers", "1",
                 "--no-analyze"]) == 0
    printed = capsys.readouterr().out
    assert "loaded 3 of 6 files, skipped 3" in printed
    report = (out / "report.md").read_text()
    assert all(name in report for name in BAD)
    assert main(["prepare", str(mixed_folder), "--out", str(out), "--workers", "0"]) == 2


def _many(folder, n):
    from structdiff.data.midi import write_midi
    from tests.debug_models import band_song

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_midi(band_song(4, shift=i % 12), folder / f"song{i:02d}.mid")
    return folder


def test_parts_prepared_apart_merge_into_the_corpus_of_one_run(tmp_path):
    from structdiff.data.prepare import merge_prepared

    corpus = _many(tmp_path / "in", 24)
    whole = prepare(corpus, tmp_path / "whole", workers=1, analyze=False, shard_size=4,
                    progress=False)
    parts = tmp_path / "parts"
    for i in range(3):  # three "machines", writing into one folder
        report = prepare(corpus, parts, workers=1, analyze=False, shard_size=4,
                         progress=False, shard=(i, 3))
        assert report["part"] == [i, 3]
    assert not (parts / "manifest.json").exists()
    merged = merge_prepared(parts)
    assert (merged["found"], merged["loaded"]) == (whole["found"], whole["loaded"]) == (24, 24)
    names = sorted(p.name for p in (tmp_path / "whole").glob("shard-*.npz"))
    assert sorted(p.name for p in parts.glob("shard-*.npz")) == names
    key = lambda s: s.source.rsplit("/", 1)[-1]  # noqa: E731
    assert [key(s) for s in sorted(load_prepared(parts), key=key)] == \
        [key(s) for s in sorted(load_prepared(tmp_path / "whole"), key=key)]


def test_merge_names_a_missing_part(tmp_path):
    from structdiff.data.prepare import merge_prepared

    corpus = _many(tmp_path / "in", 8)
    prepare(corpus, tmp_path / "out", workers=1, analyze=False, shard_size=2, progress=False,
            shard=(0, 2))
    with pytest.raises(PrepareError, match="part 1/2 is missing"):
        merge_prepared(tmp_path / "out")
    with pytest.raises(PrepareError, match="no parts to merge"):
        merge_prepared(tmp_path / "in")


def test_added_files_rewrite_only_their_own_shards(tmp_path):
    corpus = _many(tmp_path / "in", 16)
    out = tmp_path / "out"
    prepare(corpus, out, workers=1, analyze=False, shard_size=2, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")}
    from structdiff.data.midi import write_midi
    from structdiff.data.prepare import bucket_of
    from tests.debug_models import band_song

    write_midi(band_song(4, shift=3), corpus / "zz-new.mid")
    report = prepare(corpus, out, workers=1, analyze=False, shard_size=2, progress=False)
    assert report["shards"]["written"] == 1 and report["files_parsed"] >= 1
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")}
    changed = [n for n in after if before.get(n) != after[n]]
    buckets = json.loads((out / "manifest.json").read_text())["buckets"]
    assert [int(n[6:11]) for n in changed] == [bucket_of("zz-new.mid", buckets)]


def test_shards_of_other_code_are_rebuilt(tmp_path, monkeypatch):
    import structdiff.data.prepare as prep

    corpus = _many(tmp_path / "in", 6)
    out = tmp_path / "out"
    first = prepare(corpus, out, workers=1, analyze=False, progress=False)
    assert prepare(corpus, out, workers=1, analyze=False, progress=False)["files_parsed"] == 0
    monkeypatch.setattr(prep, "code_version", lambda: "another-version")
    again = prepare(corpus, out, workers=1, analyze=False, progress=False)
    assert again["files_parsed"] == 6 and again["shards"]["removed_stale"] == \
        first["shards"]["total"]


def test_prepare_command_shard_and_merge(tmp_path, capsys):
    from structdiff.cli import main

    corpus = _many(tmp_path / "in", 6)
    out = tmp_path / "out"
    for i in (0, 1):
        assert main(["prepare", str(corpus), "--out", str(out), "--workers", "1",
                     "--no-analyze", "--shard", f"{i}/2"]) == 0
    assert "--merge" in capsys.readouterr().out
    assert main(["prepare", "--merge", "--out", str(out)]) == 0
    assert "merged 2 parts: 6 of 6 files loaded" in capsys.readouterr().out
    assert main(["prepare", str(corpus), "--out", str(out), "--shard", "2/2"]) == 2
    assert "0 <= I < N" in capsys.readouterr().err
