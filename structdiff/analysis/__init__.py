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


def song_plan(song: Song) -> Plan:
    """The plan of a song as the file and the analysis give it: what the file carries (our own
    MIDI's markers and chord names, read into `song.plan`) wins, analysis fills the rest."""
    found = analyze(song)
    given = song.plan
    if given is None:
        return found
    return Plan(
        key=given.key or found.key,
        chords=given.chords or found.chords,
        sections=given.sections or found.sections,
        phrase_ends=given.phrase_ends or found.phrase_ends,
    )
