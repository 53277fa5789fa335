"""The styles of the procedural music generator: genres as rhythm, harmony, timbre and mix parameters.

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

from dataclasses import dataclass

import numpy as np

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
