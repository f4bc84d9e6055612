"""`structdiff` command line: parses arguments and calls the library, nothing more.

Every command exits 0 on success and 2 with one line on stderr for bad input or usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from structdiff.data.adapters import ADAPTERS
from structdiff.data.roles import RoleMapError
from structdiff.data.song import MusicFileError
from structdiff.metrics.evaluate import EvaluateError

EXIT_USAGE = 2


class UsageError(ValueError):
    """A bad command-line value."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_song_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a .mid/.midi, .mxl/.xml/.musicxml or .krn file, "
                   "or music21:NAME for a work of the corpus bundled with music21 "
                   "(e.g. music21:bach/bwv66.6)")
    p.add_argument("--roles", default="auto", metavar="MAP",
                   help="role map: satb, band, a name in datasets/roles/, a .yaml path, "
                   "or auto (default)")
    p.add_argument("--grid", type=int, default=4, metavar="N",
                   help="grid steps per quarter note (default 4: 16th notes)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="structdiff",
        description="Structure-aware multi-track music: analyze, prepare corpora, render.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("analyze", help="print the plan (key, chords, sections) of a song",
                       description="Analyze a song: key, chords (two or more per bar), "
                       "phrases and sections, tracks and their roles.")
    _add_song_options(p)
    p.add_argument("--json", action="store_true",
                   help="print the analysis as JSON (the plan schema of DESIGN.md)")

    p = sub.add_parser("render", help="write a piano-roll PNG and/or MIDI with markers",
                       description="Analyze a song and write a piano-roll picture and/or a "
                       "MIDI file with a marker per section and chord names as text events.")
    _add_song_options(p)
    p.add_argument("--png", type=Path, metavar="OUT.png", help="piano-roll picture to write")
    p.add_argument("--midi", type=Path, metavar="OUT.mid", help="MIDI file to write")
    p.add_argument("--wav", type=Path, metavar="OUT.wav",
                   help="audio, when fluidsynth and a General MIDI soundfont are installed "
                   "(else a line says how to get them)")

    p = sub.add_parser("prepare", help="parse a corpus into cached shards with a report",
                       description="Parse every music file of a folder (or the corpus "
                       "bundled with music21) in parallel into shards under --out; bad files "
                       "are skipped and listed in report.md with their reason; a rerun skips "
                       "finished shards. A file's shard is fixed by a hash of its path, so "
                       "added files rewrite only their own shards. --shard I/N prepares part I "
                       "of N (one per machine or array task); --merge then joins the parts "
                       "copied into --out.")
    p.add_argument("input", nargs="?", help="a folder of music files, or 'music21' for the "
                   "embedded corpus, or the folder of the corpus named by --corpus (not with "
                   "--merge)")
    p.add_argument("--corpus", choices=sorted(ADAPTERS), metavar="NAME",
                   help="read INPUT with a corpus adapter, its annotations as the plan: "
                   + "; ".join(f"{k}: {v}" for k, v in ADAPTERS.items()))
    p.add_argument("--seed", type=int, default=0,
                   help="seed of a corpus adapter's random choices (the band corpus's grooves)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: number of cores)")
    p.add_argument("--roles", default="auto", metavar="MAP", help="role map (default auto)")
    p.add_argument("--grid", type=int, default=4, metavar="N",
                   help="grid steps per quarter note (default 4)")
    p.add_argument("--no-analyze", action="store_true",
                   help="skip key/chord/section analysis (faster)")
    p.add_argument("--shard", metavar="I/N",
                   help="prepare only part I of N (0 <= I < N), e.g. $SLURM_ARRAY_TASK_ID/16")
    p.add_argument("--merge", action="store_true",
                   help="join the parts prepared into --out into one corpus")

    p = sub.add_parser("plan", help="write the plan of a new song: form, key and chords",
                       description="Sample a plan (sections, key, chords at one per beat) "
                       "with the planner. Any of --form, --chords and --key is kept exactly and "
                       "the rest filled in. Writes the plan in the `analyze --json` schema.")
    p.add_argument("--bars", type=int, metavar="N",
                   help="length in bars (default: the length of --form, else one the "
                   "style's songs have, drawn by the planner's form model (at most 128), "
                   "else 32)")
    p.add_argument("--form", metavar="FORM",
                   help='sections with their bar counts, e.g. "i4 A8 B8 A8 o4" (i: intro, '
                   "o: outro)")
    p.add_argument("--chords", metavar="CHART",
                   help='chords bar by bar, e.g. "C G | Am F | Dm7 G7 | C" (chords of a bar '
                   "share its beats)")
    p.add_argument("--key", metavar="KEY", help='e.g. "A minor", "Bb", "F#m" (default: drawn '
                   "from the training songs of the style)")
    p.add_argument("--style", metavar="STYLE",
                   help="a style the shipped planners were trained on; it picks the planner "
                   f"that knows it ({_styles_help()}; default: any, on the first set)")
    p.add_argument("--meter", default="4/4", metavar="N/D", help="time signature (default 4/4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--steps", type=int, default=20, help="denoising steps (default 20)")
    p.add_argument("--sampler", default="ddim", choices=("ddim", "ddpm", "dpmsolver++"),
                   help="sampler (default ddim)")
    p.add_argument("--guidance", type=float, default=None, metavar="SCALE",
                   help="classifier-free guidance scale on style and mode (default: the "
                   "planner's own: 3 for --style chorale, else 1: none)")
    p.add_argument("--model", type=Path, metavar="DIR",
                   help="folder with planner.safetensors/planner.json (default: shipped)")
    p.add_argument("--out", type=Path, required=True, metavar="PLAN.json",
                   help="where to write the plan")
    _add_threads(p)

    p = sub.add_parser(
        "generate", help="write a whole multi-track song (plan + arrangement) as MIDI",
        description="Generate a song: plan it (or take --plan), then arrange every track at "
        "once. Writes OUT (MIDI with named tracks, programs, section markers and chord names), "
        "OUT's .plan.json, .png (piano roll) and .wav (when fluidsynth and a GM soundfont are "
        "installed). With --accompany, --continue or --regenerate it works on an existing song "
        "instead. The same seed writes the same bytes.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--plan", type=Path, metavar="PLAN.json",
                      help="arrange this plan (`structdiff plan` or `analyze --json` output)")
    mode.add_argument("--accompany", metavar="FILE",
                      help="keep this song's tracks and write the missing roles around them")
    mode.add_argument("--continue", dest="continue_", metavar="FILE",
                      help="extend this song by --bars bars (plan and notes)")
    mode.add_argument("--regenerate", metavar="ROLE",
                      help="rewrite the track of ROLE in --song, keeping the others")
    p.add_argument("--song", metavar="FILE", help="the song for --regenerate")
    p.add_argument("--bars", type=int, metavar="N",
                   help="length in bars (default: the length of --form, else one the "
                   "style's songs have, drawn by the planner's form model (a median 17 for "
                   "chorales; at most 128), else 32); with --continue: bars to add")
    p.add_argument("--form", metavar="FORM", help='e.g. "i4 A8 B8 A8 o4" (kept exactly)')
    p.add_argument("--chords", metavar="CHART", help='e.g. "C G | Am F | Dm7 G7 | C"')
    p.add_argument("--key", metavar="KEY", help='e.g. "A minor", "Bb" (default: drawn)')
    p.add_argument("--meter", default="4/4", metavar="N/D", help="time signature (default 4/4)")
    p.add_argument("--style", metavar="STYLE",
                   help="a style the shipped models were trained on; it picks the models "
                   f"that know it ({_styles_help()}; default: any, on the first set)")
    p.add_argument("--instruments", metavar="ROLE=GM,...",
                   help="which roles play and on what General MIDI instrument, by name or "
                   'number, e.g. "melody=flute,bass=fretless bass,keys=rhodes,drums=0" (band '
                   'roles: melody, bass, keys, guitar, strings, drums; default: all six) or '
                   '"soprano=flute,alto=clarinet,tenor=horn,bass=bassoon" (classical roles: '
                   "soprano, alto, tenor, bass, quintus; default: string quartet on soprano, "
                   "alto, tenor, bass)")
    p.add_argument("--roles", metavar="MAP",
                   help="role map for the tracks of an --accompany/--continue/--regenerate "
                   "file (default: band for a file with drums or GM band programs, satb for "
                   "voices and strings); it picks the models that play those roles")
    p.add_argument("--intensity", metavar="LEVELS",
                   help='per-section intensity: "high", "low,mid,high,mid" (one per section) '
                   'or "A=low,B=high" (levels low, mid, high; default: the model chooses)')
    p.add_argument("--variation", type=float, default=0.0, metavar="V",
                   help="repeated sections: 0 copies the earlier one (default), up to 1 "
                   "rewrites it freely")
    p.add_argument("--harmony", type=float, default=None, metavar="H",
                   help="lean toward the plan's chords: striking or holding a note outside "
                   "the chord sounding there is made e^H times less likely (default: the "
                   "arranger's, 1 for the band set, 2 for the classical one; 0: the model "
                   "alone)")
    p.add_argument("--tempo", type=float, metavar="BPM",
                   help="quarter notes per minute (default: the plan's, else 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--steps", type=int, default=None,
                   help="denoising steps, or unmasking rounds of a masked arranger (default: "
                   "the arranger's, 10 for the band set, 20 for the classical one)")
    p.add_argument("--sampler", default="ddim", choices=("ddim", "ddpm", "dpmsolver++"),
                   help="sampler (default ddim); a masked arranger unmasks in its own order "
                   "and this applies to the planner only")
    p.add_argument("--gibbs", type=int, default=None, metavar="N",
                   help="a masked arranger's Gibbs rounds after unmasking: each redraws a "
                   "share of the notes given all the others, for fuller chords and smoother "
                   "lines at the cost of time (default: the arranger's, 100 for --style "
                   "chorale, else 0)")
    p.add_argument("--voice-leading", type=float, default=None, metavar="STRENGTH",
                   help="a masked arranger's lean against parallel fifths and octaves: each "
                   "pitch that would move in parallel with another voice is drawn as if "
                   "exp(STRENGTH) times less likely; 0 turns it off (default: the arranger's, 6 "
                   "for --style chorale, else 0)")
    p.add_argument("--interval-lean", type=float, default=None, metavar="SCALE",
                   help="a masked arranger's lean on each voice's melodic intervals (steps, "
                   "thirds, leaps, repeated notes), fitted to its corpus, times SCALE in 0..4; "
                   "0 turns it off (default 1: the arranger's own; the chorale arranger has "
                   "one, others none)")
    p.add_argument("--dissonance", type=float, default=None, metavar="STRENGTH",
                   help="a masked arranger's lean against notes off the plan's chord that are "
                   "not reached and left by step (passing and neighbour tones are kept): each "
                   "such note is drawn as if exp(STRENGTH) times less likely; 0 turns it off "
                   "(default: the arranger's, 1.5 for --style chorale, else 0)")
    p.add_argument("--completeness", type=float, default=None, metavar="STRENGTH",
                   help="a masked arranger's lean toward complete chords: a note that would "
                   "leave three or more sounding voices on fewer than three pitch classes (a "
                   "bare fifth or octave) is drawn as if exp(STRENGTH) times less likely; 0 "
                   "turns it off (default: the arranger's, 1.5 for --style chorale, else 0)")
    p.add_argument("--guidance", type=float, default=None, metavar="SCALE",
                   help="classifier-free guidance on style (and mode, intensity), on the "
                   "planner and the arranger (default: the planner's own, 3 for --style "
                   "chorale, else 1: none; none on the arranger)")
    p.add_argument("--planner", type=Path, metavar="DIR",
                   help="folder with planner.safetensors/.json (default: shipped)")
    p.add_argument("--arranger", type=Path, metavar="DIR",
                   help="folder with arranger.safetensors/.json (default: shipped)")
    p.add_argument("--no-png", action="store_true", help="don't draw the piano roll")
    p.add_argument("--no-wav", action="store_true", help="don't render audio")
    p.add_argument("--out", type=Path, required=True, metavar="OUT.mid",
                   help="the MIDI file to write (the others go beside it)")
    _add_threads(p)

    p = sub.add_parser("train", help="train a model with LightningCLI (fit), or fit forms",
                       description="Train a model: `structdiff train planner --config "
                       "configs/planner.yaml`. Every option after the model name goes to "
                       "LightningCLI's fit (e.g. --trainer.max_epochs 5, --ckpt_path last, "
                       "--print_config). `structdiff train forms PREPARED... --out DIR` fits "
                       "the form model of the training songs of prepared corpora, per style, "
                       "into DIR/forms.json (beside a planner's weights, which then draws its "
                       "forms from it).", add_help=True)
    p.add_argument("model", choices=("planner", "arranger", "forms"), help="what to train")
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="LightningCLI options, e.g. --config configs/planner.yaml")

    p = sub.add_parser("evaluate", help="score a folder of songs against a reference folder",
                       description="Score every song of GEN and of --reference with MusPy, "
                       "structure, chord and coordination metrics; compare the two sets per "
                       "metric (mean ± std, overlapping area and KL divergence after Yang & "
                       "Lerch 2018). Writes metrics.json, report.md and plots/ to --out. A "
                       "song's given plan is read from NAME.plan.json beside it, or from the "
                       "markers and chord texts of its MIDI file.")
    p.add_argument("generated", metavar="GEN",
                   help="folder of music files, or a folder made by `structdiff prepare`")
    p.add_argument("--reference", required=True, metavar="REF",
                   help="folder of music files, or a prepared corpus folder")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--split", choices=SPLITS, help="only this split of a prepared GEN")
    p.add_argument("--roles", default="auto", metavar="MAP",
                   help="role map for the tracks of music files, for the per-role metrics "
                   "(default auto: band for band songs, satb for voices; a prepared corpus "
                   "keeps its own)")
    p.add_argument("--reference-split", choices=SPLITS,
                   help="only this split of a prepared REF")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: number of cores)")
    p.add_argument("--wandb", action="store_true",
                   help="also log the table, plots and report to Weights & Biases "
                   "(offline unless WANDB_MODE is set; sync later with `wandb sync`)")
    p.add_argument("--classifier", action="store_true",
                   help="also ask two classifiers to tell GEN's 4-bar windows from REF's by "
                   "music-theory features (song-grouped cross-validation, a shuffled-label "
                   "control, accuracy and AUC with intervals, the telling features in words)")

    p = sub.add_parser(
        "soundtrack", help="write an adaptive score from a cue sheet (states, transitions)",
        description="Write the timeline of a cue sheet (docs/cue_sheets.md; examples in "
        "configs/cues/) as one continuous piece: OUT (MIDI with a marker per state, section "
        "markers and chord names), OUT.STATE.loop.mid (each state as a seamless loop), "
        "OUT.ROLE.stem.mid (one file per layer), OUT.plan.json, OUT.png (the states as "
        "coloured bands) and OUT.wav where fluidsynth and a GM soundfont are installed. The "
        "same cue sheet and seed write the same bytes.")
    p.add_argument("cue", type=Path, metavar="CUE.yaml", help="the cue sheet")
    p.add_argument("--out", type=Path, required=True, metavar="OUT.mid",
                   help="the MIDI file to write (the others go beside it)")
    _add_session_options(p)
    p.add_argument("--no-png", action="store_true", help="don't draw the piano roll")
    p.add_argument("--no-wav", action="store_true", help="don't render audio")
    p.add_argument("--no-loops", action="store_true", help="don't write the loops")
    p.add_argument("--no-stems", action="store_true", help="don't write the stems")

    p = sub.add_parser(
        "live", help="play a cue sheet live: the music follows state commands",
        description="Play a live session of a cue sheet. Commands come as lines on stdin "
        "(`state battle`, `state battle beat`, `state victory bar bridge 2`, `intensity 0.8`, "
        "`stinger boss`, `quit`) and, with python-osc installed and --osc PORT, as OSC "
        "messages (/structdiff/state battle, /structdiff/intensity 0.8, /structdiff/stinger "
        "boss). The music goes to a MIDI output port (--port; needs mido's python-rtmidi "
        "backend) or, by default, as timed events, one JSON line each, to stdout or --out. "
        "Ctrl-C or the end of input stops with all notes off. With --clock simulated it runs "
        "as fast as it can for --bars bars; a command line may then start with @BAR to land "
        "on that bar.")
    p.add_argument("--cue", type=Path, required=True, metavar="CUE.yaml", help="the cue sheet")
    p.add_argument("--state", metavar="STATE", help="the first state (default: the sheet's)")
    p.add_argument("--clock", choices=("real", "simulated"), default="real",
                   help="real time (default) or as fast as it can")
    p.add_argument("--bars", type=int, metavar="N",
                   help="stop after N bars (default: endless on the real clock, 16 simulated)")
    p.add_argument("--lookahead", type=int, default=1, metavar="N",
                   help="bars written ahead of the one playing (default 1)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write the JSON lines here")
    p.add_argument("--port", metavar="NAME",
                   help="a MIDI output port (part of its name), or `list` to list them")
    p.add_argument("--osc", type=int, metavar="PORT",
                   help="also take commands as OSC messages on this UDP port (127.0.0.1)")
    _add_session_options(p)

    p = sub.add_parser(
        "serve", help="the web studio: press a game state in the browser, hear the music follow",
        description="Serve the studio page: every browser tab plays its own live session of "
        "the cue sheet (buttons and keys 1-9 for its states, Q-R for its stingers, an "
        "intensity slider, a scrolling piano roll, downloads of what was played as MIDI, "
        "stems and WAV). Binds to 127.0.0.1 (this machine only) unless --host says otherwise. "
        "Audio plays in the browser with the General MIDI SoundFont found on this machine "
        "(e.g. apt-get install timgm6mb-soundfont, or STRUCTDIFF_SOUNDFONT=FILE.sf2).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--cue", type=Path, metavar="CUE.yaml",
                   help="the cue sheet tabs start with (default: the studio's own, five "
                   "game states)")
    p.add_argument("--max-sessions", type=int, default=None, metavar="N",
                   help="tabs that may play at once; one more is refused with a message "
                   "(default: twice the cores, half of what they write in real time with "
                   "nothing else running, evaluation/results/studio_load.md)")
    _add_session_options(p)
    return parser


def _add_session_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default: the cue sheet's, else 0)")
    p.add_argument("--steps", type=int, default=None,
                   help="denoising steps (default: the arranger's)")
    p.add_argument("--harmony", type=float, default=None, metavar="H",
                   help="lean toward the plan's chords (default: the arranger's)")
    _add_threads(p)


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads (default 1: beside a busy process two threads stall, "
                   "evaluation/results/threads.md)")


def _set_threads(args) -> None:
    import torch

    if not 1 <= args.threads <= 64:
        raise UsageError(f"--threads must be between 1 and 64, got {args.threads}")
    torch.set_num_threads(args.threads)


SPLITS = ("train", "validation", "test")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (MusicFileError, RoleMapError, UsageError, EvaluateError) as e:
        return _fail(str(e))
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except (ValueError, OSError) as e:
        return _fail(f"{type(e).__name__}: {e}" if not str(e) else str(e))


def _fail(message: str) -> int:
    print(f"structdiff: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return EXIT_USAGE


def _check_grid(grid: int) -> None:
    if grid < 1 or grid > 96:
        raise UsageError(f"--grid must be between 1 and 96 steps per quarter, got {grid}")


def _load_analyzed(args):
    from structdiff.analysis import analyze
    from structdiff.data.io import read_song

    _check_grid(args.grid)
    song = read_song(args.file, steps_per_quarter=args.grid, role_map=args.roles)
    song.plan = analyze(song)
    return song


def cmd_analyze(args) -> int:
    from structdiff.analysis.schema import analysis_dict, summary_text

    song = _load_analyzed(args)
    if args.json:
        print(json.dumps(analysis_dict(song, song.plan), indent=2))
    else:
        print(summary_text(song, song.plan))
    return 0


def cmd_render(args) -> int:
    if args.png is None and args.midi is None and args.wav is None:
        raise UsageError("render needs --png OUT.png, --midi OUT.mid and/or --wav OUT.wav")
    outputs = ((args.png, (".png",)), (args.midi, (".mid", ".midi")), (args.wav, (".wav",)))
    for out, suffixes in outputs:
        if out is not None and out.suffix.lower() not in suffixes:
            raise UsageError(f"output must end in {' or '.join(suffixes)}: {out}")
    song = _load_analyzed(args)
    if args.midi:
        from structdiff.data.midi import write_midi

        write_midi(song, args.midi)
        print(f"wrote {args.midi}")
    if args.png:
        from structdiff.render import render_png

        render_png(song, args.png)
        print(f"wrote {args.png}")
    if args.wav:
        _write_wav(song, args.midi, args.wav)
    return 0


def _write_wav(song, midi: Path | None, wav: Path) -> None:
    """WAV through fluidsynth; without a synthesizer, one line on how to get one."""
    import tempfile

    from structdiff.data.audio import SynthesizerMissing, render_wav
    from structdiff.data.midi import write_midi

    wav.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if midi is None:
                midi = Path(tmp) / "song.mid"
                write_midi(song, midi)
            render_wav(midi, wav)
        print(f"wrote {wav}")
    except SynthesizerMissing as e:
        print(f"structdiff: {e}", file=sys.stderr)


def cmd_prepare(args) -> int:
    from structdiff.data.prepare import merge_prepared, prepare

    if args.merge:
        if args.input is not None or args.shard is not None:
            raise UsageError("--merge takes only --out (the folder the parts were copied into)")
        report = merge_prepared(args.out)
        print(f"merged {report['shards']['merged_parts']} parts: {report['loaded']} of "
              f"{report['found']} files loaded; report: {Path(args.out) / 'report.md'}")
        return 0
    if args.input is None:
        raise UsageError("give the input folder (or 'music21'), or --merge")
    shard = None
    if args.shard is not None:
        try:
            i, n = (int(x) for x in args.shard.split("/"))
        except ValueError:
            raise UsageError(f"--shard must be I/N, e.g. 0/4, got {args.shard!r}") from None
        if not (n >= 1 and 0 <= i < n):
            raise UsageError(f"--shard I/N needs 0 <= I < N, got {args.shard}")
        shard = (i, n)
    _check_grid(args.grid)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.corpus is not None and not Path(args.input).is_dir():
        raise UsageError(f"input must be the folder of the {args.corpus} corpus, got {args.input}")
    if args.corpus is None and args.input != "music21" and not Path(args.input).is_dir():
        raise UsageError(f"input must be a folder or 'music21', got {args.input}")
    report = prepare(
        args.input,
        args.out,
        workers=args.workers,
        role_map=args.roles,
        steps_per_quarter=args.grid,
        analyze=not args.no_analyze,
        corpus=args.corpus,
        seed=args.seed,
        shard=shard,
    )
    if shard is not None:
        print(f"part {shard[0]}/{shard[1]}: loaded {report['loaded']} of {report['found']} "
              f"files, skipped {report['skipped']}; join the parts with `structdiff prepare "
              f"--merge --out {args.out}`")
        return 0
    print(
        f"loaded {report['loaded']} of {report['found']} files, skipped {report['skipped']}; "
        f"report: {Path(args.out) / 'report.md'}"
    )
    return 0


def cmd_plan(args) -> int:
    from structdiff.analysis.schema import analysis_dict
    from structdiff.metrics.report import write_atomic
    from structdiff.models.bundle import (
        BundleError,
        planner_for_style,
        set_for_role_map,
        set_for_style,
    )
    from structdiff.pipeline.plan import generate_plan, load_planner

    meter = _parse_meter(args.meter)
    _set_threads(args)
    if args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.bars is not None and args.bars < 1:
        raise UsageError(f"--bars must be >= 1, got {args.bars}")
    try:
        if args.model is not None:
            bundle = load_planner(args.model)
        else:  # the shipped set that knows the style (the band set without one)
            bundle = load_planner(planner_for_style(set_for_style(args.style), args.style)
                                  if args.style else set_for_role_map(None))
    except BundleError as e:
        raise UsageError(str(e)) from None
    plan, song = generate_plan(
        bundle, args.bars, style=args.style, key=args.key, form=args.form, chords=args.chords,
        meter=meter, seed=args.seed, steps=args.steps, sampler=args.sampler,
        guidance_scale=args.guidance,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(analysis_dict(song, plan), indent=2))
    print(f"{plan.form}  key {plan.key.name}  {len(plan.chords)} chords; wrote {args.out}")
    return 0


def _parse_meter(text: str) -> tuple[int, int]:
    try:
        num, den = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--meter must look like 4/4 or 6/8, got {text!r}") from None
    if num < 1 or den < 1 or den & (den - 1):
        raise UsageError(f"--meter must look like 4/4 or 6/8, got {text!r}")
    return num, den


def _styles_help() -> str:
    """The styles of the installed model sets, for --help."""
    from structdiff.models.bundle import BundleError, shipped_styles

    try:
        sets = shipped_styles()
    except BundleError:
        return "no models installed"
    return "; ".join(f"{name}: {', '.join(styles)}" for name, styles in sets.items())


def cmd_generate(args) -> int:
    import time

    from structdiff.analysis import song_plan
    from structdiff.analysis.schema import PlanError, read_plan_song
    from structdiff.data.io import read_song
    from structdiff.models.bundle import (
        BundleError,
        arranger_for_style,
        planner_for_style,
        read_bundle_meta,
        set_for_role_map,
        set_for_style,
    )
    from structdiff.pipeline import generate as gen
    from structdiff.pipeline.arrange import load_arranger
    from structdiff.pipeline.plan import load_planner

    if args.out.suffix.lower() not in (".mid", ".midi"):
        raise UsageError(f"--out must end in .mid or .midi, got {args.out}")
    _set_threads(args)
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.bars is not None and args.bars < 1:
        raise UsageError(f"--bars must be >= 1, got {args.bars}")
    if not 0.0 <= args.variation <= 1.0:
        raise UsageError(f"--variation must be between 0 and 1, got {args.variation}")
    if args.harmony is not None and not 0.0 <= args.harmony <= 100.0:
        raise UsageError(f"--harmony must be between 0 and 100, got {args.harmony}")
    if args.tempo is not None and not 10.0 <= args.tempo <= 400.0:
        raise UsageError(f"--tempo must be between 10 and 400 bpm, got {args.tempo}")
    if args.guidance is not None and args.guidance < 0:
        raise UsageError(f"--guidance must be >= 0, got {args.guidance}")
    song_mode = args.accompany or args.continue_ or args.regenerate
    if song_mode and (args.form or args.chords or args.key):
        raise UsageError("--form, --chords and --key make a new plan; they don't go with "
                         "--accompany, --continue or --regenerate")
    if args.plan and (args.form or args.chords or args.key or args.bars):
        raise UsageError("--plan gives the form, chords, key and length; drop --form, "
                         "--chords, --key and --bars")
    if args.continue_ and args.bars is None:
        raise UsageError("--continue needs --bars N (how many bars to add)")
    if args.regenerate and not args.song:
        raise UsageError("--regenerate ROLE needs --song FILE")
    if args.song and not args.regenerate:
        raise UsageError("--song goes with --regenerate ROLE")
    meter = _parse_meter(args.meter)
    song = None
    try:
        # the models: the ones given, else the shipped set that knows the style, else the set
        # that plays the song's roles (a new song: the first set, the band)
        shipped = set_for_style(args.style) if args.style is not None else None
        if song_mode:
            source = args.song if args.regenerate else (args.accompany or args.continue_)
            chosen = args.arranger or shipped
            role_map = args.roles or (read_bundle_meta(chosen, "arranger").get("role_map")
                                      or "satb" if chosen else "auto")
            song = read_song(source, role_map=role_map)
            song.plan = song_plan(song)
        shipped = shipped or set_for_role_map(song.role_map if song else None)
        arranger = load_arranger(args.arranger or arranger_for_style(shipped, args.style))
        planner = load_planner(args.planner or planner_for_style(shipped, args.style)) if not (
            args.accompany or args.regenerate or args.plan) else None
    except BundleError as e:
        raise UsageError(str(e)) from None
    if args.style is not None and args.style not in arranger.styles:
        raise UsageError(f"unknown style {args.style!r} (known: {', '.join(arranger.styles)})")
    steps = args.steps or int(arranger.meta.get("default_steps", 20))
    harmony = args.harmony if args.harmony is not None else float(
        arranger.meta.get("default_harmony", gen.DEFAULT_HARMONY))
    if args.gibbs is not None and args.gibbs < 0:
        raise UsageError(f"--gibbs must be >= 0, got {args.gibbs}")
    for flag, value, high in (("--voice-leading", args.voice_leading, 100),
                              ("--interval-lean", args.interval_lean, 4),
                              ("--dissonance", args.dissonance, 100),
                              ("--completeness", args.completeness, 100)):
        if value is not None and not 0.0 <= value <= high:
            raise UsageError(f"{flag} must be in 0..{high}, got {value}")
    opts = gen.Options(style=args.style, seed=args.seed, steps=steps,
                       sampler=args.sampler, guidance=args.guidance, variation=args.variation,
                       harmony=harmony, intensity=args.intensity, progress=sys.stderr.isatty(),
                       gibbs=args.gibbs, voice_leading=args.voice_leading,
                       interval_lean=args.interval_lean, dissonance=args.dissonance,
                       completeness=args.completeness)
    started = time.perf_counter()
    if song_mode:
        if args.accompany:
            song = gen.accompany(arranger, song, opts, args.instruments)
        elif args.continue_:
            song = gen.continue_song(planner, arranger, song, args.bars, opts)
        else:
            song = gen.regenerate(arranger, song, args.regenerate, opts)
    else:
        plan_song = None
        if args.plan:
            try:
                plan_song = read_plan_song(args.plan)
            except PlanError as e:
                raise UsageError(str(e)) from None
        n_bars = args.bars  # None: --form's, else a length the style's songs have
        song = gen.new_song(planner, arranger, opts, plan_song=plan_song, n_bars=n_bars,
                            form=args.form, chords=args.chords, key=args.key, meter=meter,
                            instruments=args.instruments, tempo=args.tempo)
    seconds = time.perf_counter() - started
    for line in gen.write_outputs(song, args.out, png=not args.no_png, wav=not args.no_wav):
        print(line)
    plan = song.plan
    print(f"{song.n_bars} bars, {len([t for t in song.tracks if t.n_notes])} tracks, "
          f"form {plan.form}, key {plan.key.name if plan.key else '?'}; "
          f"generated in {seconds:.1f} s")
    return 0


def cmd_train(args) -> int:
    if args.model == "forms":
        return _train_forms(args.options)
    from structdiff.training.cli import run_training

    run_training(args.model, args.options)
    return 0


def _train_forms(options: list[str]) -> int:
    from structdiff.pipeline.forms import FORMS_FILE, fit_forms

    p = _Parser(prog="structdiff train forms")
    p.add_argument("prepared", nargs="+", help="folders written by `structdiff prepare`")
    p.add_argument("--out", type=Path, required=True, help="the folder of forms.json")
    p.add_argument("--split", choices=SPLITS, default="train")
    args = p.parse_args(options)
    model = fit_forms(args.prepared, args.split)
    path = model.save(args.out / FORMS_FILE)
    for style, forms in sorted(model.styles.items()):
        print(f"{style}: {forms.songs} forms")
    print(f"wrote {path}")
    return 0


def cmd_evaluate(args) -> int:
    from structdiff.metrics.evaluate import evaluate

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    result = evaluate(
        args.generated, args.reference, args.out, split=args.split,
        reference_split=args.reference_split, workers=args.workers, use_wandb=args.wandb,
        role_map=args.roles, classifier=args.classifier,
    )
    gen, ref = result["generated"], result["reference"]
    print(
        f"scored {gen['n_scored']} generated and {ref['n_scored']} reference songs "
        f"({len(gen['skipped']) + len(ref['skipped'])} skipped) in {result['seconds']:.1f} s; "
        f"report: {Path(args.out) / 'report.md'}"
    )
    if "classifier" in result:
        c = result["classifier"]
        print(f"classifier: balanced accuracy {c['logistic']['balanced_accuracy']:.2f} "
              f"(trees {c['trees']['balanced_accuracy']:.2f}, shuffled labels "
              f"{c['shuffled']['balanced_accuracy']:.2f}), AUC {c['logistic']['auc']:.2f}; "
              f"0.5 is chance")
    return 0


def _check_session_args(args) -> None:
    _set_threads(args)
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.harmony is not None and not 0.0 <= args.harmony <= 100.0:
        raise UsageError(f"--harmony must be between 0 and 100, got {args.harmony}")


def cmd_soundtrack(args) -> int:
    import time

    from structdiff.pipeline.cue import load_cue
    from structdiff.pipeline.live import session_models
    from structdiff.pipeline.soundtrack import render_soundtrack, write_soundtrack

    if args.out.suffix.lower() not in (".mid", ".midi"):
        raise UsageError(f"--out must end in .mid or .midi, got {args.out}")
    _check_session_args(args)
    cue = load_cue(args.cue)
    planner, arranger = session_models(cue)
    started = time.perf_counter()
    track = render_soundtrack(cue, planner, arranger, seed=args.seed, steps=args.steps,
                              harmony=args.harmony, loops=not args.no_loops,
                              progress=sys.stderr.isatty())
    seconds = time.perf_counter() - started
    for line in write_soundtrack(track, args.out, png=not args.no_png, wav=not args.no_wav,
                                 stems=not args.no_stems):
        print(line)
    music = sum(b.steps * 60.0 / b.tempo / 4 for b in track.bars)
    print(f"{track.song.n_bars} bars ({music:.0f} s of music) written in {seconds:.1f} s")
    return 0


def cmd_live(args) -> int:
    from structdiff.pipeline.cue import load_cue
    from structdiff.pipeline.live import run_live, session_models

    _check_session_args(args)
    if args.bars is not None and args.bars < 1:
        raise UsageError(f"--bars must be >= 1, got {args.bars}")
    if args.lookahead < 1:
        raise UsageError(f"--lookahead must be >= 1, got {args.lookahead}")
    if args.port == "list":
        from structdiff.pipeline.live import list_ports

        for name in list_ports():
            print(name)
        return 0
    cue = load_cue(args.cue)
    planner, arranger = session_models(cue)
    return run_live(cue, planner, arranger, state=args.state, clock=args.clock,
                    bars=args.bars, lookahead=args.lookahead, out=args.out, port=args.port,
                    osc=args.osc, seed=args.seed, steps=args.steps, harmony=args.harmony)


def cmd_serve(args) -> int:
    _check_session_args(args)
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    if args.max_sessions is None:
        args.max_sessions = 2 * (os.cpu_count() or 1)
    if args.max_sessions < 1:
        raise UsageError(f"--max-sessions must be >= 1, got {args.max_sessions}")
    try:
        from structdiff.studio.server import serve
    except ImportError as e:
        raise UsageError(f"the studio needs aiohttp (pip install aiohttp): {e}") from None
    try:
        serve(args.cue, host=args.host, port=args.port, max_sessions=args.max_sessions,
              seed=args.seed, steps=args.steps, harmony=args.harmony)
    except KeyboardInterrupt:
        pass
    return 0


_COMMANDS = {
    "analyze": cmd_analyze,
    "soundtrack": cmd_soundtrack,
    "live": cmd_live,
    "serve": cmd_serve,
    "render": cmd_render,
    "prepare": cmd_prepare,
    "evaluate": cmd_evaluate,
    "plan": cmd_plan,
    "generate": cmd_generate,
    "train": cmd_train,
}

if __name__ == "__main__":
    sys.exit(main())
