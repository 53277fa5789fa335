"""Where a benchmark's figures come from: the commit of the code measured, written into every result JSON."""

from __future__ import annotations

import subprocess
from pathlib import Path


def checkout_commit(folder: Path, *paths: str) -> str | None:
    """The short commit of the git checkout holding ``folder``, with ``+changes`` when anything under ``paths``
    (relative to ``folder``; default: all of it) differs from that commit (None outside a git checkout)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True,
                              timeout=10, check=True)
        changed = subprocess.run(["git", "status", "--porcelain", "--", *(paths or (".",))], cwd=folder,
                                 capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    head = done.stdout.strip()
    return (head + "+changes" if changed.stdout.strip() else head) or None


def commit() -> str | None:
    """The short commit of the checkout these benchmarks run from, with ``+changes`` when its code (``src/``,
    ``benchmarks/*.py``) differs from that commit (None outside a git checkout)."""
    return checkout_commit(Path(__file__).parent, "../src", "*.py")
