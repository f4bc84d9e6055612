"""Streaming training windows from shards (`structdiff.training.streaming`): each consumer
(DataLoader worker of each rank) reads its own shards, holds few at once, and draws the same
windows for the same epoch."""

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from structdiff.data.prepare import prepared_shards
from structdiff.training.arranger_data import ArrangeDataModule, encode_song, window
from structdiff.training.streaming import StreamingWindows
from tests.debug_models import tiny_corpus, train_debug

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"), shard_size=1)  # several shards


class FakeWorker:
    def __init__(self, id, num_workers):
        self.id, self.num_workers = id, num_workers


def shares(monkeypatch, n_shards, world, workers, epoch=0):
    shards = [Path(f"shard{i}.npz") for i in range(n_shards)]
    out = []
    for rank in range(world):
        ds = StreamingWindows(shards, str, lambda e, s: {}, [], length=10, rank=rank,
                              world_size=world)
        ds.set_epoch(epoch)
        for worker in range(workers):
            monkeypatch.setattr(torch.utils.data, "get_worker_info",
                                lambda w=worker: FakeWorker(w, workers))
            out.append(ds.share())
    return out


def test_consumers_read_disjoint_shares_that_cover_every_shard(monkeypatch):
    parts = shares(monkeypatch, 20, world=2, workers=3)
    assert len(parts) == 6
    every = [s for part in parts for s in part]
    assert len(every) == 20 and len(set(every)) == 20  # each shard read by one consumer
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    again = shares(monkeypatch, 20, world=2, workers=3)
    assert again == parts  # the same epoch: the same shares
    other = shares(monkeypatch, 20, world=2, workers=3, epoch=1)
    assert other != parts and sorted(s for p in other for s in p) == sorted(every)


def test_fewer_shards_than_consumers_each_reads_them_all(monkeypatch):
    parts = shares(monkeypatch, 2, world=2, workers=2)
    assert all(sorted(p) == [Path("shard0.npz"), Path("shard1.npz")] for p in parts)
    assert len({tuple(p) for p in parts}) == 2  # from different places in the order


def streaming(prepared, length=24, buffer_shards=2, rank=0, world_size=1, seed=0):
    shards = [prepared / name for name in prepared_shards(prepared)]
    return StreamingWindows(shards, encode_song, partial(window, n_steps=64), ["chorale"],
                            length=length, rank=rank, world_size=world_size,
                            buffer_shards=buffer_shards, seed=seed)


def test_a_stream_holds_at_most_its_buffer_and_reads_its_whole_share(prepared, monkeypatch):
    ds = streaming(prepared)
    read = []
    real = ds._examples
    monkeypatch.setattr(ds, "_examples", lambda shard: read.append(shard) or real(shard))
    items = []
    for item in ds:
        assert len(ds.held) <= 2
        items.append(item)
    assert len(items) == 24
    assert set(read) == set(ds.shards)  # every shard of its share, once at least
    assert {item["tokens"].shape for item in items} == {items[0]["tokens"].shape}
    assert all(item["plan"].shape[0] == 64 // 4 for item in items)


def test_the_same_epoch_draws_the_same_windows_and_the_next_one_others(prepared):
    def draw(epoch, rank=0):
        ds = streaming(prepared, rank=rank, world_size=2)
        ds.set_epoch(epoch)
        return [item["tokens"].tobytes() + item["plan"].tobytes() for item in ds]

    first = draw(0)
    assert draw(0) == first
    assert draw(1) != first
    assert draw(0, rank=1) != first  # the other rank: other shards, other draws
    assert len(first) == 24


def test_stream_and_memory_data_modules_serve_the_same_kind_of_batches(prepared):
    memory = ArrangeDataModule(str(prepared), window_steps=64, batch_size=4,
                               windows_per_epoch=8, val_windows=6)
    stream = ArrangeDataModule(str(prepared), window_steps=64, batch_size=4,
                               windows_per_epoch=8, val_windows=6, stream=True,
                               buffer_shards=1)
    memory.setup()
    stream.setup()
    assert not stream.examples  # nothing of the train split held up front
    a, b = next(iter(memory.train_dataloader())), next(iter(stream.train_dataloader()))
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)
    assert len(stream.train_dataloader()) == 2 and len(stream.val_dataloader()) == 2
    val = next(iter(stream.val_dataloader()))
    assert val["tokens"].shape[0] == 4 and np.isfinite(val["plan"].numpy()).all()


def test_stream_refuses_limit_and_a_style_it_does_not_have(prepared):
    with pytest.raises(ValueError, match="limit and stream"):
        ArrangeDataModule(str(prepared), stream=True, limit=2)
    dm = ArrangeDataModule(str(prepared), stream=True, only_styles=["quartet"])
    with pytest.raises(ValueError, match="no train songs of the styles quartet"):
        dm.setup()


def test_the_debug_arranger_trains_from_a_stream(prepared, tmp_path):
    export = train_debug("arranger", prepared, tmp_path, "--data.stream", "true",
                         "--data.buffer_shards", "1")
    assert (export / "arranger.safetensors").is_file()
