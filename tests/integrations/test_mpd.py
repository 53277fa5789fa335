"""The MPD companion against a real MPD (Debian's ``mpd``, null output) playing the synthetic ``styled`` library: the
queue and stored playlists get exactly what ``soundalike similar`` / ``soundalike continue`` answer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli
from soundalike.integrations.mpd import MpdAddress, MpdError, PathMap, mpd_address

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def uris(client: Any) -> list[str]:
    """The files of MPD's queue, in order."""
    return [song["file"] for song in client.playlistinfo()]


def songs(client: Any) -> list[str]:
    """Every song of MPD's database, sorted."""
    return sorted(entry["file"] for entry in client.listall() if "file" in entry)


def answer(styled: Path, command: str, query: str, k: int, *options: str) -> list[str]:
    """The MPD URIs of what ``soundalike COMMAND QUERY -k K --format json`` answers on the styled library."""
    code, out, err = run_cli(command, query, "-k", str(k), "--format", "json", "--library", str(styled / "lib"),
                             *options)
    assert code == 0, err
    return [os.path.relpath(r["path"], styled / "music") for r in json.loads(out)["results"]]


def play_paused(client: Any) -> None:
    """Make the queue's first song current, paused (so no song ends and moves on while a test runs)."""
    client.play(0)
    client.pause(1)


def upcoming(client: Any) -> int:
    """How many songs follow the current one."""
    status = client.status()
    return int(status["playlistlength"]) - int(status.get("song", -1)) - 1


@pytest.fixture
def tcp(mpd_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """MPD_HOST / MPD_PORT name the test MPD's TCP address."""
    for key, value in mpd_server.tcp_env.items():
        monkeypatch.setenv(key, value)


def test_queue_appends_what_similar_answers(styled: Path, mpd_client: Any, tcp: None) -> None:
    first = songs(mpd_client)[0]
    mpd_client.add(first)
    play_paused(mpd_client)
    code, out, err = run_cli("mpd", "queue", "-k", "3", "--library", str(styled / "lib"), "--music-dir",
                             str(styled / "music"))
    assert code == 0, err
    expected = answer(styled, "similar", str(styled / "music" / first), 3)
    assert uris(mpd_client) == [first, *expected]
    assert out.count("queued ") == 3
    # again: three more, none of those already queued (what similar answers once the queue is left out)
    code, _, err = run_cli("mpd", "queue", "-k", "3", "--library", str(styled / "lib"), "--music-dir",
                           str(styled / "music"))
    assert code == 0, err
    queue = uris(mpd_client)
    assert len(queue) == 7 and len(set(queue)) == 7
    assert queue[4:] == answer(styled, "similar", str(styled / "music" / first), 6)[3:]


def test_queue_over_the_local_socket_asks_mpd_for_its_music_directory(styled: Path, mpd_server: Any,
                                                                       mpd_client: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPD_HOST", str(mpd_server.socket))
    monkeypatch.delenv("MPD_PORT", raising=False)
    first = songs(mpd_client)[7]
    mpd_client.add(first)
    play_paused(mpd_client)
    code, _, err = run_cli("mpd", "queue", "-k", "2", "--no-same-album", "--library", str(styled / "lib"))
    assert code == 0, err
    assert uris(mpd_client) == [first, *answer(styled, "similar", str(styled / "music" / first), 2,
                                               "--no-same-album")]


def test_the_music_directory_is_found_from_the_queue_over_tcp(styled: Path, mpd_client: Any, tcp: None) -> None:
    first = songs(mpd_client)[12]
    mpd_client.add(first)
    play_paused(mpd_client)
    code, _, err = run_cli("mpd", "queue", "-k", "2", "--library", str(styled / "lib"))
    assert code == 0, err
    assert uris(mpd_client) == [first, *answer(styled, "similar", str(styled / "music" / first), 2)]


def test_continue_once_tops_the_queue_up_with_what_continue_answers(styled: Path, mpd_client: Any, tcp: None,
                                                                   tmp_path: Path) -> None:
    library = songs(mpd_client)
    seeds = [library[0], library[1]]
    for uri in seeds:
        mpd_client.add(uri)
    play_paused(mpd_client)
    args = ("mpd", "continue", "--once", "--keep", "4", "--library", str(styled / "lib"), "--music-dir",
            str(styled / "music"))
    code, out, err = run_cli(*args)
    assert code == 0, err
    playlist = tmp_path / "seeds.m3u"
    playlist.write_text("".join(f"{styled / 'music' / uri}\n" for uri in seeds))
    assert uris(mpd_client) == [*seeds, *answer(styled, "continue", str(playlist), 3)]
    assert upcoming(mpd_client) == 4 and "queued 3 tracks" in err
    code, out, err = run_cli(*args)  # enough queued: nothing more
    assert code == 0 and "queued 0 tracks" in err and len(uris(mpd_client)) == 5
    mpd_client.next()
    mpd_client.next()
    code, _, err = run_cli(*args)
    assert code == 0, err
    queue = uris(mpd_client)
    assert upcoming(mpd_client) == 4 and len(queue) == 7 and len(set(queue)) == 7, queue
    playlist.write_text("".join(f"{styled / 'music' / uri}\n" for uri in queue[:5]))
    assert queue[5:] == answer(styled, "continue", str(playlist), 2)  # the history continued: the last 5 songs


def test_continue_applies_the_filters_of_the_command_line(styled: Path, mpd_client: Any, tcp: None,
                                                          tmp_path: Path) -> None:
    seed = songs(mpd_client)[18]
    mpd_client.add(seed)
    play_paused(mpd_client)
    code, _, err = run_cli("mpd", "continue", "--once", "--keep", "3", "--no-same-artist", "--score", "mean",
                           "--library", str(styled / "lib"), "--music-dir", str(styled / "music"))
    assert code == 0, err
    playlist = tmp_path / "seed.m3u"
    playlist.write_text(f"{styled / 'music' / seed}\n")
    expected = answer(styled, "continue", str(playlist), 3, "--no-same-artist", "--score", "mean")
    assert uris(mpd_client) == [seed, *expected]
    artist = mpd_client.playlistinfo()[0]["artist"]
    assert all(song["artist"] != artist for song in mpd_client.playlistinfo()[1:])


def test_playlist_stores_the_song_and_what_is_most_like_it(styled: Path, mpd_client: Any, tcp: None) -> None:
    first = songs(mpd_client)[3]
    base = ("--library", str(styled / "lib"), "--music-dir", str(styled / "music"))
    code, out, err = run_cli("mpd", "playlist", "sounds like it", "--from", first, "-n", "4", *base)
    assert code == 0, err
    expected = [first, *answer(styled, "similar", str(styled / "music" / first), 3)]
    assert mpd_client.listplaylist("sounds like it") == expected
    assert "4 songs" in out
    code, _, err = run_cli("mpd", "playlist", "sounds like it", "--from", first, "-n", "2", *base)
    assert code == 2 and "--replace" in err and mpd_client.listplaylist("sounds like it") == expected
    code, _, err = run_cli("mpd", "playlist", "sounds like it", "--from", "1", "-n", "2", "--replace", *base)
    assert code == 0, err
    assert len(mpd_client.listplaylist("sounds like it")) == 2
    assert uris(mpd_client) == []  # the queue is left alone


def test_mpd_daemon_keeps_the_queue_going_through_an_mpd_restart_and_stops_on_ctrl_c(
        styled: Path, mpd_server: Any, mpd_client: Any, tmp_path: Path) -> None:
    first = songs(mpd_client)[9]
    mpd_client.add(first)
    play_paused(mpd_client)
    env = {**os.environ, **mpd_server.tcp_env, "PYTHONUNBUFFERED": "1"}
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        daemon = subprocess.Popen([sys.executable, "-m", "soundalike", "mpd", "continue", "--keep", "3", "--library",
                                   str(styled / "lib"), "--music-dir", str(styled / "music")], env=env,
                                  stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    try:
        def wait_for(condition: Any, what: str) -> None:
            client = mpd_server.client()
            try:
                deadline = time.monotonic() + 30
                while not condition(client):
                    assert daemon.poll() is None, err.read_text()
                    assert time.monotonic() < deadline, f"{what}; daemon said: {err.read_text()}"
                    time.sleep(0.1)
            finally:
                client.disconnect()

        wait_for(lambda c: upcoming(c) >= 3, "the queue was not topped up")
        mpd_client.next()
        wait_for(lambda c: upcoming(c) >= 3, "the queue was not topped up after a song")
        assert len(uris(mpd_client)) == 5
        mpd_client.disconnect()
        mpd_server.stop()  # MPD goes away (it saves its queue) and comes back
        mpd_server.start()
        client = mpd_server.client()
        client.delete((2, 4))  # two songs removed at once: the daemon, connected again, queues two more
        client.disconnect()
        wait_for(lambda c: len(c.playlistinfo()) == 5, "the queue was not topped up after MPD restarted")
        said = err.read_text()
        assert "lost MPD at 127.0.0.1:" in said and "connected to MPD at" in said
        client = mpd_server.client()
        queue = uris(client)
        client.disconnect()
        assert len(set(queue)) == len(queue), queue
    finally:
        daemon.send_signal(signal.SIGINT)
        code = daemon.wait(15)
    assert code == 0 and "stopped" in err.read_text() and "Traceback" not in err.read_text()
    assert out.read_text().count("queued ") == 6


def test_mpd_errors_are_one_line(styled: Path, mpd_client: Any, tcp: None, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = ("--library", str(styled / "lib"), "--music-dir", str(styled / "music"))
    code, _, err = run_cli("mpd", "queue", *lib)
    assert code == 2 and "nothing is playing" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("mpd", "playlist", "x", "--from", "no such song at all", *lib)
    assert code == 2 and "no track matches" in err
    code, _, err = run_cli("mpd", "continue", "--once", "--score", "loudest", *lib)
    assert code == 2 and "loudest" in err
    code, _, err = run_cli("mpd", "queue", "--library", str(styled / "lib"), "--music-dir", "/no/such/folder")
    assert code == 2 and "/no/such/folder" in err
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("MPD_PORT", str(port))
    code, _, err = run_cli("mpd", "continue", "--keep", "2", *lib)
    assert code == 2 and "cannot reach MPD at 127.0.0.1:" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("MPD_PORT", "sixty")
    code, _, err = run_cli("mpd", "queue", *lib)
    assert code == 2 and "MPD_PORT=sixty" in err
    monkeypatch.setitem(sys.modules, "mpd", None)  # python-mpd2 not installed
    monkeypatch.setenv("MPD_PORT", "6600")
    code, _, err = run_cli("mpd", "queue", *lib)
    assert code == 2 and "pip install 'soundalike[mpd]'" in err


def test_the_password_in_mpd_host_is_sent(styled: Path, locked_mpd: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = locked_mpd.client()
    first = songs(client)[5]
    client.add(first)
    play_paused(client)
    monkeypatch.setenv("MPD_PORT", str(locked_mpd.port))
    lib = ("--library", str(styled / "lib"), "--music-dir", str(styled / "music"))
    monkeypatch.setenv("MPD_HOST", "wrong@127.0.0.1")
    code, _, err = run_cli("mpd", "queue", "-k", "2", *lib)
    assert code == 2 and "refused the password" in err and "wrong" not in err
    monkeypatch.setenv("MPD_HOST", "127.0.0.1")
    code, _, err = run_cli("mpd", "queue", "-k", "2", *lib)
    assert code == 2 and "permission" in err.lower() and "MPD_HOST=password@host" in err, err
    code, _, err = run_cli("mpd", "continue", "--once", *lib)
    assert code == 2 and "permission" in err.lower() and len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("MPD_HOST", "s3cret@127.0.0.1")
    code, _, err = run_cli("mpd", "queue", "-k", "2", *lib)
    assert code == 0, err
    assert uris(client) == [first, *answer(styled, "similar", str(styled / "music" / first), 2)]
    client.disconnect()


def test_mpd_address_reads_mpd_host_and_port_like_every_mpd_client() -> None:
    assert mpd_address(environ={}) == MpdAddress("localhost", 6600)
    assert mpd_address(environ={"MPD_HOST": "secret@music.lan", "MPD_PORT": "6601"}) == \
        MpdAddress("music.lan", 6601, "secret")
    socket_address = mpd_address(environ={"MPD_HOST": "/run/mpd/socket"})
    assert socket_address.is_socket and socket_address.password is None and str(socket_address) == "/run/mpd/socket"
    assert mpd_address(environ={"MPD_HOST": "pw@@mpd"}) == MpdAddress("@mpd", 6600, "pw")
    assert mpd_address("other", 7000, environ={"MPD_HOST": "x", "MPD_PORT": "1"}) == MpdAddress("other", 7000)
    with pytest.raises(MpdError, match="MPD_PORT=0"):
        mpd_address(environ={"MPD_PORT": "0"})


def test_path_map_between_mpd_uris_and_library_paths() -> None:
    paths = PathMap("/srv/music")
    assert paths.library_path("rock/a b.flac") == "/srv/music/rock/a b.flac"
    assert paths.library_path("http://radio.example/stream") is None
    assert paths.mpd_uri("/srv/music/rock/a b.flac") == "rock/a b.flac"
    assert paths.mpd_uri("/srv/musical/x.flac") is None


def test_uri_of_uses_the_real_paths_of_a_track(tmp_path: Path) -> None:
    from helpers import make_signal, write_audio
    from soundalike.integrations.mpd import Companion
    from soundalike.library.catalog import Library
    from soundalike.library.scan import scan

    music = tmp_path / "music"
    write_audio(music / "Café" / "ok.wav", make_signal(2.0, 330.0, seed=1))
    latin = write_audio(music / "latin.wav", make_signal(2.0, 880.0, seed=2))
    os.rename(latin, os.path.join(os.fsencode(music), b"caf\xe9.wav"))
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [str(music)], isolate=False)
        companion = Companion(None, lib, MpdAddress("localhost"), paths=PathMap(str(music)))
        uris = {t.title: companion.uri_of(t) for t in lib.tracks()}
    assert uris["ok"] == "Café/ok.wav"
    assert uris["caf\\xe9"] is None  # not UTF-8: MPD's protocol cannot name it (never the escaped display name)


def test_the_daemon_queues_tracks_indexed_while_it_runs(styled: Path, mpd_server: Any, mpd_client: Any,
                                                       tmp_path: Path) -> None:
    from soundalike.integrations.mpd import Companion, IndexCache
    from soundalike.library.catalog import Library
    from soundalike.library.scan import scan

    seed, later = songs(mpd_client)[0], songs(mpd_client)[13]
    music = styled / "music"
    with Library.open(tmp_path / "lib") as lib:  # a library of one song: nothing to continue it with yet
        scan(lib, [str(music / seed)], isolate=False)
        mpd_client.add(seed)
        play_paused(mpd_client)
        address = MpdAddress("127.0.0.1", mpd_server.port)
        companion = Companion(mpd_client, lib, address, music_dir=music, indexes=IndexCache(lib))
        assert companion.top_up(2).tracks == []  # the daemon's first pass
        with Library.open(tmp_path / "lib") as other:  # `soundalike index` beside the daemon
            scan(other, [str(music / later)], isolate=False)
        added = companion.top_up(2)  # the next pass, with the same loaded indexes
    assert [t.path for t in added.tracks] == [str(music / later)] and uris(mpd_client) == [seed, later]


def test_playlist_replace_keeps_the_old_playlist_until_the_new_one_is_complete(styled: Path, mpd_client: Any,
                                                                             tcp: None, tmp_path: Path) -> None:
    first = songs(mpd_client)[4]
    for uri in songs(mpd_client)[:3]:
        mpd_client.playlistadd("mine", uri)
    old = mpd_client.listplaylist("mine")
    code, _, err = run_cli("mpd", "playlist", "mine", "--from", "1", "-n", "3", "--replace", "--library",
                           str(styled / "lib"), "--music-dir", str(tmp_path))  # no library song is under it
    assert code == 2 and "nothing stored" in err and "'mine' is kept" in err and len(err.strip().splitlines()) == 1
    assert mpd_client.listplaylist("mine") == old
    assert [p["playlist"] for p in mpd_client.listplaylists()] == ["mine"]
    base = ("--library", str(styled / "lib"), "--music-dir", str(styled / "music"))
    code, _, err = run_cli("mpd", "playlist", "mine", "--from", first, "-n", "3", "--replace", *base)
    assert code == 0, err
    assert mpd_client.listplaylist("mine") == [first, *answer(styled, "similar", str(styled / "music" / first), 2)]
    assert [p["playlist"] for p in mpd_client.listplaylists()] == ["mine"]  # no temporary playlist left


def test_a_garbled_answer_is_a_lost_connection_for_the_daemon(styled: Path, mpd_server: Any,
                                                              mpd_client: Any) -> None:
    """An MPD (here a proxy in front of the real one) whose first connection answers garbage: the daemon connects
    again and tops the queue up, instead of ending with python-mpd2's ProtocolError."""
    import threading

    from soundalike.integrations.mpd import keep_queued
    from soundalike.library.catalog import Library

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def pipe(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for s in (source, target):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        first = True
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                if first:
                    first = False
                    conn.sendall(b"OK MPD 0.23.5\n")
                    conn.recv(4096)
                    conn.sendall(b"this is not what MPD says\n")
                    conn.close()
                    continue
                upstream = socket.create_connection(("127.0.0.1", mpd_server.port))
                threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    mpd_client.add(songs(mpd_client)[2])
    play_paused(mpd_client)
    events: list[str] = []
    try:
        with Library.open(styled / "lib", create=False) as lib:
            total = keep_queued(MpdAddress("127.0.0.1", port), lib, 2, music_dir=styled / "music", once=True,
                                on_event=events.append, max_delay=0.2)
    finally:
        listener.close()
    assert total == 2 and upcoming(mpd_client) == 2
    assert any(e.startswith(f"lost MPD at 127.0.0.1:{port}") for e in events) and \
        f"connected to MPD at 127.0.0.1:{port} again" in events
