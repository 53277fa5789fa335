"""Recommendations: "more like this", "continue this playlist" and "a path from A to B", with their filters,
playlist score functions (:mod:`.scoring`) and playlist files (:mod:`.playlists`)."""

from .engine import (
    DISTANCES,
    Filters,
    PlaylistQuery,
    Query,
    QueryError,
    Recommendation,
    continue_playlist,
    load_index,
    path_between,
    resolve_query,
    similar,
)

__all__ = ["DISTANCES", "Filters", "PlaylistQuery", "Query", "QueryError", "Recommendation", "continue_playlist",
           "load_index", "path_between", "resolve_query", "similar"]
