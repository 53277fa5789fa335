"""Render a style and a seed into mono float32 audio (oscillators, envelopes, drums, mix)."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
from scipy import signal

from .styles import STYLES, Kit, Timbre

_PEAK = 10.0 ** (-1.0 / 20.0)  # -1 dBFS
_TABLE_SIZE = 4096

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
