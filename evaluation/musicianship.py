"""Real or generated? The classifier two-sample test on the shipped models (issue 11's ruler).

    .venv/bin/python evaluation/musicianship.py [--sets chorale band] [--n 36] [--bars 32]
        [--arranger DIR] [--band-planner DIR] [--steps N] [--harmony X] [--guidance G]
        [--no-floors]
        [--out evaluation/results/musicianship.md]

- chorale: the test split's Bach chorales (music21 corpus, `datasets/music21/test.txt`)
  against `generate --style chorale` songs with default options (the classical set), one seed
  per song; floors for the test's sensitivity: the real chorales with 20% of their notes
  moved by one or two semitones, with their bars shuffled and with random pitches (the
  evaluation's baselines, `structdiff.metrics.baselines`), and the real set split in two
  halves (which should not be told apart).
- band: test songs of the prepared band corpus (`data/band`, `structdiff prepare ... --corpus
  band`) cut to `--bars` bars against new songs of the band set in the same style, key, meter,
  tempo and roles.

Writes a table per set: balanced accuracy and AUC of both classifiers and of the
shuffled-label control, the telling features, and the mean of every feature, real against
generated.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from structdiff.analysis import analyze
from structdiff.data.io import read_song
from structdiff.data.song import crop_bars
from structdiff.metrics.baselines import random_pitches, shuffle_bars
from structdiff.metrics.musicianship import (
    classifier_markdown,
    two_sample_test,
    window_features,
)
from structdiff.metrics.report import write_atomic
from structdiff.models.bundle import (
    SHIPPED_DIR,
    SHIPPED_SETS,
    arranger_for_style,
    planner_for_style,
)
from structdiff.pipeline.arrange import load_arranger
from structdiff.pipeline.generate import Options, new_song
from structdiff.pipeline.plan import load_planner


def corrupted(song, rng, share: float = 0.2):
    """`song` with `share` of its pitched notes moved by one or two semitones."""
    tracks = []
    for t in song.tracks:
        notes = t.notes.copy()
        if not t.is_drum:
            moved = rng.random(len(notes)) < share
            notes[moved, 2] += rng.choice([-2, -1, 1, 2], int(moved.sum()))
        tracks.append(replace(t, notes=notes))
    return replace(song, tracks=tracks)


def features(songs) -> list[np.ndarray]:
    return [window_features(s, s.plan if s.plan is not None else analyze(s)) for s in songs]


def chorale_sets(n: int, bars: int, harmony: float | None = None, arranger: Path | None = None,
                 steps: int | None = None, generate: bool = True, guidance: float | None = None,
                 planner: Path | None = None):
    """The test chorales (analyzed) and, with `generate`, as many new chorale-style songs."""
    names = [line.strip() for line in Path("datasets/music21/test.txt").read_text().splitlines()
             if line.strip().startswith("bach/")][:n]
    real = []
    for name in tqdm(names, desc="reading the test chorales", unit="song"):
        song = read_song(f"music21:{name}")
        song.plan = analyze(song)
        real.append(song)
    if not generate:
        return real, []
    # the models `generate --style chorale` uses: the classical set's own for chorales
    planner = load_planner(planner or planner_for_style(SHIPPED_DIR, "chorale"))
    arranger = load_arranger(arranger or arranger_for_style(SHIPPED_DIR, "chorale"))
    steps = steps or int(arranger.meta.get("default_steps", 20))
    if harmony is None:
        harmony = float(arranger.meta.get("default_harmony", 2.0))
    generated = [new_song(planner, arranger, Options(style="chorale", seed=i, steps=steps,
                                                     harmony=harmony, guidance=guidance),
                          n_bars=bars or None)
                 for i in tqdm(range(len(real)), desc="generating chorales", unit="song")]
    return real, generated


def song_folder(spec: str) -> tuple[str, str, list]:
    """`LABEL=FOLDER` as (label, folder, its MIDI files read as songs); a file that does not
    read is skipped and said, the rest go on. Raises ValueError when FOLDER holds no .mid."""
    label, _, folder = spec.partition("=")
    files = sorted(Path(folder).glob("*.mid"))
    if not files:
        raise ValueError(f"no .mid files in {folder!r} (give LABEL=FOLDER)")
    songs = []
    for f in files:
        try:
            songs.append(read_song(f))
        except Exception as error:  # a bad file is skipped and said, the rest go on
            print(f"skipped {f}: {error}")
    return label, folder, songs


def band_sets(n: int, bars: int, harmony: float | None = None, steps: int | None = None,
              guidance: float | None = None, arranger: Path | None = None,
              planner: Path | None = None):
    from structdiff.data.prepare import load_prepared

    sys.path.insert(0, str(Path(__file__).parent))
    from band_quality import generated_song

    folder = SHIPPED_SETS["band"]
    planner, arranger = load_planner(planner or folder), load_arranger(arranger or folder)
    tests = [s for s in load_prepared(Path("data/band"), "test") if s.plan is not None]
    rng = np.random.default_rng(0)
    picks = sorted(rng.choice(len(tests), min(n, len(tests)), replace=False).tolist())
    real, generated = [], []
    for i in tqdm(picks, desc="generating band songs", unit="song"):
        song = crop_bars(tests[i], bars)
        roles = [r for r in song.roles if r in arranger.roles]
        style = song.style if song.style in set(arranger.styles) & set(planner.styles) else None
        try:
            new = generated_song(
                planner, arranger, song, roles, style, i,
                steps or int(arranger.meta.get("default_steps", 10)),
                float(arranger.meta.get("default_harmony", 1.0)) if harmony is None else harmony,
                guidance)
        except ValueError:
            continue
        real.append(song)
        generated.append(new)
    return real, generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["chorale", "band"])
    parser.add_argument("--n", type=int, default=36, help="songs per set (default 36)")
    parser.add_argument("--bars", type=int, default=32,
                        help="bars of each generated song (0: as long as `generate` makes them "
                        "without --bars, a length the style's songs have; default 32)")
    parser.add_argument("--arranger", type=Path, help="an arranger bundle's folder (default: "
                        "the one `generate --style chorale` uses, the shipped band one)")
    parser.add_argument("--planner", type=Path, help="a planner bundle's folder for the "
                        "chorale set (default: the one `generate --style chorale` uses)")
    parser.add_argument("--band-planner", type=Path, help="a planner bundle's folder for the "
                        "band set (default: the shipped band one)")
    parser.add_argument("--steps", type=int, help="denoising steps or unmasking rounds "
                        "(default: each arranger's)")
    parser.add_argument("--harmony", type=float, help="the harmony lean (default: each "
                        "arranger's)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance on the style (default: the planner's "
                        "own, none on the arranger; `generate --guidance`)")
    parser.add_argument("--no-floors", action="store_true",
                        help="only generated against real: no floors, no control")
    parser.add_argument("--out", type=Path, default=Path("evaluation/results/musicianship.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    lines = ["# Real or generated? The classifier two-sample test on the shipped models", "",
             f"`.venv/bin/python evaluation/musicianship.py {shlex.join(sys.argv[1:])}`", ""]
    rng = np.random.default_rng(0)
    for name in args.sets:
        real, generated = chorale_sets(args.n, args.bars, args.harmony, args.arranger,
                                       args.steps, guidance=args.guidance,
                                       planner=args.planner) \
            if name == "chorale" else \
            band_sets(args.n, args.bars, args.harmony, args.steps, args.guidance, args.arranger,
                      args.band_planner)
        fr, fg = features(real), features(generated)
        lines += [f"# {name}: generated against real", ""]
        lines.append(classifier_markdown(two_sample_test(fr, fg),
                                         f"{name}: {len(generated)} generated songs against "
                                         f"{len(real)} real test songs"))
        if args.no_floors:
            print(f"{name} done at {time.perf_counter() - started:.0f} s", flush=True)
            continue
        # two halves of the real songs drawn at random (the corpus lists songs by source)
        order = rng.permutation(len(real))
        first, second = order[: len(real) // 2], order[len(real) // 2 :]
        bad = features([corrupted(real[i], rng) for i in second])
        lines.append(classifier_markdown(two_sample_test([fr[i] for i in first], bad),
                                         f"{name} floor: real songs against other real songs "
                                         f"with 20% of their notes moved by 1-2 semitones",
                                         means=False))
        for floor, words in ((shuffle_bars, "their bars in a random order"),
                             (random_pitches, "random pitches in each track's range")):
            broken = features([floor(real[i], rng) for i in second])
            lines.append(classifier_markdown(two_sample_test([fr[i] for i in first], broken),
                                             f"{name} floor (`baselines.{floor.__name__}`): "
                                             f"real songs against other real songs with "
                                             f"{words}", means=False))
        lines.append(classifier_markdown(two_sample_test([fr[i] for i in first],
                                                         [fr[i] for i in second]),
                                         f"{name} control: real songs against other real "
                                         f"songs (no difference to find)", means=False))
        print(f"{name} done at {time.perf_counter() - started:.0f} s", flush=True)
    lines.append(f"Took {time.perf_counter() - started:.0f} s.")
    write_atomic(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
