"""What a recommendation is asked about: a query resolved to a search vector, and the index it is searched in.

A query is a track id, the path of an indexed file, an ``artist - title`` search, or any audio file, analysed on
the fly and never added (cold start). Queries on ``default`` never fail because the shipped model has not
reached a track yet: they are answered from the descriptors, and the answer says so (:attr:`Query.notes`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from soundalike.audio.analysis import analyse_file
from soundalike.audio.decode import AudioError, display_path, is_audio_path
from soundalike.library.catalog import DESCRIPTOR_MODEL, Library, Track, search_words
from soundalike.library.scan import library_window
from soundalike.models.pretrained import DEFAULT_NAME
from soundalike.search.ann import EXACT_MAX_TRACKS
from soundalike.search.index import VectorIndex
from soundalike.search.space import NEIGHBOURS_MARK

IndexLoader = Callable[[str], VectorIndex]
"""A model name (``default``, ``descriptor``, a family, an id, a fused key, a file) to its search index."""


class QueryError(LookupError):
    """The query names nothing in the library and is not a readable audio file (or cannot be answered).
    ``kind`` and ``reason`` carry an audio file's :class:`~soundalike.audio.decode.AudioError` when that was it."""

    def __init__(self, message: str, *, kind: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.kind, self.reason = kind, reason


class NotEmbeddedError(QueryError):
    """A library track that the index's embedding has not reached yet."""


@dataclass
class Query:
    """A resolved query: a library track, or an outside file analysed on the fly."""

    text: str
    vector: np.ndarray
    index: VectorIndex = field(repr=False)  # the index its vector lives in (after any fallback)
    track: Track | None = None
    path: str | None = None
    audio_hash: str | None = None
    exclude: set[int] = field(default_factory=set)
    sequence: np.ndarray | None = None  # segment sequence in the search space (outside files; library tracks load it)
    notes: list[str] = field(default_factory=list)  # what the answer should say: fallbacks, left-out candidates

    @property
    def model(self) -> str:
        """The key of the embedding that answered (``descriptor+contrastive-1a2b3c4d`` for ``default``)."""
        return self.index.embedding.model

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description of the query."""
        if self.track is not None:
            return {"input": self.text, "in_library": True, **self.track.to_dict()}
        return {"input": self.text, "in_library": False, "path": self.path}


def load_index(lib: Library, model: str = DEFAULT_NAME) -> VectorIndex:
    """The search index of ``model`` (``default``, ``descriptor``, a family, a model id, a fused key, a file)."""
    if model != DESCRIPTOR_MODEL:
        from soundalike.models.embedding import resolve_model

        model = resolve_model(lib, model)
    return VectorIndex.from_library(lib, model)


def resolve_query(lib: Library, index: VectorIndex, text: str, *, exact: bool = True) -> Query:
    """Turn a query string into a :class:`Query` (id, indexed path, search string, or outside audio file). A library
    track's vector in a compact index is its stored float vector, unless ``exact=False`` (the decoded codes: the
    caller reads the floats of several queries at once, :func:`exact_queries`)."""
    raw = text.strip()
    if raw.isascii() and raw.isdigit():
        track = lib.track(int(raw))
        if track is None:
            raise QueryError(f"no track with id {raw} in {lib.root}")
        return _library_query(lib, index, raw, track, exact)
    if os.path.exists(raw):
        track = lib.track_by_path(raw)
        if track is not None:
            return _library_query(lib, index, raw, track, exact)
        if os.path.isdir(raw):
            raise QueryError(f"{raw}: is a folder, not an audio file")
        return _outside_query(lib, index, raw)
    matches = lib.search(raw, limit=1) if search_words(raw) else []
    if matches:
        return _library_query(lib, index, raw, matches[0], exact)
    if is_audio_path(raw):
        raise QueryError(f"{raw}: file not found")
    raise QueryError(f"no track matches {raw!r} (try a track id, a file path, or 'artist - title')")


def resolve_all(lib: Library, texts: list[str], model: str, index: VectorIndex | None,
                indexes: IndexLoader | None) -> tuple[VectorIndex, list[Query | QueryError]]:
    """Resolve several queries in one index: ``index``, else ``model``'s from ``indexes`` (default
    :func:`load_index`). On ``default``, if a library track is not embedded yet, all are resolved in the
    descriptor index instead and each query notes why. Unusable entries come back as their :class:`QueryError`."""
    loader = indexes or (lambda name: load_index(lib, name))
    chosen = index if index is not None else loader(model)
    results = [_try(lib, chosen, text) for text in texts]
    exact_queries(lib, chosen, results)
    notes: list[str] = []
    if index is None and model == DEFAULT_NAME and chosen.embedding.model != DESCRIPTOR_MODEL:
        missing = [r for r in results if isinstance(r, NotEmbeddedError)]
        if missing:
            chosen = loader(DESCRIPTOR_MODEL)
            results = [_try(lib, chosen, text) for text in texts]
            exact_queries(lib, chosen, results)
            notes.append(f"{missing[0]}: answered from the descriptors")
    elif index is None and model == DEFAULT_NAME and chosen.embedding.model == DESCRIPTOR_MODEL:
        notes.append("the shipped model has not embedded this library (`soundalike index PATH` embeds it): "
                     "answered from the descriptors")
    if chosen.embedding.neighbours and not chosen.smoothed:
        notes.append(f"the library is searched approximately (above {EXACT_MAX_TRACKS:,} tracks): its vectors are "
                     f"not smoothed over neighbours ({NEIGHBOURS_MARK}{chosen.embedding.neighbours} applies to exact "
                     "search only)")
    for r in results:
        if isinstance(r, Query):
            r.notes.extend(notes)
    return chosen, results


def resolve_one(lib: Library, text: str, model: str, index: VectorIndex | None,
                indexes: IndexLoader | None) -> tuple[VectorIndex, Query]:
    """:func:`resolve_all` for one query; raises its :class:`QueryError`."""
    chosen, (result,) = resolve_all(lib, [text], model, index, indexes)
    if isinstance(result, QueryError):
        raise result
    return chosen, result


def _try(lib: Library, index: VectorIndex, text: str) -> Query | QueryError:
    try:
        return resolve_query(lib, index, text, exact=False)
    except QueryError as exc:
        return exc


def exact_queries(lib: Library, index: VectorIndex, queries: list[Query | QueryError]) -> None:
    """Give the library tracks among ``queries`` their stored float vectors when ``index`` is compact (one read
    for all of them): the queries are where a re-rank measures from, not their decoded codes."""
    tracks = [q for q in queries if isinstance(q, Query) and q.track is not None]
    if not index.compact or not tracks:
        return
    found, exact = index.exact_vectors(lib, [q.track.id for q in tracks if q.track is not None])
    rows = {int(t): row for row, t in enumerate(found)}
    for q in tracks:
        if q.track is not None and q.track.id in rows:
            q.vector = exact[rows[q.track.id]]


def _library_query(lib: Library, index: VectorIndex, text: str, track: Track, exact: bool = True) -> Query:
    if track.id not in index:
        raise NotEmbeddedError(f"track {track.id} ({track.label}) has no {index.embedding.model!r} embedding yet "
                               "(run `soundalike index` on its folder)")
    vector = index.vector_of(track.id)
    if index.compact and exact:  # the stored floats, not the codes: the query is where the re-rank measures from
        found, floats = index.exact_vectors(lib, [track.id])
        vector = floats[0] if len(found) else vector
    return Query(text, vector, index, track=track, path=track.path,
                 audio_hash=track.audio_hash, exclude={track.id})


@dataclass
class OutsideAnalysis:
    """What a query needs from an audio file outside the library: its audio hash and, per part of a key, the raw
    pooled vector (and segment sequence, for learned parts)."""

    audio_hash: str
    duration: float
    raw: dict[str, np.ndarray]
    segments: dict[str, np.ndarray] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """JSON-ready (for a child process that analysed the file)."""
        return {"audio_hash": self.audio_hash, "duration": self.duration,
                "raw": {k: v.tolist() for k, v in self.raw.items()},
                "segments": {k: v.tolist() for k, v in self.segments.items()}}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> OutsideAnalysis:
        """The inverse of :meth:`to_json`."""
        raw = data["raw"]
        segments = data.get("segments") or {}
        assert isinstance(raw, dict) and isinstance(segments, dict)
        return cls(str(data["audio_hash"]), float(data["duration"]),  # type: ignore[arg-type]
                   {k: np.asarray(v, np.float32) for k, v in raw.items()},
                   {k: np.asarray(v, np.float32) for k, v in segments.items()})


def analyse_outside(lib: Library, parts: list[str], path: str) -> OutsideAnalysis:
    """Decode and analyse an audio file for the parts of a key (descriptors, and each learned model's embedding
    with the checkpoint that embedded the library); raises :class:`QueryError` for unusable audio."""
    from soundalike.models.embedding import model_for  # torch only when a learned model is asked for

    models = {part: None if part == DESCRIPTOR_MODEL else model_for(lib, part) for part in parts}
    presets = tuple(sorted({m.input_key for m in models.values() if m is not None}))
    try:
        analysis = analyse_file(path, presets=presets, window=library_window(lib))
    except AudioError as exc:
        raise QueryError(str(exc), kind=exc.kind, reason=exc.reason) from None
    raw, segments = {}, {}
    for name, model in models.items():
        if model is None:
            assert analysis.descriptor is not None
            raw[name] = analysis.descriptor
        else:
            raw[name], segments[name] = model.embed_track(model.query_input(analysis))
    return OutsideAnalysis(analysis.audio_hash, analysis.duration, raw, segments)


def outside_query(lib: Library, index: VectorIndex, text: str, analysis: OutsideAnalysis,
                  shown_path: str | None = None) -> Query:
    """The query of an analysed outside file in ``index``'s search space (never the same audio back)."""
    parts = [p.model for p in index.embedding.parts]
    exclude: set[int] = set()
    same = lib.track_for_audio_hash(analysis.audio_hash)
    if same is not None:  # the same audio is in the library under another name
        exclude.add(same)
    vector = index.expand(index.embedding.transform(np.concatenate([analysis.raw[p] for p in parts]))[0], same)
    learned = {m: s for m, s in analysis.segments.items() if m in parts}
    sequence = index.embedding.sequence(vector, learned) if learned else None
    return Query(text, vector, index, path=shown_path, audio_hash=analysis.audio_hash, exclude=exclude,
                 sequence=sequence)


def _outside_query(lib: Library, index: VectorIndex, path: str) -> Query:
    analysis = analyse_outside(lib, [p.model for p in index.embedding.parts], path)
    return outside_query(lib, index, path, analysis, display_path(os.path.abspath(path)))


def query_sequence(lib: Library, index: VectorIndex, q: Query) -> np.ndarray:
    """The query's segment sequence in ``index``'s search space (stored segments for a library track)."""
    if not index.embedding.has_sequences():
        raise QueryError(f"sequence distances compare segment embeddings; {index.embedding.model!r} has none "
                         "(the descriptors describe a whole track): use --model default or a trained model")
    if q.sequence is not None:
        return q.sequence
    if q.track is not None:
        kept, seqs = index.sequences(lib, [q.track.id])
        if kept:
            return seqs[0]
    raise QueryError(f"the query has no {index.embedding.model!r} segment sequence; run `soundalike index` again")
