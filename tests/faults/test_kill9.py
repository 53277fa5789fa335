"""kill -9 at random moments of `soundalike index` (scan and embedding) on a mixed library: every resumed run equals
an uninterrupted one, and no worker outlives the killed scan. The full campaign (50 kills): benchmarks/faults.py."""

from __future__ import annotations

from pathlib import Path

import pytest

import faults as campaign


def _check(result: dict) -> None:  # type: ignore[type-arg]
    assert result["failures"] == [], result["failures"]
    assert (result["tracks_lost"], result["tracks_duplicated"], result["mismatches"], result["orphaned_workers"]) \
        == (0, 0, 0, 0)


def test_resumed_scans_equal_an_uninterrupted_one(tmp_path: Path) -> None:
    # Kills before 0.7 x the reference time: a loaded machine can make a trial faster than the reference run.
    result = campaign.kill_campaign(tmp_path, trials=3, seed=1, latest=0.7)
    _check(result)
    assert result["trials"] == 3 and result["faults_injected"] >= 2


@pytest.mark.slow
def test_fifty_kills(tmp_path: Path) -> None:
    result = campaign.kill_campaign(tmp_path, trials=50, seed=0)
    _check(result)
    assert result["faults_injected"] >= 45
