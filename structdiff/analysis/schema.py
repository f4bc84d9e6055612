"""The `analyze` JSON schema of DESIGN.md, and a short human-readable summary."""

from __future__ import annotations

import json
from pathlib import Path

from structdiff.data.song import Chord, Key, Plan, Section, Song, bars_follow_meters


class PlanError(ValueError):
    """A plan file that does not follow the schema."""


def analysis_dict(song: Song, plan: Plan) -> dict:
    """`{"source", "grid", "n_bars", "time_signatures", "tempo_qpm", "key", "tracks",
    "chords", "sections", "phrase_ends"}` with times in quarter notes from the start of the
    file (of the song as read: where "grid" says the beats were found from the notes, the
    notes were moved onto them) and bars counted from 0 (`phrase_ends`: the bars on which a
    phrase ends). Where the song's bars do not simply follow its meters from the start (a
    pickup, a bar cut short before a repeat), `"bar_onsets_qn"` (each bar's start) and
    `"end_qn"` say where they lie, so that a plan arranged from the file keeps them."""
    qn = song.qn
    out = {
        "source": song.source,
        "grid": song.grid,
        "n_bars": song.n_bars,
        "time_signatures": [
            {"onset_qn": qn(int(ts.step)), "numerator": int(ts.numerator),
             "denominator": int(ts.denominator)}
            for ts in song.time_signatures
        ],
        "tempo_qpm": round(song.tempo_qpm, 3),
        "key": {"tonic": int(plan.key.tonic), "mode": plan.key.mode} if plan.key else None,
        "tracks": [
            {
                "name": t.name,
                "role": t.role,
                "program": t.program,
                "is_drum": t.is_drum,
                "n_notes": t.n_notes,
            }
            for t in song.tracks
        ],
        "chords": [
            {
                "onset_qn": qn(int(c.onset)),
                "dur_qn": qn(int(c.duration)),
                "root": int(c.root),
                "quality": c.quality,
                "bass": int(c.bass),
            }
            for c in plan.chords
        ],
        "sections": [
            {"start_bar": int(s.start_bar), "n_bars": int(s.n_bars), "label": s.label}
            for s in plan.sections
        ],
        "phrase_ends": [int(b) for b in plan.phrase_ends],
    }
    if not bars_follow_meters(song):
        out["bar_onsets_qn"] = [qn(int(b)) for b in song.bars]
        out["end_qn"] = qn(int(song.end))
    return out


def summary_text(song: Song, plan: Plan, chords_per_line: int = 4) -> str:
    """The plan as a person reads it: facts, tracks, form, and the chords bar by bar."""
    meters = ", ".join(
        f"{ts.numerator}/{ts.denominator}@bar{int(song.bar_of(ts.step)) + 1}"
        for ts in song.time_signatures
    )
    lines = [
        f"{song.source}",
        f"  bars {song.n_bars}   meter {meters}   tempo {song.tempo_qpm:g} qpm   "
        f"key {plan.key.name if plan.key else '?'}   role map {song.role_map}",
        f"  beats and bars: {song.grid}",
        "  tracks:",
    ]
    for t in song.tracks:
        kind = "drums" if t.is_drum else f"program {t.program}"
        name = t.name or "(unnamed)"
        lines.append(f"    {name:<20} {t.role or '-':<9} {kind:<12} {t.n_notes} notes")
    lines.append(f"  form: {plan.form}")
    if plan.phrase_ends:
        lines.append("  phrase ends at bars: " + " ".join(str(b + 1) for b in plan.phrase_ends))
    lines.append("  chords by bar:")
    by_bar: dict[int, list[str]] = {}
    for c in plan.chords:
        by_bar.setdefault(int(song.bar_of(c.onset)), []).append(plan.chord_label(c))
    starts = {s.start_bar: s.label for s in plan.sections}
    row: list[str] = []
    for bar in range(song.n_bars):
        cell = " ".join(by_bar.get(bar, ["-"]))
        mark = f"[{starts[bar]}] " if bar in starts else ""
        row.append(f"{mark}{cell}")
        if len(row) == chords_per_line or bar == song.n_bars - 1:
            first = bar - len(row) + 2
            lines.append(f"    {first:>4}: " + " | ".join(row))
            row = []
    return "\n".join(lines)


def plan_from_dict(data: dict, steps_per_quarter: int = 4) -> Plan:
    """A `Plan` from the `key`/`chords`/`sections`/`phrase_ends` of the schema (other keys are
    ignored; a plan without `phrase_ends`, as written before session 15, has none)."""
    from structdiff.analysis.chords import QUALITIES

    try:
        key = data.get("key")
        plan_key = Key(int(key["tonic"]), str(key["mode"])) if key else None
        chords = []
        for c in data.get("chords", []):
            if c["quality"] not in QUALITIES:
                raise PlanError(f"unknown chord quality {c['quality']!r}")
            chords.append(Chord(
                onset=round(float(c["onset_qn"]) * steps_per_quarter),
                duration=max(1, round(float(c["dur_qn"]) * steps_per_quarter)),
                root=int(c["root"]) % 12,
                quality=str(c["quality"]),
                bass=int(c["bass"]) % 12,
            ))
        sections = [
            Section(int(s["start_bar"]), int(s["n_bars"]), str(s["label"]))
            for s in data.get("sections", [])
        ]
        phrase_ends = sorted({int(b) for b in data.get("phrase_ends", [])})
    except PlanError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PlanError(f"bad plan: {type(e).__name__}: {e}") from None
    return Plan(key=plan_key, chords=chords, sections=sections, phrase_ends=phrase_ends)


def read_plan(path: str | Path, steps_per_quarter: int = 4) -> Plan:
    """Read a plan JSON file (the `analyze --json` schema). Raises `PlanError`."""
    return _plan_of(_read_plan_json(Path(path)), Path(path), steps_per_quarter)


def _read_plan_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise PlanError(f"cannot read plan {path}: not a text (JSON) file") from None
    except (OSError, json.JSONDecodeError) as e:
        raise PlanError(f"cannot read plan {path}: {e}") from None
    if not isinstance(data, dict):
        raise PlanError(f"bad plan {path}: not a JSON object")
    return data


def _plan_of(data: dict, path: Path, steps_per_quarter: int) -> Plan:
    try:
        return plan_from_dict(data, steps_per_quarter)
    except PlanError as e:
        raise PlanError(f"{path}: {e}") from None


def read_plan_song(path: str | Path, steps_per_quarter: int = 4) -> Song:
    """An empty song holding a plan file's bars (`n_bars`, `time_signatures`), tempo and plan,
    ready to be arranged. Bars follow the meters from the start, or lie where the file's
    `bar_onsets_qn` and `end_qn` put them (`analyze --json` of a song with a pickup or a bar
    cut short). Raises `PlanError`."""
    from structdiff.data.song import Tempo, TimeSignature, bar_grid

    path = Path(path)
    data = _read_plan_json(path)
    plan = _plan_of(data, path, steps_per_quarter)
    try:
        n_bars = int(data["n_bars"])
        tss = [TimeSignature(round(float(t["onset_qn"]) * steps_per_quarter),
                             int(t["numerator"]), int(t["denominator"]))
               for t in data.get("time_signatures") or []] or [TimeSignature(0, 4, 4)]
        qpm = float(data.get("tempo_qpm") or 120.0)
    except (KeyError, TypeError, ValueError) as e:
        raise PlanError(f"bad plan {path}: {type(e).__name__}: {e}") from None
    if n_bars < 1 or any(t.numerator < 1 or t.denominator < 1 for t in tss) or qpm <= 0:
        raise PlanError(f"bad plan {path}: n_bars, meters and tempo must be positive")
    if "bar_onsets_qn" in data:
        bars, end = _given_bars(data, n_bars, path, steps_per_quarter)
        return Song([], bars, end, tss, [Tempo(0, qpm)], steps_per_quarter=steps_per_quarter,
                    source=str(path), plan=plan)
    longest = max(t.bar_steps(steps_per_quarter) for t in tss)
    bars = bar_grid(tss, (n_bars + 1) * longest + max(t.step for t in tss), steps_per_quarter)
    if len(bars) <= n_bars:
        raise PlanError(f"bad plan {path}: its meters don't give {n_bars} bars")
    end = int(bars[n_bars])
    return Song([], bars[:n_bars].astype("int64"), end, tss, [Tempo(0, qpm)],
                steps_per_quarter=steps_per_quarter, source=str(path), plan=plan)


def _given_bars(data: dict, n_bars: int, path: Path, steps_per_quarter: int):
    """A plan file's `bar_onsets_qn` and `end_qn` as bar start steps `[n_bars]` and the end
    step. Raises `PlanError` unless there are `n_bars` of them, from 0 on, each later than
    the one before, and the end after the last."""
    import numpy as np

    try:
        bars = np.array([round(float(b) * steps_per_quarter) for b in data["bar_onsets_qn"]],
                        dtype=np.int64)
        end = round(float(data["end_qn"]) * steps_per_quarter)
    except (KeyError, TypeError, ValueError) as e:
        raise PlanError(f"bad plan {path}: bar_onsets_qn/end_qn: {type(e).__name__}: {e}"
                        ) from None
    if len(bars) != n_bars or bars[0] != 0 or (np.diff(bars) <= 0).any() or end <= bars[-1]:
        raise PlanError(f"bad plan {path}: bar_onsets_qn must hold n_bars ({n_bars}) rising "
                        "onsets from 0 on, and end_qn come after the last")
    return bars, int(end)
