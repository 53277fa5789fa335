"""Procedural music generator: deterministic, style-recognisable tracks for tests and demos.

Each :class:`Style` describes a genre by its rhythm (16-step drum patterns, swing), harmony (scale,
chord progressions, voicing), instrument timbres (additive harmonics, ADSR, vibrato, drive, filters),
noise bed and dynamics. :func:`render_track` turns a style and a seed into mono float32 audio; every
random choice (tempo, key, progression, detune, levels, melody) comes from
``numpy.random.default_rng(seed)``, so the same seed always gives bit-identical samples.

Pattern strings have one character per 16th-note step:

* drums: ``x`` hit, ``X`` accented hit, ``o`` open hi-hat (hihat pattern only), ``.`` rest;
* bass: a digit ``k`` plays the (k-1)-th scale step above the chord root (``1`` root, ``3`` third,
  ``5`` fifth, ``8`` octave), ``w`` a walking-bass step, ``-`` holds the previous note, ``.`` rest;
* chords: ``x``/``X`` strike the chord (or the next arpeggio tone), ``-`` hold, ``.`` rest.
"""

from __future__ import annotations

import csv
import dataclasses
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import signal

__all__ = [
    "STYLES",
    "FORMATS",
    "Kit",
    "Style",
    "SynthTrack",
    "Timbre",
    "make_library",
    "render_track",
    "style_names",
    "write_track",
]

FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "mp3", "opus", "m4a")
"""File extensions understood by :func:`write_track`."""

_PEAK = 10.0 ** (-1.0 / 20.0)  # -1 dBFS
_TABLE_SIZE = 4096

# Scales as semitone offsets from the tonic.
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
DORIAN = (0, 2, 3, 5, 7, 9, 10)
MIXOLYDIAN = (0, 2, 4, 5, 7, 9, 10)
LYDIAN = (0, 2, 4, 6, 7, 9, 11)
PHRYGIAN = (0, 1, 3, 5, 7, 8, 10)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


def _saw(n: int) -> tuple[float, ...]:
    return tuple(1.0 / k for k in range(1, n + 1))


def _square(n: int) -> tuple[float, ...]:
    return tuple((1.0 / k if k % 2 else 0.0) for k in range(1, n + 1))


def _triangle(n: int) -> tuple[float, ...]:
    return tuple((1.0 / k**2 if k % 2 else 0.0) for k in range(1, n + 1))


def _pulse(n: int, duty: float) -> tuple[float, ...]:
    return tuple(abs(float(np.sin(np.pi * k * duty))) / k for k in range(1, n + 1))


@dataclass(frozen=True)
class Timbre:
    """An instrument voice: additive harmonics, envelope, modulation and stem processing."""

    harmonics: tuple[float, ...] = (1.0,)
    adsr: tuple[float, float, float, float] = (0.01, 0.1, 0.7, 0.1)  # attack s, decay tau s, sustain, release
    vibrato: tuple[float, float] = (0.0, 0.0)  # rate Hz, depth cents
    tremolo: tuple[float, float] = (0.0, 0.0)  # rate Hz, depth 0..1
    voices: int = 1  # unison voices
    detune: float = 0.0  # cents between the outermost unison voices
    bright_decay: float = 0.0  # > 0: overtones decay with this time constant (plucks, pianos)
    drive: float = 0.0  # tanh overdrive on the whole stem
    lowpass: float = 0.0  # Hz, stem low-pass (0 = off)
    highpass: float = 0.0  # Hz, stem high-pass (0 = off)


@dataclass(frozen=True)
class Kit:
    """A synthesised drum kit."""

    kick: tuple[float, float, float] = (150.0, 50.0, 0.3)  # start Hz, end Hz, decay s
    snare: tuple[float, float, float] = (190.0, 0.15, 1500.0)  # tone Hz, decay s, noise high-pass Hz
    hat: tuple[float, float, float] = (0.04, 0.3, 7000.0)  # closed decay s, open decay s, high-pass Hz
    levels: tuple[float, float, float] = (1.0, 0.7, 0.3)  # kick, snare, hats
    grit: int = 1  # sample-and-hold factor of the noise source (> 1: 8-bit console noise)
    click: float = 0.3  # kick transient


@dataclass(frozen=True)
class Style:
    """Every parameter that makes a genre recognisable; see the module docstring for pattern syntax."""

    name: str
    description: str
    tempo: tuple[float, float]  # BPM range
    # rhythm
    kick: str = ""
    snare: str = ""
    hihat: str = ""
    kit: Kit = Kit()
    swing: float = 0.0  # fraction of a swing unit by which off-beats are delayed
    swing_unit: int = 1  # 1: 16th swing, 2: 8th swing
    humanize: float = 0.0  # s, random timing jitter
    fills: bool = False  # snare fill at the end of every 8 bars
    # harmony
    scale: tuple[int, ...] = MAJOR
    progressions: tuple[tuple[int, ...], ...] = ((0, 3, 4, 0),)  # chord roots as scale steps
    bars_per_chord: int = 1
    key_range: tuple[int, int] = (45, 56)  # tonic MIDI note range
    # bass
    bass: str = ""
    bass_timbre: Timbre = Timbre()
    bass_octave: int = -1
    # chords / pads / comping
    chord: str = ""
    chord_tones: tuple[int, ...] = (0, 2, 4)  # scale-step offsets above the root
    chord_timbre: Timbre = Timbre()
    chord_octave: int = 0
    arpeggio: bool = False
    # lead melody
    lead_timbre: Timbre | None = None
    lead_density: float = 0.3  # onset probability per allowed step
    lead_grid: int = 2  # onsets only every n steps
    lead_max_steps: int = 4
    lead_octave: int = 1
    # mix: RMS ratio of drums, bass, chords, lead, noise
    mix: tuple[float, float, float, float, float] = (1.0, 0.6, 0.4, 0.4, 0.0)
    noise_colour: str = "white"  # white | pink | brown
    crackle: float = 0.0  # vinyl crackle amount
    # dynamics and master
    swell: tuple[float, float] = (0.0, 8.0)  # depth 0..1, period in bars
    accent: float = 0.2  # down-beat emphasis
    reverb: tuple[float, float] = (0.0, 1.0)  # wet level, RT60 s
    master_lowpass: float = 0.0
    bits: int = 0  # > 0: quantise the master to this many bits


_STYLE_LIST: tuple[Style, ...] = (
    Style(
        name="techno",
        description="four-on-the-floor 808 kick, off-beat open hats, rolling filtered saw bass, minor stabs",
        tempo=(126.0, 134.0),
        kick="X...x...x...x...",
        snare="....x.......x...",
        hihat="x.o.x.oxx.o.x.ox",
        kit=Kit(
            kick=(170.0, 45.0, 0.32),
            snare=(220.0, 0.12, 1800.0),
            hat=(0.03, 0.18, 8000.0),
            levels=(1.0, 0.45, 0.35),
            click=0.5,
        ),
        scale=MINOR,
        progressions=((0, 0, 0, 0), (0, 0, 5, 5), (0, 0, 3, 3)),
        key_range=(43, 50),
        bass=".111.111.111.111",
        bass_timbre=Timbre(harmonics=_saw(24), adsr=(0.002, 0.08, 0.3, 0.03), lowpass=700.0, drive=1.5),
        bass_octave=-1,
        chord="......x.......x.",
        chord_tones=(0, 2, 4),
        chord_timbre=Timbre(
            harmonics=_saw(30), adsr=(0.003, 0.12, 0.0, 0.08), voices=2, detune=18.0, lowpass=2500.0
        ),
        lead_timbre=None,
        mix=(1.0, 0.55, 0.3, 0.0, 0.02),
        swell=(0.25, 16.0),
        reverb=(0.12, 0.8),
    ),
    Style(
        name="ambient",
        description=(
            "beatless detuned pads on slow lydian chords, sparse bell tones, pink-noise wash, long reverb"
        ),
        tempo=(60.0, 76.0),
        scale=LYDIAN,
        progressions=((0, 4, 5, 3), (0, 1, 0, 4), (0, 5, 3, 4)),
        bars_per_chord=2,
        key_range=(48, 58),
        bass="1---------------",
        bass_timbre=Timbre(harmonics=(1.0,), adsr=(1.5, 1.0, 0.8, 2.0)),
        bass_octave=-1,
        chord="x---------------",
        chord_tones=(0, 2, 4, 6),
        chord_timbre=Timbre(
            harmonics=_saw(12),
            adsr=(2.0, 1.5, 0.8, 2.5),
            voices=3,
            detune=20.0,
            lowpass=1100.0,
            vibrato=(0.3, 6.0),
        ),
        lead_timbre=Timbre(
            harmonics=(1.0, 0.0, 0.15, 0.0, 0.05), adsr=(0.005, 1.2, 0.0, 1.5), bright_decay=0.4
        ),
        lead_density=0.25,
        lead_grid=4,
        lead_max_steps=8,
        lead_octave=2,
        mix=(0.0, 0.35, 1.0, 0.3, 0.25),
        noise_colour="pink",
        swell=(0.5, 8.0),
        accent=0.0,
        reverb=(0.7, 3.5),
    ),
    Style(
        name="rock",
        description="kick/snare back-beat, driving 8th hats, overdriven power-chord guitar, picked root bass",
        tempo=(112.0, 140.0),
        kick="x.....x.x.....x.",
        snare="....X.......X...",
        hihat="x.x.x.x.x.x.x.x.",
        kit=Kit(
            kick=(120.0, 55.0, 0.22),
            snare=(200.0, 0.2, 900.0),
            hat=(0.07, 0.35, 5000.0),
            levels=(1.0, 0.9, 0.35),
            click=0.6,
        ),
        humanize=0.004,
        fills=True,
        scale=MIXOLYDIAN,
        progressions=((0, 6, 3, 0), (0, 3, 4, 3), (0, 5, 3, 4)),
        key_range=(40, 47),
        bass="1.1.1.1.1.1.1.1.",
        bass_timbre=Timbre(harmonics=_saw(16), adsr=(0.003, 0.2, 0.6, 0.04), lowpass=900.0),
        bass_octave=0,
        chord="x-x-x-x-x-x-x-x-",
        chord_tones=(0, 4, 7),
        chord_timbre=Timbre(
            harmonics=_saw(24),
            adsr=(0.003, 0.4, 0.8, 0.05),
            voices=2,
            detune=10.0,
            drive=8.0,
            lowpass=3800.0,
            highpass=90.0,
        ),
        chord_octave=1,
        lead_timbre=None,
        mix=(1.0, 0.45, 0.85, 0.0, 0.0),
        accent=0.2,
        reverb=(0.15, 1.0),
    ),
    Style(
        name="jazz",
        description=(
            "swung ride and brushes, walking upright bass, decaying piano 7th-chord comping, breathy sax"
        ),
        tempo=(110.0, 170.0),
        kick="x.......x.......",
        snare="..x.......x...x.",
        hihat="x...x.x.x...x.x.",
        kit=Kit(
            kick=(90.0, 50.0, 0.2),
            snare=(0.0, 0.25, 2500.0),
            hat=(0.35, 0.6, 4000.0),
            levels=(0.3, 0.25, 0.6),
            click=0.0,
        ),
        swing=0.33,
        swing_unit=2,
        humanize=0.006,
        scale=DORIAN,
        progressions=((1, 4, 0, 0), (0, 3, 1, 4), (5, 1, 4, 0)),
        key_range=(45, 53),
        bass="1...w...w...w...",
        bass_timbre=Timbre(
            harmonics=(1.0, 0.45, 0.2, 0.08),
            adsr=(0.005, 0.45, 0.25, 0.08),
            bright_decay=0.08,
            lowpass=1200.0,
        ),
        bass_octave=-1,
        chord="x.....x-...x....",
        chord_tones=(0, 2, 4, 6),
        chord_timbre=Timbre(
            harmonics=(1.0, 0.6, 0.35, 0.25, 0.12, 0.08, 0.05),
            adsr=(0.004, 0.9, 0.15, 0.25),
            bright_decay=0.25,
        ),
        chord_octave=1,
        lead_timbre=Timbre(
            harmonics=(1.0, 0.75, 0.6, 0.45, 0.35, 0.22, 0.16, 0.1),
            adsr=(0.04, 0.2, 0.75, 0.08),
            vibrato=(5.0, 18.0),
            lowpass=3500.0,
        ),
        lead_density=0.55,
        lead_grid=2,
        lead_max_steps=3,
        lead_octave=1,
        mix=(0.45, 0.6, 0.45, 0.55, 0.02),
        accent=0.1,
        reverb=(0.2, 1.2),
    ),
    Style(
        name="chiptune",
        description=(
            "8-bit console: pulse-wave arpeggios and lead, triangle bass, sample-and-hold noise drums"
        ),
        tempo=(140.0, 168.0),
        kick="x.......x.x.....",
        snare="....x.......x...",
        hihat="x.x.x.x.x.x.x.xx",
        kit=Kit(
            kick=(220.0, 60.0, 0.12),
            snare=(0.0, 0.1, 0.0),
            hat=(0.025, 0.1, 0.0),
            levels=(0.8, 0.8, 0.4),
            grit=6,
            click=0.0,
        ),
        scale=MAJOR,
        progressions=((0, 5, 3, 4), (0, 4, 5, 3), (0, 3, 0, 4)),
        key_range=(48, 57),
        bass="1.8.1.8.1.8.1.8.",
        bass_timbre=Timbre(harmonics=_triangle(15), adsr=(0.001, 0.05, 1.0, 0.01)),
        bass_octave=-1,
        chord="xxxxxxxxxxxxxxxx",
        chord_tones=(0, 2, 4, 7),
        chord_timbre=Timbre(harmonics=_pulse(60, 0.25), adsr=(0.001, 0.06, 0.5, 0.01)),
        chord_octave=1,
        arpeggio=True,
        lead_timbre=Timbre(harmonics=_square(60), adsr=(0.001, 0.05, 0.8, 0.01), vibrato=(6.0, 20.0)),
        lead_density=0.6,
        lead_grid=2,
        lead_max_steps=4,
        lead_octave=2,
        mix=(0.6, 0.5, 0.4, 0.6, 0.0),
        accent=0.0,
        bits=5,
    ),
    Style(
        name="hiphop",
        description=(
            "boom-bap swing, deep kick, sub-bass, dusty low-passed Rhodes 7ths with tremolo, vinyl crackle"
        ),
        tempo=(82.0, 96.0),
        kick="X......x.xX.....",
        snare="....X.......X...",
        hihat="x.x.x.x.x.x.x.x.",
        kit=Kit(
            kick=(110.0, 45.0, 0.45),
            snare=(180.0, 0.18, 1200.0),
            hat=(0.04, 0.2, 6000.0),
            levels=(1.0, 0.8, 0.2),
            click=0.2,
        ),
        swing=0.18,
        swing_unit=1,
        humanize=0.004,
        scale=DORIAN,
        progressions=((0, 0, 3, 3), (0, 5, 3, 4), (1, 1, 0, 0)),
        key_range=(43, 51),
        bass="1-----.1--5---..",
        bass_timbre=Timbre(harmonics=(1.0, 0.1), adsr=(0.01, 0.6, 0.7, 0.1), lowpass=250.0),
        bass_octave=-1,
        chord="x-------x-----..",
        chord_tones=(0, 2, 4, 6),
        chord_timbre=Timbre(
            harmonics=(1.0, 0.35, 0.12, 0.05),
            adsr=(0.01, 1.2, 0.4, 0.3),
            tremolo=(4.5, 0.35),
            bright_decay=0.3,
        ),
        chord_octave=0,
        lead_timbre=None,
        mix=(1.0, 0.7, 0.35, 0.0, 0.04),
        noise_colour="brown",
        crackle=0.25,
        accent=0.1,
        master_lowpass=4500.0,
        reverb=(0.1, 0.8),
    ),
    Style(
        name="classical",
        description=(
            "string ensemble: unison-detuned bowed saws, cello bass, vibrato violin melody, hall reverb"
        ),
        tempo=(66.0, 100.0),
        scale=HARMONIC_MINOR,
        progressions=((0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 6, 4)),
        key_range=(50, 58),
        bass="1-------1-------",
        bass_timbre=Timbre(
            harmonics=_saw(20), adsr=(0.15, 0.3, 0.85, 0.3), vibrato=(5.0, 10.0), lowpass=1500.0
        ),
        bass_octave=-1,
        chord="x-------x-------",
        chord_tones=(0, 2, 4),
        chord_timbre=Timbre(
            harmonics=_saw(24),
            adsr=(0.3, 0.4, 0.9, 0.5),
            voices=3,
            detune=14.0,
            vibrato=(5.5, 10.0),
            lowpass=3200.0,
        ),
        chord_octave=0,
        lead_timbre=Timbre(
            harmonics=_saw(24), adsr=(0.08, 0.3, 0.9, 0.2), vibrato=(6.0, 28.0), lowpass=4500.0
        ),
        lead_density=0.5,
        lead_grid=2,
        lead_max_steps=6,
        lead_octave=1,
        mix=(0.0, 0.5, 0.8, 0.7, 0.0),
        swell=(0.45, 8.0),
        accent=0.1,
        reverb=(0.45, 2.2),
    ),
    Style(
        name="drone",
        description=(
            "dark beatless drone: slowly swelling detuned low saw clusters through overdrive, brown noise"
        ),
        tempo=(40.0, 56.0),
        scale=PHRYGIAN,
        progressions=((0, 0, 0, 0), (0, 0, 1, 0), (0, 0, 6, 0)),
        bars_per_chord=2,
        key_range=(33, 40),
        bass="1---------------",
        bass_timbre=Timbre(harmonics=(1.0, 0.3), adsr=(2.0, 1.0, 1.0, 3.0)),
        bass_octave=-1,
        chord="x---------------",
        chord_tones=(0, 4, 7),
        chord_timbre=Timbre(
            harmonics=_saw(20), adsr=(3.0, 2.0, 0.9, 3.0), voices=4, detune=30.0, drive=3.0, lowpass=450.0
        ),
        chord_octave=0,
        lead_timbre=None,
        mix=(0.0, 0.6, 1.0, 0.0, 0.7),
        noise_colour="brown",
        swell=(0.6, 4.0),
        accent=0.0,
        reverb=(0.5, 4.0),
    ),
    Style(
        name="reggae",
        description=(
            "one-drop drums with rimshot, round melodic dub bass, thin off-beat organ skank, melodica"
        ),
        tempo=(68.0, 84.0),
        kick="........x.......",
        snare="........X.......",
        hihat="x.x.x.x.x.x.x.x.",
        kit=Kit(
            kick=(100.0, 55.0, 0.3),
            snare=(420.0, 0.06, 2500.0),
            hat=(0.03, 0.15, 7000.0),
            levels=(0.9, 0.7, 0.3),
            click=0.1,
        ),
        swing=0.15,
        swing_unit=1,
        humanize=0.003,
        scale=MAJOR,
        progressions=((0, 3, 0, 4), (0, 5, 3, 4), (1, 4, 1, 4)),
        key_range=(45, 53),
        bass="1--.5-.3..1-8...",
        bass_timbre=Timbre(harmonics=(1.0, 0.25, 0.05), adsr=(0.01, 0.4, 0.7, 0.06), lowpass=320.0),
        bass_octave=-1,
        chord="....x.......x...",
        chord_tones=(0, 2, 4),
        chord_timbre=Timbre(
            harmonics=(1.0, 0.9, 0.7, 0.6, 0.5, 0.4, 0.3, 0.3, 0.2, 0.2),
            adsr=(0.002, 0.07, 0.0, 0.03),
            highpass=500.0,
        ),
        chord_octave=1,
        lead_timbre=Timbre(
            harmonics=(1.0, 0.5, 0.45, 0.2, 0.15, 0.1), adsr=(0.03, 0.2, 0.7, 0.1), vibrato=(4.0, 8.0)
        ),
        lead_density=0.3,
        lead_grid=2,
        lead_max_steps=4,
        lead_octave=1,
        mix=(0.7, 1.0, 0.4, 0.3, 0.0),
        accent=0.1,
        reverb=(0.2, 1.0),
    ),
    Style(
        name="folk",
        description=(
            "finger-picked acoustic guitar arpeggios with thumb bass, soft shaker, breathy flute melody"
        ),
        tempo=(88.0, 118.0),
        hihat="x.xxx.xxx.xxx.xx",
        kit=Kit(hat=(0.05, 0.1, 4500.0), levels=(0.0, 0.0, 0.25)),
        humanize=0.008,
        scale=MAJOR,
        progressions=((0, 4, 5, 3), (0, 3, 0, 4), (0, 5, 3, 4)),
        key_range=(50, 57),
        bass="1.......5.......",
        bass_timbre=Timbre(
            harmonics=(1.0, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1), adsr=(0.002, 0.9, 0.0, 0.3), bright_decay=0.12
        ),
        bass_octave=-1,
        chord="..x.x.x...x.x.x.",
        chord_tones=(0, 2, 4, 7),
        chord_timbre=Timbre(
            harmonics=(1.0, 0.7, 0.55, 0.4, 0.3, 0.25, 0.18, 0.12, 0.1, 0.08),
            adsr=(0.002, 1.0, 0.0, 0.4),
            bright_decay=0.15,
        ),
        chord_octave=0,
        arpeggio=True,
        lead_timbre=Timbre(harmonics=(1.0, 0.12, 0.04), adsr=(0.06, 0.2, 0.85, 0.12), vibrato=(5.0, 14.0)),
        lead_density=0.45,
        lead_grid=2,
        lead_max_steps=6,
        lead_octave=2,
        mix=(0.25, 0.45, 1.0, 0.5, 0.02),
        accent=0.15,
        reverb=(0.25, 1.4),
    ),
)

STYLES: dict[str, Style] = {s.name: s for s in _STYLE_LIST}
"""Registry of every style, keyed by name."""


def style_names() -> list[str]:
    """Names of all registered styles, in registry order."""
    return list(STYLES)


# --------------------------------------------------------------------------------------------------
# Oscillators and envelopes
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _wavetable(harmonics: tuple[float, ...], n_harm: int) -> np.ndarray:
    """One cycle of the additive waveform with at most ``n_harm`` harmonics (band limiting)."""
    ph = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    table = np.zeros(_TABLE_SIZE)
    for k, amp in enumerate(harmonics[:n_harm], start=1):
        if amp:
            table += amp * np.sin(2.0 * np.pi * k * ph)
    peak = np.max(np.abs(table))
    if peak > 0:
        table /= peak
    table.flags.writeable = False
    return table


def _adsr(n_on: int, n: int, adsr: tuple[float, float, float, float], sr: int) -> np.ndarray:
    a, d, s, r = adsr
    t = np.arange(n) / sr
    ta = max(a, 1e-4)
    env = np.where(t < ta, t / ta, s + (1.0 - s) * np.exp(-(t - ta) / max(d, 1e-4)))
    if n > n_on:
        off_level = env[n_on - 1] if n_on > 0 else 0.0
        x = (t[n_on:] - t[n_on]) / max(r, 1e-4)
        env[n_on:] = off_level * np.exp(-4.0 * x) * np.clip(1.0 - x, 0.0, 1.0)
    return env


class _Voice:
    """Renders notes of one timbre; caches identical (pitch, length) notes within a track."""

    def __init__(self, timbre: Timbre, sr: int) -> None:
        self.t = timbre
        self.sr = sr
        self.cache: dict[tuple[float, int], np.ndarray] = {}

    def note(self, freq: float, n_on: int) -> np.ndarray:
        key = (round(freq, 4), n_on)
        out = self.cache.get(key)
        if out is None:
            out = self._render(freq, n_on)
            self.cache[key] = out
        return out

    def _render(self, freq: float, n_on: int) -> np.ndarray:
        tb, sr = self.t, self.sr
        n = n_on + int(tb.adsr[3] * sr)
        t = np.arange(n) / sr
        n_harm = max(1, int(0.45 * sr / freq))
        table = _wavetable(tb.harmonics, n_harm)
        fund = _wavetable(tb.harmonics[:1], 1) if tb.bright_decay > 0 else None
        rate, depth = tb.vibrato
        vib = None
        if depth > 0:
            onset = np.minimum(t / 0.3, 1.0)
            vib = 2.0 ** (depth / 1200.0 * onset * np.sin(2.0 * np.pi * rate * t))
        out = np.zeros(n)
        nv = max(1, tb.voices)
        for v in range(nv):
            cents = 0.0 if nv == 1 else tb.detune * (v / (nv - 1) - 0.5)
            fv = freq * 2.0 ** (cents / 1200.0)
            phase = np.cumsum(fv * vib) / sr if vib is not None else fv * t
            phase = phase + v / nv  # spread unison start phases deterministically
            idx = (phase * _TABLE_SIZE).astype(np.int64) & (_TABLE_SIZE - 1)
            if fund is None:
                out += table[idx]
            else:
                f = fund[idx]
                out += f + (table[idx] - f) * np.exp(-t / tb.bright_decay)
        env = _adsr(n_on, n, tb.adsr, sr)
        if tb.tremolo[1] > 0:
            env = env * (1.0 - tb.tremolo[1] * (0.5 + 0.5 * np.sin(2.0 * np.pi * tb.tremolo[0] * t)))
        out *= env / np.sqrt(nv)
        return out


def _add(buf: np.ndarray, start: int, x: np.ndarray, gain: float = 1.0) -> None:
    if start >= len(buf) or start + len(x) <= 0:
        return
    if start < 0:
        x, start = x[-start:], 0
    m = min(len(x), len(buf) - start)
    buf[start : start + m] += gain * x[:m]


def _filter(x: np.ndarray, sr: int, lowpass: float = 0.0, highpass: float = 0.0) -> np.ndarray:
    nyq = 0.5 * sr
    if 0 < lowpass < nyq * 0.95:
        x = signal.sosfilt(signal.butter(2, lowpass, "low", fs=sr, output="sos"), x)
    if 0 < highpass < nyq * 0.95:
        x = signal.sosfilt(signal.butter(2, highpass, "high", fs=sr, output="sos"), x)
    return x


def _noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    w = rng.standard_normal(n)
    if colour == "pink":
        spec = np.fft.rfft(w)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        w = np.fft.irfft(spec / np.sqrt(f), n)
    elif colour == "brown":
        w = signal.lfilter([1.0], [1.0, -0.995], w)
        w = w - signal.lfilter([0.002], [1.0, -0.998], w)  # remove DC drift
    elif colour != "white":
        raise ValueError(f"unknown noise colour {colour!r}")
    rms = np.sqrt(np.mean(w**2))
    return w / rms if rms > 0 else w


# --------------------------------------------------------------------------------------------------
# Drums
# --------------------------------------------------------------------------------------------------


def _drum_noise(rng: np.random.Generator, n: int, grit: int) -> np.ndarray:
    if grit > 1:
        return np.repeat(rng.choice([-1.0, 1.0], size=n // grit + 1), grit)[:n]
    return rng.standard_normal(n)


def _drum_samples(kit: Kit, rng: np.random.Generator, sr: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    f0, f1, kd = kit.kick
    n = int(kd * 5 * sr)
    t = np.arange(n) / sr
    freq = f1 + (f0 - f1) * np.exp(-t / 0.035)
    ph = np.cumsum(freq) / sr
    triangle = 2.0 * np.abs(2.0 * (ph % 1.0) - 1.0) - 1.0  # console-style kick
    body = triangle if kit.grit > 1 else np.sin(2.0 * np.pi * ph)
    click = _drum_noise(rng, n, kit.grit) * np.exp(-t / 0.003) * kit.click
    out["kick"] = (body * np.exp(-t / kd) + click) * kit.levels[0]

    tone, sd, shp = kit.snare
    n = int(sd * 5 * sr)
    t = np.arange(n) / sr
    nz = _filter(_drum_noise(rng, n, kit.grit), sr, highpass=shp)
    sn = nz * np.exp(-t / sd)
    if tone > 0:
        sn = sn + 0.8 * np.sin(2.0 * np.pi * tone * t) * np.exp(-t / (0.4 * sd))
    out["snare"] = sn * kit.levels[1]

    cd, od, hhp = kit.hat
    for name, dec in (("hat", cd), ("open", od)):
        n = int(dec * 5 * sr)
        t = np.arange(n) / sr
        nz = _filter(_drum_noise(rng, n, kit.grit), sr, highpass=hhp)
        out[name] = nz * np.exp(-t / dec) * kit.levels[2]
    return out


# --------------------------------------------------------------------------------------------------
# Sequencing
# --------------------------------------------------------------------------------------------------


def _midi(tonic: int, scale: tuple[int, ...], step: int) -> int:
    octave, k = divmod(step, len(scale))
    return tonic + 12 * octave + scale[k]


def _runs(pattern: str, i: int) -> int:
    """Number of steps a note struck at ``i`` lasts (itself plus following ``-`` holds)."""
    n = 1
    while i + n < len(pattern) and pattern[i + n] == "-":
        n += 1
    return n


def render_track(style: str, seed: int, duration: float = 30.0, sr: int = 22050) -> np.ndarray:
    """Render ``duration`` seconds of ``style`` as mono float32 peak-normalised to -1 dBFS.

    Deterministic: the same (style, seed, duration, sr) always yields bit-identical samples.
    """
    if style not in STYLES:
        raise KeyError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    if duration <= 0 or sr <= 0:
        raise ValueError("duration and sr must be positive")
    st = STYLES[style]
    rng = np.random.default_rng(seed)
    n = int(round(duration * sr))

    # --- per-track variation -------------------------------------------------------------------
    bpm = float(rng.uniform(*st.tempo))
    tonic = int(rng.integers(st.key_range[0], st.key_range[1] + 1))
    prog = st.progressions[int(rng.integers(len(st.progressions)))]
    tuning = 440.0 * 2.0 ** (rng.uniform(-12.0, 12.0) / 1200.0)
    detune = float(rng.uniform(0.7, 1.3))
    levels = np.asarray(st.mix) * rng.uniform(0.8, 1.25, size=5)
    step_dur = 60.0 / bpm / 4.0
    n_steps = int(np.ceil(duration / step_dur)) + 1
    n_bars = n_steps // 16 + 1

    steps = np.arange(n_steps + 16)
    times = steps * step_dur
    if st.swing > 0:
        u = st.swing_unit
        off = ((steps // u) % 2 == 1) & (steps % u == 0)
        times = times + off * st.swing * u * step_dur
    jitter = rng.normal(0.0, st.humanize, size=len(times)) if st.humanize > 0 else np.zeros(len(times))
    times = times + jitter

    def at(i: int) -> int:
        return int(round(max(times[i], 0.0) * sr))

    def chord_root(bar: int) -> int:
        return prog[(bar // st.bars_per_chord) % len(prog)]

    def freq(midi: float) -> float:
        return tuning * 2.0 ** ((midi - 69.0) / 12.0)

    def velocity(i: int) -> float:
        v = 1.0 + (st.accent if i % 16 == 0 else 0.0) - (0.5 * st.accent if i % 2 else 0.0)
        return v * float(rng.uniform(0.9, 1.1))

    def voice(tb: Timbre) -> _Voice:
        return _Voice(dataclasses.replace(tb, detune=tb.detune * detune), sr)

    stems = np.zeros((5, n))

    # --- drums -------------------------------------------------------------------------------------
    if st.kick or st.snare or st.hihat:
        kit = _drum_samples(st.kit, rng, sr)
        fill_bars = {b for b in range(7, n_bars, 8) if rng.random() < 0.7} if st.fills else set()
        for pattern, name in ((st.kick, "kick"), (st.snare, "snare"), (st.hihat, "hat")):
            if not pattern:
                continue
            for i in range(n_steps):
                ch = pattern[i % len(pattern)]
                if name == "snare" and i // 16 in fill_bars and i % 16 >= 12:
                    ch = "X" if i % 16 == 12 else "x"
                if ch == ".":
                    continue
                sample = kit["open"] if ch == "o" else kit[name]
                gain = (1.3 if ch == "X" else 1.0) * float(rng.uniform(0.85, 1.0))
                _add(stems[0], at(i), sample, gain)

    # --- bass ----------------------------------------------------------------------------------------
    if st.bass:
        bv = voice(st.bass_timbre)
        pat = st.bass
        prev = 0
        base = len(st.scale) * st.bass_octave  # bass_octave in octaves -> scale steps below tonic
        for i in range(n_steps):
            ch = pat[i % len(pat)]
            if ch in ".-":
                continue
            root = chord_root(i // 16)
            if ch == "w":
                nxt = chord_root(i // 16 + 1)
                last_in_bar = "w" not in pat[(i % len(pat)) + 1 :]
                # the last walking step approaches the next chord root; others wander by steps
                anchor, moves = (nxt, [-1, 1]) if last_in_bar else (prev, [-2, -1, 1, 2])
                deg = anchor + int(rng.choice(moves))
            else:
                deg = root + int(ch) - 1
            prev = deg
            length = _runs(pat, i % len(pat)) * step_dur * 0.92
            note = bv.note(freq(_midi(tonic, st.scale, deg + base)), max(1, int(length * sr)))
            _add(stems[1], at(i), note, velocity(i))
        stems[1] = _filter(stems[1], sr, st.bass_timbre.lowpass, st.bass_timbre.highpass)

    # --- chords -------------------------------------------------------------------------------------
    if st.chord:
        cv = voice(st.chord_timbre)
        pat = st.chord
        arp_order = list(range(len(st.chord_tones)))
        arp_order += arp_order[-2:0:-1]
        k = 0
        base = len(st.scale) * st.chord_octave
        for i in range(n_steps):
            ch = pat[i % len(pat)]
            if ch not in "xX":
                continue
            root = chord_root(i // 16)
            length = _runs(pat, i % len(pat)) * step_dur * (0.98 if not st.arpeggio else 2.0)
            tones = [st.chord_tones[arp_order[k % len(arp_order)]]] if st.arpeggio else list(st.chord_tones)
            k += 1
            vel = velocity(i) * (1.2 if ch == "X" else 1.0)
            for j, tone in enumerate(tones):
                note = cv.note(freq(_midi(tonic, st.scale, root + tone + base)), max(1, int(length * sr)))
                strum = int(j * 0.004 * sr) if st.humanize > 0 else 0
                _add(stems[2], at(i) + strum, note, vel)
        tb = st.chord_timbre
        if tb.drive > 0:
            x = stems[2] / (np.max(np.abs(stems[2])) + 1e-12)
            stems[2] = np.tanh(tb.drive * x)
        stems[2] = _filter(stems[2], sr, tb.lowpass, tb.highpass)

    # --- lead melody ------------------------------------------------------------------------------
    if st.lead_timbre is not None and st.lead_density > 0:
        lv = voice(st.lead_timbre)
        motifs = []
        for _ in range(2):
            onsets: list[tuple[int, int]] = []  # (step in 2-bar motif, scale step relative to chord root)
            deg = int(rng.choice([0, 2, 4]))
            for s in range(0, 32, st.lead_grid):
                p = st.lead_density * (1.4 if s % 8 == 0 else 0.8)
                if rng.random() < p:
                    deg = int(np.clip(deg + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3]), -3, 9))
                    if s % 8 == 0:  # strong beats land on chord tones
                        deg = int(2 * round(deg / 2))
                    onsets.append((s, deg))
            if not onsets:
                onsets.append((0, 0))
            motifs.append(onsets)
        form = (0, 0, 1, 0)  # AABA over 2-bar segments
        base = len(st.scale) * st.lead_octave
        for seg in range(n_bars // 2 + 1):
            motif = motifs[form[seg % len(form)]]
            for j, (s, deg) in enumerate(motif):
                i = seg * 32 + s
                if i >= n_steps:
                    break
                nxt = motif[j + 1][0] if j + 1 < len(motif) else 32
                length = min(nxt - s, st.lead_max_steps) * step_dur * 0.95
                root = chord_root(i // 16)
                note = lv.note(freq(_midi(tonic, st.scale, root + deg + base)), max(1, int(length * sr)))
                _add(stems[3], at(i), note, velocity(i))
        stems[3] = _filter(stems[3], sr, st.lead_timbre.lowpass, st.lead_timbre.highpass)

    # --- noise bed ----------------------------------------------------------------------------------
    if st.mix[4] > 0:
        stems[4] = _noise(rng, n, st.noise_colour)
    if st.crackle > 0:
        clicks = (rng.random(n) < 30.0 / sr) * rng.standard_normal(n) * 20.0
        stems[4] += st.crackle * _filter(clicks, sr, highpass=2000.0)

    # --- mix --------------------------------------------------------------------------------------
    mix = np.zeros(n)
    for k in range(5):
        rms = np.sqrt(np.mean(stems[k] ** 2))
        if rms > 0 and levels[k] > 0:
            mix += stems[k] * (levels[k] / rms)
    if st.swell[0] > 0:
        t = np.arange(n) / sr
        period = st.swell[1] * 16 * step_dur
        phase0 = rng.uniform(0, 2 * np.pi)
        mix *= 1.0 - st.swell[0] * (0.5 + 0.5 * np.cos(2.0 * np.pi * t / period + phase0))
    if st.reverb[0] > 0:
        rt = st.reverb[1]
        m = int(min(rt, 4.0) * sr)
        tt = np.arange(m) / sr
        ir = _filter(rng.standard_normal(m), sr, lowpass=5000.0) * np.exp(-6.9 * tt / rt)
        ir[: int(0.01 * sr)] = 0.0  # pre-delay
        ir /= np.sqrt(np.sum(ir**2)) + 1e-12
        mix = mix + st.reverb[0] * signal.fftconvolve(mix, ir)[:n]
    if st.master_lowpass > 0:
        mix = _filter(mix, sr, lowpass=st.master_lowpass)
    mix -= np.mean(mix)

    fade = min(int(0.02 * sr), n // 4)
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        mix[:fade] *= ramp
        mix[n - fade :] *= ramp[::-1]
    peak = np.max(np.abs(mix)) if n else 0.0
    if not peak > 0:  # pragma: no cover - guard against degenerate styles
        mix = _noise(rng, n, "pink") * 1e-3
        peak = np.max(np.abs(mix))
    mix /= peak
    if st.bits > 0:
        q = 2.0 ** (st.bits - 1)
        mix = np.round(mix * q) / q
        mix /= np.max(np.abs(mix))
    return (mix * _PEAK).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Files and tags
# --------------------------------------------------------------------------------------------------


def _write_m4a(path: Path, x: np.ndarray, sr: int) -> None:
    import av

    with av.open(str(path), mode="w", format="ipod") as container:
        stream = container.add_stream("aac", rate=sr, layout="mono")
        stream.bit_rate = 128_000
        hop = 1024
        for start in range(0, len(x), hop):
            chunk = np.ascontiguousarray(x[start : start + hop], dtype=np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = sr
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _tag(path: Path, artist: str, album: str, title: str) -> None:
    import mutagen

    if path.suffix.lower() == ".wav":
        from mutagen.id3 import TALB, TIT2, TPE1
        from mutagen.wave import WAVE

        wav = WAVE(path)
        if wav.tags is None:
            wav.add_tags()
        assert wav.tags is not None
        wav.tags.add(TPE1(encoding=3, text=[artist]))
        wav.tags.add(TALB(encoding=3, text=[album]))
        wav.tags.add(TIT2(encoding=3, text=[title]))
        wav.save()
        return
    f = mutagen.File(path, easy=True)
    if f is None:
        raise ValueError(f"mutagen cannot open {path}")
    if f.tags is None:
        f.add_tags()
    f["artist"] = [artist]
    f["album"] = [album]
    f["title"] = [title]
    f.save()


def write_track(path: Path, audio: np.ndarray, sr: int, *, artist: str, album: str, title: str) -> None:
    """Encode ``audio`` by the extension of ``path`` (wav, flac, ogg, mp3, opus, m4a) and tag it.

    Opus is resampled to 48 kHz; tags artist/album/title are written with mutagen.
    """
    import soundfile as sf

    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(f"unsupported format {ext!r}; choose from {', '.join(FORMATS)}")
    x = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext == "wav":
        sf.write(path, x, sr, format="WAV", subtype="PCM_16")
    elif ext == "flac":
        sf.write(path, x, sr, format="FLAC", subtype="PCM_16")
    elif ext == "ogg":
        sf.write(path, x, sr, format="OGG", subtype="VORBIS")
    elif ext == "mp3":
        sf.write(path, x, sr, format="MP3", subtype="MPEG_LAYER_III")
    elif ext == "opus":
        import soxr

        y = np.clip(soxr.resample(x, sr, 48000), -1.0, 1.0).astype(np.float32)
        sf.write(path, y, 48000, format="OGG", subtype="OPUS")
    else:
        _write_m4a(path, x, sr)
    _tag(path, artist, album, title)


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
