"""A whole Subsonic app session, driven by a real OpenSubsonic client library (py-opensonic) against a real
``soundalike serve`` (uvicorn on loopback, with a token): browse artist -> album -> song, genres and lists,
search, stream with a byte range, cover art, playlists (still there after a restart), sonic similarity and paths,
stars, scrobbles -> top songs, now playing; and the token as password, hex password and API key."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from soundalike.app.server.run import background_server
from soundalike.library.catalog import Library

libopensonic = pytest.importorskip("libopensonic")
errors = libopensonic.errors

TOKEN = "opensonic-session-token"
T = TypeVar("T")


def _session(url: str, work: Callable[[Any], Awaitable[T]], **auth: Any) -> T:
    """Run ``work(connection)`` with a py-opensonic connection to the server at ``url`` (POST forms, ``.view``)."""
    parts = urlsplit(url)

    async def run() -> T:
        if "api_key" not in auth:
            auth.setdefault("username", "listener")
            auth.setdefault("password", TOKEN)
        conn = libopensonic.AsyncConnection(f"{parts.scheme}://{parts.hostname}", port=parts.port,
                                            app_name="soundalike-test", **auth)
        try:
            return await work(conn)
        finally:
            await conn.cleanup()

    return asyncio.run(run())


async def _browse_and_play(conn: Any, root: Path) -> dict[str, Any]:
    from PIL import Image

    assert await conn.ping()
    assert (await conn.get_license())["license"]["valid"] is True
    assert {e.name for e in await conn.get_open_subsonic_extensions()} >= {"sonicSimilarity", "apiKeyAuthentication"}
    # (get_music_folders is not called: py-opensonic 10.4.1 reads musicFolders as a list, where the Subsonic schema
    # and other servers nest it as musicFolders.musicFolder; test_subsonic.py checks ours.)
    # Browse artist -> album -> song.
    artists = await conn.get_artists()
    by_name = {a.name: a for index in artists.index for a in index.artist}
    assert {"The Techno Machines", "Kick Drum Collective", "Slow Horizons", "The Glass Clouds"} <= set(by_name)
    artist = await conn.get_artist(by_name["The Techno Machines"].id)
    assert [a.name for a in artist.album] == ["Warehouse Techno"]
    album = await conn.get_album(artist.album[0].id)
    assert album.song_count == 2 and [s.track for s in album.song] == [1, 3]
    assert [s.title for s in album.song] == ["Hard Loop", "Binary Code"]
    song = await conn.get_song(album.song[0].id)
    assert (song.title, song.artist, song.genre, song.album_id) == ("Hard Loop", "The Techno Machines", "Techno",
                                                                    album.id)
    folders = await conn.get_indexes()
    assert {a.name for i in folders.index for a in i.artist} == set(by_name)
    # Genres, lists, search.
    assert {(g.value, g.song_count) for g in await conn.get_genres()} == {("Techno", 3), ("Ambient", 3)}
    assert len(await conn.get_songs_by_genre("Ambient", count=10)) == 3
    newest = await conn.get_album_list2("newest", size=10)
    assert len(newest) == 4
    assert len(await conn.get_random_songs(size=4)) == 4
    found = await conn.search3("binary")
    assert {s.title for s in found.song} == {"Binary Code", "Binary Reactor"}
    # Stream with a byte range: exactly those bytes of the file.
    path = root / "music" / "techno" / "01 Hard Loop.wav"
    stream = await conn.stream(song.id, byte_range="bytes=100-1099")
    assert stream.status == 206 and stream.headers["Content-Range"] == f"bytes 100-1099/{path.stat().st_size}"
    assert await stream.read() == path.read_bytes()[100:1100]
    download = await conn.download(song.id)
    assert await download.read() == path.read_bytes()
    # Cover art: embedded (the techno album), scaled; a folder.jpg (ambient); none (404).
    cover = await conn.get_cover_art(album.cover_art, size=32)
    image = Image.open(io.BytesIO(await cover.read()))
    assert image.size == (32, 32) and image.getpixel((16, 16))[0] > 150  # the red embedded front cover
    ambient = await conn.get_album((await conn.get_artist(by_name["Slow Horizons"].id)).album[0].id)
    folder_art = Image.open(io.BytesIO(await (await conn.get_cover_art(ambient.song[0].cover_art)).read()))
    assert folder_art.size == (96, 96) and folder_art.getpixel((48, 48))[2] > 150  # the blue folder.jpg
    nights = (await conn.get_artist(by_name["Kick Drum Collective"].id)).album[0]
    with pytest.raises(Exception, match="404"):
        await conn.get_cover_art(nights.cover_art)
    # Sonic similarity and paths.
    matches = await conn.get_sonic_similar_tracks(song.id, count=3)
    assert len(matches) == 3 and song.id not in [m.entry.id for m in matches]
    assert all(0.0 <= m.similarity <= 1.0 for m in matches)
    ends = (song.id, ambient.song[0].id)
    sonic_path = await conn.find_sonic_path(*ends, count=4)
    assert [m.entry.id for m in sonic_path][::3] == list(ends)
    similar = await conn.get_similar_songs2(by_name["Slow Horizons"].id, count=3)
    assert len(similar) == 3 and not {s.id for s in similar} & {s.id for s in ambient.song}
    info = await conn.get_artist_info2(by_name["Slow Horizons"].id, count=2)
    assert len(info.similar_artist) == 2 and "Slow Horizons" not in {a.name for a in info.similar_artist}
    # Playlists.
    assert await conn.create_playlist(name="Session mix", song_ids=[song.id, ambient.song[0].id])
    mix = next(p for p in await conn.get_playlists() if p.name == "Session mix")
    assert await conn.update_playlist(mix.id, name="Session mix 2", song_ids_to_add=[found.song[0].id],
                                      song_indices_to_remove=[0])
    mix = await conn.get_playlist(mix.id)
    assert mix.name == "Session mix 2" and [e.id for e in mix.entry] == [ambient.song[0].id, found.song[0].id]
    assert await conn.create_playlist(playlist_id=mix.id, song_ids=[song.id, song.id])
    assert [e.id for e in (await conn.get_playlist(mix.id)).entry] == [song.id, song.id]
    doomed = await conn.create_playlist(name="Gone soon") and next(
        p for p in await conn.get_playlists() if p.name == "Gone soon")
    assert await conn.delete_playlist(doomed.id)
    with pytest.raises(errors.DataNotFoundError):
        await conn.get_playlist(doomed.id)
    # Stars.
    assert await conn.star(sids=[song.id], album_ids=[ambient.id], artist_ids=[by_name["Slow Horizons"].id])
    starred = await conn.get_starred2()
    assert [s.id for s in starred.song] == [song.id] and [a.id for a in starred.album] == [ambient.id]
    assert [a.name for a in starred.artist] == ["Slow Horizons"]
    assert (await conn.get_song(song.id)).starred
    assert [a.id for a in await conn.get_album_list2("starred")] == [ambient.id]
    assert await conn.unstar(sids=[song.id])
    assert not (await conn.get_starred2()).song
    # Scrobbles -> top songs and most played albums; now playing.
    for _ in range(3):
        assert await conn.scrobble(album.song[1].id)
    assert await conn.scrobble(album.song[0].id)
    top = await conn.get_top_songs("The Techno Machines", count=5)
    assert [s.id for s in top] == [album.song[1].id, album.song[0].id] and top[0].play_count >= 3
    assert (await conn.get_album_list2("frequent"))[0].id == album.id
    assert await conn.scrobble(ambient.song[0].id, submission=False)
    now = await conn.get_now_playing()
    assert [(n.id, n.username) for n in now] == [(ambient.song[0].id, "listener")]
    return {"playlist": mix.id, "song": song.id, "album": album.id}


def test_a_subsonic_app_session_with_py_opensonic(subsonic_root: Path) -> None:
    with background_server(subsonic_root / "lib", "--token", TOKEN) as server:
        seen = _session(server.url, lambda conn: _browse_and_play(conn, subsonic_root))

        async def other_auth(conn: Any) -> bool:
            return bool(await conn.ping())

        assert _session(server.url, other_auth, legacy_auth=True)  # p=enc:HEX
        assert _session(server.url, other_auth, api_key=TOKEN, username=None, password=None)
        with pytest.raises(errors.CredentialError):
            _session(server.url, other_auth, password="not-the-token")
        with pytest.raises(errors.SonicError):
            _session(server.url, other_auth, api_key="wrong", username=None, password=None)
    # The playlist and the plays live in the catalogue: another server on the same library has them.
    with Library.open(subsonic_root / "lib") as lib:
        assert lib.playlists.get(int(seen["playlist"])) is not None
    with background_server(subsonic_root / "lib", "--token", TOKEN) as server:
        async def after_restart(conn: Any) -> None:
            playlist = await conn.get_playlist(seen["playlist"])
            assert playlist.name == "Session mix 2" and [e.id for e in playlist.entry] == [seen["song"]] * 2
            assert (await conn.get_album_list2("frequent"))[0].id == seen["album"]
            assert (await conn.get_album(seen["album"])).id == seen["album"]  # the same ids after a restart

        _session(server.url, after_restart)
