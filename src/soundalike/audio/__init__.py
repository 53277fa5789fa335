"""Audio in: decoding any format (:mod:`.decode`), mel presets and segmenting (:mod:`.features`), handcrafted
descriptors (:mod:`.descriptors`) and the analysis of one file (:mod:`.analysis`).

The decoding API is re-exported here; import the others by module (:mod:`.dsp` holds the pieces of librosa they
use, so an analysis never imports librosa).
"""

from .decode import (
    AUDIO_EXTENSIONS,
    DEFAULT_SR,
    AudioError,
    AudioInfo,
    DecodeError,
    EmptyAudioError,
    MissingFileError,
    NonFiniteError,
    NotAudioError,
    SilentAudioError,
    TooShortError,
    display_path,
    is_audio_path,
    load,
    load_excerpts,
    load_window,
    probe,
    validate,
)

__all__ = ["AUDIO_EXTENSIONS", "DEFAULT_SR", "AudioError", "AudioInfo", "DecodeError", "EmptyAudioError",
           "MissingFileError", "NonFiniteError", "NotAudioError", "SilentAudioError", "TooShortError",
           "display_path", "is_audio_path", "load", "load_excerpts", "load_window", "probe", "validate"]
