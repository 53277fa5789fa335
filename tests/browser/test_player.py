"""The page as a player: one audio element, a queue with auto-advance, radio, Media Session, albums and artists
with cover art, playlists stored on the server, clear messages for missing files, the map legend, a phone."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from soundalike.library.catalog import Library

STATE = "() => window.soundalikePlayer.state()"


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(STATE)
    return state


def _shot(page: Any, path: Path, **options: Any) -> None:
    """A screenshot without a passing notice in it; a full-page one with the player bar at the end, not over it."""
    page.evaluate("() => { document.querySelector('#toast').className = ''; }")
    full = options.get("full_page", False)
    if full:
        page.evaluate("() => { document.querySelector('#player-bar').style.position = 'static'; }")
    page.screenshot(path=str(path), animations="disabled", **options)
    if full:
        page.evaluate("() => { document.querySelector('#player-bar').style.position = ''; }")


def _wait_index(page: Any, index: int) -> None:
    page.wait_for_function(f"() => window.soundalikePlayer.state().index === {index}")


def _wait_playing(page: Any) -> None:
    page.wait_for_function("() => { const a = document.querySelector('#player');"
                           " return !a.paused && a.currentTime > 0; }")


def test_queue_next_previous_pause_and_auto_advance(page: Any, server_url: str, screenshots: Path) -> None:
    expect = _expect()
    page.goto(server_url)
    rows = page.locator("#track-list li")
    expect(rows).to_have_count(12)
    ids = [int(x) for x in page.eval_on_selector_all("#track-list li", "rs => rs.map((r) => r.dataset.trackId)")]
    # With nothing queued, ≡+ readies the track: ▶ in the player bar plays it.
    expect(page.locator("#play-pause")).to_be_disabled()
    rows.nth(3).locator("button.enqueue").click()
    expect(page.locator("#now-title")).to_have_text(rows.nth(3).locator("a.title").inner_text())
    page.click("#play-pause")
    _wait_playing(page)
    assert _state(page)["trackId"] == ids[3]
    # ▶ on a row plays the listed tracks from that row: they become the queue.
    rows.nth(0).locator("button.play").click()
    _wait_playing(page)
    page.wait_for_function(f"() => window.soundalikePlayer.state().trackId === {ids[0]}")
    state = _state(page)
    assert state["ids"] == ids and state["index"] == 0
    expect(rows.nth(0)).to_have_class("track-row playing")
    expect(page.locator("#queue-count")).to_have_text("11")
    # ▶ on the playing track pauses it and plays on from there: it does not restart.
    rows.nth(0).locator("button.play").click()
    page.wait_for_function("() => document.querySelector('#player').paused")
    position = page.evaluate("() => document.querySelector('#player').currentTime")
    assert position > 0
    expect(rows.nth(0).locator("button.play")).to_have_text("▶")
    rows.nth(0).locator("button.play").click()
    _wait_playing(page)
    assert page.evaluate("() => document.querySelector('#player').currentTime") >= position
    # Next and previous, from the player bar; the highlight follows.
    page.click("#next")
    _wait_index(page, 1)
    expect(rows.nth(1)).to_have_class("track-row playing")
    expect(rows.nth(0)).to_have_class("track-row")
    page.click("#prev")
    _wait_index(page, 0)
    # At the end of a track the next one starts by itself.
    _wait_playing(page)
    page.evaluate("() => { const a = document.querySelector('#player'); a.currentTime = a.duration - 0.2; }")
    _wait_index(page, 1)
    _wait_playing(page)
    _shot(page, screenshots / "10-player.png")
    # The queue page lists it, the playing entry marked; ≡+ adds at the end.
    rows.nth(5).locator("button.enqueue").click()
    page.click("nav a[data-nav=queue]")
    queue_rows = page.locator("#queue-list li")
    expect(queue_rows).to_have_count(13)
    expect(queue_rows.nth(1)).to_have_class("track-row playing")
    assert queue_rows.nth(12).get_attribute("data-track-id") == str(ids[5])
    # One audio element for the whole page, whatever the view.
    page.click("#queue-list li >> nth=2 >> a.title")
    page.wait_for_selector("#track-title")
    assert page.evaluate("() => document.querySelectorAll('audio').length") == 1
    # The queue survives a reload (ready to play, not playing on its own).
    page.reload()
    page.wait_for_selector("#now-title")
    assert _state(page)["index"] == 1 and len(_state(page)["ids"]) == 13


def test_radio_continues_the_queue_with_songs_that_sound_alike(page: Any, server_url: str) -> None:
    expect = _expect()
    page.goto(server_url)
    first = page.locator("#track-list li a.title").first
    first.click()
    page.wait_for_selector("#track-play")
    track_id = int(page.locator("#track").get_attribute("data-track-id"))
    page.click("#track-radio")
    page.wait_for_function("() => window.soundalikePlayer.state().ids.length >= 6")
    state = _state(page)
    assert state["radio"] and state["ids"][0] == track_id and state["index"] == 0
    assert len(set(state["ids"])) == len(state["ids"])
    expect(page.locator("#radio")).to_have_attribute("aria-pressed", "true")
    # Near the end of the queue, radio adds more (never a song already queued).
    page.evaluate(f"() => window.soundalikePlayer.playAt({len(state['ids']) - 1})")
    page.wait_for_function(f"() => window.soundalikePlayer.state().ids.length > {len(state['ids'])}")
    more = _state(page)["ids"]
    assert more[:len(state["ids"])] == state["ids"] and len(set(more)) == len(more)
    # Radio off: the queue stops at its end.
    page.click("#radio")
    expect(page.locator("#radio")).to_have_attribute("aria-pressed", "false")
    assert not _state(page)["radio"]


def test_media_session_metadata_and_actions(page: Any, server_url: str) -> None:
    expect = _expect()
    page.goto(f"{server_url}/#/albums")
    page.locator("#album-grid li", has_text="Classical Evenings").locator("a.album-name").click()
    expect(page.locator("#album-tracks li")).to_have_count(2)
    page.click("#album-play")
    _wait_playing(page)
    title = page.locator("#album-tracks li a.title").first.inner_text()
    meta = page.evaluate("() => { const m = navigator.mediaSession.metadata;"
                         " return {title: m.title, artist: m.artist, album: m.album,"
                         " art: m.artwork.map((a) => a.src)}; }")
    assert meta["title"] == title and meta["album"] == page.locator("#album-title").inner_text()
    assert meta["art"] and "/api/cover/" in meta["art"][0]
    handlers = page.evaluate("() => Object.keys(window.soundalikePlayer.mediaHandlers)")
    assert {"play", "pause", "nexttrack", "previoustrack", "seekto"} <= set(handlers)
    # What a media key or the lock screen does.
    page.evaluate("() => window.soundalikePlayer.mediaHandlers.pause()")
    page.wait_for_function("() => document.querySelector('#player').paused")
    assert page.evaluate("() => navigator.mediaSession.playbackState") == "paused"
    page.evaluate("() => window.soundalikePlayer.mediaHandlers.play()")
    _wait_playing(page)
    assert page.evaluate("() => navigator.mediaSession.playbackState") == "playing"
    assert len(_state(page)["ids"]) == 2
    page.evaluate("() => window.soundalikePlayer.mediaHandlers.nexttrack()")
    _wait_index(page, 1)
    second = page.locator("#album-tracks li a.title").nth(1).inner_text()
    page.wait_for_function("t => navigator.mediaSession.metadata.title === t", arg=second)
    expect(page.locator("#album-tracks li").nth(1)).to_have_class("track-row playing")
    page.evaluate("() => window.soundalikePlayer.mediaHandlers.previoustrack()")
    _wait_index(page, 0)
    page.wait_for_function("t => navigator.mediaSession.metadata.title === t", arg=title)
    page.evaluate("() => window.soundalikePlayer.mediaHandlers.seekto({seekTime: 2})")
    assert abs(page.evaluate("() => document.querySelector('#player').currentTime") - 2) < 0.5
    expect(page.locator("#now-title")).to_be_visible()


def test_albums_and_artists_with_cover_art(page: Any, server_url: str, screenshots: Path) -> None:
    expect = _expect()
    page.goto(server_url)
    page.click("nav a[data-nav=albums]")
    cards = page.locator("#album-grid li")
    expect(cards).to_have_count(8)
    page.wait_for_function("() => [...document.querySelectorAll('#album-grid img')].every((i) => i.complete"
                           " && i.naturalWidth > 0)")
    _shot(page, screenshots / "11-albums.png", full_page=True)
    # An album with a folder.jpg shows it; one without shows the neutral placeholder.
    kinds = page.evaluate("""async () => Promise.all([...document.querySelectorAll('#album-grid li')].map(
      async (li) => {
        const r = await fetch(li.querySelector('img').src);
        return [li.querySelector('.album-name').textContent, r.headers.get('content-type')]; }))""")
    by_name = dict(kinds)
    assert by_name["Ambient Weather"] == "image/jpeg" and by_name["Chiptune Adventures"] == "image/jpeg", by_name
    assert by_name["Warehouse Techno"] == "image/svg+xml", by_name
    page.locator("#album-grid li", has_text="Ambient Weather").locator("a.album-name").click()
    expect(page.locator("#album-title")).to_have_text("Ambient Weather")
    tracks = page.locator("#album-tracks li")
    expect(tracks).to_have_count(2)
    page.wait_for_function("() => { const i = document.querySelector('#album-cover');"
                           " return i.complete && i.naturalWidth > 0; }")
    page.click("#album-play")
    _wait_playing(page)
    ids = [int(x) for x in page.eval_on_selector_all("#album-tracks li", "rs => rs.map((r) => r.dataset.trackId)")]
    assert _state(page)["ids"] == ids
    expect(tracks.nth(0)).to_have_class("track-row playing")
    _shot(page, screenshots / "12-album.png", full_page=True)
    # The artist, from the album; and an album from any track row.
    artist = page.locator("#album-artist").inner_text()
    page.click("#album-artist")
    expect(page.locator("#artist-name")).to_have_text(artist)
    expect(page.locator("#artist-albums li")).to_have_count(1)
    expect(page.locator("#artist-tracks li")).to_have_count(2)
    page.click("nav a[data-nav=artists]")
    expect(page.locator("#artist-list li")).to_have_count(8)
    page.click("nav a[data-nav=library]")
    row = page.locator("#track-list li", has_text="Warehouse Techno").first
    row.locator("a.album-link").click()
    expect(page.locator("#album-title")).to_have_text("Warehouse Techno")
    assert page.url.split("#")[1].startswith("/album/al-")


def test_playlists_are_stored_on_the_server(page: Any, browser: Any, server_url: str, screenshots: Path) -> None:
    expect = _expect()
    page.goto(f"{server_url}/#/playlists")
    page.fill("#new-playlist-name", "Road trip")
    page.click("#new-playlist button")
    expect(page.locator("#playlist-title")).to_have_value("Road trip")
    # An empty playlist has nothing to export: the links download nothing (no HTML page) and say why.
    for link in ("#export-m3u", "#export-m3u-urls"):
        assert page.locator(link).get_attribute("href") is None
        expect(page.locator(link)).to_have_attribute("aria-disabled", "true")
    expect(page.locator("#export-hint")).to_contain_text("Nothing to export")
    page.click("#export-m3u")
    expect(page.locator("#toast")).to_contain_text("empty")
    # + on tracks adds to the playlist opened last.
    page.click("nav a[data-nav=library]")
    rows = page.locator("#track-list li")
    titles = [rows.nth(i).locator("a.title").inner_text() for i in (4, 7, 9)]
    for i in (4, 7, 9):
        rows.nth(i).locator("button.add").click()
        expect(page.locator("#toast")).to_contain_text("“Road trip”")
    expect(page.locator("#playlist-count")).to_have_text("3")
    page.click("nav a[data-nav=playlists]")
    page.locator("#playlist-grid li", has_text="Road trip").locator("a.album-name").click()
    items = page.locator("#playlist li")
    expect(items).to_have_count(3)
    items.nth(2).locator("button.up").click()
    expect(items.nth(1).locator("a.title")).to_have_text(titles[2])
    items.nth(0).locator("button.remove").click()
    expect(items).to_have_count(2)
    page.fill("#playlist-title", "Long road trip")
    page.press("#playlist-title", "Enter")
    expect(page.locator("#playlist-status")).to_contain_text("Renamed")
    assert page.locator("#export-m3u").get_attribute("href")
    page.click("#playlist-play")
    _wait_playing(page)
    expect(items.nth(0)).to_have_class("track-row playing")
    _shot(page, screenshots / "13-playlist.png", full_page=True)
    playlist_url = page.url
    # Another browser (its own storage) sees the same playlist: it is in the catalogue, not in localStorage.
    other = browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(playlist_url)
        expect(fresh.locator("#playlist-title")).to_have_value("Long road trip")
        assert fresh.locator("#playlist li a.title").all_inner_texts() == [titles[2], titles[1]]
        assert fresh.evaluate("() => Object.keys(localStorage).filter((k) => k.toLowerCase().includes('playlist'))") \
            == ["soundalike.currentPlaylist"]
    finally:
        other.close()
    # Delete it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-playlist")
    expect(page.locator("#playlists")).to_be_visible()
    expect(page.locator("#playlist-grid li", has_text="Long road trip")).to_have_count(0)


def test_a_missing_file_says_so(page: Any, server_url: str, web_library: Path) -> None:
    expect = _expect()
    with Library.open(web_library / "lib") as lib:
        track = next(t for t in lib.tracks() if t.title == "Solemn Prelude")
    moved = Path(track.path).with_name("moved away.ogg")
    os.replace(track.path, moved)
    try:
        page.goto(f"{server_url}/#/?q=solemn")
        row = page.locator("#track-list li").first
        row.locator("button.play").click()
        expect(page.locator("#now-problem")).to_contain_text("Can't play “Solemn Prelude”: the file is missing")
        expect(page.locator("#now-playing")).to_have_attribute("role", "alert")
        expect(row).to_have_class("track-row playing broken")
        expect(page.locator("#toast")).to_contain_text("missing")
    finally:
        shutil.move(moved, track.path)
        page.problems.clear()  # the browser logs the 404 answers as console errors


def test_map_legend_lists_every_album_in_distinct_colours(page: Any, server_url: str, screenshots: Path) -> None:
    expect = _expect()
    page.goto(f"{server_url}/#/map")
    page.wait_for_function("() => window.soundalikeMap && window.soundalikeMap.count === 12")
    legend = page.locator("#map-legend li")
    expect(legend).to_have_count(8)  # every album, none hidden
    colours = page.eval_on_selector_all("#map-legend .swatch", "ss => ss.map((s) => s.style.background)")
    assert len(set(colours)) == 8, colours
    _shot(page, screenshots / "14-map.png", full_page=True)
    legend.first.locator("button").click()  # an album picked in the legend stands out
    expect(legend.first).to_have_class("focus")


def test_map_with_many_albums_colours_labelled_clusters(page: Any, server_url: str) -> None:
    expect = _expect()
    count = 120
    fake = {"model": "test", "method": "pca", "count": count, "ids": list(range(1, count + 1)),
            "x": [((i * 37) % 100) / 100 for i in range(count)], "y": [((i * 61) % 100) / 100 for i in range(count)],
            "title": [f"Song {i}" for i in range(count)], "artist": [f"Artist {i % 7}" for i in range(count)],
            "album": [f"Album {i % 40:02d}" for i in range(count)]}
    page.route("**/api/map?*", lambda route: route.fulfill(status=200, content_type="application/json",
                                                            body=json.dumps(fake)))
    page.goto(f"{server_url}/#/map")
    page.wait_for_function(f"() => window.soundalikeMap && window.soundalikeMap.count === {count}")
    expect(page.locator("#map-legend")).to_have_attribute("data-mode", "clusters")
    clusters = page.locator("#map-legend li")
    expect(clusters).to_have_count(12)
    assert all(text.startswith("Mostly Album") for text in clusters.all_inner_texts())
    assert len(set(page.eval_on_selector_all("#map-legend .swatch", "ss => ss.map((s) => s.style.background)"))) == 12
    expect(page.locator("#map-album-list li")).to_have_count(40)  # and still every album, on demand


def test_phone_sized_screen(browser: Any, server_url: str, screenshots: Path) -> None:
    expect = _expect()
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    try:
        page = context.new_page()
        page.goto(server_url)
        expect(page.locator("#track-list li")).to_have_count(12)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # nothing runs off the side
        page.locator("#track-list li button.play").nth(2).tap()
        _wait_playing(page)
        for control in ("#prev", "#play-pause", "#next", "#radio", "#now-title"):
            box = page.locator(control).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844, control
        page.tap("#next")
        _wait_index(page, 3)
        _shot(page, screenshots / "15-phone.png")
        page.goto(f"{server_url}/#/albums")
        expect(page.locator("#album-grid li")).to_have_count(8)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        _shot(page, screenshots / "16-phone-albums.png")
    finally:
        context.close()
