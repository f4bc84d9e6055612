"""Sample windows in a training run's log: piano-roll images and MIDI files as an artifact."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from structdiff.data.arrange_tensor import window_bars
from structdiff.data.song import Song, Tempo, TimeSignature, Track


def window_song(notes: dict[str, np.ndarray], plan_features: np.ndarray, n_steps: int,
                source: str = "arranger sample") -> Song:
    """A song of one window's notes per role (in C), its bars read from the plan features."""
    bars = window_bars(plan_features)
    if len(bars) == 0 or bars[0] != 0:
        bars = np.concatenate([[0], bars]).astype(np.int64)
    tracks = [Track(role, 0, role == "drums", n, role)
              for role, n in notes.items() if len(n)]
    end = max(n_steps, int(bars[-1]) + 1)
    return Song(tracks, bars.astype(np.int64), end, [TimeSignature(0, 4, 4)], [Tempo(0, 100.0)],
                source=source)


def log_windows(logger, notes: list[dict[str, np.ndarray]], batch: dict, styles: list[str],
                step: int) -> None:
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
        for i, window in enumerate(notes):
            playing = {r: n for (r, n), p in zip(window.items(), present[i]) if p}
            song = window_song(playing, plans[i], plans.shape[1] * 4,
                               source=f"sample {i} ({styles[i]})")
            png = render_png(song, Path(tmp) / f"sample{i}.png", dpi=60)
            images.append(wandb.Image(str(png), caption=song.source))
            mid = Path(tmp) / f"sample{i}.mid"
            write_midi(song, mid)
            artifact.add_file(str(mid))
        experiment.log({"samples/piano_rolls": images, "trainer/global_step": step})
        experiment.log_artifact(artifact)
