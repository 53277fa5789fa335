"""soundalike inside beets: ``plugins: soundalike`` adds ``beet soundalike-index [QUERY]``, ``beet similar QUERY`` and
``beet sonicmix QUERY``. A thin shell: the work is :mod:`soundalike.integrations.beets`, over the same functions as
the ``soundalike`` command line.

Configuration (all optional)::

    soundalike:
        library: ~/.local/share/soundalike   # the catalogue (default: $SOUNDALIKE_LIBRARY, else this)
        model: default                       # default, descriptor, or a checkpoint file
        jobs: 0                              # analysis processes (0: one per core)
"""

from __future__ import annotations

import optparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

# soundalike itself (numpy, the catalogue, the search) is imported by the commands only: every other beet command
# starts as fast as without the plugin.
if TYPE_CHECKING:
    from soundalike.library.catalog import Library
    from soundalike.recommend import Filters, Recommendation

FLEX_FIELD = "soundalike_id"
"""The flexible attribute with the item's soundalike track id (``soundalike.integrations.beets.FLEX_FIELD``)."""


class SoundalikePlugin(BeetsPlugin):
    """The beets plugin: three commands and the ``soundalike_id`` flexible attribute."""

    item_types = {FLEX_FIELD: types.INTEGER}

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.config.add({"library": None, "model": "default", "jobs": 0})

    def commands(self) -> list[ui.Subcommand]:
        """``soundalike-index``, ``similar`` and ``sonicmix``."""
        index = ui.Subcommand("soundalike-index", help="analyse the matching items' audio into soundalike's "
                                                      "catalogue (only new or changed files)")
        index.parser.usage = "%prog [options] [QUERY]"
        index.func = self.index
        similar = ui.Subcommand("similar", help="items that sound like the (first) item matching QUERY")
        _answer_options(similar.parser)
        similar.parser.usage = "%prog [options] QUERY"
        similar.func = self.similar
        mix = ui.Subcommand("sonicmix", help="a playlist continuing the items matching QUERY, by how they sound")
        _answer_options(mix.parser)
        mix.parser.usage = "%prog [options] QUERY"
        mix.parser.add_option("--score", default="max", help="max, mean, topk or cluster (as `soundalike "
                                                             "continue`) [default: %default]")
        mix.func = self.sonicmix
        return [index, similar, mix]

    def _catalogue(self, create: bool = False) -> Library:
        from soundalike.library.catalog import CatalogError, Library, default_library_dir

        configured = self.config["library"].get()
        root = Path(os.path.expanduser(str(configured))) if configured else default_library_dir()
        try:
            return Library.open(root, create=create)
        except CatalogError as exc:
            raise ui.UserError(f"soundalike: {exc}") from None

    def index(self, lib: Any, opts: optparse.Values, args: list[str]) -> None:
        """``beet soundalike-index [QUERY]``."""
        from soundalike.app.progress import progress_bar
        from soundalike.integrations import beets as integration
        from soundalike.library.catalog import CatalogError
        from soundalike.recommend import QueryError

        items = list(lib.items(args))
        if not items:
            raise ui.UserError(f"no beets item matches {' '.join(args)!r}")
        jobs = self.config["jobs"].get(int) or (os.cpu_count() or 1)
        catalogue = self._catalogue(create=True)
        try:
            with progress_bar("soundalike", unit="files") as on_progress:
                report = integration.index_items(
                    catalogue, items, model=self.config["model"].as_str(), jobs=jobs, on_progress=on_progress,
                    on_problem=lambda p: ui.print_(f"soundalike: skip {p.line()}"))
        except (QueryError, CatalogError) as exc:
            raise ui.UserError(f"soundalike: {exc}") from None
        finally:
            catalogue.close()
        ui.print_(f"soundalike: {report.line()}")

    def _items(self, lib: Any, args: list[str]) -> list[Any]:
        if not args:
            raise ui.UserError("give a query naming the item(s) to start from")
        items = list(lib.items(args))
        if not items:
            raise ui.UserError(f"no beets item matches {' '.join(args)!r}")
        return items

    def similar(self, lib: Any, opts: optparse.Values, args: list[str]) -> None:
        """``beet similar QUERY [-k N] [--playlist FILE.m3u]``."""
        from soundalike.integrations import beets as integration
        from soundalike.library.catalog import CatalogError
        from soundalike.recommend import QueryError

        items = self._items(lib, args)
        if len(items) > 1:
            ui.print_(f"soundalike: {len(items)} items match; like the first: {items[0]}")
        catalogue = self._catalogue()
        try:
            query, found = integration.similar_to(catalogue, items[0], opts.k, model=self._model(opts),
                                                  filters=_filters(opts))
            self._answer(lib, catalogue, opts, found, f"like {items[0]}", query.notes)
        except (QueryError, CatalogError) as exc:
            raise ui.UserError(f"soundalike: {exc}") from None
        finally:
            catalogue.close()

    def sonicmix(self, lib: Any, opts: optparse.Values, args: list[str]) -> None:
        """``beet sonicmix QUERY [-k N] [--playlist FILE.m3u]``: the playlist file holds the items, then the mix."""
        from soundalike.integrations import beets as integration
        from soundalike.library.catalog import CatalogError
        from soundalike.recommend import QueryError

        items = self._items(lib, args)
        catalogue = self._catalogue()
        try:
            playlist, found = integration.mix_of(catalogue, items, opts.k, score=opts.score, model=self._model(opts),
                                                 filters=_filters(opts))
            for line in playlist.skipped:
                ui.print_(f"soundalike: skip {line}")
            seeds = [q.track for q in playlist.queries if q.track is not None]
            self._answer(lib, catalogue, opts, found, f"sonic mix of {' '.join(args)}", playlist.notes, seeds)
        except (QueryError, CatalogError) as exc:
            raise ui.UserError(f"soundalike: {exc}") from None
        finally:
            catalogue.close()

    def _model(self, opts: optparse.Values) -> str:
        return opts.model or self.config["model"].as_str()

    def _answer(self, lib: Any, catalogue: Library, opts: optparse.Values, found: list[Recommendation], title: str,
                notes: list[str], lead: list[Any] | None = None) -> None:
        """Print the answer as beets items (``-f FORMAT`` as ``beet ls``), and write ``--playlist`` if asked."""
        from soundalike.integrations import beets as integration

        for note in notes:
            ui.print_(f"soundalike: note: {note}")
        known = integration.beets_items(lib, catalogue, [r.track for r in found])
        for r in found:
            item = known.get(r.track.id)
            shown = format(item, opts.format or "") if item is not None else \
                f"{r.track.label} (not in beets: {r.track.path})"
            ui.print_(f"{r.score:6.3f}  {shown}")
        if opts.playlist:
            integration.write_m3u(opts.playlist, [*(lead or []), *(r.track for r in found)], title)
            ui.print_(f"soundalike: wrote {opts.playlist}")


def _answer_options(parser: optparse.OptionParser) -> None:
    """The options ``similar`` and ``sonicmix`` share (the command line's filters among them)."""
    parser.add_option("-k", type="int", default=10, metavar="N", help="how many tracks [default: %default]")
    parser.add_option("-p", "--playlist", metavar="FILE.m3u", help="also write the answer as an M3U playlist")
    parser.add_option("-f", "--format", help="print items with this beets format (as `beet ls -f`)")
    parser.add_option("--model", metavar="NAME", help="embedding to search (default: soundalike.model)")
    parser.add_option("--no-same-artist", action="store_true", help="no track by the query's artists")
    parser.add_option("--no-same-album", action="store_true", help="no track from the query's albums")
    parser.add_option("--max-per-artist", type="int", metavar="N", help="at most N results by one artist")
    parser.add_option("--max-per-album", type="int", metavar="N", help="at most N results from one album")


def _filters(opts: optparse.Values) -> Filters:
    """The command line's result filters from the options."""
    from soundalike.recommend import Filters

    for name in ("k", "max_per_artist", "max_per_album"):
        value = getattr(opts, name)
        if value is not None and value < 1:
            raise ui.UserError(f"--{name.replace('_', '-')} {value}: must be at least 1")
    return Filters(exclude_artists=bool(opts.no_same_artist), exclude_albums=bool(opts.no_same_album),
                   max_per_artist=opts.max_per_artist, max_per_album=opts.max_per_album)
