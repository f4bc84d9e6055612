"""Analysis of real songs: key, chords, phrases and sections, which together make the plan."""

from __future__ import annotations

from structdiff.data.song import Plan, Song


def analyze(song: Song) -> Plan:
    """The plan of a real song: estimated key, recognized chords, sections and phrase ends."""
    from structdiff.analysis.chords import recognize_chords
    from structdiff.analysis.key import estimate_key
    from structdiff.analysis.sections import segment

    key = estimate_key(song)
    chords = recognize_chords(song)
    sections, phrase_ends = segment(song, chords)
    return Plan(key=key, chords=chords, sections=sections, phrase_ends=phrase_ends)
