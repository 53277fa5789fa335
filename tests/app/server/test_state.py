"""Server state: caches follow the catalogue while soundalike index adds tracks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from helpers import synth_library
from soundalike.app.server.app import create_app


# --- reliability --------------------------------------------------------------------------------------------------
def test_server_answers_while_index_adds_tracks(tmp_path: Path) -> None:
    from soundalike import synth

    root = synth_library(tmp_path, ["techno", "ambient"], tracks_per_style=2, duration=4.0, seed=3)
    synth.make_library(tmp_path / "more", styles=["chiptune", "classical"], tracks_per_style=3, duration=4.0,
                       seed=4)
    errors: list[str] = []
    totals: list[int] = []
    with TestClient(create_app(root / "lib", refresh_seconds=0.0), raise_server_exceptions=False) as c:
        first = c.get("/api/tracks").json()["items"][0]["track_id"]
        indexer = subprocess.Popen([sys.executable, "-m", "soundalike", "index", str(tmp_path / "more"),
                                    "--library", str(root / "lib"), "--jobs", "1"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while indexer.poll() is None or len(totals) < 5:
            for url in ("/api/tracks", f"/api/tracks/{first}/similar?k=3", "/api/map", f"/api/tracks/{first}"):
                answer = c.get(url)
                if answer.status_code != 200:
                    errors.append(f"{url}: {answer.status_code} {answer.text[:200]}")
            totals.append(c.get("/api/tracks").json()["total"])
        assert indexer.returncode == 0, indexer.stderr.read().decode() if indexer.stderr else ""
        assert not errors
        final = c.get("/api/tracks").json()
        assert final["total"] == 10 and totals[0] == 4 and totals == sorted(totals)
        newest = max(t["track_id"] for t in final["items"])
        assert c.get(f"/api/tracks/{newest}/similar", params={"k": 3}).status_code == 200
        assert c.get("/api/map").json()["count"] == 10
