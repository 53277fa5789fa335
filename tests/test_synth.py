"""Tests for the procedural music generator (soundalike.synth)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import av
import librosa
import mutagen
import numpy as np
import pytest
import soundfile as sf

from soundalike.synth import (
    FORMATS,
    STYLES,
    Style,
    SynthTrack,
    make_library,
    render_track,
    style_names,
    write_track,
)

SR = 22050
PEAK = 10 ** (-1 / 20)


def _tags(path: Path) -> dict[str, str]:
    """artist/album/title as read back by ``mutagen.File(path, easy=True)`` (ID3 frames for WAV)."""
    f = mutagen.File(path, easy=True)
    assert f is not None and f.tags is not None
    if path.suffix == ".wav":
        return {
            k: str(f.tags[frame].text[0])
            for k, frame in (("artist", "TPE1"), ("album", "TALB"), ("title", "TIT2"))
        }
    return {k: f[k][0] for k in ("artist", "album", "title")}


def _read(path: Path) -> tuple[np.ndarray, int]:
    if path.suffix == ".m4a":
        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            x = np.concatenate([fr.to_ndarray().reshape(-1) for fr in c.decode(stream)])
            return x.astype(np.float32), stream.sample_rate
    x, sr = sf.read(path, dtype="float32", always_2d=False)
    return x, sr


def test_registry() -> None:
    names = style_names()
    assert len(names) >= 8
    assert names == list(STYLES)
    assert {"techno", "ambient", "rock", "jazz", "chiptune", "hiphop", "classical"} <= set(names)
    for name, st in STYLES.items():
        assert isinstance(st, Style) and st.name == name and st.description
        lo, hi = st.tempo
        assert 0 < lo <= hi
        for pat in (st.kick, st.snare, st.hihat, st.bass, st.chord):
            assert len(pat) in (0, 16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        STYLES["techno"].tempo = (1.0, 2.0)  # type: ignore[misc]


@pytest.mark.parametrize("style", style_names())
def test_render_shape_dtype_peak(style: str) -> None:
    x = render_track(style, seed=1, duration=3.0, sr=SR)
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) == 3 * SR
    assert np.all(np.isfinite(x))
    peak = float(np.max(np.abs(x)))
    assert peak <= 1.0
    assert abs(peak - PEAK) < 1e-3
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 0.02


def test_render_other_sr_and_duration() -> None:
    x = render_track("jazz", seed=5, duration=2.5, sr=16000)
    assert len(x) == 40000 and x.dtype == np.float32
    tiny = render_track("techno", seed=5, duration=0.01, sr=8000)
    assert len(tiny) == 80 and np.max(np.abs(tiny)) <= 1.0


def test_render_bad_args() -> None:
    with pytest.raises(KeyError):
        render_track("polka", 0, 1.0)
    with pytest.raises(ValueError):
        render_track("rock", 0, 0.0)


def test_deterministic() -> None:
    for style in ("techno", "jazz", "ambient"):
        a = render_track(style, seed=42, duration=2.0)
        b = render_track(style, seed=42, duration=2.0)
        assert a.tobytes() == b.tobytes()
        c = render_track(style, seed=43, duration=2.0)
        assert not np.array_equal(a, c)


def test_styles_separable_by_descriptors() -> None:
    """Leave-one-out 1-NN on standardised MFCC mean/std + centroid recovers the style."""
    names = style_names()
    feats, labels = [], []
    for style in names:
        for seed in range(4):
            x = render_track(style, seed=seed, duration=8.0, sr=SR)
            mfcc = librosa.feature.mfcc(y=x, sr=SR, n_mfcc=20)
            centroid = librosa.feature.spectral_centroid(y=x, sr=SR)
            feats.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1), [centroid.mean()]]))
            labels.append(style)
    X = np.asarray(feats)
    Z = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    d = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    y = np.asarray(labels)
    accuracy = float(np.mean(y[d.argmin(axis=1)] == y))
    assert accuracy >= 0.8, accuracy


@pytest.mark.parametrize("ext", FORMATS)
def test_write_track_formats(tmp_path: Path, ext: str) -> None:
    x = render_track("folk", seed=3, duration=1.5, sr=SR)
    path = tmp_path / "sub" / f"Ödd Näme.{ext}"
    write_track(path, x, SR, artist="The Folk Ünits", album="Front Porch Folk", title="Old River")
    assert path.exists() and path.stat().st_size > 0
    assert _tags(path) == {"artist": "The Folk Ünits", "album": "Front Porch Folk", "title": "Old River"}
    y, sr = _read(path)
    expected_sr = 48000 if ext == "opus" else SR
    assert sr == expected_sr
    assert y.ndim == 1
    assert abs(len(y) - 1.5 * sr) <= 0.1 * sr  # codec priming/padding allowed
    assert 0.3 < np.max(np.abs(y)) <= 1.05
    if ext in ("wav", "flac"):
        assert np.max(np.abs(y - x)) < 1e-3


def test_write_track_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_track(tmp_path / "x.aiff", np.zeros(100, np.float32), SR, artist="a", album="b", title="c")


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
        assert _tags(t.path) == {"artist": t.artist, "album": t.album, "title": t.title}
    for style in styles:
        mine = [t for t in tracks if t.style == style]
        assert sorted(t.path.suffix for t in mine) == sorted([".wav", ".ogg", ".mp3", ".flac"])
        assert 1 <= len({t.artist for t in mine}) <= 2
    # audio content matches the recorded seed
    wav = next(t for t in tracks if t.path.suffix == ".wav")
    y, _ = _read(wav.path)
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
