"""Recommendations, one question per module: :mod:`.similar` ("more like this"), :mod:`.continuation` ("continue
this playlist", with seed 000's score functions in :mod:`.scoring`) and :mod:`.paths` ("a path from A to B").
Each resolves its input in :mod:`.queries` and picks its answers through the filters of :mod:`.selection`;
playlist files are read and written by :mod:`.playlists`."""

from .continuation import PlaylistQuery, continue_playlist, resolve_playlist
from .paths import path_between
from .queries import IndexLoader, NotEmbeddedError, Query, QueryError, load_index, resolve_query
from .selection import Filters, Recommendation, recording_key
from .similar import DISTANCES, similar

__all__ = ["DISTANCES", "Filters", "IndexLoader", "NotEmbeddedError", "PlaylistQuery", "Query", "QueryError",
           "Recommendation", "continue_playlist", "load_index", "path_between", "recording_key", "resolve_playlist",
           "resolve_query", "similar"]
