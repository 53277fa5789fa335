"""Render the symbolic music of ``shared/data/train_music.txt`` to audio, for training: music21's corpus (PyPI) and
the MIDI files of the Debian packages ``freedink-data`` and ``openttd-openmsx``, through Debian's fluidsynth with
several General MIDI soundfonts and per-piece instrument choices.

    .venv/bin/pip install music21 mido          # for this script only; soundalike does not need them
    apt-get install fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont
    .venv/bin/python scripts/render_midi.py OUT [--sources music21 freedink openttd] [--hours 60] [--seed 0]
                                                [--debs DEB_CACHE] [--jobs 2]

Layout: ``OUT/<source>-<soundfont>/<piece>.ogg`` (an album per source and soundfont), ``OUT/MANIFEST.tsv`` (album,
path, seconds, source file, soundfont, programs). Every piece gets one soundfont and, per part, a General MIDI
program drawn (seeded by the piece's name) from a palette that suits its source: voices, strings, organ, brass and
woodwinds for the Renaissance polyphony and chorales; fiddle-tune instruments for the folk collections; the
game MIDI keep their own programs. Resumable: sources already rendered (``OUT/.journal.tsv``) are skipped, and a
piece is renamed into place only when whole. Rendering stops once ``--hours`` of music exist. Music21 scores are
parsed with music21 and written as MIDI first (roman-numeral analyses, theory exercises and demos are skipped: they
are not music; pieces under 20 s are fragments and skipped too).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

SOUNDFONTS = {"fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2", "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
              "musescore": "/usr/share/sounds/sf3/MuseScore_General.sf3"}
# General MIDI programs (0-based) per kind of source.
POLYPHONY = [52, 53, 48, 49, 42, 19, 20, 56, 57, 60, 68, 70, 71, 73, 74, 6, 0, 24, 46]  # voices, strings, organ...
FOLK = [40, 41, 22, 21, 73, 75, 71, 24, 25, 105, 0, 15]  # violin, accordion, harmonica, flutes, guitars...
SKIP_MUSIC21 = ("theoryExercises", "demos", "leadSheet")
SR = 22050
MIN_SECONDS = 20.0  # shorter pieces are fragments (cadence examples, incipits), not tracks
TAIL_SECONDS = 3.0  # release of the last notes


def music21_pieces() -> Iterator[tuple[str, Path, str]]:
    """``(album source, path, palette)`` of every music21 corpus score worth rendering."""
    from music21 import corpus

    for path in sorted(corpus.getPaths()):
        rel = str(path).split("corpus/", 1)[-1]
        collection = rel.split("/")[0]
        if path.suffix == ".rntxt" or collection in SKIP_MUSIC21:
            continue
        palette = "folk" if collection in ("ryansMammoth", "oneills1850", "essenFolksong", "airdsAirs", "miscFolk") \
            else "polyphony"
        yield f"music21_{collection}", path, palette


def deb_midis(debs: Path, package: str) -> Iterator[tuple[str, Path, str]]:
    """The MIDI files inside a Debian package's .deb in ``debs`` (unpacked beside it)."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package], cwd=debs, check=True,
                       capture_output=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    root = debs / f"{found[-1].stem}.unpacked"  # a fixed place: a source's path names its piece (resume)
    if not root.exists():
        partial = root.with_suffix(".partial")
        subprocess.run(["dpkg", "-x", str(found[-1]), str(partial)], check=True)
        partial.rename(root)
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in (".mid", ".midi"):
            yield package, path, "own"


def _midi_of(source: Path, out: Path) -> list[Path]:
    """MIDI files for a source: itself, or music21's rendering of each score in it (an abc file may hold many)."""
    if source.suffix.lower() in (".mid", ".midi"):
        return [source]
    from music21 import converter, stream

    parsed = converter.parse(str(source))
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    files = []
    for i, score in enumerate(scores):
        target = out.with_name(f"{out.stem}-{i:03d}.mid")
        score.write("midi", fp=str(target))
        files.append(target)
    return files


def _reprogram(midi: Path, palette: str, rng: random.Random) -> str:
    """Give each channel of ``midi`` a program from the palette (drums untouched); returns the programs chosen."""
    if palette == "own":
        return "own"
    import mido

    song = mido.MidiFile(str(midi))
    choices = POLYPHONY if palette == "polyphony" else FOLK
    chosen: dict[int, int] = {}
    for track in song.tracks:
        channels = {m.channel for m in track if hasattr(m, "channel") and m.channel != 9}
        for ch in channels:
            chosen.setdefault(ch, rng.choice(choices))
        for msg in track:
            if msg.type == "program_change" and msg.channel in chosen:
                msg.program = chosen[msg.channel]
        for ch in sorted(channels):
            track.insert(0, mido.Message("program_change", channel=ch, program=chosen[ch], time=0))
    song.save(str(midi))
    return ",".join(str(chosen[c]) for c in sorted(chosen))


def _synthesise(midi: Path, soundfont: str, target: Path, max_seconds: float) -> None:
    """fluidsynth's raw output piped into ffmpeg, cut at ``max_seconds``: a voice whose sample never releases
    (seen with TimGM6mb) keeps fluidsynth rendering for ever; ffmpeg's ``-t`` ends it. Silence is trimmed."""
    partial = target.with_name(f".{target.name}.part")  # hidden, no audio extension: a scan never takes it
    synth = subprocess.Popen(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SR), "-T", "raw", "-O", "s16",
                              "-F", "-", soundfont, str(midi)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", str(SR), "-ac", "2",
                        "-i", "-", "-t", f"{max_seconds:.2f}", "-af",
                        "silenceremove=stop_periods=-1:stop_duration=2:stop_threshold=-70dB",
                        "-c:a", "libvorbis", "-q:a", "4", "-f", "ogg", str(partial)],
                       stdin=synth.stdout, check=True, timeout=1800)
    finally:
        assert synth.stdout is not None
        synth.stdout.close()
        synth.kill()
        synth.wait()
    partial.replace(target)  # whole files only: a killed run leaves no half piece behind


def render(job: tuple[str, str, str, str, str]) -> list[tuple[str, str, float, str, str, str]]:
    """Render one source file (in a worker): ``[(album, relative path, seconds, source, soundfont, programs)]``."""
    album, source, palette, out_dir, seed = job
    src = Path(source)
    rng = random.Random(f"{seed}:{source}")
    font = rng.choice(sorted(SOUNDFONTS))
    folder = Path(out_dir) / f"{album}-{font}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = hashlib.blake2b(source.encode(), digest_size=4).hexdigest() + "-" + src.stem[:60].replace(" ", "_")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            midis = _midi_of(src, Path(tmp) / f"{stem}.mid")
        except Exception as exc:  # noqa: BLE001 - a score music21 cannot read is skipped, not fatal
            print(f"skip {source}: {type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr)
            return []
        for midi in midis:
            target = folder / f"{midi.stem}.ogg"
            programs = ""
            if not target.exists():
                import mido

                programs = _reprogram(midi, palette, rng)
                length = mido.MidiFile(str(midi)).length
                if length < MIN_SECONDS:
                    continue
                _synthesise(midi, SOUNDFONTS[font], target, length + TAIL_SECONDS)
            seconds = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                                            "csv=p=0", str(target)], capture_output=True, text=True).stdout or 0)
            rows.append((f"{album}-{font}", f"{album}-{font}/{target.name}", seconds, source, font, programs))
    return rows


def main() -> None:
    """Render until ``--hours`` of music exist; write the manifest."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--sources", nargs="+", default=["freedink", "openttd", "music21"])
    parser.add_argument("--hours", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--debs", type=Path, default=None, help="A folder with (or for) the .deb files.")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    args.out.mkdir(parents=True, exist_ok=True)
    debs = args.debs or (args.out / ".debs")
    debs.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, str, str, str]] = []
    for source in args.sources:
        items = {"music21": music21_pieces, "freedink": lambda: deb_midis(debs, "freedink-data"),
                 "openttd": lambda: deb_midis(debs, "openttd-openmsx")}[source]()
        jobs += [(album, str(path), palette, str(args.out), str(args.seed)) for album, path, palette in items]
    random.Random(args.seed).shuffle(jobs)  # every collection gets its share before --hours is reached
    # Resumable: each finished source is appended to the journal at once; a new run skips them unparsed.
    journal = args.out / ".journal.tsv"
    rows: list[tuple[str, str, float, str, str, str]] = []
    finished: set[str] = set()
    if journal.exists():
        for line in journal.read_text().splitlines():
            fields = line.split("\t")
            finished.add(fields[0])
            if len(fields) == 7:
                rows.append((fields[1], fields[2], float(fields[3]), fields[4], fields[5], fields[6]))
    jobs = [job for job in jobs if job[1] not in finished]
    seconds = sum(r[2] for r in rows)
    target = args.hours * 3600
    columns = (TextColumn("rendering"), BarColumn(), TextColumn("{task.fields[hours]}"), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns) as progress, ProcessPoolExecutor(max_workers=args.jobs) as pool, \
            journal.open("a") as log:
        task = progress.add_task("render", total=target, completed=min(seconds, target),
                                 hours=f"{seconds / 3600:.1f} / {args.hours:g} h")
        queue = iter(jobs)
        first = itertools.islice(queue, args.jobs * 4) if seconds < target else iter(())
        pending = {pool.submit(render, job): job for job in first}
        while pending:
            done = next(as_completed(pending))
            source = pending.pop(done)[1]
            new = done.result()
            for row in new:
                log.write("\t".join([source, *map(str, row)]) + "\n")
            if not new:
                log.write(source + "\n")
            log.flush()
            rows += new
            seconds += sum(r[2] for r in new)
            progress.update(task, completed=min(seconds, target), hours=f"{seconds / 3600:.1f} / {args.hours:g} h")
            nxt = next(queue, None) if seconds < target else None
            if nxt is not None:
                pending[pool.submit(render, nxt)] = nxt
    with (args.out / "MANIFEST.tsv").open("w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["album", "path", "seconds", "source", "soundfont", "programs"])
        writer.writerows(sorted(rows))
    print(f"{len(rows)} pieces, {seconds / 3600:.1f} h in {args.out}")


if __name__ == "__main__":
    main()
