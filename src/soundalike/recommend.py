"""Recommendations: "more like this" for a library track or for any audio file (cold start).

A query is a track id, the path of an indexed file, an ``artist - title`` search, or any audio file that is
analysed on the fly and never added. Results never include the query itself or its duplicates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .analysis import analyse_file
from .audio import AudioError, display_path, is_audio_path
from .catalog import DESCRIPTOR_MODEL, Library, Track
from .index import VectorIndex

# Cosine similarity at or above this is the same recording (another encode, a copy with different silence...).
DUPLICATE_SIMILARITY = 0.9999


class QueryError(LookupError):
    """The query names nothing in the library and is not a readable audio file."""


@dataclass
class Query:
    """A resolved query: a library track, or an outside file analysed on the fly."""

    text: str
    vector: np.ndarray
    track: Track | None = None
    path: str | None = None
    audio_hash: str | None = None
    exclude: set[int] = field(default_factory=set)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description of the query."""
        if self.track is not None:
            return {"input": self.text, "in_library": True, **self.track.to_dict()}
        return {"input": self.text, "in_library": False, "path": self.path}


@dataclass
class Recommendation:
    """One result: a track and its cosine similarity to the query."""

    track: Track
    score: float

    def to_dict(self) -> dict[str, object]:
        """The contract's result object."""
        return {**self.track.to_dict(), "score": round(float(self.score), 6)}


def resolve_query(lib: Library, index: VectorIndex, text: str) -> Query:
    """Turn a query string into a :class:`Query` (id, indexed path, search string, or outside audio file)."""
    raw = text.strip()
    if raw.isdigit():
        track = lib.track(int(raw))
        if track is None:
            raise QueryError(f"no track with id {raw} in {lib.root}")
        return _library_query(index, raw, track)
    if os.path.exists(raw):
        track = lib.track_by_path(raw)
        if track is not None:
            return _library_query(index, raw, track)
        if os.path.isdir(raw):
            raise QueryError(f"{raw}: is a folder, not an audio file")
        return _outside_query(lib, index, raw)
    matches = lib.search(raw, limit=2)
    if matches:
        return _library_query(index, raw, matches[0])
    if is_audio_path(raw):
        raise QueryError(f"{raw}: file not found")
    raise QueryError(f"no track matches {raw!r} (try a track id, a file path, or 'artist - title')")


def _library_query(index: VectorIndex, text: str, track: Track) -> Query:
    try:
        vector = index.vector_of(track.id)
    except KeyError:
        raise QueryError(f"track {track.id} ({track.label}) has no {index.embedding.model!r} embedding; "
                         "run `soundalike index` on its folder") from None
    return Query(text, vector, track=track, path=track.path, audio_hash=track.audio_hash, exclude={track.id})


def _outside_query(lib: Library, index: VectorIndex, path: str) -> Query:
    from .embed import model_for  # torch only when a learned model is asked for

    models = {part.model: None if part.model == DESCRIPTOR_MODEL else model_for(lib, part.model)
              for part in index.embedding.parts}
    presets = tuple(sorted({m.preset_name for m in models.values() if m is not None}))
    try:
        analysis = analyse_file(path, presets=presets)
    except AudioError as exc:
        raise QueryError(str(exc)) from None
    raw = []
    for model in models.values():
        if model is None:
            assert analysis.descriptor is not None
            raw.append(analysis.descriptor)
        else:
            raw.append(model.embed_track(model.query_input(analysis))[0])
    vector = index.embedding.transform(np.concatenate(raw))[0]
    exclude: set[int] = set()
    same = lib.track_for_audio_hash(analysis.audio_hash)
    if same is not None:  # the same audio is in the library under another name
        exclude.add(same)
    return Query(path, vector, path=display_path(os.path.abspath(path)), audio_hash=analysis.audio_hash,
                 exclude=exclude)


def similar(lib: Library, query: str | Query, k: int = 10, *, model: str = "default",
            index: VectorIndex | None = None) -> tuple[Query, list[Recommendation]]:
    """The ``k`` tracks that sound most like ``query``, best first, without the query or its duplicates."""
    if index is None:
        if model != DESCRIPTOR_MODEL:
            from .embed import resolve_model

            model = resolve_model(lib, model)
        index = VectorIndex.from_library(lib, model)
    q = query if isinstance(query, Query) else resolve_query(lib, index, query)
    ids, scores = index.search(q.vector, k + 8, exclude=q.exclude)
    keep = [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if s < DUPLICATE_SIMILARITY][:k]
    tracks = {t.id: t for t in lib.tracks([i for i, _ in keep])}
    return q, [Recommendation(tracks[i], s) for i, s in keep if i in tracks]
