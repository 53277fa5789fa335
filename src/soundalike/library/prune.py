"""Removing what is really gone, on request: files the catalogue knows that no longer exist.

A scan never removes files from folders it could not read (an unmounted disk, a share that is down, a
permission problem) nor from a folder that is empty now: those wait here. :func:`plan_prune` finds every known
file that does not exist any more (under some roots, or anywhere), and says how many tracks would leave the
library with them; :func:`prune` removes them, holding the writer lock.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from soundalike.audio.decode import display_path

from .catalog import Library
from .scan import absolute_path, is_under


@dataclass
class PrunePlan:
    """What pruning would remove: the gone files, and the tracks that would lose their last file."""

    files: list[bytes] = field(default_factory=list)
    tracks: list[int] = field(default_factory=list)

    def describe(self, limit: int = 10) -> str:
        """A few printable lines: the counts, then up to ``limit`` of the files."""
        head = (f"{len(self.files)} indexed file{'s' if len(self.files) != 1 else ''} no longer exist; "
                f"{len(self.tracks)} track{'s' if len(self.tracks) != 1 else ''} would leave the library")
        shown = [f"  {display_path(p)}" for p in self.files[:limit]]
        more = [f"  ... and {len(self.files) - limit} more"] if len(self.files) > limit else []
        return "\n".join([head, *shown, *more])


def _gone(path: bytes) -> bool:
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False  # there but unreadable (permissions, I/O): not proof that it is gone
    return False


def plan_prune(lib: Library, roots: Sequence[str | os.PathLike[str]] = ()) -> PrunePlan:
    """Every known file (under ``roots``, or anywhere) that does not exist any more, and the tracks it would take."""
    prefixes = [absolute_path(r) for r in roots]
    files = sorted(p for p in lib.file_records() if (not prefixes or any(is_under(p, pre) for pre in prefixes))
                   and _gone(p))
    if not files:
        return PrunePlan()
    gone = set(files)
    remaining: dict[int, int] = {}
    losing: set[int] = set()
    for path, track_id in lib.conn.execute("SELECT path, track_id FROM files WHERE track_id IS NOT NULL"):
        if bytes(path) in gone:
            losing.add(int(track_id))
        else:
            remaining[int(track_id)] = remaining.get(int(track_id), 0) + 1
    return PrunePlan(files, sorted(t for t in losing if not remaining.get(t)))


def prune(lib: Library, plan: PrunePlan) -> int:
    """Remove the files of ``plan`` (those still gone) from the catalogue; returns how many were removed."""
    with lib.writing():
        return lib.remove_files([p for p in plan.files if _gone(p)])
