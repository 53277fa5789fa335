"""Decoder fuzz: mutated real files of every format end as a track or a typed error, never a failed scan; and the
API fuzzed from its OpenAPI document never answers 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import faults as campaign
from soundalike import synth
from soundalike.library.catalog import Library
from soundalike.library.scan import scan

SOURCES = [synth.render_track(style, seed=i, duration=3.0) for i, style in enumerate(("techno", "classical"))]


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.lists(st.tuples(st.integers(0, 2 * len(campaign.FORMATS) - 1), st.integers(0, 2**32 - 1)),
                min_size=10, max_size=10))
def test_mutated_files_end_as_tracks_or_typed_errors(plan: list[tuple[int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (which, seed) in enumerate(plan):
            fmt = campaign.FORMATS[which % len(campaign.FORMATS)]
            clean = root / "clean" / f"{i}.{fmt}"
            synth.write_track(clean, SOURCES[which // len(campaign.FORMATS)], 22050, artist="A", album="B",
                              title=str(i))
            mutated = root / "music" / f"m{i}.{fmt}"
            mutated.parent.mkdir(parents=True, exist_ok=True)
            mutated.write_bytes(campaign.mutate(clean.read_bytes(), np.random.default_rng(seed)))
        with Library.open(root / "lib") as lib:
            summary = scan(lib, [root / "music"], jobs=2)  # in worker processes: a native crash is an error
            statuses = dict(lib.conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall())
        assert sum(statuses.values()) == len(plan) == summary.found
        assert summary.analysed + summary.linked + len(summary.problems) == len(plan)
        assert all(p.kind and p.reason for p in summary.problems)


def test_the_api_never_answers_5xx(styled: Path) -> None:
    result = campaign.api_run(styled / "lib", max_examples=3)
    assert result["operations"] >= 18 and result["requests"] >= 40
    assert result["server_errors"] == 0, result["failures"]
