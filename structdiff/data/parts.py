"""A song's parts in the arranger's representation, one array per track kind.

A role map gives every role slot a kind (`structdiff.data.roles.KINDS`), and each kind is
encoded the way DESIGN.md's measurements favour:

- ``mono`` (voices, melody, bass): per-step tokens `[Km, T]` (`structdiff.data.tokens`: rest,
  hold, pitch), one note at a time by construction;
- ``poly`` (keys, guitar, strings/pads): a bool roll `[Kp, T, Pp, 2]` (onset, sustain;
  `structdiff.data.roll`) over `poly_pitches` pitches from `poly_low`, notes outside the range
  moved by whole octaves into it;
- ``drums``: bool hits `[Kd, T, D]` on the reduced kit of `structdiff.data.drums` (kick, snare,
  closed and open hi-hat, toms, crash, ride, other percussion), onsets only.

`PartLayout` says which slot is which kind; `encode_parts` / `decode_parts` go between a Song
and `Parts`, and decoded drum hits are written back as the kit's GM keys.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from structdiff.data.drums import CLASS_NOTES, DRUM_CLASSES, drum_class
from structdiff.data.roles import KINDS, RoleMap
from structdiff.data.roll import ONSET, decode_roll, encode_roll
from structdiff.data.song import DURATION, PITCH, Song, sort_notes
from structdiff.data.tokens import REST, decode_tokens, encode_tokens, fold_notes

N_DRUMS = len(DRUM_CLASSES)


@dataclass(frozen=True)
class PartLayout:
    """The role slots of an arranger and how each is represented."""

    roles: tuple[str, ...]
    kinds: tuple[str, ...]  # one of KINDS per role
    pitch_low: int = 33  # mono token pitch range
    n_pitches: int = 54
    poly_low: int = 36  # poly roll pitch range
    poly_pitches: int = 48

    def __post_init__(self):
        if len(self.roles) != len(self.kinds):
            raise ValueError(f"one kind per role: {len(self.roles)} roles, {len(self.kinds)} kinds")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise ValueError(f"unknown track kind {bad[0]!r} (kinds: {', '.join(KINDS)})")
        if self.poly_pitches < 12 or self.poly_low + self.poly_pitches > 128:
            raise ValueError(f"poly pitch range {self.poly_low}+{self.poly_pitches} must hold "
                             f"an octave and stay within 0-127")

    def slots(self, kind: str) -> list[int]:
        """Indices of the role slots of `kind`, in role order."""
        return [k for k, kd in enumerate(self.kinds) if kd == kind]

    def roles_of(self, kind: str) -> list[str]:
        return [self.roles[k] for k in self.slots(kind)]

    def kind_of(self, role: str) -> str:
        return self.kinds[self.roles.index(role)]

    @classmethod
    def of_role_map(cls, role_map: RoleMap, **ranges) -> PartLayout:
        """The layout of a role map's roles and kinds (pitch ranges as keyword arguments)."""
        return cls(tuple(role_map.roles), tuple(role_map.kinds), **ranges)

    @classmethod
    def of(cls, role_map: str | None = None, roles: list[str] | tuple[str, ...] | None = None,
           **ranges) -> PartLayout:
        """The layout of a model: the roles and kinds of `role_map` (`roles`, when given, must
        be its roles), else `roles` (default: the `satb` slots), all monophonic (the classical
        arranger)."""
        from structdiff.data.arrange_tensor import ROLES
        from structdiff.data.roles import load_role_map

        if role_map is None:
            roles = tuple(roles if roles is not None else ROLES)
            return cls(roles, ("mono",) * len(roles), **ranges)
        layout = cls.of_role_map(load_role_map(role_map), **ranges)
        if roles is not None and tuple(roles) != layout.roles:
            raise ValueError(f"roles {list(roles)} differ from the role map {role_map}'s "
                             f"{list(layout.roles)}")
        return layout


@dataclass
class Parts:
    """Steps of a song per kind: `tokens` `[Km, T]` int, `roll` `[Kp, T, Pp, 2]` bool, `hits`
    `[Kd, T, D]` bool (K* = the slots of each kind, in role order)."""

    tokens: np.ndarray
    roll: np.ndarray
    hits: np.ndarray

    @property
    def n_steps(self) -> int:
        return self.tokens.shape[1] if len(self.tokens) else (
            self.roll.shape[1] if len(self.roll) else self.hits.shape[1])

    def window(self, start: int, n_steps: int) -> Parts:
        """Steps [start, start + n_steps); steps past the end are silent (rest, no notes)."""
        hi = min(self.n_steps, start + n_steps)
        tokens = np.full((len(self.tokens), n_steps), REST, dtype=np.int64)
        tokens[:, : hi - start] = self.tokens[:, start:hi]
        roll = np.zeros((len(self.roll), n_steps, *self.roll.shape[2:]), dtype=bool)
        roll[:, : hi - start] = self.roll[:, start:hi]
        hits = np.zeros((len(self.hits), n_steps, *self.hits.shape[2:]), dtype=bool)
        hits[:, : hi - start] = self.hits[:, start:hi]
        return Parts(tokens, roll, hits)


def encode_parts(song: Song, layout: PartLayout, start: int = 0,
                 end: int | None = None) -> Parts:
    """Steps [start, end) of `song` as `Parts` of `layout`. Tracks whose role is not a slot of
    the layout are left out; tracks sharing a role merge into its slot."""
    end = song.end if end is None else end
    mono, poly, drums = (layout.roles_of(k) for k in KINDS)
    T = end - start
    if mono:
        tokens = encode_tokens(song, mono, start, end, layout.pitch_low, layout.n_pitches)
    else:
        tokens = np.zeros((0, T), dtype=np.int64)
    if poly:
        folded = [replace(t, notes=fold_notes(t.notes, layout.poly_low, layout.poly_pitches),
                          is_drum=False)
                  for t in song.tracks if t.role in poly and t.n_notes]
        roll = encode_roll(replace(song, tracks=folded), poly, start, end, layout.poly_low,
                           layout.poly_pitches, drum_roles=frozenset())
    else:
        roll = np.zeros((0, T, layout.poly_pitches, 2), dtype=bool)
    if drums:
        classed = []
        for t in song.tracks:
            if t.role in drums and t.n_notes:
                notes = t.notes.copy()
                notes[:, PITCH] = drum_class(np.clip(notes[:, PITCH], 0, 127))
                notes[:, DURATION] = 1
                classed.append(replace(t, notes=notes))
        hits = encode_roll(replace(song, tracks=classed), drums, start, end, 0, N_DRUMS,
                           drum_roles=frozenset(drums))[..., ONSET]
    else:
        hits = np.zeros((0, T, N_DRUMS), dtype=bool)
    return Parts(tokens.astype(np.int64), roll, hits)


def decode_parts(parts: Parts, layout: PartLayout, start: int = 0,
                 velocity: int = 80) -> dict[str, np.ndarray]:
    """Notes `[N, 4]` per role of `layout` from `parts`, times offset by `start`; drum hits
    become one-step notes on the kit's GM keys (`structdiff.data.drums.CLASS_NOTES`)."""
    mono, poly, drums = (layout.roles_of(k) for k in KINDS)
    out: dict[str, np.ndarray] = {}
    if mono:
        out.update(decode_tokens(parts.tokens, mono, start, layout.pitch_low, velocity))
    if poly:
        out.update(decode_roll(parts.roll, poly, start, layout.poly_low, velocity,
                               drum_roles=frozenset()))
    if drums:
        hits = np.stack([parts.hits, np.zeros_like(parts.hits)], axis=-1)
        for role, notes in decode_roll(hits, drums, start, 0, velocity,
                                       drum_roles=frozenset(drums)).items():
            notes[:, PITCH] = np.asarray(CLASS_NOTES)[notes[:, PITCH]]
            out[role] = sort_notes(notes)
    return {role: out[role] for role in layout.roles}
