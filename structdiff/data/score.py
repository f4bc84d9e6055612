"""MusicXML (`.mxl`, `.xml`, `.musicxml`) and Humdrum kern (`.krn`) through music21.

music21 gives what MIDI lacks: the written bar lines (pickups included), part names, key
signatures and fermatas, which mark phrase ends in chorales.

Repeat signs and first/second endings are written out (music21's `expandRepeats`), so a song is
what is played: the repeated first section of a chorale (its Stollen) or a quartet's repeated
exposition is there twice, as structure analysis and the models should see it. A score whose
repeats music21 cannot expand is read as written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structdiff.data.song import (
    Key,
    MusicFileError,
    Song,
    Tempo,
    TimeSignature,
    Track,
    bar_grid,
    empty_notes,
    extend_bars,
    sort_notes,
)


def read_score(path: str | Path, steps_per_quarter: int = 4) -> Song:
    """Parse a score file with music21 and quantize it to a `Song`."""
    import music21

    path = Path(path)
    try:
        parsed = music21.converter.parse(str(path))
    except Exception as e:  # music21 raises many types on malformed files
        raise MusicFileError(f"cannot parse score {path}: {_first_line(e)}") from None
    return song_from_music21(parsed, steps_per_quarter, source=str(path))


def song_from_music21(
    parsed, steps_per_quarter: int = 4, source: str = "", expand_repeats: bool = True
) -> Song:
    """Convert a music21 Score (or the first score of an Opus) to a `Song`; repeats written
    out unless `expand_repeats` is False (the score as printed)."""
    from music21 import expressions, instrument, key, meter, note, stream

    if isinstance(parsed, stream.Opus):
        scores = list(parsed.scores)
        if not scores:
            raise MusicFileError(f"no score in {source}")
        parsed = scores[0]
    if expand_repeats:
        parsed = _expand_repeats(parsed)
    score = parsed.stripTies(inPlace=False)
    parts = list(score.parts) or [score]
    spq = steps_per_quarter

    def step(offset) -> int:
        return int(round(float(offset) * spq))

    tracks, fermatas = [], []
    end = 1
    for i, part in enumerate(parts):
        inst = part.getInstrument(returnDefault=False)
        # a Score standing in for its missing parts has no partName
        name = (getattr(part, "partName", None) or (inst.partName if inst else None)
                or f"Part {i + 1}")
        name = " / ".join(line.strip() for line in name.splitlines() if line.strip())
        program = inst.midiProgram if inst is not None and inst.midiProgram is not None else 0
        is_drum = isinstance(inst, instrument.UnpitchedPercussion)
        rows = []
        for n in part.flatten().notes:
            start = step(n.offset)
            dur = max(1, step(n.offset + n.duration.quarterLength) - start)
            vel = n.volume.velocity if n.volume.velocity is not None else 80
            if isinstance(n, note.Unpitched):
                pitches = [n.displayPitch().midi]
            else:
                pitches = [p.midi for p in n.pitches]
            rows += [(start, dur, p, vel) for p in pitches if 0 <= p < 128]
            if any(isinstance(e, expressions.Fermata) for e in n.expressions):
                fermatas.append(start + dur)
        notes = np.asarray(rows, dtype=np.int32).reshape(-1, 4) if rows else empty_notes()
        if len(notes):
            end = max(end, int((notes[:, 0] + notes[:, 1]).max()))
        tracks.append(Track(name, int(program), is_drum, sort_notes(notes)))

    flat0 = parts[0].flatten()
    time_signatures = []
    for ts in flat0.getElementsByClass(meter.TimeSignature):
        t = TimeSignature(step(ts.offset), int(ts.numerator), int(ts.denominator))
        if time_signatures and time_signatures[-1].step == t.step:
            time_signatures[-1] = t
        elif not time_signatures or _meter(time_signatures[-1]) != _meter(t):
            time_signatures.append(t)
    time_signatures = time_signatures or [TimeSignature(0, 4, 4)]

    measures = list(parts[0].getElementsByClass(stream.Measure))
    if measures:
        starts = sorted({step(m.offset) for m in measures})
        if starts[0] != 0:
            starts.insert(0, 0)
        last = measures[-1]
        end = max(end, step(last.offset + last.duration.quarterLength))
        bars = extend_bars(np.asarray(starts), end, time_signatures[-1].bar_steps(spq))
    else:
        bars = bar_grid(time_signatures, end, spq)

    tempos = []
    for start, _, mark in score.metronomeMarkBoundaries():
        qpm = mark.getQuarterBPM()
        if qpm:
            tempos.append(Tempo(step(start), float(qpm)))

    key_signature = None
    for ks in flat0.getElementsByClass(key.KeySignature):
        if isinstance(ks, key.Key):
            key_signature = Key(ks.tonic.pitchClass, "minor" if ks.mode == "minor" else "major")
        else:
            key_signature = Key((7 * ks.sharps) % 12, "major")
        break

    return Song(
        tracks=tracks,
        bars=bars,
        end=max(end, int(bars[-1]) + 1),
        time_signatures=time_signatures,
        tempos=tempos or [Tempo(0, 120.0)],
        key_signature=key_signature,
        steps_per_quarter=spq,
        source=source,
        fermatas=sorted(set(fermatas)),
    )


def _expand_repeats(score):
    from music21 import bar, repeat

    if not any(True for _ in score.recurse().getElementsByClass((bar.Repeat, repeat.RepeatMark))):
        return score
    try:
        return score.expandRepeats()
    except Exception:  # music21 refuses some repeat structures (e.g. unmatched marks)
        return score


def _meter(ts: TimeSignature) -> tuple[int, int]:
    return ts.numerator, ts.denominator


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__
