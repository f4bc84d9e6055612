"""Training windows streamed from a prepared corpus's shards, for corpora larger than memory.

`ArrangeDataModule(stream=True)` (``--data.stream true``) trains from `StreamingWindows`
instead of encoding every song up front. Each epoch:

1. the shards of the train split (of every prepared folder) are shuffled by (seed, epoch), the
   same order in every process;
2. the shards are dealt out to the consumers, one per DataLoader worker of each DDP rank
   (consumer c of C takes shards c, c + C, ...), so no two read the same shard (when there are
   fewer shards than consumers, each reads them all from its own place in the order);
3. each consumer holds at most `buffer_shards` shards' songs, encoded, and draws random windows
   from them (a song weighted by its window starts, as in memory), replacing its oldest shard
   with its next one as it goes: every shard of its share is read once an epoch, or more when
   the epoch is longer than the share.

Memory is that of `buffer_shards` shards per consumer (64 songs a shard by default), whatever
the corpus's size. Validation windows are a fixed draw from the first validation songs
(`val_windows` songs at most are encoded at once). A run resumed from a checkpoint (written at
an epoch's end) draws what it would have drawn, as the in-memory datasets do.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset

from structdiff.data.corpus import style_index
from structdiff.data.shards import read_shard
from structdiff.data.song import Song


class StreamingWindows(IterableDataset):
    """`length` training windows an epoch for one DDP rank, streamed from `shards`.

    Args:
        shards: the shard files (of the train split's folders; songs of other splits are left
            out as they are read).
        encode: a song to an example (an object with `starts` and `style`), or a reason (str)
            it is none (left out).
        window: (example, start) to a training item (a dict).
        styles: style names in the model's order (an item's `style` index; others: none).
        length: windows this rank yields per epoch (over all its DataLoader workers).
        rank, world_size: this process's DDP rank and the number of ranks.
        buffer_shards: shards whose songs a consumer holds at once.
        seed: seed of the shard order and the draws.
        split: the split to train on.
        keep: songs to train on (e.g. one style's); None keeps all.
    """

    def __init__(self, shards: list[Path], encode: Callable[[Song], object],
                 window: Callable[[object, int], dict], styles: list[str], length: int,
                 rank: int = 0, world_size: int = 1, buffer_shards: int = 4, seed: int = 0,
                 split: str = "train", keep: Callable[[Song], bool] | None = None):
        if not shards:
            raise ValueError("no shards to stream from")
        if buffer_shards < 1:
            raise ValueError(f"buffer_shards must be >= 1, got {buffer_shards}")
        self.shards = [Path(s) for s in shards]
        self.encode = encode
        self.window = window
        self.styles = styles
        self.length = length
        self.rank = rank
        self.world_size = world_size
        self.buffer_shards = buffer_shards
        self.seed = seed
        self.split = split
        self.keep = keep
        self.epoch = 0
        # (shard, its examples) that an iterator in this process holds now
        self.held: deque[tuple[Path, list]] = deque()

    def set_epoch(self, epoch: int) -> None:
        """Epoch `epoch`'s shard order and draws (a resumed run draws what it would have)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def consumer(self) -> tuple[int, int]:
        """(this consumer's index, the number of consumers): DataLoader workers of all ranks."""
        worker, workers = _worker()
        return self.rank * workers + worker, self.world_size * workers

    def share(self) -> list[Path]:
        """This consumer's shards this epoch, in the order it reads them."""
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.shards))
        index, consumers = self.consumer()
        if len(order) >= consumers:
            picked = order[index::consumers]
        else:  # fewer shards than consumers: each reads all, from its own place
            picked = np.roll(order, -index)
        return [self.shards[i] for i in picked.tolist()]

    def _windows(self) -> int:
        """Windows this consumer yields: its worker's part of the rank's `length`."""
        worker, workers = _worker()
        return self.length // workers + (worker < self.length % workers)

    def _examples(self, shard: Path) -> list:
        examples = []
        for song in read_shard(shard):
            if song.split != self.split or (self.keep is not None and not self.keep(song)):
                continue
            example = self.encode(song)
            if not isinstance(example, str):
                examples.append(example)
        return examples

    def __iter__(self) -> Iterator[dict]:
        index, _ = self.consumer()
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        share = self.share()
        n = self._windows()
        per_shard = math.ceil(n / len(share))  # draws before the oldest shard is replaced
        upcoming = deque(share)
        buffer = self.held = deque()

        def load_next() -> None:
            shard = upcoming.popleft()
            upcoming.append(shard)  # a share shorter than the epoch is read again
            buffer.append((shard, self._examples(shard)))

        def songs_held() -> tuple[list, np.ndarray]:
            pool = [e for _, examples in buffer for e in examples]
            weights = np.array([len(e.starts) for e in pool], dtype=float)
            return pool, weights / max(weights.sum(), 1.0)

        for _ in range(min(self.buffer_shards, len(share))):
            load_next()
        pool, p = songs_held()
        for drawn in range(n):
            if drawn and drawn % per_shard == 0 and len(share) > len(buffer):
                buffer.popleft()
                load_next()
                pool, p = songs_held()
            tries = 0
            while not pool:  # shards without a song of this split: read on
                if tries >= len(share):
                    raise ValueError(f"no {self.split} songs to train on in the shards of "
                                     f"{self.shards[0].parent}")
                if len(buffer) >= self.buffer_shards:
                    buffer.popleft()
                load_next()
                pool, p = songs_held()
                tries += 1
            example = pool[int(rng.choice(len(pool), p=p))]
            item = self.window(example, int(rng.choice(example.starts)))
            item["style"] = style_index(self.styles, example.style)
            yield item


def _worker() -> tuple[int, int]:
    """(this DataLoader worker's id, the number of workers): (0, 1) in the main process."""
    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)
