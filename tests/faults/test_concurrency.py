"""One library, many users: serve answers while index adds tracks and train trains and embeds (each writer waits
for the other's lock): no server error, both finish, and the catalogue equals a serial run's."""

from __future__ import annotations

from pathlib import Path

import faults as campaign


def test_serve_index_and_train_at_once(tmp_path: Path) -> None:
    result = campaign.concurrency_run(tmp_path)
    assert (result["index_exit"], result["train_exit"]) == (0, 0), (result["index_stderr"], result["train_stderr"])
    assert result["requests"] > 50 and result["server_errors"] == 0 and result["client_errors"] == 0
    assert result["trained_model_embedded"] and result["problems"] == []
    assert (result["tracks_lost"], result["tracks_duplicated"]) == (0, 0)
