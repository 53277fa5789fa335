"""Progress bars: count, percentage, rate and ETA."""

from __future__ import annotations

import io

from rich.console import Console

from soundalike.app.progress import progress_bar


def test_progress_bar_shows_count_percent_and_rate() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with progress_bar("analysing", console=console) as update:
        for done in range(1, 5):
            update("analyse", done, 4)
    text = buffer.getvalue()
    assert "analysing" in text and "4/4" in text and "100%" in text and "files/s" in text and "ETA" in text
