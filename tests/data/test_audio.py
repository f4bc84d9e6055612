import wave

import pytest

from structdiff.data import audio
from structdiff.data.io import read_song
from structdiff.data.midi import write_midi


def test_missing_synthesizer_says_how_to_enable_it(monkeypatch, tmp_path):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    assert audio.find_synthesizer() is None
    with pytest.raises(audio.SynthesizerMissing, match="install fluidsynth") as info:
        audio.render_wav(tmp_path / "x.mid", tmp_path / "x.wav")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x.wav").exists()


def test_soundfont_from_the_environment(monkeypatch, tmp_path):
    font = tmp_path / "mine.sf2"
    font.write_bytes(b"RIFF")
    monkeypatch.setattr(audio.shutil, "which", lambda name: "/usr/bin/fluidsynth")
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(font))
    assert audio.find_synthesizer() == ("/usr/bin/fluidsynth", font)


@pytest.mark.skipif(audio.find_synthesizer() is None, reason="no fluidsynth and soundfont here")
def test_render_a_chorale_to_wav(tmp_path):
    song = read_song("music21:bach/bwv66.6")
    write_midi(song, tmp_path / "c.mid")
    out = audio.render_wav(tmp_path / "c.mid", tmp_path / "c.wav", sample_rate=22050)
    with wave.open(str(out)) as w:
        seconds = w.getnframes() / w.getframerate()
    # 10 bars of 4/4 minus the pickup at 96 quarter notes per minute: about 22 s of music
    assert 20 < seconds < 30
