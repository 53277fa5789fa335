"""Browser tests: Playwright driving Debian's chromium (headless) against a real ``soundalike serve``.

Chromium comes from the system (``apt-get install chromium``, which ``.ci/run`` does), never from Playwright's own
download. Without it these tests skip and say why. Screenshots go to ``test-artifacts/screenshots/`` (or
``$SOUNDALIKE_ARTIFACTS/screenshots``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli
from soundalike.app.server.run import background_server

STYLES = ["techno", "ambient", "chiptune", "classical"]


def chromium_executable() -> str | None:
    """Debian's chromium (or ``$SOUNDALIKE_CHROMIUM``), if installed."""
    for candidate in (os.environ.get("SOUNDALIKE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every browser test, with the reason, when chromium or Playwright is missing."""
    reason = None
    if chromium_executable() is None:
        reason = "chromium is not installed (apt-get install chromium; .ci/run does it)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[dev]')"
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where screenshots are kept as test artifacts."""
    base = Path(os.environ.get("SOUNDALIKE_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
    folder = base / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


COVERED = {"ambient": ((38, 70, 140), (120, 200, 220)), "chiptune": ((200, 60, 90), (250, 190, 70))}


def cover_jpeg(top: tuple[int, int, int], bottom: tuple[int, int, int], size: int = 300) -> bytes:
    """A small album cover: a vertical gradient with a light disc."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    for y in range(size):
        t = y / (size - 1)
        draw.line([(0, y), (size, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    draw.ellipse([size * 0.3, size * 0.3, size * 0.7, size * 0.7], outline=(255, 255, 255), width=size // 40)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


@pytest.fixture(scope="package")
def web_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic library of 12 tracks in 8 albums (wav, ogg, mp3), indexed by ``soundalike index`` as a user
    would: descriptors and the shipped default model. The ambient and chiptune folders have a ``folder.jpg``."""
    from soundalike import synth

    root = tmp_path_factory.mktemp("web")
    synth.make_library(root / "music", styles=STYLES, tracks_per_style=3, duration=6.0, seed=11)
    for style, (top, bottom) in COVERED.items():
        (root / "music" / style / "folder.jpg").write_bytes(cover_jpeg(top, bottom))
    code, out, err = run_cli("index", str(root / "music"), "--library", str(root / "lib"), "--jobs", "1")
    assert code == 0, out + err
    return root


@pytest.fixture(scope="package")
def server_url(web_library: Path) -> Iterator[str]:
    """A real ``soundalike serve`` on a free loopback port."""
    with background_server(web_library / "lib") as server:
        yield server.url


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Headless chromium; no sandbox when running as root (containers, CI)."""
    from playwright.sync_api import sync_playwright

    args = ["--autoplay-policy=no-user-gesture-required", "--mute-audio"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), headless=True, args=args)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (own storage: an empty playlist) that fails the test on any script error or console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.problems = problems  # tests that expect an error response clear it
    yield page
    context.close()
    assert not problems, problems
