"""Benchmark: corpus preparation throughput in files/s per core, on multi-track MIDI.

Real files first: ``--real DIR`` (repeatable) adds every MIDI file under DIR as one set, e.g.
the game soundtracks and POP909 of ``../shared/data`` (1,029 real multi-track files; see the
README for where users get them). Issue 14's yardstick is ``(c) / miditoolkit``: ``prepare``
with analysis on one worker against miditoolkit's bare parse of the same files (goal >= 10x).

No pop corpus ships with the project and nothing may be downloaded, so the benchmark also writes
its own reproducible set (seeded) of pop-like multi-track MIDI files: 8 tracks (drums on channel 10,
bass, piano chords with sustain pedal, lead melody with pitch bends, strings, guitar strums,
electric piano, brass stabs), 2-4 minutes at ~120 bpm with a tempo change and two meter
changes, humanized timing, several thousand notes each. A second set is Bach chorales from the
music21 corpus written as MIDI with our own writer. Generating the files is not timed.

Timed, on one worker (one core):

miditoolkit: ``miditoolkit.MidiFile(path)``, the bare parse of a pure-Python reader;
(a) parse: ``read_song(path, role_map=None)`` in this process;
(b) ``prepare(..., workers=1, analyze=False)``: parse + roles + shards + report;
(c) ``prepare(..., workers=1, analyze=True)``: the same with key/chord/section analysis;

plus ``prepare`` on every core with analysis, and a breakdown of (c) per stage. Rates leave out
what a fresh process pays once before its first file, on both sides: miditoolkit's import, and
``prepare``'s imports with numba's compiled kernels loaded (this process loads them before any
timing; forked workers start with them). Both start-ups are measured and reported beside. The DESIGN
budget is >= 200 files/s per core for parsing typical pop MIDI.

    .venv/bin/python evaluation/bench_prepare.py [--real DIR ...] [--files 200] [--chorales 100]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mido
import numpy as np

BUDGET_FILES_PER_S = 200

# (name, program, channel)
POP_TRACKS = [
    ("Drums", 0, 9),
    ("Bass", 33, 1),
    ("Piano", 0, 0),
    ("Lead", 80, 2),
    ("Strings", 48, 3),
    ("Guitar", 25, 4),
    ("E.Piano", 4, 5),
    ("Brass", 61, 6),
]
PROGRESSIONS = [[0, 7, 9, 5], [9, 5, 0, 7], [0, 5, 7, 5], [2, 7, 0, 0]]  # I V vi IV etc.
MAJOR = [0, 2, 4, 5, 7, 9, 11]


def write_pop_midi(path: Path, seed: int, tpq: int = 480) -> int:
    """Write one pop-like type-1 MIDI file; returns its number of notes."""
    rng = np.random.default_rng(seed)
    key = int(rng.integers(0, 12))
    progression = PROGRESSIONS[seed % len(PROGRESSIONS)]
    form = [("i", 4), ("v", 8), ("c", 8), ("v", 8), ("c", 8), ("b", 8), ("c", 8), ("c", 8),
            ("o", 4)]
    n_bars_target = int(rng.integers(60, 120))  # ~2-4 minutes at 120 bpm
    while sum(n for _, n in form) < n_bars_target:
        form.insert(-1, ("c", 8))
    # bars: (start tick, beats); two meter changes (a 2/4 bar before a chorus, a 3/4 bar later)
    bars, tick, meter_events = [], 0, []
    for s_index, (label, n) in enumerate(form):
        for b in range(n):
            beats = 4
            if (label == "c" and b == 0 and s_index == 2) or (label == "b" and b == n - 1):
                beats = 2 if label == "c" else 3
            if not bars or bars[-1][2] != beats:
                meter_events.append((tick, beats))
            bars.append((tick, label, beats))
            tick += beats * tpq
    end_tick = tick
    events: dict[int, list[tuple[int, mido.Message]]] = {i: [] for i in range(len(POP_TRACKS))}

    def note(track: int, start: int, dur: int, pitch: int, vel: int) -> None:
        jitter = int(rng.integers(-12, 13)) if track != 0 else int(rng.integers(-4, 5))
        start = max(0, start + jitter)
        ch = POP_TRACKS[track][2]
        pitch = int(np.clip(pitch, 0, 127))
        events[track].append((start, mido.Message("note_on", channel=ch, note=pitch,
                                                  velocity=int(np.clip(vel, 1, 127)))))
        events[track].append((start + max(1, dur), mido.Message("note_off", channel=ch,
                                                                note=pitch, velocity=0)))

    for bar_index, (start, label, beats) in enumerate(bars):
        root = key + progression[bar_index % 4]
        chord = [root + 48, root + 52 + (0 if progression[bar_index % 4] in (0, 5, 7) else -1),
                 root + 55]
        loud = 20 if label in ("c", "o") else 0
        for beat in range(beats):
            t = start + beat * tpq
            # drums: kick on 1 and 3, snare on 2 and 4, 8th-note hi-hats, a crash per section
            note(0, t, tpq // 4, 36 if beat % 2 == 0 else 38, 100 + loud // 2)
            for half in range(2):
                note(0, t + half * tpq // 2, tpq // 8, 42, 70 + int(rng.integers(0, 20)))
            # bass: 8th notes on the root, a fifth on the last 8th
            for half in range(2):
                pitch = root + 36 + (7 if (beat == beats - 1 and half) else 0)
                note(1, t + half * tpq // 2, tpq // 2 - 20, pitch, 90 + loud // 2)
            # piano: chord on every beat
            for p in chord:
                note(2, t, tpq - 30, p + 12, 70 + loud)
            # electric piano: off-beat chord tones in verses
            if label == "v":
                note(6, t + tpq // 2, tpq // 2, chord[beat % 3] + 24, 60)
        if beats == 4 and bar_index % 8 == 0:
            note(0, start, tpq, 49, 110)
        # melody: 4-8 notes per bar from the scale, sometimes held
        if label not in ("i", "o"):
            n = int(rng.integers(4, 9))
            onsets = np.sort(rng.choice(beats * 4, size=min(n, beats * 4), replace=False))
            for j, o in enumerate(onsets):
                nxt = onsets[j + 1] if j + 1 < len(onsets) else beats * 4
                degree = int(rng.integers(0, 7))
                note(3, start + int(o) * tpq // 4, int(nxt - o) * tpq // 4,
                     key + 72 + MAJOR[degree] - (12 if degree > 4 else 0), 95 + loud // 2)
        # strings: whole-bar pads in choruses and bridge
        if label in ("c", "b"):
            for p in chord:
                note(4, start, beats * tpq - 10, p + 12 if p < 55 else p, 60 + loud)
        # guitar: 8th-note strums in choruses
        if label == "c":
            for eighth in range(beats * 2):
                for k, p in enumerate(chord):
                    note(5, start + eighth * tpq // 2 + 10 * k, tpq // 2 - 40, p + 12, 75)
        # brass stabs at the start of each chorus bar
        if label == "c" and bar_index % 2 == 0:
            for p in chord:
                note(7, start, tpq // 2, p + 24, 100)

    mf = mido.MidiFile(type=1, ticks_per_beat=tpq)
    meta = [(0, mido.MetaMessage("track_name", name=f"Pop song {seed}")),
            (0, mido.MetaMessage("key_signature", key=_key_name(key)))]
    bridge = next(t for t, label, _ in bars if label == "b")
    qpm = float(rng.integers(110, 130))
    meta += [(0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm))),
             (bridge, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm * 0.9))),
             (bridge + 8 * 4 * tpq, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm)))]
    meta += [(t, mido.MetaMessage("time_signature", numerator=b, denominator=4))
             for t, b in meter_events]
    mf.tracks.append(_track(meta, end_tick))
    n_notes = 0
    for i, (name, program, ch) in enumerate(POP_TRACKS):
        head = [(0, mido.MetaMessage("track_name", name=name)),
                (0, mido.Message("control_change", channel=ch, control=7, value=100)),
                (0, mido.Message("control_change", channel=ch, control=10,
                                 value=int(rng.integers(20, 108))))]
        if ch != 9:
            head.append((0, mido.Message("program_change", channel=ch, program=program)))
        if name == "Piano":  # sustain pedal per bar
            for start, _, _ in bars:
                head += [(start, mido.Message("control_change", channel=ch, control=64, value=127)),
                         (start + 3 * tpq, mido.Message("control_change", channel=ch, control=64,
                                                         value=0))]
        if name == "Lead":  # a few pitch bends
            for start, _, _ in bars[::4]:
                head += [(start + k * 40, mido.Message("pitchwheel", channel=ch, pitch=p))
                         for k, p in enumerate((0, 1024, 2048, 1024, 0))]
        n_notes += len(events[i]) // 2
        mf.tracks.append(_track(head + events[i], end_tick))
    mf.save(str(path))
    return n_notes


def _key_name(tonic: int) -> str:
    return ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")[tonic]


def _track(events: list[tuple[int, mido.Message]], end_tick: int) -> mido.MidiTrack:
    order = {"note_off": 0, "note_on": 2}
    events = sorted(events, key=lambda e: (e[0], order.get(e[1].type, 1)))
    track, now = mido.MidiTrack(), 0
    for t, msg in events:
        track.append(msg.copy(time=t - now))
        now = t
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


def write_chorale_midis(folder: Path, n: int) -> int:
    """Write the first `n` Bach chorales of the music21 corpus as MIDI; returns how many."""
    from structdiff.data.corpus import music21_corpus
    from structdiff.data.io import read_song
    from structdiff.data.midi import write_midi

    written = 0
    for file_id, path in music21_corpus():
        if written >= n:
            break
        if not file_id.startswith("bach/") or file_id == "bach/bwv846.mxl":
            continue
        song = read_song(path, role_map=None)
        song.plan = None  # plain MIDI, as a corpus would have it
        write_midi(song, folder / (Path(file_id).stem + ".mid"))
        written += 1
    return written


def time_parse(files: list[Path]) -> float:
    from structdiff.data.io import read_song

    t = time.perf_counter()
    for f in files:
        read_song(f, role_map=None)
    return time.perf_counter() - t


MIDITOOLKIT = """
import sys, time
import miditoolkit
files = sys.stdin.read().splitlines()
t = time.perf_counter()
for f in files:
    try:
        miditoolkit.MidiFile(f)
    except Exception:  # mido refuses a few real files (an odd key signature): still timed
        pass
print(time.perf_counter() - t)
"""


STARTUP_MIDITOOLKIT = [sys.executable, "-c", "import miditoolkit"]
STARTUP_PREPARE = [sys.executable, "-c",
                   "from structdiff.data.prepare import _load_kernels; _load_kernels()"]


def median_wall(cmd: list[str], runs: int = 3) -> float:
    """Median wall seconds of `cmd` as a fresh process."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def time_miditoolkit(files: list[Path]) -> float:
    """Seconds for miditoolkit to parse `files`, in a fresh process: a pure-Python parser is
    slowed by a large heap, which this process has after writing the generated sets."""
    out = subprocess.run([sys.executable, "-c", MIDITOOLKIT], input="\n".join(map(str, files)),
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def link_real_files(folders: list[Path], into: Path, repeat: int = 1) -> int:
    """Symlink every MIDI file under `folders` into `into` (one flat folder), each `repeat`
    times under new names; returns how many links."""
    n = 0
    files = [f for folder in folders for f in sorted(folder.rglob("*"))
             if f.suffix.lower() in (".mid", ".midi") and f.is_file()]
    for _ in range(repeat):
        for f in files:
            (into / f"{n:06d}_{f.name}").symlink_to(f.resolve())
            n += 1
    return n


def time_symusic(files: list[Path]) -> float:
    import symusic

    t = time.perf_counter()
    for f in files:
        symusic.Score.from_file(str(f)).resample(4, min_dur=1)
    return time.perf_counter() - t


def time_prepare(folder: Path, out: Path, workers: int, analyze: bool) -> float:
    from structdiff.data.prepare import prepare

    t = time.perf_counter()
    report = prepare(folder, out, workers=workers, analyze=analyze, progress=False)
    seconds = time.perf_counter() - t
    if report["skipped"] or report["analysis_errors"]:
        first = (report["skipped_files"] + report["analysis_errors"])[0]
        print(f"warning: {report['skipped']} skipped, {len(report['analysis_errors'])} "
              f"analysis errors in {folder.name} (first: {first})", file=sys.stderr)
    return seconds


def stage_breakdown(files: list[Path]) -> dict[str, float]:
    """Seconds per file of each stage of (c), in this process."""
    from structdiff.analysis import analyze
    from structdiff.analysis.chords import recognize_chords
    from structdiff.analysis.key import estimate_key
    from structdiff.analysis.sections import segment
    from structdiff.data.io import read_song
    from structdiff.data.roles import assign_roles
    from structdiff.data.shards import write_shard

    totals = {"read_song (symusic + beats + quantize)": 0.0, "roles": 0.0, "key": 0.0,
              "chords": 0.0, "sections": 0.0, "analyze (all)": 0.0, "shard write": 0.0}
    songs = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            t0 = time.perf_counter()
            song = read_song(f, role_map=None)
            t1 = time.perf_counter()
            assign_roles(song, "auto")
            t2 = time.perf_counter()
            song.plan = analyze(song)
            t3 = time.perf_counter()
            estimate_key(song)
            t4 = time.perf_counter()
            chords = recognize_chords(song)
            t5 = time.perf_counter()
            segment(song, chords)
            t6 = time.perf_counter()
            songs.append(song)
            totals["read_song (symusic + beats + quantize)"] += t1 - t0
            totals["roles"] += t2 - t1
            totals["analyze (all)"] += t3 - t2
            totals["key"] += t4 - t3
            totals["chords"] += t5 - t4
            totals["sections"] += t6 - t5
        t = time.perf_counter()
        for i in range(0, len(songs), 64):
            write_shard(songs[i : i + 64], Path(tmp) / f"{i}.npz")
        totals["shard write"] = time.perf_counter() - t
    return {k: v / len(files) for k, v in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, action="append", default=[], metavar="DIR",
                        help="a folder of real MIDI files (searched recursively); repeatable")
    parser.add_argument("--repeat", type=int, default=1,
                        help="link each real file this many times (a longer run, in which a "
                             "worker's start-up weighs less)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating runs of miditoolkit and (c), medians reported")
    parser.add_argument("--files", type=int, default=200, help="pop-like MIDI files to generate")
    parser.add_argument("--chorales", type=int, default=100, help="chorales to write as MIDI")
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        tmp = Path(tmp)
        sets = {"pop-like multi-track MIDI": tmp / "pop", "Bach chorales as MIDI": tmp / "chorales"}
        if args.real:
            for folder in args.real:
                if not folder.is_dir():
                    parser.error(f"--real: not a folder: {folder}")
            real_name = "real MIDI: " + " + ".join(f.name for f in args.real) + (
                f", each {args.repeat} times" if args.repeat > 1 else "")
            sets = {real_name: tmp / "real", **sets}
        for folder in sets.values():
            folder.mkdir()
        if args.real:
            n_real = link_real_files(args.real, sets[real_name], args.repeat)
            print(f"{n_real} real MIDI files", file=sys.stderr)
        t = time.perf_counter()
        notes = [write_pop_midi(sets["pop-like multi-track MIDI"] / f"song{i:04d}.mid", seed=i)
                 for i in range(args.files)]
        n_chorales = write_chorale_midis(sets["Bach chorales as MIDI"], args.chorales)
        sizes = [f.stat().st_size for f in sets["pop-like multi-track MIDI"].iterdir()]
        if notes:
            print(f"generated {args.files} pop files ({np.mean(notes):.0f} notes, "
                  f"{np.mean(sizes) / 1024:.0f} KiB on average) and {n_chorales} chorales "
                  f"in {time.perf_counter() - t:.1f} s", file=sys.stderr)

        # what a fresh process pays once, before its first file: not in the rates below, as
        # miditoolkit's own import is not in its rate; said beside them
        startup = {"miditoolkit (import)": median_wall(STARTUP_MIDITOOLKIT),
                   "prepare (imports, compiled kernels loaded)": median_wall(STARTUP_PREPARE)}
        from structdiff.data.prepare import _load_kernels

        _load_kernels()  # in this process too, once, before any timing
        rows, breakdowns, ratios = [], {}, {}
        for name, folder in sets.items():
            files = sorted(folder.iterdir())
            n = len(files)
            if not n:
                continue
            time_parse(files[:5])  # warm up imports
            # this machine's speed drifts by a third from minute to minute: the yardstick and
            # (c) are timed alternately, `--rounds` times, and each is the median of its runs
            baseline, with_analysis = [], []
            for _ in range(args.rounds):
                baseline.append(n / time_miditoolkit(files))
                shutil.rmtree(tmp / "out_c", ignore_errors=True)
                with_analysis.append(n / time_prepare(folder, tmp / "out_c", 1, True))
            ratios[name] = [c / m for c, m in zip(with_analysis, baseline, strict=True)]
            rates = {
                "miditoolkit": float(np.median(baseline)),
                "symusic only": n / time_symusic(files),
                "(a) parse": n / time_parse(files),
                "(b) + roles + shards": n / time_prepare(folder, tmp / "out_b", 1, False),
                "(c) + analysis": float(np.median(with_analysis)),
                f"(c) on {cores} workers, per core":
                    n / time_prepare(folder, tmp / "out_d", cores, True) / cores,
            }
            rates["(c) / miditoolkit"] = float(np.median(ratios[name]))
            rows.append((name, n, rates))
            breakdowns[name] = stage_breakdown(files)

    columns = list(rows[0][2])
    lines = [
        "`.venv/bin/python evaluation/bench_prepare.py "
        + " ".join(sys.argv[1:] if argv is None else argv) + "`",
        "",
        f"Files/s per core ({cores} cores, Python {sys.version.split()[0]}); budget: "
        f">= {BUDGET_FILES_PER_S} files/s per core for parsing pop MIDI.",
        "",
        "| set | files | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for name, n, rates in rows:
        lines.append(f"| {name} | {n} | " + " | ".join(
            f"{rates[c]:.1f}x" if c.endswith("miditoolkit") and c != "miditoolkit"
            else f"{rates[c]:.0f}" for c in columns) + " |")
    lines += ["", f"(c) / miditoolkit in each of {args.rounds} alternating rounds "
              "(the table gives the median):", ""]
    lines += [f"- {name}: " + ", ".join(f"{r:.1f}x" for r in ratios[name]) for name in ratios]
    lines += ["", "Start-up of a fresh process, paid once and not in the rates above (median of 3 "
              "runs): " + ", ".join(f"{k} {v:.2f} s" for k, v in startup.items()) + "."]
    lines += ["", "Milliseconds per file by stage (one process):", "",
              "| set | " + " | ".join(next(iter(breakdowns.values()))) + " |",
              "|---|" + "---:|" * len(next(iter(breakdowns.values())))]
    for name, stages in breakdowns.items():
        lines.append(f"| {name} | " + " | ".join(f"{v * 1000:.2f}" for v in stages.values()) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
