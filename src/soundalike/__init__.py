"""soundalike: content-based music recommendation from the audio itself.

The Python API is a handful of verbs, the same ones the command line and the HTTP server use::

    from soundalike import Library, index, similar, continue_playlist, path_between
    with Library.open("~/.local/share/soundalike") as lib:
        index(lib, ["~/Music"], jobs=2)
        query, results = similar(lib, "artist - title", k=10)
        playlist, more = continue_playlist(lib, "road-trip.m3u", k=20, score="topk")
        start, end, journey = path_between(lib, "12", "345", n=10)

``train`` (``soundalike.models.training.train``) and ``evaluate`` (``soundalike.evaluation.report.run_evaluation``) load
PyTorch / the evaluation stack on first use.
"""

from __future__ import annotations

from typing import Any

from .library.catalog import Library
from .library.scan import scan as index
from .recommend import Filters, continue_playlist, path_between, similar

__version__ = "0.1.0"

__all__ = ["Filters", "Library", "__version__", "continue_playlist", "evaluate", "index", "path_between",
           "similar", "train"]


def __getattr__(name: str) -> Any:
    """Heavy verbs imported on first use: ``train`` (PyTorch) and ``evaluate``."""
    if name == "train":
        from .models.training import train

        return train
    if name == "evaluate":
        from .evaluation.report import run_evaluation

        return run_evaluation
    raise AttributeError(f"module 'soundalike' has no attribute {name!r}")
