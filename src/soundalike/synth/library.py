"""Synthetic libraries: many tracks per style, written as files, with a manifest (resumable)."""

from __future__ import annotations

import csv
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import FORMATS, write_track
from .render import render_track
from .styles import STYLES, style_names

# --------------------------------------------------------------------------------------------------
# Libraries
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthTrack:
    """One generated file of a synthetic library and the parameters that made it."""

    path: Path
    style: str
    seed: int
    title: str
    artist: str
    album: str
    duration: float


# Two made-up artists per style, each with one album whose name contains the style.
_ARTISTS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "techno": (("The Techno Machines", "Warehouse Techno"), ("Kick Drum Collective", "Techno Nights")),
    "ambient": (("Slow Horizons", "Ambient Weather"), ("The Glass Clouds", "Ambient Drift")),
    "rock": (("The Loud Amplifiers", "Garage Rock Heroes"), ("Thunder Pickups", "Rock All Night")),
    "jazz": (("The Blue Note Trio", "Late Night Jazz"), ("Walking Bass Quartet", "Jazz at the Corner")),
    "chiptune": (("Pixel Heroes", "Chiptune Adventures"), ("The 8-Bit Knights", "Chiptune Castle")),
    "hiphop": (("MC Dusty Crates", "Hiphop Tapes"), ("Boom Bap Society", "Basement Hiphop")),
    "classical": (
        ("The Chamber Strings", "Classical Evenings"),
        ("Quartet Imaginaire", "Classical Serenades"),
    ),
    "drone": (("Deep Monolith", "Drone Cathedral"), ("The Low Hum", "Drone Fields")),
    "reggae": (("The Offbeat Lions", "Reggae Sunrise"), ("Dub Island Sound", "Roots Reggae Riddims")),
    "folk": (("The Wandering Pines", "Folk Songs of the Valley"), ("Hollow Oak Band", "Front Porch Folk")),
}

_TITLE_WORDS: dict[str, tuple[str, str]] = {  # (adjectives, nouns)
    "techno": (
        "Midnight Steel Pulse Concrete Neon Binary Hard Dark Strobe Acid",
        "Circuit Warehouse Engine Signal Tunnel Grid Motion Reactor Loop Code",
    ),
    "ambient": (
        "Drifting Silent Floating Distant Pale Endless Soft Quiet Still Misty",
        "Horizon Clouds Shore Light Glacier Haze Orbit Meadow Tides Dawn",
    ),
    "rock": (
        "Burning Wild Electric Broken Rolling Loud Restless Iron Crazy Highway",
        "Heart Road Thunder Rebel Fire Engine Night Riot Wheels Storm",
    ),
    "jazz": (
        "Blue Smoky Velvet Late Round Lazy Crooked Golden Minor Swinging",
        "Corner Lounge Avenue Moon Bossa Steps Cafe Serenade Hour Waltz",
    ),
    "chiptune": (
        "Pixel Turbo Super Mega Hyper Power Retro Bonus Cosmic Crystal",
        "Quest Castle Dungeon Level Boss Rocket Warp Coin Dragon Arcade",
    ),
    "hiphop": (
        "Dusty Street Golden Late Heavy Smooth Cold Basement Block Lo",
        "Crates Corner Rhymes Beats Tape Cypher Vinyl Summer Stoop Groove",
    ),
    "classical": (
        "Autumn Royal Tender Grand Gentle Solemn Noble Spring Pastoral Tragic",
        "Sonata Nocturne Elegy Prelude Adagio Romance Fugue Canon Air Suite",
    ),
    "drone": (
        "Deep Hollow Black Buried Slow Frozen Ancient Sunken Grey Vast",
        "Monolith Cavern Abyss Hum Furnace Basalt Void Tundra Crypt Current",
    ),
    "reggae": (
        "Island Sunny Roots Easy Rising Irie Natural Sweet Dread Golden",
        "Riddim Skank Lion Harbour Sunrise Yard Vibration Breeze Dub Unity",
    ),
    "folk": (
        "Old Green Wandering Little Lonesome Willow Morning Hollow Winding Fair",
        "River Valley Lantern Meadow Oak Ballad Hills Harvest Sparrow Road",
    ),
}

_MANIFEST_FIELDS = ("path", "style", "seed", "artist", "album", "title", "duration")


def _track_seed(seed: int, style: str, index: int) -> int:
    ss = np.random.SeedSequence([seed & 0xFFFFFFFF, zlib.crc32(style.encode()), index])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def _title(style: str, track_seed: int, used: set[str]) -> str:
    adj_words, noun_words = _TITLE_WORDS.get(style, ("Synthetic", style.title()))
    adjectives, nouns = adj_words.split(), noun_words.split()
    rng = np.random.default_rng([track_seed, 7])
    for attempt in range(64):
        t = f"{adjectives[int(rng.integers(len(adjectives)))]} {nouns[int(rng.integers(len(nouns)))]}"
        if attempt >= 16:
            t += f" {attempt - 14}"
        if t not in used:
            used.add(t)
            return t
    raise RuntimeError("could not draw a unique title")  # pragma: no cover


def _file_sr_matches(path: Path, sr: int) -> bool:
    """Whether an existing file was written at ``sr`` (opus is always 48 kHz, so not checked)."""
    ext = path.suffix.lower()
    try:
        if ext == ".opus":
            return True
        if ext == ".m4a":
            import av

            with av.open(str(path)) as c:
                return c.streams.audio[0].sample_rate == sr
        import soundfile as sf

        return sf.info(str(path)).samplerate == sr
    except Exception:
        return False


def make_library(
    dest: Path,
    styles: Sequence[str] | None = None,
    tracks_per_style: int = 10,
    duration: float = 30.0,
    seed: int = 0,
    formats: Sequence[str] = ("wav", "ogg", "mp3", "flac"),
    sr: int = 22050,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> list[SynthTrack]:
    """Write a tagged synthetic library ``dest/<style>/<NN> <title>.<ext>`` plus ``dest/manifest.csv``.

    Formats cycle per style; files already present with the same parameters are not re-rendered.
    ``on_progress(stage, done, total)`` is called after each track.
    """
    dest = Path(dest)
    names = list(styles) if styles is not None else style_names()
    for s in names:
        if s not in STYLES:
            raise KeyError(f"unknown style {s!r}; choose from {', '.join(STYLES)}")
    fmts = [f.lower().lstrip(".") for f in formats]
    if not fmts:
        raise ValueError("formats must not be empty")
    for f in fmts:
        if f not in FORMATS:
            raise ValueError(f"unsupported format {f!r}; choose from {', '.join(FORMATS)}")
    dest.mkdir(parents=True, exist_ok=True)
    manifest = dest / "manifest.csv"
    previous: dict[str, dict[str, str]] = {}
    if manifest.exists():
        with manifest.open(newline="", encoding="utf-8") as fh:
            previous = {row["path"]: row for row in csv.DictReader(fh) if "path" in row}

    tracks: list[SynthTrack] = []
    rows: list[dict[str, str]] = []
    used: set[str] = set()
    dur = float(duration)
    for style in names:
        for i in range(tracks_per_style):
            tseed = _track_seed(seed, style, i)
            title = _title(style, tseed, used)
            fallback = (f"The {style.title()} Band", f"{style.title()} Album")
            artist, album = _ARTISTS.get(style, (fallback, fallback))[i % 2]
            ext = fmts[i % len(fmts)]
            rel = f"{style}/{i + 1:02d} {title}.{ext}"
            row = {
                "path": rel,
                "style": style,
                "seed": str(tseed),
                "artist": artist,
                "album": album,
                "title": title,
                "duration": repr(dur),
            }
            path = dest / rel
            if not (path.exists() and previous.get(rel) == row and _file_sr_matches(path, sr)):
                audio = render_track(style, tseed, dur, sr)
                write_track(path, audio, sr, artist=artist, album=album, title=title)
            rows.append(row)
            tracks.append(
                SynthTrack(
                    path=path, style=style, seed=tseed, title=title, artist=artist, album=album, duration=dur
                )
            )
            if on_progress:
                on_progress("synthesise", len(tracks), len(names) * tracks_per_style)

    tmp = manifest.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=_MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(manifest)
    return tracks
