"""scripts/render_midi.py against Debian's real fluidsynth and TimGM6mb soundfont (installed by .ci/run): a piece
becomes a whole Ogg file of its length, a voice that never releases cannot keep it rendering, and a second run
skips what exists."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None or shutil.which("ffmpeg") is None
                                or not FONT.exists(), reason="needs Debian's fluidsynth, timgm6mb-soundfont and "
                                                             "ffmpeg (.ci/run installs them)")


def render_midi() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_midi", ROOT / "scripts" / "render_midi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_midi"] = module
    spec.loader.exec_module(module)
    return module


def tune(path: Path, seconds: float = 24.0) -> Path:
    """A one-part tune of ``seconds`` (quarter notes at 120 bpm) written with mido."""
    import mido

    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    for i in range(int(seconds * 2)):
        note = 60 + (0, 2, 4, 5, 7, 9, 11, 12)[i % 8]
        track.append(mido.Message("note_on", channel=0, note=note, velocity=90, time=0))
        track.append(mido.Message("note_off", channel=0, note=note, velocity=0, time=480))
    song.save(str(path))
    return path


def duration(path: Path) -> float:
    from soundalike.audio import load

    return len(load(path, sr=22050)) / 22050


def test_a_voice_that_never_releases_is_cut_at_the_piece_end(tmp_path: Path) -> None:
    module = render_midi()
    target = tmp_path / "out.ogg"
    # music21's rendering of a reel with TimGM6mb's bagpipe: fluidsynth alone renders it for ever.
    module._synthesise(ROOT / "tests/scripts/data/never_ends.mid", str(FONT), target, 36.0)
    assert target.exists() and not list(tmp_path.glob(".*"))  # no partial file left
    assert 20.0 < duration(target) <= 36.1


def test_render_writes_a_piece_per_source_and_skips_it_next_time(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    module = render_midi()
    monkeypatch.setattr(module, "SOUNDFONTS", {"timgm6mb": str(FONT)})
    source = tune(tmp_path / "scale.mid")
    rows = module.render(("folk", str(source), "folk", str(tmp_path / "out"), "0"))
    assert len(rows) == 1
    album, rel, seconds, src, font, programs = rows[0]
    assert album == "folk-timgm6mb" and font == "timgm6mb" and src == str(source)
    assert int(programs) in module.FOLK  # the part got an instrument of the palette
    ogg = tmp_path / "out" / rel
    assert abs(duration(ogg) - seconds) < 0.1 and 23.0 < seconds < 27.5
    from soundalike.audio import load

    assert float(np.abs(load(ogg, sr=22050)).max()) > 0.01  # not silence
    stamp = ogg.stat().st_mtime_ns
    again = module.render(("folk", str(source), "folk", str(tmp_path / "out"), "0"))
    assert again[0][:3] == rows[0][:3] and ogg.stat().st_mtime_ns == stamp  # resumed: not rendered twice
    short = tune(tmp_path / "short.mid", seconds=5.0)
    assert module.render(("folk", str(short), "folk", str(tmp_path / "out"), "0")) == []  # a fragment


def test_a_second_run_skips_the_sources_in_the_journal_and_writes_the_manifest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = render_midi()
    monkeypatch.setattr(module, "SOUNDFONTS", {"timgm6mb": str(FONT)})
    sources = [tune(tmp_path / "a.mid"), tune(tmp_path / "b.mid", seconds=30.0), tune(tmp_path / "c.mid", 4.0)]
    monkeypatch.setattr(module, "music21_pieces", lambda: iter([("mine", s, "folk") for s in sources]))
    out = tmp_path / "out"
    argv = ["render_midi.py", str(out), "--sources", "music21", "--jobs", "1", "--debs", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    module.main()
    manifest = (out / "MANIFEST.tsv").read_text().splitlines()
    assert len(manifest) == 3 and manifest[0].startswith("album\tpath\tseconds")  # c.mid is a fragment
    journal = (out / ".journal.tsv").read_text().splitlines()
    assert len(journal) == 3  # two pieces and the fragment, each source once

    def fail(job: tuple[str, ...]) -> list[tuple[str, ...]]:
        raise AssertionError(f"{job[1]} rendered again")

    monkeypatch.setattr(module, "render", fail)
    module.main()  # in-process pool workers are forked after the patch: any render call fails the run
    assert (out / "MANIFEST.tsv").read_text().splitlines() == manifest
