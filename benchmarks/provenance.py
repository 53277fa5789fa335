"""Where a benchmark's figures come from: the commit of the code measured, written into every result JSON."""

from __future__ import annotations

import subprocess
from pathlib import Path


def commit() -> str | None:
    """The short commit of the checkout these benchmarks run from (None outside a git checkout)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
