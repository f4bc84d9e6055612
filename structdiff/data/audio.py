"""MIDI to WAV with FluidSynth and a General MIDI soundfont, when the machine has them.

Nothing is downloaded: the synthesizer is the `fluidsynth` program on PATH, the soundfont the
file named by `STRUCTDIFF_SOUNDFONT` or the first of the usual Debian/Ubuntu/Fedora/macOS
places that exists. Without them, `render_wav` raises `SynthesizerMissing` whose message
says how to enable audio, in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SOUNDFONT_ENV = "STRUCTDIFF_SOUNDFONT"
SOUNDFONT_PLACES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
)
HOW_TO_ENABLE = (
    "no synthesizer for WAV output: install fluidsynth and a General MIDI soundfont "
    "(e.g. `apt-get install fluidsynth fluid-soundfont-gm`), or set STRUCTDIFF_SOUNDFONT "
    "to a .sf2 file"
)


class SynthesizerMissing(RuntimeError):
    """No fluidsynth program or no soundfont on this machine."""


def find_synthesizer() -> tuple[str, Path] | None:
    """`(fluidsynth executable, soundfont)`, or None when either is missing."""
    program = shutil.which("fluidsynth")
    if program is None:
        return None
    candidates = [os.environ[SOUNDFONT_ENV]] if os.environ.get(SOUNDFONT_ENV) else []
    candidates += list(SOUNDFONT_PLACES)
    for place in candidates:
        if Path(place).is_file():
            return program, Path(place)
    return None


def render_wav(midi_path: str | Path, wav_path: str | Path, sample_rate: int = 44100) -> Path:
    """Synthesize `midi_path` to a 16-bit WAV at `wav_path` (written atomically)."""
    found = find_synthesizer()
    if found is None:
        raise SynthesizerMissing(HOW_TO_ENABLE)
    program, soundfont = found
    wav_path = Path(wav_path)
    tmp = wav_path.with_name(f".{wav_path.stem}.tmp{os.getpid()}.wav")
    command = [program, "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-F", str(tmp),
               str(soundfont), str(midi_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(f"fluidsynth failed on {midi_path}: {reason[-1] if reason else '?'}")
    os.replace(tmp, wav_path)
    return wav_path
