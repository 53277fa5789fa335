"""The command line's continue and path commands."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from helpers import library_tracks
from soundalike.app.cli import app


def test_cli_continue_and_path(styled: Path, tmp_path: Path) -> None:
    t = library_tracks(styled)
    playlist = tmp_path / "p.m3u"
    playlist.write_text("\n".join(x.path for x in t[:3]) + "\nmissing.ogg\n")
    lib = str(styled / "lib")
    res = CliRunner().invoke(app, ["continue", str(playlist), "-k", "4", "--library", lib, "--model", "descriptor",
                                   "--score", "topk", "-f", "json", "--max-per-album", "2"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert len(payload["results"]) == 4 and len(payload["playlist"]["tracks"]) == 3
    albums = [r["album"] for r in payload["results"]]
    assert max(albums.count(a) for a in albums) <= 2
    assert "skip" in res.stderr and "missing.ogg" in res.stderr
    res = CliRunner().invoke(app, ["path", str(t[0].id), str(t[-1].id), "-n", "5", "--library", lib, "--model",
                                   "descriptor", "-f", "m3u"])
    assert res.exit_code == 0, res.output
    paths = [line for line in res.stdout.splitlines() if line and not line.startswith("#")]
    assert paths[0] == t[0].path and paths[-1] == t[-1].path and len(paths) == 5
    res = CliRunner().invoke(app, ["continue", str(tmp_path / "none.m3u"), "--library", lib])
    assert res.exit_code == 2 and "no such playlist file" in res.stderr
    res = CliRunner().invoke(app, ["similar", str(t[0].id), "--library", lib, "--model", "descriptor",
                                   "--no-same-artist", "-f", "json"])
    assert res.exit_code == 0 and all(r["artist"] != t[0].artist for r in json.loads(res.stdout)["results"])

