"""The web page in a real browser: search, play, similar tracks, playlist builder and export, map, file drop."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from helpers import make_signal, write_audio
from soundalike.app.server.run import background_server
from soundalike.library.catalog import Library

TOKEN = "browser-test-token"

DROP_FILE = """([data, name, type]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  return transfer;
}"""


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _wait_audio_loaded(page: Any, selector: str) -> dict[str, float]:
    """Wait until the audio element has its metadata (readyState >= 1, a duration); return both."""
    page.wait_for_function(f"() => {{ const a = document.querySelector('{selector}');"
                           " return a && a.readyState >= 1 && a.duration > 0; }")
    state: dict[str, float] = page.eval_on_selector(selector, "a => ({ready: a.readyState, duration: a.duration, "
                                                              "error: a.error ? a.error.code : 0})")
    return state


def test_open_the_page_and_search(page: Any, server_url: str, screenshots: Path) -> None:
    expect = _expect()
    page.goto(server_url)
    expect(page.locator("#track-list li")).to_have_count(12)
    expect(page.locator("h1")).to_contain_text("Library · 12 tracks")
    page.screenshot(path=str(screenshots / "01-library.png"), full_page=True)
    page.fill("#search", "chip")
    page.press("#search", "Enter")
    expect(page.locator("h1")).to_contain_text("3 tracks matching")
    expect(page.locator("#track-list li")).to_have_count(3)
    assert page.url.endswith("#/?q=chip")
    page.screenshot(path=str(screenshots / "02-search.png"), full_page=True)


def test_play_a_track(page: Any, server_url: str, screenshots: Path) -> None:
    expect = _expect()
    page.goto(server_url)
    row = page.locator("#track-list li").first
    title = row.locator("a.title").inner_text()
    row.locator("button.play").click()
    state = _wait_audio_loaded(page, "#player")
    assert state["duration"] > 5.0 and state["error"] == 0
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0")  # it really plays
    expect(page.locator("#now-title")).to_have_text(title)
    expect(row).to_have_class("track-row playing")
    page.screenshot(path=str(screenshots / "03-playing.png"))


def test_track_page_with_spectrogram_and_similar_tracks(page: Any, server_url: str, screenshots: Path) -> None:
    expect = _expect()
    page.goto(server_url)
    first = page.locator("#track-list li a.title").first
    title = first.inner_text()
    first.click()
    expect(page.locator("#track-title")).to_have_text(title)
    page.click("#track-play")  # the page's one player plays it
    assert _wait_audio_loaded(page, "#player")["duration"] > 5.0
    assert page.evaluate("() => document.querySelectorAll('audio').length") == 1
    page.wait_for_function("() => { const i = document.querySelector('#spectrogram');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    results = page.locator("#similar ol li")
    expect(results).to_have_count(10)
    scores = [float(s) for s in results.locator(".score .value").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    page.wait_for_function("() => document.querySelectorAll('#similar-model option').length > 1")
    values = page.eval_on_selector_all("#similar-model option", "os => os.map((o) => o.value)")
    assert values[0] == "default" and "descriptor" in values, values
    labels = page.locator("#similar-model option").all_inner_texts()
    assert labels[0] == "Sounds like (recommended)", labels  # in a listener's words; the ids on demand
    page.click("#track details.how summary")
    expect(page.locator("#similar-how")).to_contain_text("Model ")
    page.screenshot(path=str(screenshots / "04-track-similar.png"), full_page=True)
    # Every distance the page offers works with the default model (segment sequences of its parts).
    for distance in ("dtw", "frechet", "minpoint", "mean", "cosine"):
        with page.expect_response(lambda r, d=distance: f"distance={d}" in r.url) as answer:
            page.select_option("#similar-distance", distance)
        assert answer.value.status == 200, (distance, answer.value.text())
        expect(results).to_have_count(10)
    # The descriptors describe whole tracks: the page does not offer segment distances with them.
    page.select_option("#similar-model", "descriptor")
    assert page.locator("#similar-distance option[value=dtw]").is_disabled()
    assert page.locator("#similar-distance").input_value() == "cosine"
    page.select_option("#similar-model", "default")
    assert not page.locator("#similar-distance option[value=dtw]").is_disabled()
    # Every way of comparing the page offers works with every model it offers.
    for value in values:
        page.select_option("#similar-model", value)
        offered = page.eval_on_selector_all("#similar-distance option:not([disabled])", "os => os.map((o) => o.value)")
        assert offered and (value == "descriptor") == (offered == ["cosine"]), (value, offered)
        for distance in offered:
            with page.expect_response(lambda r, d=distance, m=value: f"distance={d}&model={m}" in r.url) as answer:
                page.evaluate("d => { const s = document.querySelector('#similar-distance'); s.value = d;"
                              " s.dispatchEvent(new Event('change')); }", distance)
            assert answer.value.status == 200, (value, distance, answer.value.text())
    page.select_option("#similar-model", "default")
    page.select_option("#similar-distance", "cosine")
    # Every other track, then only those from other albums.
    album = page.locator(".sub.big").inner_text().split(" · ")[1]
    page.select_option("#similar-k", "20")
    expect(results).to_have_count(11)
    with page.expect_response(lambda r: "no_same_album=true" in r.url):
        page.check("#no-same-album")
    page.wait_for_function("""(album) => {
        const subs = [...document.querySelectorAll('#similar ol li .sub')].map((e) => e.textContent);
        return subs.length > 0 && subs.every((s) => !s.endsWith(' · ' + album));
    }""", arg=album)
    # Open a similar track: its own page.
    other = results.first.locator("a.title")
    other_title = other.inner_text()
    other.click()
    expect(page.locator("#track-title")).to_have_text(other_title)


def test_build_reorder_continue_and_export_a_playlist(page: Any, server_url: str, screenshots: Path,
                                                      tmp_path: Path) -> None:
    expect = _expect()
    page.goto(server_url)
    rows = page.locator("#track-list li")
    titles = [rows.nth(i).locator("a.title").inner_text() for i in range(3)]
    for i in range(3):
        rows.nth(i).locator("button.add").click()
        expect(page.locator("#playlist-count")).to_have_text(str(i + 1))  # stored on the server, one by one
    page.goto(f"{server_url}/#/playlist")  # the playlist opened last
    items = page.locator("#playlist li")
    expect(items).to_have_count(3)
    assert items.locator("a.title").all_inner_texts() == titles
    items.nth(0).locator("button.down").click()  # reorder
    expect(items.nth(0).locator("a.title")).to_have_text(titles[1])
    expect(items.nth(1).locator("a.title")).to_have_text(titles[0])
    page.select_option("#continue-k", "5")
    page.click("#continue")
    expect(page.locator("#playlist-status")).to_contain_text("Added 5 tracks")
    expect(items).to_have_count(8)
    expect(page.locator("#playlist-count")).to_have_text("8")
    page.fill("#playlist-title", "Browser mix")
    page.press("#playlist-title", "Enter")
    expect(page.locator("#playlist-status")).to_contain_text("Renamed to “Browser mix”")
    page.screenshot(path=str(screenshots / "05-playlist.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("#export-m3u")
    target = tmp_path / "export.m3u8"
    download_info.value.save_as(target)
    assert download_info.value.suggested_filename == "Browser mix.m3u8"
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U" and "#PLAYLIST:Browser mix" in lines
    paths = [ln for ln in lines if ln and not ln.startswith("#")]
    assert len(paths) == 8 and all(Path(p).is_file() for p in paths)
    shown = items.locator("a.title").all_inner_texts()
    extinf = [ln.split(",", 1)[1] for ln in lines if ln.startswith("#EXTINF")]
    assert [e.split(" - ", 1)[-1] for e in extinf] == shown  # the order of the page
    # A path from the first to the last says what it inserted and why not more.
    page.fill("#path-n", "8")
    page.click("#make-path")
    expect(page.locator("#playlist-status")).to_contain_text("of the 6 songs between")
    status = page.locator("#playlist-status").inner_text()
    inserted = int(status.split("Inserted ")[1].split(" ")[0])
    expect(items).to_have_count(8 + inserted)
    if inserted < 6:
        assert "already in the playlist" in status or "offered only" in status, status
    # The playlist survives a reload, and another browser sees it too: it is stored in the catalogue.
    page.reload()
    expect(page.locator("#playlist li")).to_have_count(8 + inserted)
    expect(page.locator("#playlist-title")).to_have_value("Browser mix")


def test_map_hover_zoom_and_click_to_play(page: Any, server_url: str, screenshots: Path) -> None:
    expect = _expect()
    page.goto(f"{server_url}/#/map")
    page.wait_for_function("() => window.soundalikeMap && window.soundalikeMap.count === 12")
    canvas = page.locator("#map-canvas")
    box = canvas.bounding_box()
    track_id = page.evaluate("() => window.soundalikeMap.ids[3]")
    x, y = page.evaluate(f"() => window.soundalikeMap.position({track_id})")
    page.mouse.move(box["x"] + x, box["y"] + y)
    expect(page.locator("#map-tip")).to_have_class("tip show")
    page.mouse.click(box["x"] + x, box["y"] + y)
    expect(page.locator("#map-picked .picked")).to_be_visible()
    page.wait_for_function(f"() => document.querySelector('#player').src.includes('/api/tracks/{track_id}/audio')")
    assert _wait_audio_loaded(page, "#player")["duration"] > 5.0
    page.screenshot(path=str(screenshots / "06-map.png"), full_page=True)
    page.click("#zoom-in")
    x2, y2 = page.evaluate(f"() => window.soundalikeMap.position({track_id})")
    assert (x2, y2) != (x, y)  # the view zoomed
    page.click("#zoom-reset")
    assert page.evaluate(f"() => window.soundalikeMap.position({track_id})") == [x, y]
    page.click("#map-picked a.button")
    expect(page.locator("#track")).to_have_attribute("data-track-id", str(track_id))


def test_zooming_a_sampled_map_asks_the_server_for_the_window_in_view(page: Any, web_library: Path,
                                                                      screenshots: Path) -> None:
    expect = _expect()
    with background_server(web_library / "lib", "--map-points", "4") as server:  # 12 tracks: a sampled map
        page.goto(f"{server.url}/#/map")
        page.wait_for_function("() => window.soundalikeMap && window.soundalikeMap.count === 4")
        assert page.evaluate("() => window.soundalikeMap.sampled && window.soundalikeMap.total === 12")
        expect(page.locator("#map-info")).to_contain_text("4 of 12 tracks shown")
        overview = page.evaluate("() => [...window.soundalikeMap.ids]")
        with page.expect_request(lambda r: "/api/map?" in r.url and "x0=" in r.url) as asked:
            page.click("#zoom-in")
        box = {k: float(v[0]) for k, v in parse_qs(urlparse(asked.value.url).query).items() if k in "x0x1y0y1"}
        assert 0 < box["x0"] < 0.5 < box["x1"] < 1 and 0 < box["y0"] < 0.5 < box["y1"] < 1, box  # the middle
        window = asked.value.response().json()
        assert window["window"] == [box["x0"], box["x1"], box["y0"], box["y1"]] and window["total"] == 12
        page.wait_for_function("() => window.soundalikeMap.windowsLoaded >= 1 && window.soundalikeMap.window")
        shown = page.evaluate("() => [...window.soundalikeMap.ids]")
        assert set(window["ids"]) <= set(shown) and set(overview) <= set(shown)  # the window's points drawn too
        assert len(shown) == len(set(overview) | set(window["ids"]))
        with page.expect_request(lambda r: "x0=" in r.url) as dragged:  # a drag asks for the new view as well
            canvas = page.locator("#map-canvas").bounding_box()
            page.mouse.move(canvas["x"] + 300, canvas["y"] + 300)
            page.mouse.down()
            page.mouse.move(canvas["x"] + 200, canvas["y"] + 250, steps=5)
            page.mouse.up()
        moved = {k: float(v[0]) for k, v in parse_qs(urlparse(dragged.value.url).query).items() if k in "x0x1y0y1"}
        assert moved["x0"] > box["x0"] and moved["y1"] < box["y1"]  # dragged left and up: the view moved right, down
        page.click("#zoom-reset")  # the whole map again: the overview
        page.wait_for_function("() => window.soundalikeMap.count === 4 && window.soundalikeMap.window === null")
        # Zoom in with the wheel on a track the overview does not show: it appears once the view rests.
        with urllib.request.urlopen(f"{server.url}/api/map?x0=0&x1=1&y0=0&y1=1&limit=12") as answer:
            every = json.load(answer)
        target = max((i for i in every["ids"] if i not in overview), key=lambda i: every["y"][every["ids"].index(i)])
        x, y = (every[axis][every["ids"].index(target)] for axis in ("x", "y"))
        page.locator("#map-canvas").scroll_into_view_if_needed()
        box_px = page.locator("#map-canvas").bounding_box()  # the highest such track: on screen
        pad = 24
        page.mouse.move(box_px["x"] + pad + x * (box_px["width"] - 2 * pad),
                        box_px["y"] + pad + (1 - y) * (box_px["height"] - 2 * pad))
        for _ in range(8):
            page.mouse.wheel(0, -100)
        page.wait_for_function(f"() => window.soundalikeMap.ids.includes({target})")
        count = page.evaluate("() => window.soundalikeMap.count")
        assert count > 4 and f"{count} of 12 tracks shown" in page.locator("#map-info").inner_text()
        page.screenshot(path=str(screenshots / "06b-map-window.png"), full_page=True)


def test_drop_a_file_to_find_what_sounds_like_it(page: Any, server_url: str, screenshots: Path,
                                                 web_library: Path, tmp_path: Path) -> None:
    expect = _expect()
    page.goto(server_url)
    expect(page.locator("#track-list li")).to_have_count(12)
    song = write_audio(tmp_path / "my demo.wav", make_signal(5.0, 220.0, seed=5))
    data = base64.b64encode(song.read_bytes()).decode()
    transfer = page.evaluate_handle(DROP_FILE, [data, song.name, "audio/wav"])
    page.dispatch_event("#view", "dragenter", {"dataTransfer": transfer})
    expect(page.locator("#drop-overlay")).to_have_class("show")
    page.dispatch_event("#view", "drop", {"dataTransfer": transfer})
    # The first upload analyses the file and loads the default model: seconds on a loaded machine.
    expect(page.locator("#upload-heading")).to_have_text("Sounds like my demo.wav", timeout=30_000)
    expect(page.locator("#upload-results ol li")).to_have_count(12, timeout=30_000)  # k=20, a 12-track library
    page.screenshot(path=str(screenshots / "07-upload.png"), full_page=True)
    # A library file under another name is recognised; a broken file is refused with a short message.
    with Library.open(web_library / "lib") as lib:
        twin = lib.tracks()[0]
    data = base64.b64encode(Path(twin.path).read_bytes()).decode()
    page.dispatch_event("#view", "drop", {"dataTransfer": page.evaluate_handle(DROP_FILE, [data, "copy.bin", ""])})
    expect(page.locator("#upload-results .ok")).to_contain_text(twin.title, timeout=30_000)  # analysed again
    broken = base64.b64encode(b"not audio" * 400).decode()
    page.dispatch_event("#view", "drop", {"dataTransfer": page.evaluate_handle(DROP_FILE, [broken, "bad.mp3", ""])})
    expect(page.locator("#upload-results .error-box")).to_contain_text("bad.mp3", timeout=30_000)
    page.screenshot(path=str(screenshots / "08-upload-refused.png"))
    page.problems.clear()  # the browser logs the 415 answer as a console error


def test_token_server_asks_for_the_token_and_keeps_it_out_of_the_address(browser: Any, web_library: Path,
                                                                         screenshots: Path) -> None:
    expect = _expect()
    with background_server(web_library / "lib", "--token", TOKEN) as server:
        url = server.url
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        expect(page.locator("#token-form")).to_be_visible()
        expect(page.locator("#token-error")).to_have_count(0)  # nothing was tried yet
        page.screenshot(path=str(screenshots / "09-token-form.png"))
        page.fill("#token-input", "not-the-token")
        page.click("#token-form button")
        expect(page.locator("#token-error")).to_contain_text("not accepted")  # a wrong token says so
        page.goto(f"{url}/?token={TOKEN}")
        expect(page.locator("#track-list li")).to_have_count(12)
        assert "token" not in page.url
        page.locator("#track-list li button.play").first.click()
        assert _wait_audio_loaded(page, "#player")["duration"] > 5.0  # <audio src> carries the token
        context.close()
