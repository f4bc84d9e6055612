"""Plans of a prepared corpus as training examples for the planner.

Every song of a prepared corpus (`structdiff prepare`) carries its analyzed plan; it is
encoded once (`structdiff.data.plan_tensor`) and served as random windows of at most
`max_bars` bars, their section labels renumbered by first appearance in the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from structdiff.data.corpus import STYLES, style_index
from structdiff.data.plan_tensor import (
    MAX_LABELS,
    PLAN_LAYOUT,
    encode_song_plan,
    plan_condition,
)

LABEL = PLAN_LAYOUT[0].slice
START = PLAN_LAYOUT[1].slice


@dataclass
class PlanExample:
    x: np.ndarray  # [L, F] one-hot
    slot_valid: np.ndarray  # [L, S] bool
    bar_cond: np.ndarray  # [L, C] float32
    style: str | None
    mode: int  # 0 major, 1 minor, 2 unknown
    source: str


def encode_corpus(songs, min_bars: int = 2) -> tuple[list[PlanExample], list[str]]:
    """Examples from songs with analyzed plans; `(examples, reasons songs were left out)`."""
    examples, skipped = [], []
    for song in songs:
        if song.plan is None or song.n_bars < min_bars:
            skipped.append(f"{song.source}: no plan or fewer than {min_bars} bars")
            continue
        tensor = encode_song_plan(song, song.plan)
        key = song.plan.key
        examples.append(PlanExample(
            x=tensor.x,
            slot_valid=tensor.slot_valid,
            bar_cond=plan_condition(tensor.grid),
            style=song.style,
            mode=2 if key is None else (0 if key.mode == "major" else 1),
            source=song.source,
        ))
    return examples, skipped


def crop(example: PlanExample, start: int, n: int) -> dict[str, np.ndarray]:
    """Bars [start, start + n) of an example, labels renumbered by first appearance and a
    section starting on the window's first bar; per-bar conditions recomputed positions."""
    x = example.x[start : start + n].copy()
    labels = x[:, LABEL].argmax(axis=1)
    order: dict[int, int] = {}
    for lab in labels:
        if lab < MAX_LABELS and lab not in order:
            order[lab] = min(len(order), MAX_LABELS - 1)
    new = np.array([order.get(lab, lab) for lab in labels])
    x[:, LABEL] = 0
    x[np.arange(len(x)), LABEL.start + new] = 1
    x[0, START] = (0, 1)
    bar_cond = example.bar_cond[start : start + n].copy()
    bar_cond[:, 2] = np.arange(len(x)) / max(len(x) - 1, 1)  # position within the window
    return {"x": x, "slot_valid": example.slot_valid[start : start + n], "bar_cond": bar_cond}


class PlanDataset(Dataset):
    def __init__(self, examples: list[PlanExample], styles: list[str], max_bars: int,
                 random_crop: bool, seed: int = 0):
        self.examples = examples
        self.styles = styles
        self.max_bars = max_bars
        self.random_crop = random_crop
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.order = torch.Generator().manual_seed(seed)  # the training sampler's shuffle

    def set_epoch(self, epoch: int) -> None:
        """Epoch `epoch`'s shuffle and crops (a resumed run draws what it would have drawn)."""
        self.rng = np.random.default_rng([self.seed, epoch])
        self.order.manual_seed(self.seed * 100_003 + epoch)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        ex = self.examples[i]
        L = len(ex.x)
        n = min(L, self.max_bars)
        start = 0
        if self.random_crop and L > n and self.rng.random() < 0.5:
            start = int(self.rng.integers(0, L - n + 1))
        item = crop(ex, start, n)
        style = style_index(self.styles, ex.style)
        item.update(style=style, mode=ex.mode)
        return item


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Pad to the longest window: `x` [B, L, F], `slot_valid` [B, L, S], `bar_cond`
    [B, L, C], `pad` [B, L] (True on padding), `style` [B], `mode` [B]."""
    L = max(len(it["x"]) for it in items)
    B = len(items)
    F = items[0]["x"].shape[1]
    S = items[0]["slot_valid"].shape[1]
    C = items[0]["bar_cond"].shape[1]
    x = np.zeros((B, L, F), np.float32)
    slot_valid = np.zeros((B, L, S), bool)
    bar_cond = np.zeros((B, L, C), np.float32)
    pad = np.ones((B, L), bool)
    for b, it in enumerate(items):
        n = len(it["x"])
        x[b, :n], slot_valid[b, :n], bar_cond[b, :n] = it["x"], it["slot_valid"], it["bar_cond"]
        pad[b, :n] = False
    return {
        "x": torch.from_numpy(x),
        "slot_valid": torch.from_numpy(slot_valid),
        "bar_cond": torch.from_numpy(bar_cond),
        "pad": torch.from_numpy(pad),
        "style": torch.tensor([it["style"] for it in items], dtype=torch.long),
        "mode": torch.tensor([it["mode"] for it in items], dtype=torch.long),
    }


class PlanDataModule(pl.LightningDataModule):
    """Train and validation plans of a prepared corpus.

    Args:
        prepared: folder written by `structdiff prepare` (songs with plans), or a list of
            them trained on together.
        styles: style names the model is conditioned on, in its order (default: the styles of
            the embedded corpus); other styles count as none.
        max_bars: longest window of bars in a training example.
        batch_size: windows per batch.
        limit: use at most this many songs per split (0: all), for quick runs.
        only_styles: train and validate on the songs of these styles only (None: all), e.g.
            a style's own planner fine-tuned from the set's (`configs/planner_chorale.yaml`).
        seed: seed of the window sampling.
    """

    def __init__(
        self,
        prepared: str | list[str] = "data/music21",
        styles: list[str] | None = None,
        max_bars: int = 128,
        batch_size: int = 32,
        limit: int = 0,
        only_styles: list[str] | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.prepared = prepared
        self.styles = list(styles if styles is not None else STYLES)
        self.max_bars = max_bars
        self.batch_size = batch_size
        self.limit = limit
        self.only_styles = list(only_styles) if only_styles is not None else None
        if self.only_styles is not None and not self.only_styles:
            raise ValueError("only_styles must name at least one style (None: all)")
        self.seed = seed
        self.examples: dict[str, list[PlanExample]] = {}
        # (tonic, mode) counts `[24]` (12 major, then 12 minor) per style in the train split:
        # what `structdiff plan` draws a key from when none is given
        self.key_counts: dict[str, list[int]] = {}

    def setup(self, stage: str | None = None) -> None:
        from structdiff.data.prepare import training_splits

        if self.examples:
            return
        # plans, bars and meters only: a planner never reads the notes (a fraction of the
        # memory of the songs, so a corpus of 100k songs fits)
        for split, songs in training_splits(self.prepared, self.limit, notes=False).items():
            if self.only_styles is not None:
                songs = [s for s in songs if s.style in self.only_styles]
            if split == "train":
                for song in songs:
                    key = song.plan.key if song.plan else None
                    if key is not None:
                        counts = self.key_counts.setdefault(song.style or "", [0] * 24)
                        counts[key.tonic + (12 if key.mode == "minor" else 0)] += 1
            self.examples[split], _ = encode_corpus(songs)
            if not self.examples[split]:
                among = (f" of the styles {', '.join(self.only_styles)}"
                         if self.only_styles is not None else "")
                raise ValueError(f"no {split} songs with plans{among} in {self.prepared}")

    def train_dataloader(self) -> DataLoader:
        ds = PlanDataset(self.examples["train"], self.styles, self.max_bars, True, self.seed)
        return DataLoader(ds, batch_size=self.batch_size, collate_fn=collate,
                          sampler=RandomSampler(ds, generator=ds.order))

    def val_dataloader(self) -> DataLoader:
        ds = PlanDataset(self.examples["validation"], self.styles, self.max_bars, False)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=False, collate_fn=collate)
