"""Synthetic libraries: files, manifest, resumable generation, bad arguments."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from helpers import read_back, written_tags
from soundalike.synth import (
    SynthTrack,
    make_library,
    render_track,
)

SR = 22050
PEAK = 10 ** (-1 / 20)


def test_make_library(tmp_path: Path) -> None:
    styles = ["techno", "jazz", "hiphop"]
    tracks = make_library(tmp_path, styles=styles, tracks_per_style=4, duration=1.0, seed=7)
    assert len(tracks) == 12 and all(isinstance(t, SynthTrack) for t in tracks)
    assert len({t.title for t in tracks}) == 12
    assert len({t.seed for t in tracks}) == 12
    for t in tracks:
        assert t.path.exists()
        assert t.path.parent == tmp_path / t.style
        assert t.path.name.endswith(f" {t.title}{t.path.suffix}")
        assert t.path.name[:2].isdigit()
        assert t.style in t.album.lower()
        assert t.duration == 1.0
        assert written_tags(t.path) == {"artist": t.artist, "album": t.album, "title": t.title}
    for style in styles:
        mine = [t for t in tracks if t.style == style]
        assert sorted(t.path.suffix for t in mine) == sorted([".wav", ".ogg", ".mp3", ".flac"])
        assert 1 <= len({t.artist for t in mine}) <= 2
    # audio content matches the recorded seed
    wav = next(t for t in tracks if t.path.suffix == ".wav")
    y, _ = read_back(wav.path)
    assert np.max(np.abs(y - render_track(wav.style, wav.seed, 1.0, SR))) < 1e-3

    with (tmp_path / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["path", "style", "seed", "artist", "album", "title", "duration"]
    assert len(rows) == 12
    for row, t in zip(rows, tracks, strict=True):
        assert tmp_path / row["path"] == t.path
        assert (row["style"], int(row["seed"]), row["artist"], row["album"], row["title"]) == (
            t.style,
            t.seed,
            t.artist,
            t.album,
            t.title,
        )
        assert float(row["duration"]) == 1.0

    # re-running is deterministic and does not re-render existing files
    mtimes = {t.path: t.path.stat().st_mtime_ns for t in tracks}
    again = make_library(tmp_path, styles=styles, tracks_per_style=4, duration=1.0, seed=7)
    assert again == tracks
    assert {t.path: t.path.stat().st_mtime_ns for t in again} == mtimes

    # a different seed gives a different library
    other = make_library(tmp_path / "other", styles=["techno"], tracks_per_style=2, duration=1.0, seed=8)
    assert [t.seed for t in other] != [t.seed for t in tracks[:2]]


def test_make_library_bad_args(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        make_library(tmp_path, styles=["polka"], tracks_per_style=1, duration=0.5)
    with pytest.raises(ValueError):
        make_library(tmp_path, styles=["rock"], tracks_per_style=1, duration=0.5, formats=("aiff",))
