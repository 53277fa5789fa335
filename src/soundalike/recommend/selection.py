"""What may be answered: the result filters and the one selector that applies them to ranked candidates.

Results never include the query (or a playlist's tracks) nor their duplicates — the same audio in another encode
(cosine >= :data:`DUPLICATE_SIMILARITY`), or unless ``skip_duplicates=False`` another version of a recording
already chosen (normalised artist + title, version notes dropped) — and obey :class:`Filters`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from soundalike.library.catalog import Library, Track, fold
from soundalike.search.index import VectorIndex

# Cosine similarity at or above this is the same recording (another encode, a copy with different silence...).
DUPLICATE_SIMILARITY = 0.9999


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


@dataclass(frozen=True)
class Filters:
    """What results may not be, beyond the query and its duplicates (which are never returned)."""

    exclude_artists: bool = False  # no track by an artist of the query / the playlist
    exclude_albums: bool = False  # no track from an album of the query / the playlist
    max_per_artist: int | None = None  # at most this many results by one artist
    max_per_album: int | None = None  # at most this many results from one album
    skip_duplicates: bool = True  # skip other versions of a recording already in (same artist + title, or ~0 distance)

    @classmethod
    def from_options(cls, no_same_artist: bool = False, no_same_album: bool = False,
                     max_per_artist: int | None = None, max_per_album: int | None = None,
                     keep_duplicates: bool = False) -> Filters:
        """The filters from the names the command line and the API give them (``--no-same-artist``...)."""
        return cls(exclude_artists=no_same_artist, exclude_albums=no_same_album, max_per_artist=max_per_artist,
                   max_per_album=max_per_album, skip_duplicates=not keep_duplicates)


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


class Selector:
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

    def offer(self, track: Track, score: float, vector: np.ndarray | None = None) -> bool:
        """Keep ``track`` if allowed; returns whether it was kept. ``vector``: its search vector, if known (else
        taken from the index)."""
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
        if vector is None:
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
        """Offer candidates in ranked order until ``k`` results are kept (looked up in slices: the tags and the
        vectors of a slice in one call each, so a compact index decodes them in one batch, not one by one). The first
        slice holds about twice the results still wanted, and each next one twice the last: most answers need one
        slice, and a filter that refuses many candidates costs a few more (a first slice of 4 k + 32 read the tags
        of ~60 tracks for each waypoint of a path, of which one was kept)."""
        pairs = [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if int(i) not in self.exclude]
        step = 2 * max(0, k - len(self.kept)) + 8
        start = 0
        while start < len(pairs):
            if len(self.kept) >= k:
                return
            chunk = pairs[start:start + step]
            start, step = start + step, 2 * step
            tracks = {t.id: t for t in self.lib.tracks([i for i, _ in chunk])}
            listed = [i for i, _ in chunk if i in tracks]
            usable = [i for i, ok in zip(listed, self.index.has(listed), strict=True) if ok] if listed else []
            vectors = dict(zip(usable, self.index.vectors_of(usable), strict=True)) if usable else {}
            for i, score in chunk:
                if len(self.kept) >= k:
                    return
                if i in tracks:
                    self.offer(tracks[i], score, vectors.get(i))
