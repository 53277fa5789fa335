"""Write synthetic audio as real, tagged files (wav, flac, ogg, mp3, opus, m4a)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "mp3", "opus", "m4a")
"""File extensions understood by :func:`write_track`."""

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
