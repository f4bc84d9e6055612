"""Sample windows in a training run's log: piano-roll images and MIDI files as an artifact."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from structdiff.data.arrange_tensor import window_bars
from structdiff.data.song import Song, Tempo, TimeSignature, Track
from structdiff.data.tokens import decode_tokens


def window_song(tokens: np.ndarray, plan_features: np.ndarray, roles: list[str],
                pitch_low: int, source: str = "arranger sample") -> Song:
    """A song of one window's tokens `[K, T]` (in C), its bars read from the plan features."""
    T = tokens.shape[1]
    bars = window_bars(plan_features)
    if len(bars) == 0 or bars[0] != 0:
        bars = np.concatenate([[0], bars]).astype(np.int64)
    notes = decode_tokens(tokens, roles, 0, pitch_low)
    tracks = [Track(role, 0, False, notes[role], role) for role in roles if len(notes[role])]
    end = max(T, int(bars[-1]) + 1)
    return Song(tracks, bars.astype(np.int64), end, [TimeSignature(0, 4, 4)], [Tempo(0, 100.0)],
                source=source, role_map="satb")


def log_windows(logger, tokens: np.ndarray, batch: dict, roles: list[str], pitch_low: int,
                styles: list[str], step: int) -> None:
    """To W&B when the run logs there: one piano roll per window and the MIDI files."""
    experiment = getattr(logger, "experiment", None)
    if experiment is None or not hasattr(experiment, "log"):
        return
    import wandb

    from structdiff.data.midi import write_midi
    from structdiff.render import render_png

    plans = batch["plan"].numpy()
    present = batch["present"].numpy()
    images = []
    artifact = wandb.Artifact(f"samples-step{step}", type="midi")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(len(tokens)):
            playing = [r for r, p in zip(roles, present[i]) if p]
            keep = [k for k, p in enumerate(present[i]) if p]
            song = window_song(tokens[i][keep], plans[i], playing, pitch_low,
                               source=f"sample {i} ({styles[i]})")
            png = render_png(song, Path(tmp) / f"sample{i}.png", dpi=60)
            images.append(wandb.Image(str(png), caption=song.source))
            mid = Path(tmp) / f"sample{i}.mid"
            write_midi(song, mid)
            artifact.add_file(str(mid))
        experiment.log({"samples/piano_rolls": images, "trainer/global_step": step})
        experiment.log_artifact(artifact)
