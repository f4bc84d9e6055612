"""The `analyze` JSON schema of DESIGN.md, and a short human-readable summary."""

from __future__ import annotations

from structdiff.data.song import Plan, Song


def analysis_dict(song: Song, plan: Plan) -> dict:
    """`{"source", "n_bars", "time_signatures", "tempo_qpm", "key", "tracks", "chords",
    "sections"}` with times in quarter notes from the start of the file."""
    qn = song.qn
    return {
        "source": song.source,
        "n_bars": song.n_bars,
        "time_signatures": [
            {"onset_qn": qn(ts.step), "numerator": ts.numerator, "denominator": ts.denominator}
            for ts in song.time_signatures
        ],
        "tempo_qpm": round(song.tempo_qpm, 3),
        "key": {"tonic": plan.key.tonic, "mode": plan.key.mode} if plan.key else None,
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
                "onset_qn": qn(c.onset),
                "dur_qn": qn(c.duration),
                "root": c.root,
                "quality": c.quality,
                "bass": c.bass,
            }
            for c in plan.chords
        ],
        "sections": [
            {"start_bar": s.start_bar, "n_bars": s.n_bars, "label": s.label}
            for s in plan.sections
        ],
    }


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
