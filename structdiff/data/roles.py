"""Role maps: which of K role slots each track fills, from part names and GM programs.

A role map is YAML (see `structdiff/data/roles/*.yaml` for the built-in `satb` and `band`).
Maps are found by name among the built-ins and in `datasets/roles/` of the working directory,
or given as a path to a `.yaml` file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from structdiff.data.song import PITCH, Song

# How the arranger represents a role's notes (DESIGN.md, "Track kinds"): per-step tokens for a
# monophonic line, a roll for polyphonic parts, hits on a reduced kit for drums.
KINDS = ("mono", "poly", "drums")
BUILTIN_DIR = Path(__file__).parent / "roles"
USER_DIR = Path("datasets") / "roles"


class RoleMapError(ValueError):
    """A role map that cannot be found or read."""


@dataclass(frozen=True)
class RoleRule:
    name: str
    names: tuple[re.Pattern, ...] = ()
    programs: tuple[tuple[int, int], ...] = ()
    drums: bool = False
    kind: str = "mono"  # what the arranger diffuses for this role: one of KINDS
    program: int | None = None  # GM program a generated track of this role gets by default

    def matches_name(self, track_name: str) -> bool:
        return _name_matches(self.names, track_name)

    def matches_program(self, program: int) -> bool:
        return any(lo <= program <= hi for lo, hi in self.programs)


@lru_cache(maxsize=8192)
def _name_matches(patterns: tuple[re.Pattern, ...], track_name: str) -> bool:
    """Whether any of `patterns` is found in `track_name`, remembered: a corpus repeats its
    track names ("Piano", "MELODY") thousands of times."""
    return any(p.search(track_name) for p in patterns)


@dataclass(frozen=True)
class RoleMap:
    name: str
    rules: tuple[RoleRule, ...]
    exclusive: bool = False  # one track per slot
    pitch_order: tuple[str, ...] = ()
    default: str | None = None
    description: str = ""
    path: str = field(default="", compare=False)

    @property
    def roles(self) -> list[str]:
        return [r.name for r in self.rules]

    @property
    def kinds(self) -> list[str]:
        """The kind of each role, in role order."""
        return [r.kind for r in self.rules]

    @property
    def programs(self) -> dict[str, int]:
        """The default GM program of each role that declares one."""
        return {r.name: r.program for r in self.rules if r.program is not None}


def available_role_maps() -> list[str]:
    names = {p.stem for p in BUILTIN_DIR.glob("*.yaml")}
    if USER_DIR.is_dir():
        names |= {p.stem for p in USER_DIR.glob("*.yaml")}
    return sorted(names)


@lru_cache(maxsize=32)
def load_role_map(name_or_path: str) -> RoleMap:
    """A role map by built-in name (`satb`, `band`), by name in `datasets/roles/`, or by path."""
    path = Path(name_or_path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        candidates = [USER_DIR / f"{name_or_path}.yaml", BUILTIN_DIR / f"{name_or_path}.yaml"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise RoleMapError(
                f"unknown role map {name_or_path!r} (available: "
                f"{', '.join(available_role_maps())}, or a path to a .yaml file)"
            )
    if not path.is_file():
        raise RoleMapError(f"no such role map file: {path}")
    try:
        spec = yaml.safe_load(path.read_text())
        rules = []
        for r in spec["roles"]:
            rules.append(
                RoleRule(
                    name=str(r["name"]),
                    names=tuple(re.compile(p, re.IGNORECASE) for p in r.get("names", [])),
                    programs=tuple(
                        (int(p[0]), int(p[1])) if isinstance(p, list) else (int(p), int(p))
                        for p in r.get("programs", [])
                    ),
                    drums=bool(r.get("drums", False)),
                    kind=str(r.get("kind", "drums" if r.get("drums") else "mono")),
                    program=None if r.get("program") is None else int(r["program"]),
                )
            )
        role_map = RoleMap(
            name=str(spec.get("name", path.stem)),
            rules=tuple(rules),
            exclusive=bool(spec.get("exclusive", False)),
            pitch_order=tuple(spec.get("pitch_order", [r.name for r in rules])),
            default=spec.get("default"),
            description=str(spec.get("description", "")),
            path=str(path),
        )
    except (yaml.YAMLError, KeyError, TypeError, ValueError, re.error) as e:
        raise RoleMapError(f"bad role map {path}: {type(e).__name__}: {e}") from None
    known = set(role_map.roles)
    for extra in [*role_map.pitch_order, *([role_map.default] if role_map.default else [])]:
        if extra not in known:
            raise RoleMapError(f"bad role map {path}: {extra!r} is not one of its roles")
    if not role_map.rules:
        raise RoleMapError(f"bad role map {path}: no roles")
    for r in role_map.rules:
        if r.kind not in KINDS:
            raise RoleMapError(f"bad role map {path}: role {r.name!r} has kind {r.kind!r} "
                               f"(kinds: {', '.join(KINDS)})")
        if (r.kind == "drums") != r.drums:
            raise RoleMapError(f"bad role map {path}: role {r.name!r}: kind drums goes with "
                               f"drums: true, and only with it")
        if r.program is not None and not 0 <= r.program <= 127:
            raise RoleMapError(f"bad role map {path}: role {r.name!r}: program must be 0-127, "
                               f"got {r.program}")
    return role_map


def choose_role_map(song: Song) -> str:
    """`satb` for part writing: a score (MusicXML, kern) without drums, or a MIDI file of a
    few voice- or string-like parts; else `band` (drums, band programs, or tracks named like a
    band's, as POP909's MELODY and PIANO on program 0)."""
    satb, band = load_role_map("satb"), load_role_map("band")
    pitched = [t for t in song.tracks if t.n_notes and not t.is_drum]
    if any(t.is_drum and t.n_notes for t in song.tracks):
        return "band"
    from_score = not song.source.lower().endswith((".mid", ".midi"))
    if from_score:
        return "satb"
    if len(pitched) > 6:
        return "band"

    def satb_name(t) -> bool:
        return any(r.matches_name(t.name) for r in satb.rules)

    band_named = [t for t in pitched if not satb_name(t)
                  and any(r.matches_name(t.name) for r in band.rules)]
    if band_named:
        return "band"
    part_like = all(satb_name(t) or 40 <= t.program <= 54 or t.program == 0 for t in pitched)
    return "satb" if part_like and len(pitched) >= 2 else "band"


def assign_roles(song: Song, role_map: str | RoleMap = "auto") -> Song:
    """Set `track.role` for every track (None for empty or unplaceable tracks), in place."""
    if isinstance(role_map, str):
        role_map = load_role_map(choose_role_map(song) if role_map == "auto" else role_map)
    song.role_map = role_map.name
    for t in song.tracks:
        t.role = None
    live = [t for t in song.tracks if t.n_notes]
    if role_map.exclusive:
        _assign_exclusive(live, role_map)
    else:
        for t in live:
            t.role = _match(t, role_map) or (None if t.is_drum else role_map.default)
    return song


def _match(track, role_map: RoleMap) -> str | None:
    if track.is_drum:
        return next((r.name for r in role_map.rules if r.drums), None)
    for r in role_map.rules:
        if not r.drums and r.matches_name(track.name):
            return r.name
    for r in role_map.rules:
        if not r.drums and r.matches_program(track.program):
            return r.name
    return None


def _assign_exclusive(tracks, role_map: RoleMap) -> None:
    taken: dict[str, object] = {}
    pitched = [t for t in tracks if not t.is_drum]
    for t in pitched:
        for r in role_map.rules:
            if r.name not in taken and r.matches_name(t.name):
                t.role = r.name
                taken[r.name] = t
                break
    rest = sorted((t for t in pitched if t.role is None), key=_mean_pitch, reverse=True)
    # the free slots to fill: first by the map's slot order (so 4 voices leave out `quintus`),
    # then filled high to low in `pitch_order`
    free = [name for name in role_map.roles if name not in taken][: len(rest)]
    free.sort(key=lambda n: role_map.pitch_order.index(n) if n in role_map.pitch_order else 99)
    for t, name in zip(rest, free):
        t.role = name
        taken[name] = t
    for t in pitched:
        if t.role is None and taken:
            # more parts than slots: merge into the slot whose track is closest in pitch
            t.role = min(taken, key=lambda n: abs(_mean_pitch(taken[n]) - _mean_pitch(t)))
    for t in tracks:
        if t.is_drum:
            t.role = next((r.name for r in role_map.rules if r.drums), None)


def _mean_pitch(track) -> float:
    return float(np.mean(track.notes[:, PITCH])) if track.n_notes else 0.0
