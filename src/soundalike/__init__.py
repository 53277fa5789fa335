"""soundalike: content-based music recommendation from the audio itself.

The Python API is a handful of verbs, the same ones the command line uses::

    from soundalike import Library, index, similar
    with Library.open("~/.local/share/soundalike") as lib:
        index(lib, ["~/Music"], jobs=2)
        query, results = similar(lib, "artist - title", k=10)
"""

from .catalog import Library
from .recommend import similar
from .scan import scan as index

__version__ = "0.1.0"

__all__ = ["Library", "__version__", "index", "similar"]
