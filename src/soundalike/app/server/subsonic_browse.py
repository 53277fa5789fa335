"""Subsonic browsing, lists, search and recommendations: artists, albums, songs, genres, random and similar songs.

Browsing by tags (``getArtists``, ``getArtist``, ``getAlbum``) and by folders (``getIndexes``,
``getMusicDirectory``: artist folders holding album folders) show the same :mod:`.subsonic_model` view. Search uses
the catalogue's one search (:meth:`~soundalike.library.catalog.Library.search`, every word, accents and case
folded); similar songs come from :func:`soundalike.recommend.similar` and
:func:`soundalike.recommend.continue_playlist`, the command line's ``similar`` and ``continue``.
"""

from __future__ import annotations

import random
from typing import Any

from soundalike.library.catalog import Track, fold, search_words
from soundalike.recommend import continue_playlist, similar

from . import subsonic_model as model
from .subsonic_model import Album, Browse, Marks, browse
from .subsonic_protocol import Call, SubsonicError, endpoint, missing

MAX_LIST = 500


def _songs(call: Call, b: Browse, tracks: list[Track], marks: Marks | None = None) -> list[dict[str, Any]]:
    marks = marks or Marks.read(call)
    return [model.song(call, b, t, marks) for t in tracks]


@endpoint("getMusicFolders", "The music folders (one: the library)")
def get_music_folders(call: Call) -> dict[str, Any]:
    """One folder, id 1, the whole library."""
    return {"musicFolders": {"musicFolder": [{"id": model.FOLDER_ID, "name": "Music"}]}}


@endpoint("getIndexes", "Artists by index letter (folder browsing)")
def get_indexes(call: Call) -> dict[str, Any]:
    """Every artist under its letter, with ``lastModified`` (ms) and the ignored articles."""
    b, marks = browse(call), Marks.read(call)
    changed = max((t.added_at for t in b.tracks.values()), default=0.0)
    return {"indexes": {"lastModified": int(changed * 1000), "ignoredArticles": model.IGNORED_ARTICLES,
                        "index": model.indexed_artists(b, marks)}}


@endpoint("getArtists", "Artists by index letter (tag browsing)")
def get_artists(call: Call) -> dict[str, Any]:
    """Every artist (album artists and track artists) under its index letter."""
    b, marks = browse(call), Marks.read(call)
    return {"artists": {"ignoredArticles": model.IGNORED_ARTICLES, "index": model.indexed_artists(b, marks)}}


@endpoint("getArtist", "One artist with its albums")
def get_artist(call: Call) -> dict[str, Any]:
    """``id``: an artist id; the artist and its albums (newest year first)."""
    b, marks = browse(call), Marks.read(call)
    a = b.artist(call.params.required("id"))
    return {"artist": {**model.artist(b, a, marks), "album": [model.album(b, b.albums[k], marks)
                                                              for k in a.album_ids]}}


@endpoint("getAlbum", "One album with its songs")
def get_album(call: Call) -> dict[str, Any]:
    """``id``: an album id; the album and its songs (by disc, track number, title)."""
    b, marks = browse(call), Marks.read(call)
    a = b.album(call.params.required("id"))
    return {"album": {**model.album(b, a, marks), "song": _songs(call, b, [b.tracks[i] for i in a.track_ids],
                                                                 marks)}}


@endpoint("getMusicDirectory", "A folder: an artist's albums or an album's songs")
def get_music_directory(call: Call) -> dict[str, Any]:
    """``id``: an artist id (its albums as folders) or an album id (its songs)."""
    b, marks = browse(call), Marks.read(call)
    raw = call.params.required("id")
    if raw.startswith("al-"):
        a = b.album(raw)
        return {"directory": {"id": a.id, "parent": a.artist_id, "name": a.name,
                              "starred": marks.starred("album", a.id),
                              "child": _songs(call, b, [b.tracks[i] for i in a.track_ids], marks)}}
    artist = b.artist(raw)
    return {"directory": {"id": artist.id, "parent": str(model.FOLDER_ID), "name": artist.name,
                          "starred": marks.starred("artist", artist.id),
                          "child": [model.album_dir(b, b.albums[k], marks) for k in artist.album_ids]}}


@endpoint("getSong", "One song by id")
def get_song(call: Call) -> dict[str, Any]:
    """``id``: a song id."""
    b = browse(call)
    return {"song": _songs(call, b, [b.track(call.params.required("id"))])[0]}


def _years(call: Call, required: bool) -> tuple[int, int] | None:
    p = call.params
    if not required and p.get("fromYear") in (None, "") and p.get("toYear") in (None, ""):
        return None
    if required:
        p.required("fromYear"), p.required("toYear")
    return (p.integer("fromYear", 0, lo=0, hi=9999), p.integer("toYear", 9999, lo=0, hi=9999))


def _in_years(year: int, years: tuple[int, int] | None) -> bool:
    if years is None:
        return True
    lo, hi = sorted(years)
    return lo <= year <= hi


def album_list(call: Call) -> list[Album]:
    """The albums of ``getAlbumList``/``getAlbumList2``: ``type`` (random, newest, alphabeticalByName,
    alphabeticalByArtist, byGenre, byYear, frequent, recent, starred, highest) with ``size`` and ``offset``."""
    p = call.params
    kind = p.required("type")
    size, offset = p.integer("size", 10, lo=1, hi=MAX_LIST), p.integer("offset", 0, lo=0, hi=10**9)
    b, marks = browse(call), Marks.read(call)
    albums = list(b.albums.values())
    if kind == "random":
        return random.sample(albums, min(size, len(albums)))
    if kind == "newest":
        albums.sort(key=lambda a: (-a.created, a.id))
    elif kind == "alphabeticalByName":
        albums.sort(key=lambda a: (model.sort_name(a.name), model.sort_name(a.artist), a.id))
    elif kind == "alphabeticalByArtist":
        albums.sort(key=lambda a: (model.sort_name(a.artist), model.sort_name(a.name), a.id))
    elif kind == "byGenre":
        genre = fold(p.required("genre"))
        albums = sorted((a for a in albums if any(fold(b.tracks[i].genre) == genre for i in a.track_ids)),
                        key=lambda a: (model.sort_name(a.name), a.id))
    elif kind == "byYear":
        years = _years(call, True)
        assert years is not None
        albums = sorted((a for a in albums if _in_years(a.year, years)),
                        key=lambda a: (a.year if years[0] <= years[1] else -a.year, model.sort_name(a.name), a.id))
    elif kind in ("frequent", "highest", "recent"):
        played = {a.id: marks.album_plays(a) for a in albums}
        position = 0 if kind != "recent" else 1
        albums = sorted((a for a in albums if played[a.id][0] > 0),
                        key=lambda a: (-played[a.id][position], -played[a.id][1 - position], a.id))
    elif kind == "starred":
        stars = marks.stars["album"]
        albums = sorted((a for a in albums if a.id in stars), key=lambda a: (-stars[a.id], a.id))
    else:
        raise SubsonicError(0, f"unknown list type {kind[:40]!r}")
    return albums[offset:offset + size]


@endpoint("getAlbumList2", "Lists of albums (newest, random, by name, by genre, most played...)")
def get_album_list2(call: Call) -> dict[str, Any]:
    """See :func:`album_list`."""
    albums = album_list(call)
    b, marks = browse(call), Marks.read(call)
    return {"albumList2": {"album": [model.album(b, a, marks) for a in albums]}}


@endpoint("getAlbumList", "Lists of albums as folders")
def get_album_list(call: Call) -> dict[str, Any]:
    """See :func:`album_list`; albums as folder entries."""
    albums = album_list(call)
    b, marks = browse(call), Marks.read(call)
    return {"albumList": {"album": [model.album_dir(b, a, marks) for a in albums]}}


@endpoint("getGenres", "Genres with song and album counts")
def get_genres(call: Call) -> dict[str, Any]:
    """Every genre tag, with how many songs and albums have it, by name."""
    b = browse(call)
    songs: dict[str, int] = {}
    albums: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for track in b.tracks.values():
        if track.genre:
            key = fold(track.genre)
            names.setdefault(key, track.genre)
            songs[key] = songs.get(key, 0) + 1
            albums.setdefault(key, set()).add(b.album_of[track.id])
    return {"genres": {"genre": [{"value": names[k], "songCount": songs[k], "albumCount": len(albums[k])}
                                 for k in sorted(names)]}}


def _sorted_tracks(b: Browse) -> list[Track]:
    """Every song by album artist, album, disc, track number and title."""
    return [b.tracks[i] for i in b.ordered]


@endpoint("getSongsByGenre", "Songs of a genre")
def get_songs_by_genre(call: Call) -> dict[str, Any]:
    """``genre`` (required), ``count`` (10, at most 500), ``offset``."""
    p = call.params
    genre = fold(p.required("genre"))
    count, offset = p.integer("count", 10, lo=1, hi=MAX_LIST), p.integer("offset", 0, lo=0, hi=10**9)
    b = browse(call)
    tracks = [t for t in _sorted_tracks(b) if fold(t.genre) == genre][offset:offset + count]
    return {"songsByGenre": {"song": _songs(call, b, tracks)}}


@endpoint("getRandomSongs", "Random songs")
def get_random_songs(call: Call) -> dict[str, Any]:
    """``size`` (10, at most 500), optional ``genre``, ``fromYear``, ``toYear``."""
    p = call.params
    size = p.integer("size", 10, lo=1, hi=MAX_LIST)
    genre, years = p.get("genre"), _years(call, False)
    b = browse(call)
    pool = [t for t in b.tracks.values() if (not genre or fold(t.genre) == fold(genre)) and _in_years(t.year, years)]
    return {"randomSongs": {"song": _songs(call, b, random.sample(pool, min(size, len(pool))))}}


def _query_text(raw: str) -> str:
    """A search text without the quotes and wildcards some clients add (``""`` and ``*`` mean everything)."""
    return raw.strip().strip('"').replace("*", " ").strip()


def _matches(name: str, words: list[str]) -> bool:
    folded = fold(name)
    return all(w in folded for w in words)


def search(call: Call) -> tuple[list[model.Artist], list[Album], list[Track]]:
    """``search2``/``search3``: artists, albums and songs matching every word of ``query`` (an empty query lists
    everything, as clients that sync the whole library ask), each with its own count (20) and offset."""
    p = call.params
    raw = p.get("query")
    if raw is None:
        raise missing("query")
    text = _query_text(raw)
    words = search_words(text)
    b = browse(call)
    counts = {k: (p.integer(f"{k}Count", 20, lo=0, hi=MAX_LIST), p.integer(f"{k}Offset", 0, lo=0, hi=10**9))
              for k in ("artist", "album", "song")}
    artists = sorted((a for a in b.artists.values() if _matches(a.name, words)),
                     key=lambda a: (model.sort_name(a.name), a.id))
    albums = sorted((a for a in b.albums.values() if _matches(a.name + "\n" + a.artist, words)),
                    key=lambda a: (model.sort_name(a.name), a.id))
    count, offset = counts["song"]
    if not words:
        tracks = [b.tracks[i] for i in b.ordered[offset:offset + count]]
    else:
        tracks = [t for t in call.server.state.lib().search(text, limit=count, offset=offset) if t.id in b.tracks]
        tracks = [b.tracks[t.id] for t in tracks]
    (na, oa), (nb, ob) = counts["artist"], counts["album"]
    return artists[oa:oa + na], albums[ob:ob + nb], tracks


@endpoint("search3", "Search artists, albums and songs")
def search3(call: Call) -> dict[str, Any]:
    """See :func:`search`."""
    artists, albums, tracks = search(call)
    b, marks = browse(call), Marks.read(call)
    return {"searchResult3": {"artist": [model.artist(b, a, marks) for a in artists],
                              "album": [model.album(b, a, marks) for a in albums],
                              "song": _songs(call, b, tracks, marks)}}


@endpoint("search2", "Search artists, albums and songs (folders)")
def search2(call: Call) -> dict[str, Any]:
    """See :func:`search`; albums as folder entries."""
    artists, albums, tracks = search(call)
    b, marks = browse(call), Marks.read(call)
    return {"searchResult2": {"artist": [{"id": a.id, "name": a.name} for a in artists],
                              "album": [model.album_dir(b, a, marks) for a in albums],
                              "song": _songs(call, b, tracks, marks)}}


def similar_tracks(call: Call, raw: str, count: int) -> list[Track]:
    """Songs that sound like what ``raw`` names (a song, an album or an artist), never those songs themselves:
    one song's nearest neighbours, or the continuation of an album's or artist's songs."""
    b = browse(call)
    seeds = b.tracks_of(raw)
    if not seeds:
        return []
    server = call.server
    lib = server.state.lib()
    if len(seeds) == 1:
        _, results = similar(lib, str(seeds[0].id), count, indexes=server.state.index)
    else:
        _, results = continue_playlist(lib, [t.id for t in seeds[:200]], count, indexes=server.state.index)
    return [b.tracks[r.track.id] for r in results if r.track.id in b.tracks]


@endpoint("getSimilarSongs2", "Songs that sound like a song, album or artist")
def get_similar_songs2(call: Call) -> dict[str, Any]:
    """``id`` (a song, album or artist id), ``count`` (50, at most 500): by the sound, from the embeddings."""
    p = call.params
    tracks = similar_tracks(call, p.required("id"), p.integer("count", 50, lo=1, hi=MAX_LIST))
    return {"similarSongs2": {"song": _songs(call, browse(call), tracks)}}


@endpoint("getSimilarSongs", "Songs that sound like a song, album or artist (folders)")
def get_similar_songs(call: Call) -> dict[str, Any]:
    """As ``getSimilarSongs2``."""
    p = call.params
    tracks = similar_tracks(call, p.required("id"), p.integer("count", 50, lo=1, hi=MAX_LIST))
    return {"similarSongs": {"song": _songs(call, browse(call), tracks)}}


def _artist_info(call: Call) -> dict[str, Any]:
    """Artists whose songs sound like this artist's (from the songs that best continue the artist's songs)."""
    p = call.params
    b = browse(call)
    a = b.artist(p.required("id"))
    count = p.integer("count", 20, lo=0, hi=100)
    marks = Marks.read(call)
    similar_ids: list[str] = []
    if count:
        for track in similar_tracks(call, a.id, 10 * count + 10):
            other = b.artists.get(model.artist_id(track.album_artist or track.artist or model.UNKNOWN_ARTIST))
            if other is not None and other.id != a.id and other.id not in similar_ids:
                similar_ids.append(other.id)
    return {"similarArtist": [model.artist(b, b.artists[i], marks) for i in similar_ids[:count]]}


@endpoint("getArtistInfo2", "Artists that sound alike")
def get_artist_info2(call: Call) -> dict[str, Any]:
    """``id`` (an artist id), ``count`` (20): no biography or images; ``similarArtist`` from the sound."""
    return {"artistInfo2": _artist_info(call)}


@endpoint("getArtistInfo", "Artists that sound alike (folders)")
def get_artist_info(call: Call) -> dict[str, Any]:
    """As ``getArtistInfo2``."""
    return {"artistInfo": _artist_info(call)}


@endpoint("getAlbumInfo2", "Album notes (none)")
def get_album_info2(call: Call) -> dict[str, Any]:
    """``id`` (an album id): no notes or images are known."""
    browse(call).album(call.params.required("id"))
    return {"albumInfo": {}}


@endpoint("getAlbumInfo", "Album notes (none; folders)")
def get_album_info(call: Call) -> dict[str, Any]:
    """As ``getAlbumInfo2``."""
    return get_album_info2(call)  # type: ignore[return-value]


@endpoint("getTopSongs", "An artist's most played songs")
def get_top_songs(call: Call) -> dict[str, Any]:
    """``artist`` (a name), ``count`` (50): the artist's songs by play count (then last played, title)."""
    p = call.params
    name = fold(p.required("artist"))
    count = p.integer("count", 50, lo=1, hi=MAX_LIST)
    b, marks = browse(call), Marks.read(call)
    own = [t for t in b.tracks.values() if name in (fold(t.artist), fold(t.album_artist))]
    own.sort(key=lambda t: (-marks.plays.get(t.id, (0, 0.0))[0], -marks.plays.get(t.id, (0, 0.0))[1],
                            fold(t.title), t.id))
    return {"topSongs": {"song": _songs(call, b, own[:count], marks)}}
