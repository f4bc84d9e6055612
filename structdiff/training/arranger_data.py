"""Windows of prepared corpora as training examples for the arranger.

Every song with a plan is transposed so that its key's tonic is C, encoded once in the
arranger's representation of each track kind (`structdiff.data.parts`: tokens for mono roles,
a roll for poly roles, hits for drums) and a per-step plan (`structdiff.data.arrange_tensor.
step_plan`). An example is a window of `window_steps` steps starting on a bar line: training
draws windows at random (every bar line of every song is a start; `windows_per_epoch` of them
make an epoch), validation uses a fixed list. Several prepared corpora train one model
together (a band model learns from POP909, mma-rendered bands, Groove drums and game music);
a song of a corpus that has only some roles (Groove: drums) trains those roles alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from structdiff.data.arrange_tensor import (
    INTENSITY_CUTS,
    WINDOW_STEPS,
    StepPlan,
    feature_slice,
    key_shift,
    step_plan,
    token_features,
    transpose_song,
    window_starts,
)
from structdiff.data.corpus import STYLES, style_index
from structdiff.data.parts import PartLayout, Parts, encode_parts
from structdiff.data.song import Song
from structdiff.data.tokens import N_SPECIAL


@dataclass
class ArrangeExample:
    parts: Parts  # the whole song, transposed to C
    present: np.ndarray  # [K] bool, roles with notes
    plan: StepPlan
    starts: np.ndarray  # bar starts a window may begin at
    style: str | None
    source: str
    shift: int = 0  # semitones the song was moved to reach C (`key_shift`)


def encode_song(song: Song, layout: PartLayout | None = None, min_steps: int = 16,
                intensity_cuts: tuple[float, float] = INTENSITY_CUTS) -> ArrangeExample | str:
    """The song as an example (its sections' intensities cut at `intensity_cuts`), or the
    reason it can't be one."""
    layout = layout or PartLayout.of()
    roles = layout.roles
    if song.plan is None:
        return f"{song.source}: no plan"
    if not any(t.role in roles and t.n_notes for t in song.tracks):
        return f"{song.source}: no track in the roles {', '.join(roles)}"
    if song.end < min_steps:
        return f"{song.source}: shorter than {min_steps} steps"
    moved = transpose_song(song, key_shift(song.plan.key))
    parts = encode_parts(moved, layout, 0, song.end)
    parts.tokens = parts.tokens.astype(np.int16)
    present = np.array([any(t.role == r and t.n_notes for t in song.tracks) for r in roles])
    return ArrangeExample(parts, present, step_plan(song, song.plan, cuts=intensity_cuts),
                          window_starts(song.bars, song.end, min_steps), song.style, song.source,
                          key_shift(song.plan.key))


def window(example: ArrangeExample, start: int, n_steps: int = WINDOW_STEPS) -> dict:
    """Steps [start, start + n_steps) of an example: `tokens` [Km, n] (REST past the end),
    `roll` [Kp, n, P, 2], `hits` [Kd, n, D], `plan` [n // 4, F], `present` [K] and `register`
    (the semitones its notes were moved from the song's own key)."""
    w = example.parts.window(start, n_steps)
    return {"tokens": w.tokens, "roll": w.roll, "hits": w.hits,
            "plan": token_features(example.plan, start, n_steps),
            "present": example.present.copy(), "register": example.shift}


def transpose_room(item: dict, n_pitches: int, poly_pitches: int) -> tuple[int, int]:
    """The shifts `(lo, hi)` in semitones, both included, that keep every pitch of a `window`
    in its range: its mono pitch tokens in `n_pitches`, its poly roll in `poly_pitches`."""
    lo, hi = -127, 127
    pitches = item["tokens"][item["tokens"] >= N_SPECIAL].astype(np.int64) - N_SPECIAL
    if pitches.size:
        lo, hi = max(lo, -int(pitches.min())), min(hi, n_pitches - 1 - int(pitches.max()))
    sounding = np.nonzero(item["roll"].any(axis=(0, 1, 3)))[0]
    if sounding.size:
        lo, hi = max(lo, -int(sounding.min())), min(hi, poly_pitches - 1 - int(sounding.max()))
    return lo, hi


def transpose_window(item: dict, semitones: int) -> dict:
    """A `window` with every pitch moved by `semitones` (data augmentation): mono pitch
    tokens, the poly roll and the plan chords' roots and basses (pitch classes, so the chords
    still fit the notes); drum hits stay. The shift must keep the pitches in range
    (`transpose_room`)."""
    if not semitones:
        return item
    tokens = item["tokens"]
    out = dict(item)
    out["tokens"] = np.where(tokens >= N_SPECIAL, tokens + semitones, tokens).astype(tokens.dtype)
    out["roll"] = np.roll(item["roll"], semitones, axis=2)
    plan = item["plan"].copy()
    for group in ("root", "bass"):
        cols = feature_slice(group)
        classes = slice(cols.start, cols.stop - 1)  # the 12 pitch classes; "no chord" stays
        plan[:, classes] = np.roll(plan[:, classes], semitones, axis=1)
    out["plan"] = plan
    out["register"] = item["register"] + semitones
    return out


class WindowDataset(Dataset):
    """Training: `length` random windows (songs weighted by their number of window starts),
    each moved by a random shift of up to `transpose` semitones either way that keeps its
    pitches in range (`pitch_ranges`: mono and poly pitch counts; 0: as written).
    Validation (`random=False`): the windows at `picks` `[(example, start)]`."""

    def __init__(self, examples: list[ArrangeExample], styles: list[str], window_steps: int,
                 length: int = 0, picks: list[tuple[int, int]] | None = None,
                 seed: int | list[int] = 0, transpose: int = 0,
                 pitch_ranges: tuple[int, int] = (54, 48)):
        self.transpose = transpose
        self.pitch_ranges = pitch_ranges
        self.examples = examples
        self.styles = styles
        self.window_steps = window_steps
        self.picks = picks
        self.length = length if picks is None else len(picks)
        weights = np.array([len(e.starts) for e in examples], dtype=float)
        self.p = weights / weights.sum()
        self.seed = seed
        self.epoch_rng = np.random.default_rng(seed)
        self.shift_rng = _shift_rng(self.epoch_rng)

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch `epoch`'s windows (a resumed run draws what it would have drawn)."""
        self.epoch_rng = np.random.default_rng([*np.atleast_1d(self.seed).tolist(), epoch])
        self.shift_rng = _shift_rng(self.epoch_rng)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        if self.picks is not None:
            e, start = self.picks[i]
        else:
            e = int(self.epoch_rng.choice(len(self.examples), p=self.p))
            start = int(self.epoch_rng.choice(self.examples[e].starts))
        ex = self.examples[e]
        item = window(ex, start, self.window_steps)
        if self.transpose and self.picks is None:
            lo, hi = transpose_room(item, *self.pitch_ranges)
            lo, hi = max(lo, -self.transpose), min(hi, self.transpose)
            item = transpose_window(item, int(self.shift_rng.integers(lo, hi + 1)))
        item["style"] = style_index(self.styles, ex.style)
        return item


def _shift_rng(rng: np.random.Generator) -> np.random.Generator:
    """The transpositions' own generator, spawned from the windows' one without drawing from
    it, so that the windows drawn do not depend on `transpose`."""
    return np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """`tokens` [B, Km, T] long, `roll` [B, Kp, T, P, 2] and `hits` [B, Kd, T, D] bool, `plan`
    [B, N, F], `present` [B, K] bool, `style` [B] long, `register` [B] long."""
    return {
        "tokens": torch.from_numpy(np.stack([it["tokens"] for it in items])),
        "roll": torch.from_numpy(np.stack([it["roll"] for it in items])),
        "hits": torch.from_numpy(np.stack([it["hits"] for it in items])),
        "plan": torch.from_numpy(np.stack([it["plan"] for it in items])),
        "present": torch.from_numpy(np.stack([it["present"] for it in items])),
        "style": torch.tensor([it["style"] for it in items], dtype=torch.long),
        "register": torch.tensor([it["register"] for it in items], dtype=torch.long),
    }


def validation_picks(examples: list[ArrangeExample], n: int,
                     seed: int = 0) -> list[tuple[int, int]]:
    """A fixed draw of `n` windows `(example, start)`, spread over the examples."""
    rng = np.random.default_rng(seed)
    picks = []
    for i in range(n):
        e = i % len(examples)
        picks.append((e, int(rng.choice(examples[e].starts))))
    return picks


class ArrangeDataModule(pl.LightningDataModule):
    """Train and validation windows of a prepared corpus.

    Args:
        prepared: folder written by `structdiff prepare` (songs with plans), or a list of them
            trained on together.
        styles: style names the model is conditioned on, in its order (default: the styles of
            the embedded corpus); other styles count as none.
        roles: the track slots, in the model's order (default: the role map's, else `satb`'s).
        role_map: the role map whose roles and track kinds the model has (None: `roles`, all
            monophonic).
        pitch_low, n_pitches: the mono token pitch range; poly_low, poly_pitches: the poly roll's.
        intensity_cuts: note densities between the intensity levels (default: the embedded
            corpus's, `INTENSITY_CUTS`).
        window_steps: steps per window (a multiple of 4).
        batch_size: windows per batch.
        windows_per_epoch: random training windows per epoch.
        val_windows: fixed validation windows.
        limit: use at most this many songs per split (0: all), for quick runs.
        only_styles: train and validate on the songs of these styles only (None: all), e.g.
            a model for one style of a corpus whose other styles would dilute it.
        num_workers: DataLoader workers.
        seed: seed of the window sampling.
        stream: stream the train split's shards (`structdiff.training.streaming`) instead of
            encoding every song up front: memory stays that of `buffer_shards` shards per
            DataLoader worker and rank, for corpora larger than memory. Under DDP each rank
            reads its own shards.
        buffer_shards: shards a streaming worker holds at once.
        transpose: move each training window by a random shift of up to this many semitones
            (0..6) either way (notes and chords together, within the pitch ranges; 0: none), so that
            a model of a small corpus sees its voice leading in other keys than C. Validation
            windows stay in C.
    """

    def __init__(
        self,
        prepared: str | list[str] = "data/music21",
        styles: list[str] | None = None,
        roles: list[str] | None = None,
        role_map: str | None = None,
        pitch_low: int = 33,
        n_pitches: int = 54,
        poly_low: int = 36,
        poly_pitches: int = 48,
        intensity_cuts: list[float] | None = None,
        window_steps: int = WINDOW_STEPS,
        batch_size: int = 32,
        windows_per_epoch: int = 8192,
        val_windows: int = 512,
        limit: int = 0,
        only_styles: list[str] | None = None,
        num_workers: int = 0,
        seed: int = 0,
        stream: bool = False,
        buffer_shards: int = 4,
        transpose: int = 0,
    ):
        super().__init__()
        if limit and stream:
            raise ValueError("limit and stream do not go together: limit loads songs up front")
        if not 0 <= transpose <= 6:  # more is a smaller shift the other way; and with the
            # key's own shift (-6..5) the register condition stays within its -12..12
            raise ValueError(f"transpose must be 0..6 semitones, got {transpose}")
        if transpose and stream:
            raise ValueError("transpose and stream do not go together yet: streamed windows "
                             "are not transposed")
        self.transpose = transpose
        self.prepared = prepared
        self.styles = list(styles if styles is not None else STYLES)
        self.layout = PartLayout.of(role_map, roles, pitch_low=pitch_low, n_pitches=n_pitches,
                                    poly_low=poly_low, poly_pitches=poly_pitches)
        self.roles = self.layout.roles
        self.intensity_cuts = tuple(intensity_cuts or INTENSITY_CUTS)
        self.window_steps = window_steps
        self.batch_size = batch_size
        self.windows_per_epoch = windows_per_epoch
        self.val_windows = val_windows
        self.limit = limit
        self.only_styles = list(only_styles) if only_styles is not None else None
        self.num_workers = num_workers
        self.seed = seed
        self.stream = stream
        self.buffer_shards = buffer_shards
        self.examples: dict[str, list[ArrangeExample]] = {}
        self.skipped: list[str] = []
        self.val_items: list[dict] = []  # streaming: the fixed validation windows

    def setup(self, stage: str | None = None) -> None:
        from structdiff.data.prepare import training_splits

        if self.examples or self.val_items:
            return
        if self.stream:
            self._setup_stream()
            return
        for split, songs in training_splits(self.prepared, self.limit).items():
            examples = [ex for ex in (self._encode(s) for s in songs if self._keep(s))
                        if ex is not None]
            if not examples:
                self._no_songs(split)
            self.examples[split] = examples

    def _keep(self, song: Song) -> bool:
        return self.only_styles is None or _style_in(song, self.only_styles)

    def _encode(self, song: Song) -> ArrangeExample | None:
        """The song's example, or None (its reason goes to `skipped`)."""
        ex = encode_song(song, self.layout, intensity_cuts=self.intensity_cuts)
        if isinstance(ex, str):
            self.skipped.append(ex)
            return None
        return ex

    def _no_songs(self, split: str) -> None:
        among = (f" of the styles {', '.join(self.only_styles)}"
                 if self.only_styles is not None else "")
        raise ValueError(f"no {split} songs{among} with plans and notes in {self.prepared}")

    def _setup_stream(self) -> None:
        """Streaming: list the shards, check that a train song is there, and encode only the
        validation songs that the fixed validation windows come from (`val_windows` at most)."""
        from structdiff.data.prepare import load_prepared, prepared_folders, prepared_shards

        folders = prepared_folders(self.prepared)
        self.shards = [f / name for f in folders for name in prepared_shards(f)]
        train = (s for f in folders for s in load_prepared(f, "train", notes=False))
        if not any(s.plan is not None and self._keep(s) for s in train):
            self._no_songs("train")
        examples = []
        for song in (s for f in folders for s in load_prepared(f, "validation")):
            if len(examples) >= self.val_windows:
                break
            if self._keep(song) and (ex := self._encode(song)) is not None:
                examples.append(ex)
        if not examples:
            self._no_songs("validation")
        picks = validation_picks(examples, self.val_windows, self.seed)
        self.val_items = [WindowDataset(examples, self.styles, self.window_steps,
                                        picks=picks)[i] for i in range(len(picks))]

    def train_dataloader(self) -> DataLoader:
        # under DDP every process draws its own windows: the sampler splits the indices
        # among the ranks, but a window is drawn from the dataset's generator whatever the
        # index, so each rank seeds its own (rank 0 draws what a single process does)
        rank = self.trainer.global_rank if self.trainer is not None else 0
        if self.stream:
            from structdiff.training.streaming import StreamingWindows

            # Lightning warns that an iterable dataset's length may be wrong with several
            # workers: this one gives each worker its own share of the length and the shards
            warnings.filterwarnings("ignore", message=".*IterableDataset. has .__len__. defined")

            world = self.trainer.world_size if self.trainer is not None else 1
            ds = StreamingWindows(
                self.shards,
                partial(encode_song, layout=self.layout, intensity_cuts=self.intensity_cuts),
                partial(window, n_steps=self.window_steps), self.styles,
                length=self.windows_per_epoch // world, rank=rank, world_size=world,
                buffer_shards=self.buffer_shards, seed=self.seed,
                keep=(partial(_style_in, styles=tuple(self.only_styles))
                      if self.only_styles is not None else None))
            return DataLoader(ds, batch_size=self.batch_size, collate_fn=collate,
                              num_workers=self.num_workers)
        ds = WindowDataset(self.examples["train"], self.styles, self.window_steps,
                           length=self.windows_per_epoch,
                           seed=self.seed if rank == 0 else [self.seed, rank],
                           transpose=self.transpose,
                           pitch_ranges=(self.layout.n_pitches, self.layout.poly_pitches))
        return DataLoader(ds, batch_size=self.batch_size, collate_fn=collate,
                          num_workers=self.num_workers, worker_init_fn=_reseed,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        if self.stream:
            return DataLoader(self.val_items, batch_size=self.batch_size, collate_fn=collate)
        picks = validation_picks(self.examples["validation"], self.val_windows, self.seed)
        ds = WindowDataset(self.examples["validation"], self.styles, self.window_steps,
                           picks=picks)
        return DataLoader(ds, batch_size=self.batch_size, collate_fn=collate)


def _style_in(song: Song, styles) -> bool:
    return song.style in styles


def _reseed(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    seeds = [*np.atleast_1d(info.dataset.seed).tolist(), worker_id, info.seed % 2**31]
    info.dataset.epoch_rng = np.random.default_rng(seeds)
    info.dataset.shift_rng = _shift_rng(info.dataset.epoch_rng)
