"""Procedural music for tests and the demo: deterministic, style-recognisable tracks written as real files.

:mod:`.styles` holds the genres, :mod:`.render` turns a style and a seed into audio, :mod:`.files` writes tagged
files in every format the scanner reads, and :mod:`.library` makes whole libraries with a manifest.
"""

from .files import FORMATS, write_track
from .library import SynthTrack, make_library
from .render import render_track
from .styles import STYLES, Kit, Style, Timbre, style_names

__all__ = ["FORMATS", "STYLES", "Kit", "Style", "SynthTrack", "Timbre", "make_library", "render_track",
           "style_names", "write_track"]
