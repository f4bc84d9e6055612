"""Do the generated voices sit where Bach's do, in every key? (issue 11, session 13)

A choir's voices keep their ranges whatever the key: a chorale in G has its soprano where one
in C has it. The arranger writes in C (songs are moved by `key_shift`, -6..5 semitones, before
it sees them) and its notes are moved back; unless the network knows how far
(`ArrangerConfig.register`), it writes one register in C for every key, and the songs of keys
far from C come out too low (G, A: moved up to C, written at C's register, moved down) or
too high (F, E).

For the 36 test-split Bach chorales and for `--n` chorale-style songs of 32 bars (seeds 0..n-1,
`generate --style chorale` with the given arranger), prints each voice's mean pitch (MIDI
numbers) by the key's shift to C (up 3 or more, down 3 or more, within 2), and the share of
bass notes below C2 (the cello's lowest string) and of soprano notes above A5.

    OMP_NUM_THREADS=2 .venv/bin/python evaluation/voice_registers.py --n 36 \\
        --arranger structdiff/models/weights/styles/chorale [--arranger DIR ...]

`--set band` does the same for the band set of `evaluation/musicianship.py` (`band_sets`: 36
test songs of the band corpus cropped to 32 bars, each arranged anew on its own plan): the
melody's, bass's and pitched accompaniment's mean pitch by key shift, real against generated
(session 14).

    OMP_NUM_THREADS=2 .venv/bin/python evaluation/voice_registers.py --set band \\
        --arranger structdiff/models/weights/band [--arranger DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from structdiff.data.arrange_tensor import key_shift
from structdiff.data.song import PITCH
from structdiff.models.bundle import SHIPPED_DIR, planner_for_style
from structdiff.pipeline.arrange import load_arranger
from structdiff.pipeline.generate import Options, new_song
from structdiff.pipeline.plan import load_planner

sys.path.insert(0, str(Path(__file__).parent))
from musicianship import band_sets, chorale_sets  # noqa: E402

VOICES = ("soprano", "alto", "tenor", "bass")
BAND_VOICES = ("melody", "bass", "keys", "guitar", "strings")
GROUPS = ("moved down 3-6", "within 2", "moved up 3-5")


def group(shift: int) -> str:
    return GROUPS[0] if shift <= -3 else GROUPS[2] if shift >= 3 else GROUPS[1]


def registers(songs, voices=VOICES) -> dict:
    """Mean pitch per (voice, group) with the number of songs (tracks of one role merged),
    and, for the four voices, the out-of-range shares."""
    means = defaultdict(list)
    for song in songs:
        g = group(key_shift(song.plan.key))
        for voice in voices:
            notes = [t.notes[:, PITCH] for t in song.tracks if t.role == voice and t.n_notes]
            if notes:
                means[(voice, g)].append(float(np.concatenate(notes).mean()))
    if voices != VOICES:
        return {"means": {k: (float(np.mean(v)), len(v)) for k, v in means.items()}}
    pitches = {v: np.concatenate([t.notes[:, PITCH] for s in songs for t in s.tracks
                                  if t.role == v] or [np.zeros(0)]) for v in VOICES}
    return {"means": {k: (float(np.mean(v)), len(v)) for k, v in means.items()},
            "bass_below_c2": float(np.mean(pitches["bass"] < 36)) if len(pitches["bass"]) else 0.0,
            "soprano_above_a5": (float(np.mean(pitches["soprano"] > 81))
                                 if len(pitches["soprano"]) else 0.0)}


def row(label: str, r: dict, voices=VOICES) -> str:
    """A table row: the label with its songs per group (by the first voice), the means, the
    out-of-range shares where measured."""
    counts = ", ".join(f"{g}: {r['means'].get((voices[0], g), (0, 0))[1]}" for g in GROUPS)
    cells = [f"{r['means'].get((v, g), (float('nan'), 0))[0]:.1f}"
             for v in voices for g in GROUPS]
    shares = ([f"{r['bass_below_c2']:.3f}", f"{r['soprano_above_a5']:.3f}"]
              if "bass_below_c2" in r else [])
    return f"| {label} ({counts}) | " + " | ".join(cells + shares) + " |"


def band(folders: list[Path], n: int) -> None:
    """The band set's table: real test songs, then each arranger's songs on their plans."""
    header = " | ".join(f"{v} {g}" for v in BAND_VOICES for g in GROUPS)
    print(f"| songs | {header} |")
    print("|---" * (1 + len(BAND_VOICES) * len(GROUPS)) + "|")
    for i, folder in enumerate(folders):
        real, generated = band_sets(n, 32, arranger=folder)
        if i == 0:
            print(row("real, test split", registers(real, BAND_VOICES), BAND_VOICES), flush=True)
        print(row(str(folder), registers(generated, BAND_VOICES), BAND_VOICES), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arranger", action="append", type=Path, required=True,
                        help="an arranger folder (repeat to compare)")
    parser.add_argument("--n", type=int, default=36, help="songs per arranger (default 36)")
    parser.add_argument("--gibbs", type=int, default=None,
                        help="Gibbs rounds (default: each arranger's own)")
    parser.add_argument("--set", choices=("chorale", "band"), default="chorale",
                        help="chorale-style songs against Bach (default), or the band set")
    args = parser.parse_args()
    if args.set == "band":
        band(args.arranger, args.n)
        return
    real, _ = chorale_sets(36, 32, generate=False)
    planner = load_planner(planner_for_style(SHIPPED_DIR, "chorale"))
    header = " | ".join(f"{v} {g}" for v in VOICES for g in GROUPS)
    print(f"| songs | {header} | bass below C2 | soprano above A5 |")
    print("|---" * (2 + len(VOICES) * len(GROUPS) + 1) + "|")
    print(row("Bach, test split", registers(real)), flush=True)
    for folder in args.arranger:
        arranger = load_arranger(folder)
        songs = [new_song(planner, arranger, Options(style="chorale", seed=i, steps=20,
                                                     harmony=0.0, gibbs=args.gibbs), n_bars=32)
                 for i in tqdm(range(args.n), desc=str(folder), unit="song")]
        print(row(str(folder), registers(songs)), flush=True)


if __name__ == "__main__":
    main()
