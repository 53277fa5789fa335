"""soundalike serve: a real server on a port, refused binds and ports in use."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soundalike.app.cli import app as cli_app
from soundalike.app.server.run import background_server


def test_serve_refuses_a_public_bind_without_a_token(root: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--library", str(root / "lib"), "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "--token" in result.output


def test_serve_refuses_a_port_in_use(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli_app, ["serve", "--library", str(root / "lib"), "--port", str(port)])
    assert result.exit_code != 0 and "in use" in result.output


def test_serve_command_runs_a_real_server(root: Path) -> None:
    with background_server(root / "lib") as server:
        url = server.url
        with urllib.request.urlopen(f"{url}/api/tracks?limit=2") as answer:
            assert json.load(answer)["total"] == 12
        request = urllib.request.Request(f"{url}/api/tracks", headers={"Host": "attacker.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 421
