"""Recommendations: "more like this", "continue this playlist" and "a path from A to B".

A query is a track id, the path of an indexed file, an ``artist - title`` search, or any audio file that is
analysed on the fly and never added (cold start). Results never include the query (or the playlist's tracks)
nor their duplicates, and obey :class:`Filters` (no same artist/album, caps per artist/album).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from soundalike.audio.analysis import analyse_file
from soundalike.audio.decode import AudioError, display_path, is_audio_path
from soundalike.library.catalog import DESCRIPTOR_MODEL, Library, Track, fold
from soundalike.search.index import VectorIndex

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
    sequence: np.ndarray | None = None  # raw segment embeddings of an outside file (single learned model only)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description of the query."""
        if self.track is not None:
            return {"input": self.text, "in_library": True, **self.track.to_dict()}
        return {"input": self.text, "in_library": False, "path": self.path}


@dataclass
class Recommendation:
    """One result: a track and its score (cosine similarity, or 1 - a sequence distance) to the query."""

    track: Track
    score: float
    distance: float | None = None  # the sequence distance it was ranked by, if any

    def to_dict(self) -> dict[str, object]:
        """The contract's result object."""
        out = {**self.track.to_dict(), "score": round(float(self.score), 6)}
        if self.distance is not None:
            out["distance"] = round(float(self.distance), 6)
        return out


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
    from soundalike.models.embedding import model_for  # torch only when a learned model is asked for

    models = {part.model: None if part.model == DESCRIPTOR_MODEL else model_for(lib, part.model)
              for part in index.embedding.parts}
    presets = tuple(sorted({m.preset_name for m in models.values() if m is not None}))
    try:
        analysis = analyse_file(path, presets=presets)
    except AudioError as exc:
        raise QueryError(str(exc)) from None
    raw = []
    sequence = None
    for model in models.values():
        if model is None:
            assert analysis.descriptor is not None
            raw.append(analysis.descriptor)
        else:
            pooled, sequence = model.embed_track(model.query_input(analysis))
            raw.append(pooled)
    vector = index.embedding.transform(np.concatenate(raw))[0]
    exclude: set[int] = set()
    same = lib.track_for_audio_hash(analysis.audio_hash)
    if same is not None:  # the same audio is in the library under another name
        exclude.add(same)
    return Query(path, vector, path=display_path(os.path.abspath(path)), audio_hash=analysis.audio_hash,
                 exclude=exclude, sequence=sequence if len(models) == 1 else None)


@dataclass(frozen=True)
class Filters:
    """What results may not be, beyond the query and its duplicates (which are never returned)."""

    exclude_artists: bool = False  # no track by an artist of the query / the playlist
    exclude_albums: bool = False  # no track from an album of the query / the playlist
    max_per_artist: int | None = None  # at most this many results by one artist
    max_per_album: int | None = None  # at most this many results from one album
    skip_duplicates: bool = True  # skip other versions of a recording already in (same artist + title, or ~0 distance)


_BRACKETS = re.compile(r"[\(\[][^)\]]*[\)\]]")
_VERSION_SUFFIX = re.compile(r"\s+-\s+(\d{4}\s+)?(remaster(ed)?|live|mono|stereo|radio edit|single version|"
                             r"album version|demo|edit)\b.*$")


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", fold(text)).strip()


def recording_key(track: Track) -> str | None:
    """Normalised ``artist|title`` with version notes dropped ("(Remastered 2011)", "- Live"...); None without a
    title. Two tracks with one key are taken for versions of the same recording."""
    title = _VERSION_SUFFIX.sub("", _BRACKETS.sub(" ", track.title.casefold()))
    title = _norm(title)
    return f"{_norm(track.artist)}|{title}" if title else None


class _Selector:
    """Walks ranked candidates and keeps those the filters allow, until ``k`` are kept."""

    def __init__(self, lib: Library, index: VectorIndex, seeds: Sequence[Track], seed_vectors: np.ndarray,
                 filters: Filters, exclude: set[int]) -> None:
        self.lib, self.index, self.filters = lib, index, filters
        self.exclude = set(exclude) | {t.id for t in seeds}
        self.artists = {_norm(t.artist) for t in seeds if t.artist.strip()}
        self.albums = {_norm(t.album) for t in seeds if t.album.strip()}
        self.keys = {key for t in seeds if (key := recording_key(t))}
        self.kept_vectors = [np.atleast_2d(seed_vectors).astype(np.float32)]
        self.per_artist: dict[str, int] = {}
        self.per_album: dict[str, int] = {}
        self.kept: list[Recommendation] = []

    def offer(self, track: Track, score: float) -> bool:
        """Keep ``track`` if allowed; returns whether it was kept."""
        f = self.filters
        if track.id in self.exclude:
            return False
        artist, album = _norm(track.artist), _norm(track.album)
        if f.exclude_artists and artist and artist in self.artists:
            return False
        if f.exclude_albums and album and album in self.albums:
            return False
        if f.max_per_artist is not None and artist and self.per_artist.get(artist, 0) >= f.max_per_artist:
            return False
        if f.max_per_album is not None and album and self.per_album.get(album, 0) >= f.max_per_album:
            return False
        vector = self.index.vector_of(track.id)
        known = np.vstack(self.kept_vectors)
        if known.size and float((known @ vector).max()) >= DUPLICATE_SIMILARITY:
            return False  # the same audio as the query or a result (another encode, other silence...)
        key = recording_key(track)
        if f.skip_duplicates and key is not None and key in self.keys:
            return False
        if key is not None:
            self.keys.add(key)
        self.kept_vectors.append(vector[None, :])
        self.exclude.add(track.id)
        if artist:
            self.per_artist[artist] = self.per_artist.get(artist, 0) + 1
        if album:
            self.per_album[album] = self.per_album.get(album, 0) + 1
        self.kept.append(Recommendation(track, score))
        return True

    def take(self, ids: Iterable[int], scores: Iterable[float], k: int) -> None:
        """Offer candidates in ranked order until ``k`` results are kept."""
        pairs = [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if int(i) not in self.exclude]
        tracks = {t.id: t for t in self.lib.tracks([i for i, _ in pairs])}
        for i, score in pairs:
            if len(self.kept) >= k:
                return
            if i in tracks:
                self.offer(tracks[i], score)


def load_index(lib: Library, model: str = "default") -> VectorIndex:
    """The search index of ``model`` (``default``, ``descriptor``, a family, a model id, a fused key, a file)."""
    if model != DESCRIPTOR_MODEL:
        from soundalike.models.embedding import resolve_model

        model = resolve_model(lib, model)
    return VectorIndex.from_library(lib, model)


DISTANCES = ("cosine", "mean", "minpoint", "frechet", "dtw")
"""``cosine`` between pooled vectors, or a sequence distance of seed 002 §3.3.1 (and DTW, §4.2) used to re-rank."""


def _sequences(lib: Library, index: VectorIndex, q: Query, ids: Sequence[int]) -> tuple[np.ndarray, list[int],
                                                                                          list[np.ndarray]]:
    """The query's and the candidates' segment sequences, z-scored like the pooled vectors."""
    part = index.embedding.parts[0]
    if len(index.embedding.parts) != 1 or part.model == DESCRIPTOR_MODEL:
        raise QueryError(f"sequence distances compare segment embeddings; {index.embedding.model!r} has none "
                         "(use a learned model: --model NAME)")
    query_seq = lib.segments(q.track.id, part.model) if q.track is not None else q.sequence
    if query_seq is None:
        raise QueryError(f"the query has no {part.model!r} segment sequence; run `soundalike index` again")
    kept, seqs = [], []
    for tid in ids:
        seq = lib.segments(int(tid), part.model)
        if seq is not None and len(seq):
            kept.append(int(tid))
            seqs.append((seq - part.mean) / part.std)
    return (query_seq - part.mean) / part.std, kept, seqs


def similar(lib: Library, query: str | Query, k: int = 10, *, model: str = "default",
            index: VectorIndex | None = None, filters: Filters | None = None, distance: str = "cosine",
            candidates: int = 200) -> tuple[Query, list[Recommendation]]:
    """The ``k`` tracks that sound most like ``query``, best first, without the query or its duplicates.

    With a sequence ``distance`` the ``candidates`` nearest tracks by pooled cosine are re-ranked by that distance
    between segment sequences (the score is then 1 - distance, with cosine distance between segments)."""
    if distance not in DISTANCES:
        raise QueryError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")
    index = index or load_index(lib, model)
    q = query if isinstance(query, Query) else resolve_query(lib, index, query)
    seeds = [q.track] if q.track is not None else []
    selector = _Selector(lib, index, seeds, q.vector, filters or Filters(), q.exclude)
    if distance != "cosine":
        from soundalike.search.distances import sequence_distances

        pool_ids, _ = index.search(q.vector, max(candidates, k), exclude=selector.exclude)
        query_seq, kept, seqs = _sequences(lib, index, q, pool_ids.tolist())
        dist = sequence_distances(query_seq, seqs, distance) if seqs else np.zeros(0)
        order = np.argsort(dist, kind="stable")
        selector.take([kept[i] for i in order], [1.0 - float(dist[i]) for i in order], k)
        by_id = {kept[i]: float(dist[i]) for i in order}
        for r in selector.kept:
            r.distance = by_id.get(r.track.id)
        return q, selector.kept
    fetch = k + 8
    while True:
        ids, scores = index.search(q.vector, fetch, exclude=selector.exclude)
        selector.take(ids, scores, k)
        if len(selector.kept) >= k or len(ids) < fetch:
            return q, selector.kept
        fetch *= 4  # the filters refused many candidates: look further down the ranking


@dataclass
class PlaylistQuery:
    """A playlist resolved against the library: its tracks' queries and the entries that could not be used."""

    source: str
    queries: list[Query]
    skipped: list[str] = field(default_factory=list)  # "entry: reason" lines

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description."""
        return {"playlist": self.source, "tracks": [q.to_dict() for q in self.queries], "skipped": self.skipped}


def resolve_playlist(lib: Library, index: VectorIndex, entries: Sequence[object], source: str = "") -> PlaylistQuery:
    """Resolve playlist entries (:class:`soundalike.playlists.Entry`, ids or texts); outside audio files are
    analysed on the fly. Entries that name nothing usable are listed in ``skipped`` with the reason."""
    from .playlists import Entry

    queries: list[Query] = []
    skipped: list[str] = []
    seen: set[int] = set()
    for entry in entries:
        e = entry if isinstance(entry, Entry) else Entry(str(entry))
        text = str(e.track_id) if e.track_id is not None else (e.path or e.text)
        try:
            q = resolve_query(lib, index, text)
        except QueryError as exc:
            skipped.append(f"{e.text}: {exc}")
            continue
        if q.track is not None:
            if q.track.id in seen:
                skipped.append(f"{e.text}: listed twice (kept once)")
                continue
            seen.add(q.track.id)
        queries.append(q)
    if not queries:
        reasons = "; ".join(skipped[:3]) or "it is empty"
        raise QueryError(f"{source or 'the playlist'}: no usable track ({reasons})")
    return PlaylistQuery(source, queries, skipped)


def continue_playlist(lib: Library, playlist: str | os.PathLike[str] | Sequence[object], k: int = 10, *,
                      score: str = "max", model: str = "default", index: VectorIndex | None = None,
                      filters: Filters | None = None) -> tuple[PlaylistQuery, list[Recommendation]]:
    """The ``k`` library tracks that best continue ``playlist`` (a playlist file, or a list of entries) by seed
    000's score functions (eq. 1: ``max``, ``mean``, ``topk``; §5.4: ``cluster``), without the playlist's tracks."""
    from .playlists import read_playlist
    from .scoring import ScoreError, score_method

    index = index or load_index(lib, model)
    if isinstance(playlist, str | os.PathLike):
        source = str(playlist)
        try:
            entries: Sequence[object] = read_playlist(playlist)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
    else:
        source, entries = "playlist", playlist
    pq = resolve_playlist(lib, index, entries, source)
    seeds = np.vstack([q.vector for q in pq.queries])
    try:
        method = score_method(score)
    except ScoreError as exc:
        raise QueryError(str(exc)) from None
    scores = method(seeds, index.vectors)
    exclude: set[int] = set().union(*(q.exclude for q in pq.queries))
    tracks = [q.track for q in pq.queries if q.track is not None]
    selector = _Selector(lib, index, tracks, seeds, filters or Filters(), exclude)
    order = np.argsort(-scores, kind="stable")
    for start in range(0, len(order), 4 * k + 32):  # in slices: the filters may refuse many
        chunk = order[start:start + 4 * k + 32]
        selector.take(index.ids[chunk], scores[chunk], k)
        if len(selector.kept) >= k:
            break
    return pq, selector.kept


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The unit vector a fraction ``t`` of the way from ``a`` to ``b`` along the great circle."""
    omega = float(np.arccos(np.clip(a @ b, -1.0, 1.0)))
    v = a if omega < 1e-6 else (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def path_between(lib: Library, start: str, end: str, n: int = 10, *, model: str = "default",
                 index: VectorIndex | None = None, filters: Filters | None = None
                 ) -> tuple[Query, Query, list[Recommendation]]:
    """A smooth sequence of ``n`` distinct tracks from ``start`` to ``end`` (both included): waypoints evenly
    spaced on the great circle between their vectors, each filled by the nearest unused track."""
    if n < 2:
        raise QueryError("a path has at least 2 tracks (the start and the end)")
    index = index or load_index(lib, model)
    a, b = resolve_query(lib, index, start), resolve_query(lib, index, end)
    if a.track is None or b.track is None:
        raise QueryError("a path runs between library tracks: index the file first, or give a track id")
    if a.track.id == b.track.id:
        raise QueryError(f"the start and the end are the same track ({a.track.label})")
    ends = [a.track, b.track]
    selector = _Selector(lib, index, ends, np.vstack([a.vector, b.vector]), filters or Filters(),
                         a.exclude | b.exclude)
    for i in range(1, n - 1):
        target = _slerp(a.vector, b.vector, i / (n - 1))
        before = len(selector.kept)
        fetch = 32
        while len(selector.kept) == before:
            ids, scores = index.search(target, fetch, exclude=selector.exclude)
            selector.take(ids, scores, before + 1)
            if len(ids) < fetch:
                break
            fetch *= 4
        if len(selector.kept) == before:
            break  # the library has no more allowed tracks
    middle = selector.kept
    first = Recommendation(a.track, 1.0)
    last = Recommendation(b.track, float(a.vector @ b.vector))
    return a, b, [first, *middle, last]
