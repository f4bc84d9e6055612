"""Per-song metrics, MusPy's and structdiff's own, as pure functions of a song (and a plan).

Each module offers one entry point returning a flat `{name: float}` dict (`nan` where a metric
does not apply, e.g. drum metrics without drums):

- `musical.musical_metrics(song)`: MusPy metrics for the whole song and per track role
  (`pitch_range`, `pitch_range/soprano`, ...);
- `coordination.coordination_metrics(song)`: between tracks;
- `structure.structure_metrics(song, plan, given)`: self-similarity, structureness, ILS ratio,
  form adherence (only for a given plan);
- `harmony.harmony_metrics(song, plan, given)`: chord-tone ratio, chord agreement;
- `band.band_metrics(song, plan)`: drum hits per bar, bass on the root at chord changes,
  chord-tone ratio per role.

`song_metrics` gathers them all.
"""

from __future__ import annotations

from structdiff.data.song import Plan, Song


def song_metrics(song: Song, plan: Plan | None = None) -> dict[str, float]:
    """Every per-song metric. `plan` is a plan given with the song (what it was generated
    from); without one the song's analyzed plan stands in, and metrics that compare a song to
    its given plan (form adherence, chord agreement) are `nan`."""
    from structdiff.analysis import analyze
    from structdiff.metrics.band import band_metrics
    from structdiff.metrics.coordination import coordination_metrics
    from structdiff.metrics.harmony import harmony_metrics
    from structdiff.metrics.musical import musical_metrics
    from structdiff.metrics.structure import structure_metrics

    analyzed = analyze(song)
    out: dict[str, float] = {}
    out.update(musical_metrics(song, key=(plan or analyzed).key))
    out.update(structure_metrics(song, plan or analyzed, analyzed, given=plan is not None))
    out.update(harmony_metrics(song, plan or analyzed, analyzed, given=plan is not None))
    out.update(coordination_metrics(song))
    out.update(band_metrics(song, plan or analyzed))
    return out
