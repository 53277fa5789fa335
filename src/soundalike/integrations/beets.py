"""What the beets plugin does (``plugins: soundalike``; the plugin module itself is ``beetsplug.soundalike``).

beets says which files and which tags: ``beet soundalike-index QUERY`` scans the matching items' files with the
same :func:`~soundalike.library.scan.scan` (and the same embedding) as ``soundalike index``, gives the catalogue
beets' artist, album and title, and stores the soundalike track id on each item (flexible attribute
``soundalike_id``). ``beet similar`` and ``beet sonicmix`` answer with :func:`~soundalike.recommend.similar` and
:func:`~soundalike.recommend.continue_playlist`, as the command line does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundalike.audio.analysis import Tags
from soundalike.library.catalog import Library, Track
from soundalike.library.scan import ScanProblem, ScanSummary
from soundalike.models.pretrained import DEFAULT_NAME
from soundalike.recommend import Filters, PlaylistQuery, Query, QueryError, Recommendation, continue_playlist, similar
from soundalike.recommend.playlists import Entry, to_m3u

FLEX_FIELD = "soundalike_id"
"""The beets flexible attribute holding an item's soundalike track id."""


class NotIndexedError(QueryError):
    """A beets item soundalike has not analysed (yet)."""


def item_path(item: Any) -> str:
    """The absolute path of a beets item as a string (beets keeps bytes)."""
    return os.fsdecode(item.path)


# soundalike's tag field -> beets' item field
BEETS_FIELDS = {"artist": "artist", "album": "album", "title": "title", "album_artist": "albumartist",
                "genre": "genre", "track_no": "track", "disc_no": "disc", "year": "year"}


def beets_tags(item: Any) -> tuple[Tags, list[str]]:
    """The tags a beets item has (the user's truth) and the names of those it has a value for: empty texts and
    zero numbers are beets not knowing, and leave the scanned tag alone."""
    values: dict[str, Any] = {}
    for field_name, beets_name in BEETS_FIELDS.items():
        value = getattr(item, beets_name, None)
        if field_name in ("track_no", "disc_no", "year"):
            try:
                number = int(value or 0)
            except (TypeError, ValueError):
                number = 0
            if number > 0:
                values[field_name] = number
        elif isinstance(value, str) and value.strip():
            values[field_name] = value
    return Tags(**values), list(values)


@dataclass
class IndexReport:
    """What ``soundalike-index`` did: the scan's summary, items tagged with their track id, and those without."""

    summary: ScanSummary
    items: int = 0
    tagged: int = 0
    not_indexed: list[str] = field(default_factory=list)
    embedded: list[tuple[str, int]] = field(default_factory=list)

    def line(self) -> str:
        """One line for the terminal."""
        s = self.summary
        text = (f"{self.items} items: {s.analysed} analysed, {s.linked} duplicates/moved, {s.unchanged} unchanged, "
                f"{s.refreshed_text}{len(s.problems)} errors; {self.tagged} items hold their {FLEX_FIELD}")
        for model_id, count in self.embedded:
            text += f"; embedded {count} tracks with {model_id}"
        return text


def index_items(lib: Library, items: Sequence[Any], *, model: str = DEFAULT_NAME, jobs: int = 1,
                on_problem: Callable[[ScanProblem], None] | None = None,
                on_progress: Callable[[str, int, int], None] | None = None) -> IndexReport:
    """Analyse the files of beets ``items`` into the catalogue ``lib`` (resumable, only new or changed files),
    embed them with ``model``, give their tracks beets' tags, and store each item's track id (``soundalike_id``)."""
    from soundalike.library.scan import scan
    from soundalike.models import ModelError
    from soundalike.models.embedding import checkpoint_presets, checkpoints_for, embed_library

    try:
        checkpoints = checkpoints_for(model, lib)  # the same choice as `soundalike index --model`
    except ModelError as exc:
        raise QueryError(f"soundalike.model: {exc}") from None
    paths = list(dict.fromkeys(item_path(item) for item in items))
    summary = scan(lib, paths, jobs=jobs, presets=checkpoint_presets(*checkpoints), on_problem=on_problem,
                   on_progress=on_progress)
    report = IndexReport(summary, items=len(items))
    for checkpoint in checkpoints:
        report.embedded.append(embed_library(lib, checkpoint, on_progress=on_progress))
    for item in items:
        track = lib.track_by_path(item.path)
        if track is None:
            report.not_indexed.append(item_path(item))
            if item.get(FLEX_FIELD) is not None:
                del item[FLEX_FIELD]
                item.store()
            continue
        tags, fields = beets_tags(item)
        changed = [f for f in fields if getattr(tags, f) != getattr(track, f)]
        if changed:
            lib.set_tags(track.id, tags, changed)
        if item.get(FLEX_FIELD) != track.id:
            item[FLEX_FIELD] = track.id
            item.store()
        report.tagged += 1
    return report


def track_of(lib: Library, item: Any) -> Track:
    """The soundalike track of a beets item (by its file); :class:`NotIndexedError` if it has not been analysed."""
    track = lib.track_by_path(item.path)
    if track is None:
        raise NotIndexedError(f"{item_path(item)}: not analysed by soundalike yet (run `beet soundalike-index` "
                              "on it)")
    return track


def similar_to(lib: Library, item: Any, k: int = 10, *, model: str = DEFAULT_NAME,
               filters: Filters | None = None) -> tuple[Query, list[Recommendation]]:
    """The ``k`` tracks that sound most like a beets item, as ``soundalike similar`` answers."""
    return similar(lib, str(track_of(lib, item).id), k, model=model, filters=filters)


def mix_of(lib: Library, items: Sequence[Any], k: int = 10, *, score: str = "max", model: str = DEFAULT_NAME,
           filters: Filters | None = None) -> tuple[PlaylistQuery, list[Recommendation]]:
    """The ``k`` tracks that best continue beets ``items`` taken as a playlist, as ``soundalike continue``
    answers; items not analysed yet are listed in ``skipped``."""
    entries: list[Entry] = []
    skipped: list[str] = []
    for item in items:
        try:
            track = track_of(lib, item)
        except NotIndexedError as exc:
            skipped.append(str(exc))
            continue
        entries.append(Entry(str(track.id), track_id=track.id))
    if not entries:
        raise NotIndexedError(f"none of the {len(items)} items is analysed by soundalike yet (run `beet "
                              "soundalike-index` on them)")
    playlist, found = continue_playlist(lib, entries, k, score=score, model=model, filters=filters)
    playlist.skipped[:0] = skipped
    return playlist, found


def beets_items(beets_lib: Any, lib: Library, tracks: Iterable[Track]) -> dict[int, Any]:
    """The beets item of each track that beets knows (by any of the track's real paths), keyed by track id."""
    from beets.dbcore.query import PathQuery

    found: dict[int, Any] = {}
    for track in tracks:
        for raw in lib.file_paths(track.id):
            item = next(iter(beets_lib.items(PathQuery("path", raw))), None)
            if item is not None:
                found[track.id] = item
                break
    return found


def write_m3u(path: str | os.PathLike[str], tracks: Iterable[Track], title: str) -> None:
    """Write an extended M3U playlist (the same writer as ``--format m3u``)."""
    target = Path(path).expanduser()
    try:
        target.write_text(to_m3u(tracks, title=title), encoding="utf-8")
    except OSError as exc:
        raise QueryError(f"{target}: cannot write the playlist ({exc.strerror or exc})") from None
