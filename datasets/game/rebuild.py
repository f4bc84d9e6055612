"""Rebuild the game-music corpus (Freedoom level music, Simutrans soundtrack) from Debian packages.

    python datasets/game/rebuild.py --out DIR [--work DIR] [--compare DIR]

Downloads the Debian packages ``freedoom`` and ``simutrans-data`` with ``apt-get download`` (no
root needed, any Debian or Ubuntu with those packages in its sources), unpacks them with
``dpkg-deb -x`` and writes

    DIR/freedoom/<wad>_<lump>.mid   every D_* music lump of freedoom1.wad and freedoom2.wad
    DIR/freedoom/COPYRIGHT          the package's copyright file (BSD-style licence)
    DIR/simutrans/<name>.mid        every .mid of /usr/share/games/simutrans/music
    DIR/simutrans/COPYRIGHT         the package's copyright file (Artistic-1.0)

``--compare DIR`` then lists the files that differ from another copy (missing, extra, other
bytes). Pass ``--debs DIR`` to use ``.deb`` files already downloaded there instead.

A WAD file is a 12-byte header (``IWAD`` or ``PWAD``, the lump count and the directory's offset,
little-endian int32) and a directory of 16-byte entries (offset, size, name padded with NULs to
8 bytes). Music lumps are named ``D_*`` and hold either a Standard MIDI File (``MThd``) or Doom's
own MUS format (``MUS\\x1a``). Freedoom 0.12.1 ships MIDI only; a MUS lump is reported and
skipped (converting it needs a MUS-to-MIDI translator, e.g. ``mus2mid``, which this recipe does
not include).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGES = ("freedoom", "simutrans-data")
WAD_DIR = "usr/share/games/doom"
WADS = ("freedoom1.wad", "freedoom2.wad")
SIMUTRANS_MUSIC = "usr/share/games/simutrans/music"
COPYRIGHT = {"freedoom": "usr/share/doc/freedoom/copyright",
             "simutrans": "usr/share/doc/simutrans-data/copyright"}
MIDI_MAGIC = b"MThd"
MUS_MAGIC = b"MUS\x1a"


class WadError(ValueError):
    """A file that is not a readable WAD."""


def read_wad_lumps(data: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of every lump of a WAD file's contents, in directory order."""
    if len(data) < 12 or data[:4] not in (b"IWAD", b"PWAD"):
        raise WadError("not a WAD file (no IWAD/PWAD header)")
    count, offset = struct.unpack_from("<ii", data, 4)
    if count < 0 or offset < 12 or offset + 16 * count > len(data):
        raise WadError(f"bad WAD directory: {count} lumps at offset {offset} in {len(data)} bytes")
    lumps = []
    for i in range(count):
        start, size, raw = struct.unpack_from("<ii8s", data, offset + 16 * i)
        name = raw.split(b"\0", 1)[0].decode("ascii", "replace")
        if start < 0 or size < 0 or start + size > len(data):
            raise WadError(f"lump {name} runs past the end of the file")
        lumps.append((name, data[start:start + size]))
    return lumps


def music_lumps(data: bytes) -> tuple[dict[str, bytes], list[str]]:
    """The MIDI music lumps of a WAD ({name: MIDI bytes}) and the names of its MUS lumps."""
    midi, mus = {}, []
    for name, lump in read_wad_lumps(data):
        if not name.startswith("D_"):
            continue
        if lump.startswith(MIDI_MAGIC):
            midi[name] = lump
        elif lump.startswith(MUS_MAGIC):
            mus.append(name)
    return midi, mus


def download(work: Path) -> list[Path]:
    """``apt-get download`` the packages into `work`; the .deb paths."""
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=work, check=True)
    return debs_in(work)


def debs_in(folder: Path) -> list[Path]:
    debs = [next(iter(sorted(folder.glob(f"{p}_*.deb"))), None) for p in PACKAGES]
    missing = [p for p, d in zip(PACKAGES, debs) if d is None]
    if missing:
        raise SystemExit(f"no .deb of {', '.join(missing)} in {folder}")
    return debs


def rebuild(debs: list[Path], work: Path, out: Path) -> dict[str, int]:
    """Unpack `debs` under `work` and write the corpus to `out`; counts of files written."""
    root = work / "root"
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    counts = {"freedoom": 0, "simutrans": 0, "mus_skipped": 0}
    freedoom = out / "freedoom"
    freedoom.mkdir(parents=True, exist_ok=True)
    for wad in WADS:
        midi, mus = music_lumps((root / WAD_DIR / wad).read_bytes())
        for name, data in midi.items():
            (freedoom / f"{Path(wad).stem}_{name}.mid").write_bytes(data)
        counts["freedoom"] += len(midi)
        counts["mus_skipped"] += len(mus)
        if mus:
            print(f"{wad}: skipped {len(mus)} MUS lumps (not converted): {' '.join(mus)}",
                  file=sys.stderr)
    simutrans = out / "simutrans"
    simutrans.mkdir(parents=True, exist_ok=True)
    for path in sorted((root / SIMUTRANS_MUSIC).glob("*.mid")):
        shutil.copyfile(path, simutrans / path.name)
        counts["simutrans"] += 1
    for folder, copyright in COPYRIGHT.items():
        shutil.copyfile(root / copyright, out / folder / "COPYRIGHT")
    return counts


def compare(a: Path, b: Path) -> list[str]:
    """Lines naming the files that are only in `a`, only in `b`, or differ in bytes."""
    def digests(folder: Path) -> dict[str, str]:
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    da, db = digests(a), digests(b)
    lines = [f"only in {a}: {n}" for n in sorted(da.keys() - db.keys())]
    lines += [f"only in {b}: {n}" for n in sorted(db.keys() - da.keys())]
    lines += [f"differs: {n}" for n in sorted(da.keys() & db.keys()) if da[n] != db[n]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the corpus to")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--debs", type=Path, help="use the .deb files in this folder")
    parser.add_argument("--compare", type=Path, help="a copy to compare the result with")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        debs = debs_in(args.debs) if args.debs else download(work)
        counts = rebuild(debs, work, args.out)
    print(f"wrote {counts['freedoom']} Freedoom and {counts['simutrans']} Simutrans MIDI files "
          f"to {args.out} ({counts['mus_skipped']} MUS lumps skipped)")
    if args.compare:
        lines = compare(args.out, args.compare)
        print("\n".join(lines) if lines else f"identical to {args.compare}")
        return 1 if lines else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
