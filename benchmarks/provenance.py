"""Where a benchmark's figures come from: the commit of the code measured, written into every result JSON."""

from __future__ import annotations

import subprocess
from pathlib import Path


def commit() -> str | None:
    """The short commit of the checkout these benchmarks run from, with ``+changes`` when its code (``src/``,
    ``benchmarks/*.py``) differs from that commit (None outside a git checkout)."""
    here = Path(__file__).parent
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=10, check=True)
        changed = subprocess.run(["git", "status", "--porcelain", "--", "../src", "*.py"], cwd=here,
                                 capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    head = done.stdout.strip()
    return (head + "+changes" if changed.stdout.strip() else head) or None
