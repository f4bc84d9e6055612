"""MIDI in (symusic, fast) and out (miditoolkit, with mido for text events).

Reading quantizes with symusic's own resampler: ticks become grid steps (`min_dur=1`, so
grace and zero-length notes last one step). First the file's beats and bars are checked
against its notes (`structdiff.analysis.beats.find_grid`): where its beats are off the music
or its meter makes every beat or two a bar, the notes are shifted onto the beats the notes
say, bars follow the meter and first downbeat found, and `Song.grid` says so. A type-0 file is
split by channel and program by symusic. Text events (the chord names we write) are read with
mido, and only when a file carries any, since mido parses ~30x slower than symusic.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

import miditoolkit
import mido
import numpy as np
import symusic

from structdiff.analysis.beats import Grid, find_grid
from structdiff.data.song import (
    Chord,
    Key,
    MusicFileError,
    Plan,
    Section,
    Song,
    Tempo,
    TimeSignature,
    Track,
    bar_grid,
    bars_follow_meters,
    sort_notes,
)

MAX_PITCHED_CHANNELS = 15  # 16 MIDI channels, channel 10 kept for drums
_SECTION_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9']{0,7}$")

# Key signature names mido accepts, by tonic pitch class.
_MAJOR_KEY_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_KEY_NAMES = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")


def read_midi(path: str | Path, steps_per_quarter: int = 4) -> Song:
    """Read a `.mid`/`.midi` file (type 0 or 1) into a quantized `Song`.

    Raises `MusicFileError` for an empty, non-MIDI or truncated file.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data:
        raise MusicFileError(f"empty file: {path}")
    if not data.startswith(b"MThd"):
        raise MusicFileError(f"not a MIDI file (no MThd header): {path}")
    try:
        # shift_time(0) is the same score, but its note lists convert to numpy 10x faster than
        # a freshly parsed score's (symusic 0.6; 0.04 against 0.33 ms a POP909 file, same arrays)
        score = symusic.Score.from_midi(data).shift_time(0)
    except RuntimeError as e:
        raise MusicFileError(f"truncated or corrupt MIDI file: {path} ({_first_line(e)})") from None
    song = song_from_symusic(
        score, steps_per_quarter, source=str(path), texts=_read_texts(data), find_beats=True
    )
    if any("\ufffd" in t.name for t in song.tracks):  # not UTF-8: decode as the bytes say
        names = _legacy_track_names(data, {t.name for t in song.tracks if "\ufffd" in t.name})
        for t in song.tracks:
            t.name = names.get(t.name, t.name)
    return song


def song_from_symusic(
    score: symusic.Score,
    steps_per_quarter: int = 4,
    source: str = "",
    texts: list[tuple[float, str]] | None = None,
    find_beats: bool = False,
) -> Song:
    """Quantize a symusic `Score` (ticks) to a `Song` on a grid of `steps_per_quarter`. With
    `find_beats`, on the grid `structdiff.analysis.beats.find_grid` chooses (module
    docstring); else on the file's own."""
    from structdiff.analysis import kernels  # numba: not imported by what only writes MIDI

    beats = Grid()
    if find_beats:
        beats = find_grid(score)
        if beats.source == "notes" and beats.shift:
            score = score.shift_time(beats.shift)
            texts = [(t + beats.shift / score.ticks_per_quarter, x) for t, x in texts or []]
    grid = score.resample(steps_per_quarter, min_dur=1)
    tracks = []
    end = 1
    for t in grid.tracks:
        arr = t.notes.numpy()
        notes = np.empty((len(arr["time"]), 4), dtype=np.int32)
        for column, field in enumerate(("time", "duration", "pitch", "velocity")):
            notes[:, column] = arr[field]
        keep = (notes[:, 0] >= 0) & (notes[:, 2] >= 0)
        if not keep.all():
            notes = notes[keep]
        if len(notes):
            end = max(end, int((notes[:, 0] + notes[:, 1]).max()))
        if not kernels.in_note_order(notes):  # symusic gives most tracks in order already
            order = kernels.note_order(notes)  # sort_notes' order, compiled
            notes = notes[order] if len(order) == len(notes) else sort_notes(notes)
        tracks.append(Track(t.name.strip(), int(t.program), bool(t.is_drum), notes))

    time_signatures = _dedupe_by_step(
        [TimeSignature(int(ts.time), int(ts.numerator), int(ts.denominator))
         for ts in grid.time_signatures if ts.numerator > 0 and ts.denominator > 0]
    )
    tempos = _tempos(grid.tempos.numpy())
    pickup = 0
    if beats.source == "notes":
        time_signatures = [TimeSignature(0, beats.beats_per_bar, 4)]
        pickup = beats.downbeat * steps_per_quarter
        if tempos and tempos[0].step > 0:  # the shift moved the first tempo off the start
            tempos[0] = Tempo(0, tempos[0].qpm)
    key_signature = None
    if len(grid.key_signatures):
        ks = grid.key_signatures[0]
        mode = "minor" if ks.tonality else "major"
        tonic = (7 * int(ks.key) + (9 if mode == "minor" else 0)) % 12
        key_signature = Key(tonic, mode)

    markers = [(int(m.time), m.text.strip()) for m in grid.markers]
    if markers:
        end = max(end, max(step for step, _ in markers) + 1)
    bars = bar_grid(time_signatures, end, steps_per_quarter, pickup=pickup)
    song = Song(
        tracks=tracks,
        bars=bars,
        end=max(end, int(bars[-1]) + 1),
        time_signatures=time_signatures or [TimeSignature(0, 4, 4)],
        tempos=tempos or [Tempo(0, 120.0)],
        key_signature=key_signature,
        steps_per_quarter=steps_per_quarter,
        source=source,
        grid=beats.describe(score.ticks_per_quarter),
    )
    song.plan = _plan_from_meta(song, markers, texts or [])
    return song


def write_midi(song: Song, path: str | Path, ticks_per_quarter: int = 480,
               markers: Sequence[tuple[int, str]] = ()) -> None:
    """Write `song` as a type-1 MIDI file, atomically.

    One named track per instrument with its program (drums on channel 10, pitched tracks on the
    other 15 channels; tracks that share a program share a channel when there are more than 15),
    tempo changes, time signatures, key signature, a marker at each section start and each chord
    name as a text event at its onset (from `song.plan`), and the extra `markers` `(step,
    text)` (e.g. `state:battle`; a text that could be a section label is refused, so that the
    plan reads back the same).
    """
    path = Path(path)
    scale = ticks_per_quarter // song.steps_per_quarter
    if scale * song.steps_per_quarter != ticks_per_quarter:
        raise ValueError(
            f"ticks_per_quarter must be a multiple of steps_per_quarter "
            f"({song.steps_per_quarter}), got {ticks_per_quarter}"
        )
    midi = miditoolkit.MidiFile(ticks_per_beat=ticks_per_quarter)
    pitched = [t for t in song.tracks if not t.is_drum]
    drums = [t for t in song.tracks if t.is_drum]
    if len({t.program for t in pitched}) > MAX_PITCHED_CHANNELS:
        raise ValueError(
            f"cannot write {len({t.program for t in pitched})} distinct programs: "
            f"MIDI has {MAX_PITCHED_CHANNELS} pitched channels"
        )
    instruments = pitched + drums
    for track in instruments:
        inst = miditoolkit.Instrument(
            program=0 if track.is_drum else int(track.program),
            is_drum=track.is_drum,
            name=midi_text(track.name or (track.role or "track")),
        )
        inst.notes = [
            miditoolkit.Note(int(v), int(p), int(s) * scale, int(s + d) * scale)
            for s, d, p, v in track.notes.tolist()
        ]
        midi.instruments.append(inst)
    for tp in song.tempos:
        midi.tempo_changes.append(miditoolkit.TempoChange(float(tp.qpm), tp.step * scale))
    for ts in written_meters(song):
        midi.time_signature_changes.append(
            miditoolkit.TimeSignature(ts.numerator, ts.denominator, ts.step * scale)
        )
    key = (song.plan.key if song.plan and song.plan.key else None) or song.key_signature
    if key is not None:
        names = _MAJOR_KEY_NAMES if key.mode == "major" else _MINOR_KEY_NAMES
        midi.key_signature_changes.append(miditoolkit.KeySignature(names[key.tonic], 0))
    texts: list[tuple[int, str]] = []
    if song.plan:
        for s in song.plan.sections:
            midi.markers.append(miditoolkit.Marker(midi_text(s.label),
                                                   int(song.bars[s.start_bar]) * scale))
        texts = [(c.onset * scale, song.plan.chord_label(c)) for c in song.plan.chords]
    for step, text in markers:
        if _SECTION_LABEL.match(text):
            raise ValueError(f"marker {text!r} reads as a section label; use a ':' or a space")
        midi.markers.append(miditoolkit.Marker(midi_text(text), int(step) * scale))
    midi.markers.sort(key=lambda m: m.time)

    buf = io.BytesIO()
    midi.dump(file=buf)
    buf.seek(0)
    data = _finish_with_mido(buf, texts, _channels(instruments))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def written_meters(song: Song) -> list[TimeSignature]:
    """The song's meters, plus one for each bar that is not as long as its meter's full bar (a
    pickup, a bar cut short before a repeat: a 1/4 bar, say, then the meter again), so that a
    reader that starts a bar at each meter change (`bar_grid`) finds the song's bars again.
    The song's own meters alone where its bars follow them. A short last bar (a chorale's
    final bar, one beat shorter to balance its pickup) gets none: the song ends there anyway,
    and its meter stays the one a continuation goes on in."""
    tss = sorted(song.time_signatures or [TimeSignature(0, 4, 4)], key=lambda t: t.step)
    if len(song.bars) == 0 or bars_follow_meters(song):
        return tss
    spq = song.steps_per_quarter
    full = song.bar_meters()[1]
    out: list[TimeSignature] = []
    last = len(song.bars) - 1
    for i, (start, stop) in enumerate(zip(song.bars.tolist(), song.bar_ends.tolist())):
        meter = song.time_signature_at(start)
        length = stop - start
        if length != int(full[i]) and length > 0 and i < last:
            denominator = next(d for d in (meter.denominator, 8, 16, 32, 64)
                               if d >= meter.denominator and (length * d) % (4 * spq) == 0)
            out.append(TimeSignature(start, length * denominator // (4 * spq), denominator))
        elif not out or (out[-1].numerator, out[-1].denominator) != (meter.numerator,
                                                                     meter.denominator):
            out.append(TimeSignature(start, meter.numerator, meter.denominator))
    return out


def _channels(tracks: list[Track]) -> list[int]:
    """A channel per track: drums on 10 (index 9), one channel per distinct pitched program."""
    free = [c for c in range(16) if c != 9]
    by_program: dict[int, int] = {}
    out = []
    for t in tracks:
        if t.is_drum:
            out.append(9)
        else:
            if t.program not in by_program:
                by_program[t.program] = free[len(by_program)]
            out.append(by_program[t.program])
    return out


def _finish_with_mido(buf: io.BytesIO, texts: list[tuple[int, str]], channels: list[int]) -> bytes:
    """Set each track's channel and merge text meta events (absolute ticks) into the meta track.

    miditoolkit cycles channels by track index, so more than 15 pitched tracks would collide;
    and it has no container for plain text events.
    """
    mf = mido.MidiFile(file=buf)
    for track, channel in zip(mf.tracks[1:], channels):
        for i, msg in enumerate(track):
            if hasattr(msg, "channel"):
                track[i] = msg.copy(channel=channel)
    if texts:
        events = []
        now = 0
        for msg in mf.tracks[0]:
            now += msg.time
            if msg.type != "end_of_track":
                events.append((now, 0, msg))
        events += [(tick, 1, mido.MetaMessage("text", text=midi_text(text)))
                   for tick, text in texts]
        events.sort(key=lambda e: (e[0], e[1]))
        meta = mido.MidiTrack()
        now = 0
        for tick, _, msg in events:
            meta.append(msg.copy(time=tick - now))
            now = tick
        meta.append(mido.MetaMessage("end_of_track", time=0))
        mf.tracks[0] = meta
    out = io.BytesIO()
    mf.save(file=out)
    return out.getvalue()


def decode_text(raw: bytes) -> str:
    """MIDI text as its bytes say: UTF-8 when they are, else the legacy 8-bit Windows-1252
    (Latin-1 where it has no character)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(raw[i : i + 1].decode("cp1252", errors="ignore") or chr(raw[i])
                       for i in range(len(raw)))


def midi_text(text: str) -> str:
    """`text` as the str that mido (which writes text as Latin-1) turns into its UTF-8 bytes:
    every character survives the file, and readers that expect UTF-8 (symusic) read it back."""
    return text.encode("utf-8").decode("latin-1")


def _legacy_track_names(data: bytes, wanted: set[str]) -> dict[str, str]:
    """{name as symusic read it (UTF-8, bad bytes replaced): the name decoded by `decode_text`}
    for the `wanted` names. Each track-name meta event (FF 03, a variable-length length, the
    bytes) is found in the raw bytes; a match counts only when its bytes read as one of the
    `wanted` names, so stray FF 03 bytes elsewhere cannot add a wrong one (a whole-file mido
    parse, which this replaces, cost 6 ms a file)."""
    names = {}
    for match in re.finditer(rb"\xff\x03", data):
        i, length = match.end(), 0
        for _ in range(4):  # a variable-length quantity: 7 bits a byte, high bit = more
            if i >= len(data):
                break
            byte = data[i]
            i += 1
            length = (length << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        raw = data[i : i + length]
        key = raw.decode("utf-8", errors="replace").strip()
        if key in wanted:
            names[key] = decode_text(raw).strip()
    return names


def _read_texts(data: bytes) -> list[tuple[float, str]]:
    """Text meta events `(quarter notes, text)` of the first track, where `write_midi` puts
    the chord names. Only that chunk goes through mido (30x slower than symusic)."""
    header_len = int.from_bytes(data[4:8], "big")
    start = 8 + header_len
    if data[start : start + 4] != b"MTrk":
        return []
    chunk = data[start : start + 8 + int.from_bytes(data[start + 4 : start + 8], "big")]
    if b"\xff\x01" not in chunk:
        return []
    # a one-track type-0 file made of the header's time division and that chunk
    single = b"MThd" + (6).to_bytes(4, "big") + b"\x00\x00\x00\x01" + data[12:14] + chunk
    try:
        mf = mido.MidiFile(file=io.BytesIO(single))
    except Exception:  # mido is stricter than symusic on odd files: texts are optional
        return []
    out = []
    for track in mf.tracks:
        now = 0
        for msg in track:
            now += msg.time
            if msg.type == "text":
                raw = msg.text.encode("latin-1", errors="replace")
                out.append((now / mf.ticks_per_beat, decode_text(raw).strip()))
    return out


def _plan_from_meta(
    song: Song, markers: list[tuple[int, str]], texts: list[tuple[float, str]]
) -> Plan | None:
    """The plan a file carries: section markers and chord-name text events (as we write them)."""
    from structdiff.analysis.chords import parse_chord_name

    sections = []
    markers = [(step, text) for step, text in markers if _SECTION_LABEL.match(text)]
    labelled = [(song.bar_of(step), text) for step, text in markers]
    if labelled and all(song.bars[b] == step for (b, _), (step, _) in zip(labelled, markers)):
        for i, (bar, label) in enumerate(labelled):
            nxt = labelled[i + 1][0] if i + 1 < len(labelled) else song.n_bars
            sections.append(Section(int(bar), int(nxt - bar), label))
    chords = []
    parsed = []
    for qn, text in texts:
        try:
            parsed.append((round(qn * song.steps_per_quarter), parse_chord_name(text)))
        except ValueError:
            continue
    for i, (step, (root, quality, bass)) in enumerate(parsed):
        nxt = parsed[i + 1][0] if i + 1 < len(parsed) else song.end
        chords.append(Chord(step, max(1, nxt - step), root, quality, bass))
    if not sections and not chords:
        return None
    return Plan(key=song.key_signature, chords=chords, sections=sections)


def _tempos(tempos: dict[str, np.ndarray]) -> list[Tempo]:
    """The last tempo at each step, sorted by step, from symusic's tempo arrays (``time`` in
    steps, ``mspq``): `_dedupe_by_step` of symusic's `Tempo` objects, made only for the steps
    kept (a file can change tempo every tick of a ritardando)."""
    times, mspq = tempos["time"].astype(np.int64), tempos["mspq"]
    if not len(times):
        return []
    order = np.argsort(times, kind="stable")
    last = np.append(times[order][1:] != times[order][:-1], True)  # the last of each step
    kept = order[last]
    qpm = 60_000_000.0 / mspq[kept].astype(np.float64)  # symusic's own `Tempo.qpm`
    return [Tempo(step, q) for step, q in zip(times[kept].tolist(), qpm.tolist())]


def _dedupe_by_step(items: list) -> list:
    """Keep the last event at each step, sorted by step."""
    by_step = {}
    for it in items:
        by_step[it.step] = it
    return [by_step[s] for s in sorted(by_step)]


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
