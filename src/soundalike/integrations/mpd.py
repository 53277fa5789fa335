"""The MPD companion: MPD's queue and stored playlists filled with what sounds alike (python-mpd2).

Songs travel between MPD and the library by path: an MPD song URI is relative to MPD's music directory
(:class:`PathMap`), which ``--music-dir`` gives, MPD itself tells over a local socket (its ``config`` command), or
the queue's songs reveal (a song whose URI ends a library path). Every answer comes from the same
:func:`~soundalike.recommend.similar` and :func:`~soundalike.recommend.continue_playlist` as the command line,
with the same :class:`~soundalike.recommend.Filters`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from soundalike.library.catalog import Library, Track
from soundalike.models.pretrained import DEFAULT_NAME
from soundalike.recommend import Filters, QueryError, Recommendation, continue_playlist, load_index, similar
from soundalike.recommend.playlists import Entry
from soundalike.search.index import VectorIndex

from . import require

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 6600
SPARE = 8  # extra candidates asked for, in case MPD's database lacks some of the first ones
SHORT_NOTE = "fewer tracks queued than asked for"
TEMP_SUFFIX = " (soundalike: being written)"  # a stored playlist is built under its name plus this, then renamed


class MpdError(Exception):
    """A one-line problem with MPD or with what it was asked (unreachable, nothing playing, unknown song...)."""


class MpdConnectionError(MpdError):
    """MPD cannot be reached (or refused the password)."""


def mpd_module() -> Any:
    """python-mpd2's ``mpd`` module, or a one-line :class:`~soundalike.integrations.MissingExtraError`."""
    return require("mpd", "mpd", "the MPD companion")


@dataclass(frozen=True)
class MpdAddress:
    """Where MPD listens: a host name or address and port, or a Unix socket path (``@name``: abstract socket)."""

    host: str
    port: int = DEFAULT_PORT
    password: str | None = field(default=None, repr=False)

    @property
    def is_socket(self) -> bool:
        """A local socket: MPD tells such clients its music directory."""
        return self.host.startswith(("/", "@"))

    def __str__(self) -> str:
        return self.host if self.is_socket else f"{self.host}:{self.port}"


def mpd_address(host: str | None = None, port: int | None = None,
                environ: Mapping[str, str] | None = None) -> MpdAddress:
    """The MPD to talk to, as every MPD client finds it: ``host``/``port`` if given, else ``$MPD_HOST``
    (``[password@]host``, a socket path or ``@abstract``) and ``$MPD_PORT``, else localhost:6600."""
    env = os.environ if environ is None else environ
    text = host if host is not None else env.get("MPD_HOST", "") or DEFAULT_HOST
    password = None
    at = text.find("@")
    if at > 0:  # password@host (a leading @ is an abstract socket name)
        password, text = text[:at], text[at + 1:]
    if not text:
        raise MpdError("MPD_HOST: no host after 'password@'")
    if port is None:
        raw = env.get("MPD_PORT", "").strip()
        if raw and not (raw.isdigit() and 0 < int(raw) < 65536):
            raise MpdError(f"MPD_PORT={raw}: not a port number (1-65535)")
        port = int(raw) if raw else DEFAULT_PORT
    elif not 0 < port < 65536:
        raise MpdError(f"--port {port}: not a port number (1-65535)")
    return MpdAddress(text, port, password)


def connect(address: MpdAddress, timeout: float = 10.0) -> Any:
    """A connected python-mpd2 client (password sent); :class:`MpdConnectionError` when MPD cannot be used."""
    mpd = mpd_module()
    client = mpd.MPDClient()
    client.timeout = timeout
    client.idletimeout = None  # idle waits as long as nothing happens
    try:
        client.connect(address.host, address.port)
    except (OSError, mpd.MPDError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise MpdConnectionError(f"cannot reach MPD at {address}: {reason} (set MPD_HOST / MPD_PORT or --host / "
                                 "--port)") from None
    if address.password:
        try:
            client.password(address.password)
        except mpd.CommandError:
            close(client)
            raise MpdConnectionError(f"MPD at {address} refused the password given in MPD_HOST") from None
    return client


@contextlib.contextmanager
def refusals(address: MpdAddress) -> Iterator[None]:
    """Turn MPD's refusals (ACK errors: no permission, unknown command...) into one-line :class:`MpdError` s."""
    mpd = mpd_module()
    try:
        yield
    except mpd.CommandError as exc:
        hint = " (give MPD's password as MPD_HOST=password@host)" if "permission" in str(exc) else ""
        raise MpdError(f"MPD at {address} refused: {_ack(exc)}{hint}") from None


def close(client: Any) -> None:
    """Disconnect, whatever state the connection is in."""
    with contextlib.suppress(Exception):  # a dead connection cannot be closed politely
        client.close()
    with contextlib.suppress(Exception):
        client.disconnect()


@dataclass(frozen=True)
class PathMap:
    """MPD song URIs (relative to MPD's music directory) to library paths and back."""

    music_dir: str

    def library_path(self, uri: str) -> str | None:
        """The path of MPD song ``uri`` on this machine; None for streams (``http://``...)."""
        if "://" in uri:
            return uri[len("file://"):] if uri.startswith("file://") else None
        return uri if os.path.isabs(uri) else os.path.join(self.music_dir, uri)

    def mpd_uri(self, path: str) -> str | None:
        """The MPD URI of a library path; None when it is outside MPD's music directory."""
        absolute = os.path.abspath(path)
        prefix = self.music_dir.rstrip("/") + "/"
        return absolute[len(prefix):] if absolute.startswith(prefix) else None


def _first(value: object) -> str:
    """One value of an MPD tag (python-mpd2 gives a list when a tag repeats)."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def derive_music_dir(lib: Library, songs: Iterable[Mapping[str, object]]) -> str | None:
    """MPD's music directory as this machine sees it, found from songs whose URI ends a library path: under a
    folder the library indexed (or one above it), else among the tracks with the song's tags."""
    roots = [os.path.abspath(r) for r in lib.roots()]
    for song in songs:
        uri = _first(song.get("file"))
        if not uri or "://" in uri or os.path.isabs(uri):
            continue
        for root in roots:
            folder = root
            while True:
                if lib.track_by_path(os.path.join(folder, uri)) is not None:
                    return folder
                parent = os.path.dirname(folder)
                if parent == folder:
                    break
                folder = parent
        words = " ".join(_first(song.get(tag)) for tag in ("artist", "title")).strip()
        for track in lib.search(words, limit=20) if words else []:
            for path in lib.paths_of(track.id):
                if path.endswith("/" + uri):
                    return path[:-len(uri) - 1] or "/"
    return None


def path_map(client: Any, lib: Library, address: MpdAddress, music_dir: str | os.PathLike[str] | None = None,
             songs: Iterable[Mapping[str, object]] = ()) -> PathMap:
    """The :class:`PathMap` of ``music_dir`` if given, else of the directory MPD names over a local socket, else
    derived from ``songs`` (:func:`derive_music_dir`); an :class:`MpdError` says to give it otherwise."""
    if music_dir is not None:
        folder = os.path.abspath(os.path.expanduser(os.fspath(music_dir)))
        if not os.path.isdir(folder):
            raise MpdError(f"--music-dir {music_dir}: no such folder")
        return PathMap(folder)
    if address.is_socket:
        mpd = mpd_module()
        try:
            told = client.config()
        except mpd.CommandError:
            told = None
        if isinstance(told, str) and told:
            return PathMap(os.path.abspath(told))
    derived = derive_music_dir(lib, songs)
    if derived is not None:
        return PathMap(derived)
    raise MpdError(f"MPD at {address} does not say where its music is and no queued song matches a library path: "
                   "give --music-dir (the folder MPD's song paths are relative to, as this machine sees it)")


class IndexCache:
    """``load_index`` for each model name once (the daemon's queries share one index), loaded again after the
    catalogue changed (:meth:`refresh`: a ``soundalike index`` beside the daemon added or removed tracks)."""

    def __init__(self, lib: Library) -> None:
        self.lib = lib
        self.loaded: dict[str, VectorIndex] = {}
        self.data_version = self._data_version()

    def _data_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` of the daemon's connection: it moves when another connection commits."""
        return int(self.lib.conn.execute("PRAGMA data_version").fetchone()[0])

    def refresh(self) -> bool:
        """Forget the loaded indexes if the catalogue changed since the last check (once per pass); returns whether
        it had."""
        version = self._data_version()
        if version == self.data_version:
            return False
        self.data_version = version
        self.loaded.clear()
        return True

    def __call__(self, model: str) -> VectorIndex:
        """The index of ``model``, loaded on first use."""
        if model not in self.loaded:
            self.loaded[model] = load_index(self.lib, model)
        return self.loaded[model]


@dataclass
class Added:
    """What a command put into MPD: the tracks (in order), and notes (fallbacks, songs MPD does not have)."""

    tracks: list[Track] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Companion:
    """One MPD connection and one soundalike library: what the ``soundalike mpd`` commands share."""

    def __init__(self, client: Any, lib: Library, address: MpdAddress, *, music_dir: str | os.PathLike[str] | None
                 = None, model: str = DEFAULT_NAME, filters: Filters | None = None,
                 indexes: IndexCache | None = None, paths: PathMap | None = None) -> None:
        self.client, self.lib, self.address = client, lib, address
        self.music_dir, self.model, self.filters = music_dir, model, filters or Filters()
        self.indexes = indexes or IndexCache(lib)
        self.resolved_paths = paths
        if paths is None and music_dir is not None:  # checked now: a bad folder is the first thing said
            self.resolved_paths = path_map(client, lib, address, music_dir)

    def paths(self, songs: Iterable[Mapping[str, object]] = ()) -> PathMap:
        """The path map (resolved once; ``songs`` may reveal it, see :func:`path_map`)."""
        if self.resolved_paths is None:
            self.resolved_paths = path_map(self.client, self.lib, self.address, self.music_dir, songs)
        return self.resolved_paths

    def track_of(self, song: Mapping[str, object]) -> Track | None:
        """The library track of an MPD song, or None (a stream, or a file the library has not indexed)."""
        path = self.paths([song]).library_path(_first(song.get("file")))
        return self.lib.track_by_path(path) if path else None

    def uri_of(self, track: Track) -> str | None:
        """An MPD URI of a library track (any of its real paths under MPD's music directory), or None (a name that
        is not UTF-8 cannot be said in MPD's protocol)."""
        paths = self.paths()
        for raw in self.lib.file_paths(track.id):
            uri = paths.mpd_uri(os.fsdecode(raw))
            if uri is not None and _utf8(uri):
                return uri
        return None

    def _add(self, recommendations: list[Recommendation], k: int, notes: list[str],
             add: Callable[[str], object]) -> list[Track]:
        """``add`` the MPD URIs of the first ``k`` recommendations MPD has; notes say which it lacks."""
        mpd = mpd_module()
        added: list[Track] = []
        for r in recommendations:
            if len(added) >= k:
                break
            uri = self.uri_of(r.track)
            if uri is None:
                notes.append(f"{r.track.path}: outside MPD's music directory {self.paths().music_dir}, not queued")
                continue
            try:
                add(uri)
            except mpd.CommandError as exc:
                notes.append(f"{uri}: MPD does not have it ({_ack(exc)}; run `mpc update`?), not queued")
                continue
            added.append(r.track)
        return added

    def current(self) -> tuple[dict[str, object], Track]:
        """MPD's current song and its library track; :class:`MpdError` if nothing plays or it is not indexed."""
        song = self.client.currentsong()
        if not song:
            raise MpdError(f"nothing is playing on MPD at {self.address}: play a song first")
        track = self.track_of(song)
        if track is None:
            uri = _first(song.get("file"))
            where = self.paths().library_path(uri) or uri
            raise MpdError(f"{where}: the current song is not in the soundalike library {self.lib.root} (index it, "
                           "or check --music-dir)")
        return song, track

    def queue_similar(self, k: int) -> Added:
        """Append to the queue the ``k`` tracks most like the current song (none already queued)."""
        _, track = self.current()
        queued = {t.id for t in self._queue_tracks(self.client.playlistinfo())[1] if t is not None}
        try:
            query, found = similar(self.lib, str(track.id), k + SPARE, model=self.model, indexes=self.indexes,
                                   filters=self.filters, exclude=queued)
        except QueryError as exc:
            raise MpdError(str(exc)) from None
        notes = list(query.notes)
        return Added(self._add(found, k, notes, self.client.add), notes)

    def _queue_tracks(self, queue: list[dict[str, object]]) -> tuple[list[dict[str, object]], list[Track | None]]:
        self.paths(queue)
        return queue, [self.track_of(song) for song in queue]

    def top_up(self, keep: int, *, history: int = 5, recent: deque[int] | None = None,
               score: str = "max") -> Added:
        """Continue the queue until at least ``keep`` songs follow the current one: the last ``history`` library
        songs of the queue (else the latest remembered in ``recent``) are the playlist continued; nothing among the
        queue's last ``recent.maxlen`` songs or in ``recent`` comes back. ``recent`` learns what plays and is added."""
        recent = recent if recent is not None else deque(maxlen=50)
        window = recent.maxlen or 50
        self.indexes.refresh()  # one check per pass: tracks indexed since the last one can be queued
        status = self.client.status()
        queue = self.client.playlistinfo()
        position = int(status["song"]) if "song" in status else -1
        need = keep - (len(queue) - position - 1)
        _, tracks = self._queue_tracks(queue) if queue else ([], [])
        if 0 <= position < len(tracks):
            playing = tracks[position]
            if playing is not None and (not recent or recent[-1] != playing.id):
                recent.append(playing.id)
        if need <= 0:
            return Added()
        seeds = [t.id for t in tracks if t is not None][-history:] or list(recent)[-history:]
        if not seeds:
            return Added(notes=["nothing to continue: no song of the queue is in the soundalike library"])
        exclude = {t.id for t in tracks[-window:] if t is not None} | set(recent)
        try:
            playlist, found = continue_playlist(self.lib, [Entry(str(i), track_id=i) for i in seeds], need + SPARE,
                                                score=score, model=self.model, indexes=self.indexes,
                                                filters=self.filters, exclude=exclude)
        except QueryError as exc:
            return Added(notes=[str(exc)])
        notes = playlist.notes
        added = self._add(found, need, notes, self.client.add)
        recent.extend(t.id for t in added)
        if len(added) < need:
            notes.append(f"{SHORT_NOTE} (the filters, the window of {window} songs and the library allow no more)")
        return Added(added, notes)

    def save_playlist(self, name: str, song: str, n: int, *, replace: bool = False) -> Added:
        """Store MPD playlist ``name``: ``song`` (an MPD song path, or any soundalike query) and the tracks most
        like it, ``n`` in all; an existing playlist of that name is only replaced with ``replace``, and only once the
        new one is complete (written under a temporary name, then renamed). :class:`MpdError` when MPD has none of
        the songs (an existing playlist is kept)."""
        if not name.strip() or "/" in name or "\n" in name:
            raise MpdError(f"playlist name {name!r}: must be non-empty, one line, without '/'")
        text = song
        path = self.paths(self.client.playlistinfo()).library_path(song)
        if path is not None and not os.path.isabs(song):
            track = self.lib.track_by_path(path)
            if track is not None:
                text = str(track.id)
        try:
            query, found = similar(self.lib, text, max(n - 1, 1) + SPARE, model=self.model, indexes=self.indexes,
                                   filters=self.filters)
        except QueryError as exc:
            raise MpdError(str(exc)) from None
        start = [Recommendation(query.track, 1.0)] if query.track is not None else []
        existing = {_first(p.get("playlist")) for p in self.client.listplaylists()}
        if name in existing and not replace:
            raise MpdError(f"MPD already has a stored playlist {name!r}: pass --replace to overwrite it")
        temp = f"{name}{TEMP_SUFFIX}"
        if temp in existing:  # left by an interrupted run
            self.client.rm(temp)
        notes = list(query.notes)
        added = self._add(start + found, n, notes, lambda uri: self.client.playlistadd(temp, uri))
        if not added:
            if temp in {_first(p.get("playlist")) for p in self.client.listplaylists()}:
                self.client.rm(temp)
            kept = f"; the stored playlist {name!r} is kept" if name in existing else ""
            raise MpdError(f"MPD has none of the songs (not in its database, or outside {self.paths().music_dir}): "
                           f"nothing stored{kept}")
        if name in existing:
            self.client.rm(name)
        self.client.rename(temp, name)
        return Added(added, notes)


def _utf8(text: str) -> bool:
    """Whether ``text`` is UTF-8 once encoded (an ``os.fsdecode``-d name that was not holds surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ack(exc: Exception) -> str:
    """MPD's own words from an ACK error (``[50@0] {add} No such directory`` → ``No such directory``)."""
    text = str(exc)
    return text.split("} ", 1)[1] if "} " in text else text


def keep_queued(address: MpdAddress, lib: Library, keep: int, *, history: int = 5, window: int = 50,
                score: str = "max", model: str = DEFAULT_NAME, filters: Filters | None = None,
                music_dir: str | os.PathLike[str] | None = None, once: bool = False,
                on_added: Callable[[Added], None] = lambda added: None,
                on_event: Callable[[str], None] = lambda line: None, max_delay: float = 30.0) -> int:
    """The daemon: top the queue up (:meth:`Companion.top_up`) now and whenever MPD's queue or player changes,
    until interrupted (or after one pass with ``once``); returns how many tracks it queued. A note repeated by
    consecutive passes is passed on once. A lost connection (or one MPD's answers garble) is retried with growing
    pauses (up to ``max_delay`` s); only the first connection's failure is raised."""
    mpd = mpd_module()
    recent: deque[int] = deque(maxlen=window)
    indexes = IndexCache(lib)
    paths: PathMap | None = None
    client: Any = connect(address)
    total, delay = 0, 1.0
    said: set[str] = set()
    try:
        with refusals(address):
            while True:
                try:
                    if client is None:
                        client = connect(address)
                        on_event(f"connected to MPD at {address} again")
                        delay = 1.0
                    companion = Companion(client, lib, address, music_dir=music_dir, model=model, filters=filters,
                                          indexes=indexes, paths=paths)
                    while True:
                        added = companion.top_up(keep, history=history, recent=recent, score=score)
                        paths = companion.resolved_paths
                        total += len(added.tracks)
                        fresh = [note for note in added.notes if note not in said]  # said once while it lasts
                        said = set(added.notes)
                        if added.tracks or fresh:
                            on_added(Added(added.tracks, fresh))
                        if once:
                            return total
                        client.idle("playlist", "player")
                except (OSError, mpd.ConnectionError, mpd.ProtocolError, MpdConnectionError) as exc:
                    # a garbled answer (ProtocolError) leaves the connection unusable: as good as lost
                    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                    on_event(f"lost MPD at {address} ({reason}); trying again in {delay:g} s")
                    if client is not None:
                        close(client)
                    client = None
                    time.sleep(delay)
                    delay = min(delay * 2, max_delay)
    finally:
        if client is not None:
            close(client)
