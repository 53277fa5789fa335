"""Inside the players people already use: each module an optional edge over the same :mod:`soundalike.recommend`
functions the command line calls, with its own extra (``pip install 'soundalike[mpd]'``, ``'soundalike[beets]'``).

- :mod:`.mpd`: the MPD companion behind ``soundalike mpd queue|continue|playlist`` (python-mpd2).
- :mod:`.beets`: what the beets plugin (``beetsplug.soundalike``, ``plugins: soundalike``) does.
- :mod:`.ray_engine`: ``soundalike index --engine ray``, the scan's per-file analysis on a Ray cluster.

Nothing in the core imports these; a missing extra is one line saying how to install it (:class:`MissingExtraError`).
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency of an integration is not installed; the message says how to install it."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` for the integration ``what``, or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{what} needs the {module!r} package: pip install 'soundalike[{extra}]'") from None
