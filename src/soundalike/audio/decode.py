"""Decode any audio file to mono float32 at a target sample rate.

Pure functions, typed errors. soundfile (libsndfile: wav, flac, mp3, aiff) is tried first because it seeks cheaply
and decodes fast; PyAV (ffmpeg) is the fallback for everything else (m4a/aac, wma, ...). Ogg Vorbis and Opus go to
ffmpeg's own decoders first (the :data:`FFMPEG_OGG` decoder): they cost half to a third of the CPU of libvorbis /
libopusfile through libsndfile (docs/performance.md); libsndfile still decodes what ffmpeg cannot. Libraries indexed
before keep :data:`LIBSNDFILE` (audio hashes depend on the decoder's samples). Excerpts are read by seeking, so a
2-hour file never has to be held in memory whole.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
import soxr

DEFAULT_SR = 22050
# Below this a track is too short to say anything about its sound (and shorter than one MelAE patch, 3 s).
MIN_DURATION = 1.0
# Peak below this (about -90 dBFS) counts as digital silence.
SILENCE_PEAK = 3e-5

# Decoders a library can keep (its first scan records one: a track's audio hash is taken from the decoded samples).
LIBSNDFILE = "libsndfile"  # libsndfile first for every format it reads, then ffmpeg: libraries indexed before
FFMPEG_OGG = "ffmpeg-ogg"  # Ogg Vorbis / Opus through ffmpeg's decoders, the rest as LIBSNDFILE
DECODERS = (FFMPEG_OGG, LIBSNDFILE)
DEFAULT_DECODER = FFMPEG_OGG
# Measured faster with ffmpeg's decoders (docs/performance.md); MP3 (mpg123) and FLAC are not.
_FFMPEG_FIRST = frozenset({".ogg", ".oga", ".opus"})
# Seconds decoded before an Opus excerpt (its decoder converges within 80 ms; more is margin: seeks land on pages).
OPUS_PREROLL = 0.25
SF_COUNT_UNKNOWN = (1 << 63) - 1  # libsndfile's SF_COUNT_MAX: the frame count it reports for an unknown length
# Whether steady runs of stereo frames take :func:`_ffmpeg_span`'s short path (off: every frame the general way; the
# tests compare the two).
SHORT_PATH = True

AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".aif", ".aiff", ".m4a", ".mp4", ".aac", ".wma", ".wv",
     ".ape", ".mka", ".webm", ".caf", ".w64"}
)


class AudioError(Exception):
    """A file that cannot be analysed; ``reason`` is a short human-readable cause."""

    kind = "error"

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = display_path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[AudioError], tuple[str, str]]:
        # Picklable with its real arguments, so errors cross from scan worker processes intact.
        return (type(self), (self.path, self.reason))


class DecodeError(AudioError):
    """Unreadable or corrupt audio (truncated stream, bad frames, I/O failure)."""

    kind = "corrupt"


class MissingFileError(DecodeError):
    """The file vanished (deleted or moved) between listing and reading."""

    kind = "missing"


class NotAudioError(AudioError):
    """The file holds no audio stream at all (text, image, ...)."""

    kind = "not-audio"


class EmptyAudioError(AudioError):
    """The file decodes to zero samples (zero-byte file, header only)."""

    kind = "empty"


class TooShortError(AudioError):
    """Shorter than the minimum duration worth analysing."""

    kind = "too-short"


class SilentAudioError(AudioError):
    """All digital silence."""

    kind = "silent"


class NonFiniteError(AudioError):
    """Samples contain NaN or infinity."""

    kind = "non-finite"


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header without decoding all of it."""

    sample_rate: int
    channels: int
    duration: float
    backend: str


def display_path(path: str | os.PathLike[str] | bytes) -> str:
    """A path as printable text, even when it holds bytes that are not UTF-8."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


def is_audio_path(path: str | os.PathLike[str]) -> bool:
    """Whether the file name has an extension we try to decode."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def _check_ogg_complete(path: str) -> None:
    """An Ogg stream cut short (interrupted download or copy) still decodes its first part without complaint in
    libsndfile and ffmpeg; its last page is incomplete, which we check. (A missing end-of-stream flag alone is not
    taken for truncation: some encoders never set it — Debian's trackballs music has none — and such files are
    whole.)"""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"OggS":
                return
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return  # reading proper reports I/O problems
    at = tail.rfind(b"OggS")
    page = tail[at:]
    if at < 0 or len(page) < 27 or len(page) < 27 + page[26]:
        raise DecodeError(path, "truncated Ogg stream (last page incomplete)")
    n_segments = page[26]
    page_size = 27 + n_segments + sum(page[27:27 + n_segments])
    if len(page) < page_size:
        raise DecodeError(path, "truncated Ogg stream (last page incomplete)")


def _needs_file_object(path: str) -> bool:
    """Names with bytes that are not valid UTF-8 cannot go to the C libraries by name; open them ourselves."""
    try:
        path.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _check_file(path: str) -> None:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise MissingFileError(path, "file not found (moved or deleted)") from None
    except OSError as exc:
        raise DecodeError(path, f"cannot read file: {exc.strerror or exc}") from None
    if size == 0:
        raise EmptyAudioError(path, "empty file (0 bytes)")


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read sample rate, channels and duration from the header (soundfile, then PyAV)."""
    p = os.fsdecode(path)
    _check_file(p)
    try:
        with _source(p) as src, sf.SoundFile(src) as info:
            if info.frames >= SF_COUNT_UNKNOWN and info.samplerate > 0:
                # libsndfile cannot tell the length (a chained Ogg); PyAV's header length is the first link's
                # or less, so the length stays unknown: load_window then decodes at most its window
                return AudioInfo(info.samplerate, info.channels, float("nan"), "soundfile")
            if info.frames > 0 and info.samplerate > 0:
                return AudioInfo(info.samplerate, info.channels, info.frames / info.samplerate, "soundfile")
    except (sf.LibsndfileError, RuntimeError, OSError):
        pass
    return _probe_av(p)


@contextlib.contextmanager
def _source(path: str) -> Iterator[str | BinaryIO]:
    """The path itself, or an open binary file when the name cannot be passed to C code."""
    if not _needs_file_object(path):
        yield path
        return
    with open(path, "rb") as f:
        yield f


def _probe_av(path: str) -> AudioInfo:
    import av

    try:
        with _source(path) as src, av.open(src, mode="r") as container:
            streams = container.streams.audio
            if not streams or not streams[0].rate or not streams[0].channels:
                raise NotAudioError(path, "not an audio file (no decodable audio stream)")
            stream = streams[0]
            if container.duration is not None:
                duration = container.duration / 1_000_000
            elif stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = float("nan")
            return AudioInfo(int(stream.rate or 0), int(stream.channels or 0), duration, "av")
    except AudioError:
        raise
    except (av.error.InvalidDataError, av.error.EOFError):
        raise NotAudioError(path, "not an audio file (no decoder recognises it)") from None
    except av.error.FFmpegError as exc:
        raise DecodeError(path, f"cannot open: {exc.strerror or exc}") from None


def load(
    path: str | os.PathLike[str],
    sr: int = DEFAULT_SR,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    min_duration: float = MIN_DURATION,
    decoder: str = DEFAULT_DECODER,
) -> np.ndarray:
    """Decode ``path`` (or the excerpt ``offset``..``offset+duration`` seconds) to mono float32 at ``sr``.

    Raises a subclass of :class:`AudioError` naming the file and the reason when it cannot be used.
    """
    p = os.fsdecode(path)
    return validate(p, _decode(p, sr, offset, duration, decoder), sr, min_duration=min_duration)


def _ffmpeg_first(path: str, decoder: str) -> bool:
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r} (one of {', '.join(DECODERS)})")
    return decoder == FFMPEG_OGG and os.path.splitext(path)[1].lower() in _FFMPEG_FIRST


def _decode(p: str, sr: int, offset: float, duration: float | None, decoder: str = LIBSNDFILE) -> np.ndarray:
    """Decoded samples without the usability checks (silence is fine inside one excerpt)."""
    _check_file(p)
    _check_ogg_complete(p)
    if _ffmpeg_first(p, decoder):
        got = _ffmpeg_spans(p, sr, lambda _: [(offset, duration)])
        if got is not None:
            return got[0]
    y = _load_soundfile(p, sr, offset, duration)
    if y is None or y.size == 0:
        # libsndfile does not know the format, or found no samples (e.g. an ogg cut short): let ffmpeg try.
        recognised = y is not None
        try:
            y = _load_av(p, sr, offset, duration)
        except NotAudioError:
            if recognised:
                raise DecodeError(p, "corrupt or truncated audio (no decodable samples)") from None
            raise
        if y.size == 0 and recognised:
            raise DecodeError(p, "corrupt or truncated audio (no decodable samples)")
    return y


def load_excerpts(path: str | os.PathLike[str], sr: int = DEFAULT_SR, **options: Any) -> np.ndarray:
    """Decode the whole file if it is at most ``max_duration`` s long, else ``excerpts`` evenly spaced excerpts:
    the samples of :func:`load_window` (same keyword ``options``), without the file's :class:`AudioInfo`."""
    return load_window(path, sr, **options)[0]


def load_window(
    path: str | os.PathLike[str],
    sr: int = DEFAULT_SR,
    *,
    max_duration: float = 600.0,
    excerpts: int = 10,
    min_duration: float = MIN_DURATION,
    decoder: str = DEFAULT_DECODER,
) -> tuple[np.ndarray, AudioInfo]:
    """The whole file if it is at most ``max_duration`` s long, else ``excerpts`` evenly spaced excerpts (each
    ``max_duration / excerpts`` s, concatenated: memory stays bounded for hours-long files), mono float32 at ``sr``,
    and the file's :class:`AudioInfo` — from one opening of the file where ffmpeg decodes. A file whose length its
    header does not give, or gives short (chained Ogg streams), is decoded for ``max_duration`` s at most."""
    p = os.fsdecode(path)

    def spans(duration: float) -> list[tuple[float, float | None]]:
        if not np.isfinite(duration) or duration <= max_duration:
            return [(0.0, max_duration)]  # the whole file: the same samples as to its end when its header is right
        length = max_duration / excerpts
        return [(float(s), length) for s in np.linspace(0.0, duration - length, excerpts)]

    if _ffmpeg_first(p, decoder):
        _check_file(p)
        _check_ogg_complete(p)
        info: list[AudioInfo] = []
        got = _ffmpeg_spans(p, sr, spans, info)
        if got is not None:
            return validate(p, np.concatenate(got), sr, min_duration=min_duration), info[0]
    found = probe(p)
    parts = [_decode(p, sr, offset, length) for offset, length in spans(found.duration)]
    return validate(p, np.concatenate(parts), sr, min_duration=min_duration), found


def validate(path: str, y: np.ndarray, sr: int, *, min_duration: float = MIN_DURATION) -> np.ndarray:
    """Check decoded samples: non-empty, finite, long enough, not silent. Returns ``y`` unchanged."""
    if y.size == 0:
        raise EmptyAudioError(path, "no audio samples decoded")
    # The peak from two reductions that read y in place (max and min propagate NaN; an infinity is its own peak):
    # a third of the CPU of isfinite() and abs(), which each made a copy of y.
    peak = max(float(y.max()), -float(y.min()))
    if not np.isfinite(peak):
        raise NonFiniteError(path, "audio contains NaN or infinite samples")
    seconds = y.size / sr
    if seconds < min_duration:
        raise TooShortError(path, f"too short ({seconds:.2f} s < {min_duration:g} s)")
    if peak < SILENCE_PEAK:
        raise SilentAudioError(path, "digital silence (no signal)")
    return y


def _to_mono_resampled(blocks: Sequence[np.ndarray], native_sr: int, sr: int) -> np.ndarray:
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    x = np.concatenate(blocks)
    if x.ndim == 2 and x.shape[1] == 2:
        # (left + right) / 2 as two contiguous-column adds: the same float32 values as mean(axis=1), which
        # reduces along the short strided axis and took a fifth of the decoding time (docs/performance.md).
        x = (x[:, 0] + x[:, 1]) * np.float32(0.5)
    elif x.ndim == 2:
        x = x.mean(axis=1)
    return _resampled(np.ascontiguousarray(x, dtype=np.float32), native_sr, sr)


def _resampled(x: np.ndarray, native_sr: int, sr: int) -> np.ndarray:
    """Mono float32 ``x`` at ``native_sr`` resampled to ``sr`` (soxr, high quality); ``x`` itself when the rates
    agree."""
    if native_sr != sr and x.size:
        x = soxr.resample(x, native_sr, sr, quality="HQ").astype(np.float32, copy=False)
    return x


def _load_soundfile(path: str, sr: int, offset: float, duration: float | None) -> np.ndarray | None:
    """Decode with libsndfile; None when libsndfile does not know the format (then PyAV tries)."""
    with contextlib.ExitStack() as stack:
        try:
            f = stack.enter_context(sf.SoundFile(stack.enter_context(_source(path))))
        except (sf.LibsndfileError, RuntimeError) as exc:
            if _looks_truncated(str(exc)):
                raise DecodeError(path, f"corrupt or truncated audio ({exc})") from None
            return None
        except OSError as exc:
            raise DecodeError(path, f"cannot read file: {exc.strerror or exc}") from None
        native = f.samplerate
        try:
            if offset > 0 and f.seekable():
                f.seek(min(int(offset * native), max(f.frames - 1, 0)))
            remaining = -1 if duration is None else int(round(duration * native))
            blocks = []
            block = 1 << 16
            while remaining != 0:
                n = block if remaining < 0 else min(block, remaining)
                data = f.read(n, dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                blocks.append(data)
                if remaining > 0:
                    remaining -= len(data)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise DecodeError(path, f"corrupt or truncated audio ({exc})") from None
    return _to_mono_resampled(blocks, native, sr)


def _looks_truncated(message: str) -> bool:
    return "Internal psf_fseek" in message or "truncated" in message.lower()


def _av_frames(path: str, offset: float, duration: float | None) -> Iterator[tuple[np.ndarray, int]]:
    import av

    src = open(path, "rb") if _needs_file_object(path) else path  # noqa: SIM115 - closed with the container
    try:
        container = av.open(src, mode="r")
    except (av.error.InvalidDataError, av.error.EOFError):
        raise NotAudioError(path, "not an audio file (no decoder recognises it)") from None
    except av.error.FFmpegError as exc:
        raise DecodeError(path, f"cannot open: {exc.strerror or exc}") from None
    with container, (contextlib.nullcontext() if isinstance(src, str) else src):
        if not container.streams.audio:
            raise NotAudioError(path, "no audio stream in file")
        stream = container.streams.audio[0]
        if not stream.rate or not stream.channels:
            raise NotAudioError(path, "not an audio file (no decodable audio stream)")
        resampler = av.AudioResampler(format="flt", layout="mono")
        end = None if duration is None else offset + duration
        if offset > 0:
            container.seek(int(offset * 1_000_000), any_frame=False, backward=True)
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else 0.0
                frame_sr = int(frame.sample_rate)
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    t0, t1 = t, t + samples.size / frame_sr
                    if t1 <= offset:
                        continue
                    if t0 < offset:
                        samples = samples[int((offset - t0) * frame_sr):]
                        t0 = offset
                    if end is not None and t0 >= end:
                        return
                    if end is not None and t1 > end:
                        samples = samples[: int((end - t0) * frame_sr)]
                    yield samples, frame_sr
        except av.error.FFmpegError as exc:
            raise DecodeError(path, f"corrupt or truncated audio ({exc.strerror or exc})") from None


def _ffmpeg_spans(path: str, sr: int, spans: Callable[[float], Sequence[tuple[float, float | None]]],
                  info: list[AudioInfo] | None = None) -> list[np.ndarray] | None:
    """Decode the ``(offset, duration or None)`` spans that ``spans`` gives for the file's duration with ffmpeg's
    own decoder, from one opening of the file, each mono float32 at ``sr``; ``info`` receives the file's
    :class:`AudioInfo`. None when ffmpeg cannot decode it all as float samples (then libsndfile tries, as before):
    a file is never refused for what only ffmpeg dislikes."""
    import av

    try:
        with _source(path) as src, av.open(src, mode="r") as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            stream.codec_context.thread_type = "NONE"  # one core per worker: the scan runs one file a process
            native = int(stream.rate or 0)
            if not native or not stream.channels:
                return None
            if stream.duration is not None and stream.time_base is not None:
                # Opus counts its decoder delay (pre-skip) in the stream's length; libsndfile does not, nor the audio
                delay = int(getattr(stream.codec_context, "delay", 0) or 0)
                duration = float(stream.duration * stream.time_base) - delay / native
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            else:
                duration = float("nan")
            out = []
            for offset, length in spans(duration):
                got = _ffmpeg_span(container, stream, native, offset, length)
                if not got or not got[0]:
                    return None
                blocks, halve = got
                # one block is the span's own array (a frame's buffer, read-only, is copied as before)
                mono = blocks[0] if len(blocks) == 1 and blocks[0].flags.writeable else np.concatenate(blocks)
                if halve:  # the two channels were summed frame by frame: (left + right) / 2, as libsndfile's path
                    mono *= np.float32(0.5)
                out.append(_resampled(mono, native, sr))
            if info is not None:
                info.append(AudioInfo(native, int(stream.channels), duration, "av"))
            return out
    except (av.error.FFmpegError, OSError, ValueError):
        return None


def _ffmpeg_span(container: Any, stream: Any, native: int, offset: float, length: float | None
                 ) -> tuple[list[np.ndarray], bool] | None:
    """Mono float32 blocks at the stream's rate from ``offset`` for ``length`` s (None: to the end), and whether
    they are still to be halved (stereo: each sample is left + right, halved once when joined — a numpy call per
    frame less, the same values); None when a frame is not float or the rate changes. Frames are mixed down as
    they come (planar float: one add a channel), into one array of the span's length when it is known (no array
    a frame, nothing to join: ~5 % of the decoding's CPU)."""
    if offset > 0:
        # Opus needs audio decoded before a seek point to converge (RFC 7845 §4.6: at least 80 ms); libopusfile
        # does this itself, ffmpeg's seek does not.
        preroll = OPUS_PREROLL if stream.codec_context.name == "opus" else 0.0
        container.seek(int(max(0.0, offset - preroll) * 1_000_000), any_frame=False, backward=True)
    first = int(round(offset * native))
    last = None if length is None else first + int(round(length * native))
    blocks: list[np.ndarray] = []
    span = None if last is None else np.empty(last - first, np.float32)  # filled up to ``filled``
    filled = 0
    at = None  # the sample index of the next frame, from timestamps (seeking lands before ``offset``)
    in_samples = stream.time_base is not None and stream.time_base * native == 1  # Ogg: timestamps count samples
    stereo = None  # decided by the first frame: planar float with two channels (summed now, halved once later)
    frombuffer, add, f32 = np.frombuffer, np.add, np.float32
    # Once frames follow each other inside the span (stereo planar float, timestamps in samples), each takes the
    # short path below: the same checks and samples as the general one with less Python (~0.5 µs a frame of
    # ~5,000 a track: 2.5 % of the decoding, docs/performance.md). Any other frame (the span's ends, a jump in
    # timestamps, another format, rate or layout) goes the general way.
    fast = False
    short = SHORT_PATH
    whole = np.empty(0, f32) if span is None else span  # the span's array, as the short path writes it
    size = whole.size
    end = float("inf") if last is None else last
    for frame in container.decode(stream):
        if fast:
            n = frame.samples
            stop = filled + n
            if n > 0 and frame.pts == at and at + n < end and stop <= size and frame.sample_rate == native:
                planes = frame.planes
                if len(planes) == 2 and frame.format.name == "fltp":
                    add(frombuffer(planes[0], f32, n), frombuffer(planes[1], f32, n), out=whole[filled:stop])
                    filled = stop
                    at += n
                    continue
        fast = False  # until this frame is written: the general way may go back before the span (a timestamp jump)
        fmt = frame.format
        if fmt.name not in ("fltp", "flt") or frame.sample_rate != native:
            return None
        n = frame.samples
        pts = frame.pts
        if pts is None:
            start = at or 0
        elif in_samples:
            start = pts
        else:
            start = int(round(float(frame.time) * native))
        if at is not None and start < at - native:
            # timestamps went back by more than a second: the next link of a chained Ogg, which starts at 0 again
            # (frames just after a seek overlap by less and keep their own timestamps); the audio goes on
            start = at
        at = start + n
        if at <= first:
            continue
        skip = first - start if start < first else 0  # samples of the frame before the span
        keep = n if last is None else min(n, last - start)  # samples of the frame before the span's end
        if keep <= skip:
            break
        # The planes' buffers as arrays (no copy; PyAV's to_ndarray stacks them, a third of the decoding time).
        planes = frame.planes
        if stereo is None:
            stereo = fmt.is_planar and len(planes) == 2
        if stereo and (len(planes) != 2 or not fmt.is_planar):
            return None  # the layout changed mid-stream: libsndfile decodes it instead
        if span is not None and filled + keep - skip > span.size:  # frames that overlap (rare): joined as before
            blocks.append(span[:filled])
            span = None
        if span is not None:
            out = span[filled:filled + keep - skip]
            filled += keep - skip
        if stereo:
            left, right = frombuffer(planes[0], f32, n)[skip:keep], frombuffer(planes[1], f32, n)[skip:keep]
            y = add(left, right) if span is None else add(left, right, out=out)
        elif not fmt.is_planar:
            channels = len(frame.layout.channels)
            y = frombuffer(planes[0], f32, n * channels)
            y = (y.reshape(-1, channels).mean(axis=1, dtype=f32) if channels > 1 else y)[skip:keep]
        elif len(planes) > 1:
            y = (add.reduce([frombuffer(p, f32, n) for p in planes], dtype=f32) / f32(len(planes)))[skip:keep]
        else:
            y = frombuffer(planes[0], f32, n)[skip:keep]
        if span is None:
            blocks.append(y)
        elif not stereo:
            out[:] = y
        if last is not None and at >= last:
            break
        fast = short and bool(stereo) and in_samples and span is not None
    if span is not None and filled:
        blocks.append(span[:filled])
    return blocks, bool(stereo)


def _load_av(path: str, sr: int, offset: float, duration: float | None) -> np.ndarray:
    blocks: list[np.ndarray] = []
    native = 0
    for samples, frame_sr in _av_frames(path, offset, duration):
        if native and frame_sr != native:
            raise DecodeError(path, "sample rate changes mid-stream")
        native = frame_sr
        blocks.append(samples)
    return _to_mono_resampled(blocks, native or sr, sr)
