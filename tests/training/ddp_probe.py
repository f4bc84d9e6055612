"""A Lightning callback for the DDP test: each rank appends what it trains on (a fingerprint
of every batch) to `folder/rank{R}.txt`."""

import hashlib
from pathlib import Path

import pytorch_lightning as pl


class BatchProbe(pl.Callback):
    def __init__(self, folder: str):
        self.folder = Path(folder)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.folder.mkdir(parents=True, exist_ok=True)
        data = b"".join(v.numpy().tobytes() for _, v in sorted(batch.items())
                        if hasattr(v, "numpy"))
        with open(self.folder / f"rank{trainer.global_rank}.txt", "a") as f:
            f.write(f"{trainer.world_size} {hashlib.sha1(data).hexdigest()}\n")
