// soundalike web page: plain JavaScript, no build step, no external resources.
// Every piece of library data is put in the page with textContent (never as HTML): tags are untrusted input.
"use strict";

(() => {
  // ---------------------------------------------------------------- token, API calls
  const TOKEN_KEY = "soundalike.token";
  const OLD_PLAYLIST_KEY = "soundalike.playlist";  // playlists lived in the browser before they were stored on the server
  const CURRENT_PLAYLIST_KEY = "soundalike.currentPlaylist";
  const QUEUE_KEY = "soundalike.queue";
  const PAGE_SIZE = 50;
  const RADIO_LOW = 2;  // radio adds songs when fewer than this many are left after the playing one
  const RADIO_ADD = 5;

  const url = new URL(window.location.href);
  if (url.searchParams.has("token")) {
    localStorage.setItem(TOKEN_KEY, url.searchParams.get("token"));
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);  // keep the token out of history
  }
  const token = () => localStorage.getItem(TOKEN_KEY) || "";

  /** A media URL (audio, image, download) with the token as a query parameter when there is one. */
  function withToken(path) {
    const t = token();
    if (!t) return path;
    return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(t);
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (token()) headers.Authorization = "Bearer " + token();
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      options = Object.assign({}, options, { body: JSON.stringify(options.json) });
    }
    const response = await fetch(path, Object.assign({}, options, { headers }));
    let body = null;
    const type = response.headers.get("content-type") || "";
    if (type.includes("json")) body = await response.json();
    if (response.status === 401) { showTokenForm(); throw new ApiError(401, "this server needs its token"); }
    if (!response.ok) throw new ApiError(response.status, (body && body.detail) || response.statusText);
    return { status: response.status, body };
  }

  // Only the newest of overlapping requests of one kind may update the page: a slow answer to an older request
  // must not overwrite a newer one. ticket(kind) returns a function that tells whether its request is still the newest.
  const tickets = {};
  function ticket(kind) {
    const mine = (tickets[kind] = (tickets[kind] || 0) + 1);
    return () => tickets[kind] === mine;
  }

  // ---------------------------------------------------------------- DOM helpers
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") node.style.cssText = value;  // CSSOM: allowed by the page's CSP, unlike markup
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const $ = (sel, root = document) => root.querySelector(sel);
  const view = () => $("#view");

  /** Replace a node's children, skipping null/false (optional parts). */
  function fill(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  }

  function setView(...children) {
    const main = view();
    fill(main, ...children);
    main.focus({ preventScroll: true });
    markPlaying();
  }

  function toast(message, isError = false) {
    const box = $("#toast");
    box.textContent = message;
    box.className = isError ? "show error" : "show";
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.className = ""; }, isError ? 6000 : 2500);
  }

  function errorBox(err) {
    return el("p", { class: "error-box", role: "alert", text: err.message || String(err) });
  }

  function duration(seconds) {
    const s = Math.round(seconds || 0);
    if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  function label(track) {
    return track.artist ? `${track.artist} — ${track.title}` : track.title;
  }

  /** A cover image (the server answers a neutral placeholder when an item has none). */
  function cover(itemId, size, extra = {}) {
    return el("img", Object.assign({ class: "cover", alt: "", loading: "lazy", width: size, height: size,
      src: withToken(`/api/cover/${itemId}?placeholder=true&size=${size >= 200 ? 400 : 160}`) }, extra));
  }

  function showTokenForm() {
    const rejected = token() !== "";  // a token was sent and refused: say so
    if ($("#token-form") && (!rejected || $("#token-error"))) return;
    const input = el("input", { type: "password", id: "token-input", placeholder: "token", "aria-label": "Token" });
    const form = el("form", { id: "token-form", class: "card", onsubmit: (event) => {
      event.preventDefault();
      localStorage.setItem(TOKEN_KEY, input.value.trim());
      route();
    } }, el("h2", { text: "This server needs its token" }),
    rejected ? el("p", { class: "error-box", id: "token-error", role: "alert",
      text: "That token was not accepted. Check it (it is case-sensitive) and try again." }) : null,
    el("p", { class: "muted", text: "Ask whoever started `soundalike serve --token …`, or open the address it printed." }),
    input, el("button", { type: "submit", text: "Use token" }));
    setView(form);
    input.focus();
  }

  // ---------------------------------------------------------------- the player: one audio element, a queue
  const player = $("#player");
  const slim = ({ track_id, title, artist, album, duration }) => ({ track_id, title, artist, album, duration });

  const queue = {
    items: [], index: -1, radio: false, origin: "",
    load() {
      try {
        const saved = JSON.parse(localStorage.getItem(QUEUE_KEY) || "null");
        if (saved && Array.isArray(saved.items)) {
          this.items = saved.items; this.index = Math.min(saved.index ?? -1, saved.items.length - 1);
          this.radio = !!saved.radio; this.origin = saved.origin || "";
        }
      } catch { /* a broken saved queue: start empty */ }
    },
    save() {
      localStorage.setItem(QUEUE_KEY, JSON.stringify({ items: this.items, index: this.index, radio: this.radio, origin: this.origin }));
      $("#queue-count").textContent = String(Math.max(0, this.items.length - this.index - 1));
    },
    current() { return this.items[this.index] || null; },
  };
  queue.load();

  let autoAdvanced = false;  // the playing track was reached by auto-advance (a missing file is then skipped)
  let playRecorded = false;

  /** Play the queue entry at ``index``. */
  function playAt(index, { auto = false } = {}) {
    if (index < 0 || index >= queue.items.length) return;
    queue.index = index;
    queue.save();
    autoAdvanced = auto;
    playRecorded = false;
    const track = queue.current();
    player.src = withToken(`/api/tracks/${track.track_id}/audio`);
    player.dataset.trackId = track.track_id;
    showNowPlaying(track);
    player.play().catch(() => { /* autoplay may be refused; the controls stay usable */ });
    topUpRadio();
  }

  /** Play ``tracks`` from ``start`` as the new queue (what ▶ on a list row does). */
  function playList(tracks, start = 0, origin = "") {
    queue.items = tracks.map(slim);
    queue.origin = origin;
    playAt(start);
  }

  /** ▶ on a row: pause or resume the track that is playing, else play the row's list from that row. */
  function playOrToggle(track, list, index, origin) {
    const now = queue.current();
    if (now && now.track_id === track.track_id && player.getAttribute("src")) {
      if (player.paused) player.play().catch(() => {}); else player.pause();
      return;
    }
    playList(list || [track], list ? index : 0, origin);
  }

  /** Load a track into the player without playing it (▶ in the player bar starts it). */
  function prepare(track) {
    player.preload = "none";
    player.src = withToken(`/api/tracks/${track.track_id}/audio`);
    player.dataset.trackId = track.track_id;
    showNowPlaying(track);
  }

  function enqueue(tracks, { next = false } = {}) {
    const items = tracks.map(slim);
    if (next && queue.index >= 0) queue.items.splice(queue.index + 1, 0, ...items);
    else queue.items.push(...items);
    if (queue.index < 0 && queue.items.length) { queue.index = 0; prepare(queue.current()); }  // nothing was queued: ready to play
    queue.save();
    toast(next ? `Playing next: ${items.length === 1 ? label(items[0]) : plural(items.length, "track")}`
      : `Added to the queue: ${items.length === 1 ? label(items[0]) : plural(items.length, "track")}`);
    if (location.hash.startsWith("#/queue")) showQueue();
    topUpRadio();
  }

  async function next({ auto = false } = {}) {
    if (queue.index + 1 < queue.items.length) return playAt(queue.index + 1, { auto });
    if (queue.radio && await topUpRadio(true) && queue.index + 1 < queue.items.length) return playAt(queue.index + 1, { auto });
    if (!auto) toast("End of the queue" + (queue.radio ? "" : " — turn on Radio to keep going with songs that sound alike"));
    updateButtons();
  }

  function previous() {
    if (player.currentTime > 3 || queue.index <= 0) { player.currentTime = 0; return; }
    playAt(queue.index - 1);
  }

  let radioBusy = null;
  /** Radio: when the queue runs low, add songs that continue it (the last ten queued songs as the seed). */
  function topUpRadio(force = false) {
    if (!queue.radio || queue.index < 0) return Promise.resolve(false);
    const left = queue.items.length - queue.index - 1;
    if (left >= RADIO_LOW && !force) return Promise.resolve(false);
    if (radioBusy) return radioBusy;
    const seed = queue.items.slice(-10).map((t) => t.track_id);
    radioBusy = api("/api/continue", { method: "POST", json: { track_ids: seed, k: RADIO_ADD } }).then(({ body }) => {
      const known = new Set(queue.items.map((t) => t.track_id));
      const fresh = body.results.filter((r) => !known.has(r.track_id)).map(slim);
      queue.items.push(...fresh);
      queue.save();
      if (fresh.length) toast(`Radio added ${plural(fresh.length, "song")} that sound like the queue`);
      else toast("Radio: every song that sounds like these is already in the queue");
      if (location.hash.startsWith("#/queue")) showQueue();
      updateButtons();
      return fresh.length > 0;
    }).catch((err) => { if (err.status !== 401) toast(`Radio could not add songs: ${err.message}`, true); return false; })
      .finally(() => { radioBusy = null; });
    return radioBusy;
  }

  function setRadio(on) {
    queue.radio = on;
    queue.save();
    updateButtons();
    if (on) { toast("Radio on: when the queue runs low, songs that sound like it are added"); topUpRadio(); }
  }

  function showNowPlaying(track, problem = null) {
    const now = $("#now-playing");
    now.className = problem ? "problem" : "";
    if (problem) now.setAttribute("role", "alert"); else now.removeAttribute("role");
    fill(now,
      cover(track.track_id, 48, { id: "now-cover" }),
      el("span", { class: "now-text" },
        problem ? el("strong", { class: "problem-text", id: "now-problem", text: problem })
          : el("a", { href: `#/track/${track.track_id}`, id: "now-title", text: track.title || "(untitled)" }),
        el("span", { class: "muted sub", text: [track.artist, track.album].filter(Boolean).join(" · ") })));
    setMediaMetadata(track);
    markPlaying();
    updateButtons();
  }

  function updateButtons() {
    const playing = !player.paused && !!player.getAttribute("src");
    const toggle = $("#play-pause");
    toggle.textContent = playing ? "❚❚" : "▶";
    toggle.setAttribute("aria-label", playing ? "Pause" : "Play");
    toggle.title = playing ? "Pause" : "Play";
    toggle.disabled = !queue.current();
    $("#prev").disabled = !queue.current();
    $("#next").disabled = queue.index + 1 >= queue.items.length && !queue.radio;
    const radio = $("#radio");
    radio.setAttribute("aria-pressed", queue.radio ? "true" : "false");
    radio.classList.toggle("on", queue.radio);
    if ("mediaSession" in navigator) navigator.mediaSession.playbackState = playing ? "playing" : (queue.current() ? "paused" : "none");
  }

  /** Highlight every row of the playing track (and its ▶, which then pauses). */
  function markPlaying() {
    const now = queue.current();
    const id = now ? String(now.track_id) : null;
    const playing = !player.paused && !!player.getAttribute("src");
    for (const row of document.querySelectorAll(".track-row")) {
      const mine = id !== null && row.dataset.trackId === id;
      row.classList.toggle("playing", mine);
      if (mine) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
      const button = row.querySelector("button.play");
      if (button) {
        button.textContent = mine && playing ? "❚❚" : "▶";
        button.title = mine && playing ? "Pause" : "Play";
      }
    }
  }

  /** Why the playing file cannot be played: the server's own words when it refuses it. */
  async function explainFailure(track) {
    let reason = "this browser cannot play the file's format";
    try {
      const headers = { Range: "bytes=0-0" };
      if (token()) headers.Authorization = "Bearer " + token();
      const response = await fetch(`/api/tracks/${track.track_id}/audio`, { headers });
      if (!response.ok) {
        const body = (response.headers.get("content-type") || "").includes("json") ? await response.json() : null;
        reason = response.status === 404 ? "the file is missing — moved or deleted since the last scan (run soundalike index again)"
          : (body && body.detail) || response.statusText;
      }
    } catch { reason = "the server cannot be reached"; }
    return reason;
  }

  player.addEventListener("error", async () => {
    const track = queue.current();
    if (!track || !player.getAttribute("src")) return;
    const wasAuto = autoAdvanced;
    const reason = await explainFailure(track);
    if (queue.current() !== track) return;
    const message = `Can't play “${track.title || "(untitled)"}”: ${reason}`;
    showNowPlaying(track, message);
    for (const row of document.querySelectorAll(`.track-row[data-track-id="${track.track_id}"]`)) row.classList.add("broken");
    if (wasAuto && queue.index + 1 < queue.items.length) {
      toast(`${message}. Skipped to the next song.`, true);
      setTimeout(() => { if (queue.current() === track) next({ auto: true }); }, 1500);
    } else toast(message, true);
  });
  player.addEventListener("ended", () => next({ auto: true }));
  for (const type of ["play", "pause", "playing"]) player.addEventListener(type, () => { updateButtons(); markPlaying(); });
  player.addEventListener("timeupdate", () => {
    const track = queue.current();
    if (!track || playRecorded || !player.duration) return;
    if (player.currentTime >= Math.min(player.duration / 2, 240)) {
      playRecorded = true;
      api(`/api/tracks/${track.track_id}/played`, { method: "POST" }).catch(() => { /* a play count is not worth an error */ });
    }
    if ("mediaSession" in navigator && navigator.mediaSession.setPositionState && Number.isFinite(player.duration)) {
      try { navigator.mediaSession.setPositionState({ duration: player.duration, playbackRate: player.playbackRate, position: Math.min(player.currentTime, player.duration) }); } catch { /* ignored */ }
    }
  });

  // Media Session: media keys, headset buttons, the lock screen and the OS media controls.
  const mediaHandlers = {};
  function setMediaHandler(action, handler) {
    mediaHandlers[action] = handler;
    if (!("mediaSession" in navigator)) return;
    try { navigator.mediaSession.setActionHandler(action, handler); } catch { /* an action this browser does not know */ }
  }
  setMediaHandler("play", () => { if (player.getAttribute("src")) player.play().catch(() => {}); else if (queue.current()) playAt(queue.index); });
  setMediaHandler("pause", () => player.pause());
  setMediaHandler("stop", () => { player.pause(); player.currentTime = 0; });
  setMediaHandler("nexttrack", () => next());
  setMediaHandler("previoustrack", () => previous());
  setMediaHandler("seekto", (details) => { if (details && typeof details.seekTime === "number") player.currentTime = details.seekTime; });
  setMediaHandler("seekbackward", (details) => { player.currentTime = Math.max(0, player.currentTime - ((details && details.seekOffset) || 10)); });
  setMediaHandler("seekforward", (details) => { player.currentTime = Math.min(player.duration || 0, player.currentTime + ((details && details.seekOffset) || 10)); });

  function setMediaMetadata(track) {
    if (!("mediaSession" in navigator) || typeof MediaMetadata === "undefined") return;
    const art = new URL(withToken(`/api/cover/${track.track_id}?placeholder=true&size=512`), location.href).href;
    navigator.mediaSession.metadata = new MediaMetadata({
      title: track.title || "(untitled)", artist: track.artist || "", album: track.album || "",
      artwork: [{ src: art, sizes: "512x512" }],
    });
  }
  // For tests and scripts: the queue and the Media Session handlers as the browser's media controls call them.
  window.soundalikePlayer = {
    queue, mediaHandlers, next, previous, playAt,
    state: () => ({ index: queue.index, ids: queue.items.map((t) => t.track_id), radio: queue.radio,
      trackId: queue.current() ? queue.current().track_id : null, paused: player.paused }),
  };

  $("#play-pause").addEventListener("click", () => {
    if (!queue.current()) return;
    if (!player.getAttribute("src")) playAt(queue.index);
    else if (player.paused) player.play().catch(() => {}); else player.pause();
  });
  $("#prev").addEventListener("click", () => previous());
  $("#next").addEventListener("click", () => next());
  $("#radio").addEventListener("click", () => setRadio(!queue.radio));
  // Space toggles play/pause, unless typing somewhere.
  document.addEventListener("keydown", (event) => {
    if (event.code !== "Space" || event.target.closest("input, textarea, select, button, a, audio, [contenteditable]")) return;
    event.preventDefault();
    $("#play-pause").click();
  });

  if (queue.current()) prepare(queue.current());  // after a reload: the queue is back, ready to play (not playing on its own)
  updateButtons();
  queue.save();

  // ---------------------------------------------------------------- playlists, stored on the server
  const playlists = {
    currentId: Number(localStorage.getItem(CURRENT_PLAYLIST_KEY)) || null,
    setCurrent(p) {
      this.currentId = p ? p.id : null;
      if (p) localStorage.setItem(CURRENT_PLAYLIST_KEY, String(p.id)); else localStorage.removeItem(CURRENT_PLAYLIST_KEY);
      $("#playlist-count").textContent = p ? String(p.track_count) : "0";
      $("#playlist-count").title = p ? `in “${p.name}”` : "";
    },
    async current() {
      if (this.currentId) {
        try { return (await api(`/api/playlists/${this.currentId}`)).body; } catch (err) { if (err.status !== 404) throw err; }
      }
      return null;
    },
    /** Add tracks to the current playlist (a new one named “My playlist” when there is none). */
    async add(tracks) {
      const ids = tracks.map((t) => t.track_id);
      let p = await this.current();
      try {
        if (!p) p = (await api("/api/playlists", { method: "POST", json: { name: "My playlist", track_ids: ids } })).body;
        else p = (await api(`/api/playlists/${p.id}/tracks`, { method: "POST", json: { track_ids: ids } })).body;
      } catch (err) { if (err.status !== 401) toast(err.message, true); return null; }
      this.setCurrent(p);
      toast(`Added ${ids.length === 1 ? label(tracks[0]) : plural(ids.length, "track")} to “${p.name}”`);
      return p;
    },
  };

  async function initPlaylists() {
    const old = JSON.parse(localStorage.getItem(OLD_PLAYLIST_KEY) || "[]");
    try {
      if (Array.isArray(old) && old.length) {  // a playlist kept in this browser by an older page: move it to the server
        const { body } = await api("/api/playlists", { method: "POST", json: { name: "Playlist from this browser", track_ids: old.map((t) => t.track_id) } });
        localStorage.removeItem(OLD_PLAYLIST_KEY);
        playlists.setCurrent(body);
        return;
      }
      playlists.setCurrent(await playlists.current());
    } catch { /* the badge stays at 0; pages say what is wrong */ }
  }

  // ---------------------------------------------------------------- track rows
  /** One track as a list row. ``list``/``index``: the list it belongs to (▶ plays the list from this row). */
  function trackRow(track, { score = null, rank = null, list = null, index = 0, origin = "", add = true } = {}) {
    const sub = el("span", { class: "sub" },
      track.artist ? el("a", { class: "artist-link", href: `#/artist-of/${track.track_id}`, text: track.artist }) : null,
      track.artist && track.album ? " · " : null,
      track.album ? el("a", { class: "album-link", href: `#/album-of/${track.track_id}`, text: track.album }) : null);
    const row = el("li", { class: "track-row", dataset: { trackId: track.track_id } },
      rank !== null ? el("span", { class: "rank", text: String(rank) }) : null,
      el("button", { class: "icon play", title: "Play", "aria-label": `Play ${label(track)}`,
        onclick: () => playOrToggle(track, list, index, origin) }, "▶"),
      el("span", { class: "meta" },
        el("a", { class: "title", href: `#/track/${track.track_id}`, text: track.title || "(untitled)" }), sub),
      score !== null ? el("span", { class: "score", title: `How alike it sounds (cosine similarity ${score.toFixed(3)})` },
        el("span", { class: "bar", style: `width:${Math.max(0, Math.min(1, score)) * 100}%` }),
        el("span", { class: "value", text: score.toFixed(3) })) : null,
      el("span", { class: "time", text: duration(track.duration) }),
      el("button", { class: "icon enqueue", title: "Add to the queue", "aria-label": `Add ${label(track)} to the queue`,
        onclick: () => enqueue([track]) }, "≡+"),
      add ? el("button", { class: "icon add", title: "Add to the playlist", "aria-label": `Add ${label(track)} to the playlist`,
        onclick: () => playlists.add([track]) }, "+") : null);
    return row;
  }

  function trackList(tracks, { id = null, ranked = false, scores = false, origin = "", rows = null } = {}) {
    return el("ol", { class: "tracks", id }, tracks.map((t, i) => {
      const options = { list: tracks, index: i, origin, rank: ranked ? i + 1 : null,
        score: scores && typeof t.score === "number" ? t.score : null };
      return rows ? rows(t, i, options) : trackRow(t, options);
    }));
  }

  function resultList(results, { origin = "" } = {}) {
    const list = trackList(results, { ranked: true, scores: true, origin });
    list.classList.add("results");
    return list;
  }

  /** Play all / add to queue / add to playlist buttons for a list of tracks. */
  function listActions(tracks, origin, idPrefix = "list") {
    return el("div", { class: "controls" },
      el("button", { id: `${idPrefix}-play`, disabled: !tracks.length, onclick: () => playList(tracks, 0, origin) }, "▶ Play"),
      el("button", { class: "secondary", id: `${idPrefix}-enqueue`, disabled: !tracks.length, onclick: () => enqueue(tracks) }, "≡+ Add to queue"),
      el("button", { class: "secondary", id: `${idPrefix}-add`, disabled: !tracks.length, onclick: () => playlists.add(tracks) }, "+ Add to playlist"));
  }

  // ---------------------------------------------------------------- library / search
  async function showLibrary(params) {
    const q = params.get("q") || "";
    const page = Math.max(0, parseInt(params.get("page") || "0", 10) || 0);
    $("#search").value = q;
    const query = new URLSearchParams({ q, offset: String(page * PAGE_SIZE), limit: String(PAGE_SIZE) });
    await loadView(`/api/tracks?${query}`, (body) => {
      const from = body.total ? body.offset + 1 : 0;
      const to = body.offset + body.items.length;
      const total = `${body.total}${body.total_exact === false ? "+" : ""}`;  // a common word: counted up to a cap
      const more = to < body.total || (body.total_exact === false && body.items.length === PAGE_SIZE);
      const nav = (p) => `#/?${new URLSearchParams({ q, page: String(p) })}`;
      const pager = el("div", { class: "pager" },
        page > 0 ? el("a", { class: "button", href: nav(page - 1), text: "← Previous" }) : el("span"),
        el("span", { class: "muted", text: `${from}–${to} of ${total}` }),
        more ? el("a", { class: "button", href: nav(page + 1), id: "next-page", text: "Next →" }) : el("span"));
      const heading = q ? `${total} track${body.total === 1 ? "" : "s"} matching “${q}”` : `Library · ${total} tracks`;
      return el("section", { id: "library" }, el("h1", { text: heading }),
        body.items.length ? trackList(body.items, { id: "track-list", origin: q ? `Search: ${q}` : "Library" })
          : el("p", { class: "muted", text: q ? "Nothing matches. Try fewer words." : "The library is empty: run `soundalike index PATH`." }),
        body.total > PAGE_SIZE ? pager : null);
    });
  }

  /** A view from one API answer: "Loading…", then render(body) shown — unless another view was asked for
   *  meanwhile; a failure (in the request or in render) shows the error instead (401 asks for the token itself). */
  async function loadView(apiPath, render) {
    setView(el("p", { class: "muted", text: "Loading…" }));
    const current = ticket("view");
    try {
      const { body } = await api(apiPath);
      if (current()) setView(render(body));
    } catch (err) { if (err.status !== 401 && current()) setView(errorBox(err)); }
  }

  // ---------------------------------------------------------------- albums and artists
  function albumCard(album) {
    return el("li", { class: "album-card", dataset: { albumId: album.id } },
      el("a", { href: `#/album/${album.id}`, class: "album-cover-link", "aria-label": `${album.name} by ${album.artist}` }, cover(album.id, 160)),
      el("a", { class: "album-name", href: `#/album/${album.id}`, text: album.name || "(no album)" }),
      el("a", { class: "album-artist muted", href: `#/artist/${album.artist_id}`, text: album.artist }),
      el("span", { class: "muted small", text: [album.year, plural(album.track_count, "track")].filter(Boolean).join(" · ") }));
  }

  async function showAlbums() {
    await loadView("/api/albums?limit=5000", (body) => el("section", { id: "albums" },
      el("h1", { text: `Albums · ${body.total}` }),
      el("ul", { class: "album-grid", id: "album-grid" }, body.items.map(albumCard))));
  }

  async function showAlbum(apiPath) {
    await loadView(apiPath, (album) => {
      if (!location.hash.startsWith("#/album/")) history.replaceState(null, "", `#/album/${album.id}`);
      const total = album.tracks.reduce((s, t) => s + (t.duration || 0), 0);
      return el("section", { id: "album", dataset: { albumId: album.id } },
        el("div", { class: "album-head" }, cover(album.id, 240, { id: "album-cover", loading: "eager" }),
          el("div", {},
            el("p", { class: "crumbs" }, el("a", { href: "#/albums", text: "Albums" })),
            el("h1", { id: "album-title", text: album.name || "(no album)" }),
            el("p", { class: "sub big" }, el("a", { href: `#/artist/${album.artist_id}`, id: "album-artist", text: album.artist }),
              ` · ${[album.year, album.genre, plural(album.tracks.length, "track"), duration(total)].filter(Boolean).join(" · ")}`),
            listActions(album.tracks, `Album: ${album.name}`, "album"))),
        trackList(album.tracks, { id: "album-tracks", origin: `Album: ${album.name}`,
          rows: (t, i, options) => trackRow(t, Object.assign(options, { rank: t.track_no || i + 1 })) }));
    });
  }

  async function showArtists() {
    await loadView("/api/artists?limit=5000", (body) => el("section", { id: "artists" },
      el("h1", { text: `Artists · ${body.total}` }),
      el("ul", { class: "artist-list", id: "artist-list" }, body.items.map((a) => el("li", { dataset: { artistId: a.id } },
        el("a", { href: `#/artist/${a.id}` }, cover(a.id, 48), el("span", { class: "artist-name", text: a.name })),
        el("span", { class: "muted small", text: plural(a.album_count, "album") }))))));
  }

  async function showArtist(apiPath) {
    await loadView(apiPath, (artist) => {
      if (!location.hash.startsWith("#/artist/")) history.replaceState(null, "", `#/artist/${artist.id}`);
      return el("section", { id: "artist", dataset: { artistId: artist.id } },
        el("p", { class: "crumbs" }, el("a", { href: "#/artists", text: "Artists" })),
        el("h1", { id: "artist-name", text: artist.name }),
        el("p", { class: "muted", text: `${plural(artist.albums.length, "album")} · ${plural(artist.tracks.length, "track")}` }),
        listActions(artist.tracks, `Artist: ${artist.name}`, "artist"),
        el("h2", { text: "Albums" }),
        el("ul", { class: "album-grid", id: "artist-albums" }, artist.albums.map(albumCard)),
        el("h2", { text: "Tracks" }),
        trackList(artist.tracks, { id: "artist-tracks", origin: `Artist: ${artist.name}` }));
    });
  }

  // ---------------------------------------------------------------- queue page
  function showQueue() {
    const items = queue.items;
    const upcoming = Math.max(0, items.length - queue.index - 1);
    const list = el("ol", { class: "tracks", id: "queue-list" }, items.map((t, i) => {
      const row = trackRow(t, { list: items, index: i, rank: i + 1, origin: queue.origin });
      row.classList.toggle("past", i < queue.index);
      row.querySelector(".enqueue").replaceWith(el("button", { class: "icon remove", title: "Remove from the queue", "aria-label": "Remove from the queue",
        onclick: () => {
          queue.items.splice(i, 1);
          if (i < queue.index) queue.index--;
          else if (i === queue.index) { queue.index = Math.min(queue.index, queue.items.length - 1); if (queue.current()) playAt(queue.index); else { player.pause(); player.removeAttribute("src"); } }
          queue.save(); showQueue();
        } }, "✕"));
      return row;
    }));
    setView(el("section", { id: "queue" }, el("h1", { text: "Queue" }),
      el("p", { class: "muted", id: "queue-summary", text: items.length
        ? `${queue.origin ? queue.origin + " · " : ""}${plural(upcoming, "song")} after the playing one${queue.radio ? " · Radio is on: songs that sound alike are added as it runs low" : ""}`
        : "Empty. ▶ on any track plays it and the tracks listed after it; ≡+ adds a track at the end." }),
      el("div", { class: "controls" },
        el("label", { class: "switch" }, el("input", { type: "checkbox", id: "radio-toggle", checked: queue.radio, onchange: (e) => { setRadio(e.target.checked); showQueue(); } }),
          " Radio — keep playing songs that sound like these"),
        el("button", { class: "secondary", id: "queue-save", disabled: !items.length, onclick: async () => {
          const name = `Queue ${new Date().toLocaleDateString()}`;
          try {
            const { body } = await api("/api/playlists", { method: "POST", json: { name, track_ids: items.map((t) => t.track_id) } });
            playlists.setCurrent(body);
            toast(`Saved as the playlist “${body.name}”`);
          } catch (err) { if (err.status !== 401) toast(err.message, true); }
        } }, "Save as playlist"),
        el("button", { class: "secondary", id: "queue-clear", disabled: !items.length, onclick: () => {
          const keep = queue.current();
          queue.items = keep ? [keep] : []; queue.index = keep ? 0 : -1; queue.save(); showQueue(); updateButtons();
        } }, "Clear upcoming")),
      list));
    const now = list.querySelector(".playing");
    if (now) now.scrollIntoView({ block: "nearest" });
  }

  // ---------------------------------------------------------------- track page
  let libraryPromise = null;
  /** /api/library, asked once per page load (the models a client may choose). */
  function libraryInfo() {
    if (!libraryPromise) libraryPromise = api("/api/library").then(({ body }) => body).catch((err) => { libraryPromise = null; throw err; });
    return libraryPromise;
  }

  // How each way of comparing is put to a listener; the model ids and distance names are in the details.
  const MODEL_WORDS = { default: "Sounds like (recommended)", descriptor: "Similar timbre, tempo and key" };
  const DISTANCE_WORDS = [
    ["cosine", "the whole track"], ["dtw", "section by section, in order"], ["frechet", "closest all the way through"],
    ["minpoint", "any moment alike"], ["mean", "moments on average"]];
  const modelWords = (name) => MODEL_WORDS[name] || `Learned model “${name}”`;

  async function showTrack(id) {
    setView(el("p", { class: "muted", text: "Loading…" }));
    let track;
    const current = ticket("view");
    try { track = (await api(`/api/tracks/${id}`)).body; } catch (err) { if (err.status !== 401 && current()) setView(errorBox(err)); return; }
    if (!current()) return;
    const k = el("select", { id: "similar-k", "aria-label": "How many" }, [10, 20, 50].map((n) => el("option", { value: n, text: `${n} songs` })));
    const model = el("select", { id: "similar-model", "aria-label": "What to compare" },
      el("option", { value: "default", text: modelWords("default") }));
    const distance = el("select", { id: "similar-distance", "aria-label": "Compare over" },
      DISTANCE_WORDS.map(([v, t]) => el("option", { value: v, text: `over ${t}` })));
    let sequenceModels = null;  // names whose tracks have segment sequences; null until /api/library answers
    /** Offer the moment-by-moment comparisons only with a model that has segment sequences (never an option that errs). */
    function fitDistances() {
      const ok = sequenceModels !== null && sequenceModels.includes(model.value);
      for (const option of distance.options) {
        option.disabled = !ok && option.value !== "cosine";
        option.hidden = option.disabled;
        option.title = option.disabled ? "This way of comparing describes whole tracks: there are no moments to compare" : "";
      }
      if (!ok && distance.value !== "cosine") distance.value = "cosine";
      distance.hidden = !ok;
    }
    fitDistances();
    libraryInfo().then((info) => {
      // A trained model appears under its family name and its id (family-hash...): the menu lists the family once.
      const offered = info.models_offered.filter((m) => m !== "default");
      const shown = offered.filter((m) => { const family = m.match(/^(.+?)-[0-9a-f]{8}(-|$)/); return !(family && offered.includes(family[1])); });
      for (const name of shown) model.append(el("option", { value: name, text: modelWords(name) }));
      sequenceModels = info.sequence_models || [];
      fitDistances();
    }).catch(() => { /* the default model still works */ });
    model.addEventListener("change", fitDistances);
    const noArtist = el("input", { type: "checkbox", id: "no-same-artist" });
    const noAlbum = el("input", { type: "checkbox", id: "no-same-album" });
    const results = el("div", { id: "similar" }, el("p", { class: "muted", text: "Finding what sounds alike…" }));
    const how = el("p", { class: "muted small", id: "similar-how" });
    let lastResults = [];

    async function loadSimilar() {
      results.replaceChildren(el("p", { class: "muted", text: "Finding what sounds alike…" }));
      const query = new URLSearchParams({ k: k.value, distance: distance.value, model: model.value });
      if (noArtist.checked) query.set("no_same_artist", "true");
      if (noAlbum.checked) query.set("no_same_album", "true");
      const newest = ticket("similar");
      try {
        const { body } = await api(`/api/tracks/${id}/similar?${query}`);
        if (!newest()) return;
        lastResults = body.results;
        how.textContent = `Model ${body.model}, distance ${distance.value}${distance.value === "cosine" ? " (pooled embeddings)" : " over segment sequences"}; the bar is the similarity (1 = the same sound).`;
        fill(results, (body.notes || []).length ? el("p", { class: "muted note", id: "similar-notes", text: body.notes.join(" · ") }) : null,
          body.results.length ? resultList(body.results, { origin: `Sounds like ${track.title}` }) : el("p", { class: "muted", text: "No other track to compare with." }),
          body.results.length ? el("div", { class: "controls" },
            el("button", { class: "secondary", id: "similar-enqueue", onclick: () => enqueue(body.results) }, "≡+ Add all to the queue"),
            el("button", { class: "secondary", id: "similar-add", onclick: () => playlists.add(body.results) }, "+ Add all to the playlist")) : null);
      } catch (err) { if (err.status !== 401 && newest()) results.replaceChildren(errorBox(err)); }
    }
    for (const control of [k, model, distance, noArtist, noAlbum]) control.addEventListener("change", loadSimilar);

    const spectrogram = el("img", { id: "spectrogram", class: "spectrogram", alt: `Log-mel spectrogram of ${label(track)}`,
      src: withToken(`${track.spectrogram_url}?width=1000&height=200`), width: 1000, height: 200 });
    spectrogram.addEventListener("error", () => spectrogram.replaceWith(el("p", { class: "muted", text: "No spectrogram stored for this track." })));
    setView(el("section", { id: "track", dataset: { trackId: track.track_id } },
      el("div", { class: "album-head" }, cover(track.track_id, 160, { id: "track-cover", loading: "eager" }),
        el("div", {},
          el("p", { class: "crumbs" }, el("a", { href: "#/", text: "Library" }), " / ",
            el("a", { href: `#/album-of/${track.track_id}`, id: "track-album", text: track.album || "(no album)" })),
          el("h1", { id: "track-title", text: track.title || "(untitled)" }),
          el("p", { class: "sub big" }, track.artist ? el("a", { href: `#/artist-of/${track.track_id}`, text: track.artist }) : null,
            ` · ${[track.album, duration(track.duration), track.format.toUpperCase()].filter(Boolean).join(" · ")}`),
          el("div", { class: "controls track-row", dataset: { trackId: track.track_id } },
            el("button", { class: "play", id: "track-play", onclick: () => playOrToggle(track, null, 0, track.title) }, "▶"),
            el("button", { class: "secondary", id: "track-radio", title: "Play this song, then songs that sound like it",
              onclick: () => { playList([track], 0, `Radio: ${track.title}`); setRadio(true); } }, "Start radio"),
            el("button", { class: "secondary", id: "track-enqueue", onclick: () => enqueue([track]) }, "≡+ Queue"),
            el("button", { class: "secondary", id: "add-track", onclick: () => playlists.add([track]) }, "+ Playlist")))),
      el("figure", {}, spectrogram, el("figcaption", { class: "muted", text: "Log-mel spectrogram (128 mel bands, low frequencies at the bottom)" })),
      el("details", { class: "paths" }, el("summary", { text: `${track.paths.length} file${track.paths.length === 1 ? "" : "s"}` }),
        el("ul", {}, track.paths.map((p) => el("li", { class: "mono", text: p })))),
      el("h2", { text: "Sounds like this" }),
      el("div", { class: "controls" }, model, distance, k,
        el("label", {}, noArtist, " not by this artist"), el("label", {}, noAlbum, " not from this album")),
      el("details", { class: "how" }, el("summary", { text: "How is this measured?" }), how),
      results));
    loadSimilar();
  }

  // ---------------------------------------------------------------- playlists
  async function showPlaylists() {
    setView(el("p", { class: "muted", text: "Loading…" }));
    const current = ticket("view");
    let items;
    try { items = (await api("/api/playlists")).body; } catch (err) { if (err.status !== 401 && current()) setView(errorBox(err)); return; }
    if (!current()) return;
    const name = el("input", { id: "new-playlist-name", placeholder: "New playlist name", "aria-label": "New playlist name", maxlength: 500 });
    const form = el("form", { class: "controls", id: "new-playlist", onsubmit: async (event) => {
      event.preventDefault();
      try {
        const { body } = await api("/api/playlists", { method: "POST", json: { name: name.value.trim() || "My playlist" } });
        playlists.setCurrent(body);
        location.hash = `#/playlist/${body.id}`;
      } catch (err) { if (err.status !== 401) toast(err.message, true); }
    } }, name, el("button", { type: "submit", text: "Create playlist" }));
    setView(el("section", { id: "playlists" }, el("h1", { text: "Playlists" }),
      el("p", { class: "muted", text: "Kept in the library's catalogue: they survive reloads, and Subsonic apps see them too. + on a track adds it to the playlist you opened last." }),
      form,
      items.length ? el("ul", { class: "album-grid", id: "playlist-grid" }, items.map((p) => el("li", { class: "album-card", dataset: { playlistId: p.id } },
        el("a", { href: `#/playlist/${p.id}`, class: "album-cover-link", "aria-label": p.name },
          p.cover_url ? el("img", { class: "cover", alt: "", width: 160, height: 160, src: withToken(p.cover_url + "&size=160") }) : cover("0", 160)),
        el("a", { class: "album-name", href: `#/playlist/${p.id}`, text: p.name }),
        el("span", { class: "muted small", text: `${plural(p.track_count, "track")} · ${duration(p.duration)}${p.id === playlists.currentId ? " · current" : ""}` }))))
        : el("p", { class: "muted", id: "no-playlists", text: "No playlist yet: create one, or press + on any track." })));
  }

  /** #/playlist: the playlist opened last (or the list of playlists). */
  async function showCurrentPlaylist() {
    const p = await playlists.current().catch(() => null);
    if (p) location.replace(`#/playlist/${p.id}`); else location.replace("#/playlists");
  }

  async function showPlaylist(id) {
    setView(el("p", { class: "muted", text: "Loading…" }));
    const current = ticket("view");
    let p;
    try { p = (await api(`/api/playlists/${id}`)).body; } catch (err) { if (err.status !== 401 && current()) setView(errorBox(err)); return; }
    if (!current()) return;
    playlists.setCurrent(p);
    const list = el("ol", { class: "tracks playlist", id: "playlist" });
    const status = el("div", { id: "playlist-status", "aria-live": "polite" });
    const summary = el("p", { class: "muted", id: "playlist-summary" });
    const exportLink = el("a", { class: "button", id: "export-m3u", text: "Export M3U" });
    const exportUrls = el("a", { class: "button secondary", id: "export-m3u-urls", text: "M3U with stream URLs" });
    const exportHint = el("span", { class: "muted small", id: "export-hint" });
    const titleInput = el("input", { id: "playlist-title", value: p.name, maxlength: 500, "aria-label": "Playlist name" });

    /** Apply a change answered with the playlist, and draw it again. */
    async function change(request, done = null) {
      try {
        p = (await request()).body;
        playlists.setCurrent(p);
        render();
        if (done) status.replaceChildren(el("p", { class: "ok", text: done(p) }));
      } catch (err) { if (err.status !== 401) status.replaceChildren(errorBox(err)); }
    }
    const move = (from, to) => { if (to >= 0 && to < p.tracks.length) change(() => api(`/api/playlists/${p.id}/move`, { method: "POST", json: { source: from, target: to } })); };

    let dragFrom = null;
    function render() {
      const origin = `Playlist: ${p.name}`;
      list.replaceChildren(...p.tracks.map((track, index) => {
        const row = trackRow(track, { rank: index + 1, list: p.tracks, index, origin, add: false });
        row.draggable = true;
        row.addEventListener("dragstart", () => { dragFrom = index; row.classList.add("dragging"); });
        row.addEventListener("dragend", () => row.classList.remove("dragging"));
        row.addEventListener("dragover", (event) => event.preventDefault());
        row.addEventListener("drop", (event) => { event.preventDefault(); if (dragFrom !== null) { move(dragFrom, index); dragFrom = null; } });
        row.append(
          el("button", { class: "icon up", title: "Move up", "aria-label": "Move up", disabled: index === 0, onclick: () => move(index, index - 1) }, "▲"),
          el("button", { class: "icon down", title: "Move down", "aria-label": "Move down", disabled: index === p.tracks.length - 1, onclick: () => move(index, index + 1) }, "▼"),
          el("button", { class: "icon remove", title: "Remove", "aria-label": "Remove", onclick: () => change(() => api(`/api/playlists/${p.id}/tracks/${index}`, { method: "DELETE" })) }, "✕"));
        return row;
      }));
      const empty = p.tracks.length === 0;
      for (const [link, target] of [[exportLink, "paths"], [exportUrls, "urls"]]) {
        if (empty) { link.removeAttribute("href"); link.removeAttribute("download"); link.setAttribute("aria-disabled", "true"); link.classList.add("disabled"); }
        else {
          link.href = withToken(`/api/playlists/${p.id}/playlist.m3u?target=${target}`);
          link.download = "";  // the server names the file after the playlist
          link.removeAttribute("aria-disabled"); link.classList.remove("disabled");
        }
      }
      exportHint.textContent = empty ? "Nothing to export yet: add tracks first." : "";
      // File paths are given only to a player on the server's own machine (the server refuses others).
      const local = ["localhost", "127.0.0.1", "[::1]", "::1"].includes(location.hostname);
      exportLink.hidden = !local;
      if (!local && !empty) exportHint.textContent = "File paths are only for a player on the server's machine: the stream-URL playlist plays anywhere.";
      summary.textContent = empty ? "Empty: add tracks with + from the library, an album, a track page, the map or a file search."
        : `${plural(p.tracks.length, "track")} · ${duration(p.duration)}`;
      continueButton.disabled = empty;
      pathButton.disabled = p.tracks.length < 2;
      pathButton.title = p.tracks.length < 2 ? "Needs a first and a last track" : "";
      playActions.replaceChildren(...listActions(p.tracks, origin, "playlist").children);
      playActions.querySelector("#playlist-add").remove();
      markPlaying();
    }
    exportLink.addEventListener("click", (event) => { if (!p.tracks.length) { event.preventDefault(); toast("The playlist is empty: nothing to export", true); } });
    exportUrls.addEventListener("click", (event) => { if (!p.tracks.length) { event.preventDefault(); toast("The playlist is empty: nothing to export", true); } });
    const rename = () => {
      const name = titleInput.value.trim();
      if (!name || name === p.name) { titleInput.value = p.name; return; }
      change(() => api(`/api/playlists/${p.id}`, { method: "PATCH", json: { name } }), (q) => `Renamed to “${q.name}”.`);
    };
    titleInput.addEventListener("change", rename);
    titleInput.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); titleInput.blur(); rename(); } });
    const k = el("select", { id: "continue-k", "aria-label": "How many to add" }, [5, 10, 20].map((n) => el("option", { value: n, text: `+${n}` })));
    const score = el("select", { id: "continue-score", "aria-label": "Alike to" },
      [["max", "like any of its songs"], ["mean", "like the playlist on average"], ["topk", "like its 3 closest songs"], ["cluster", "like its main group of songs"]]
        .map(([v, t]) => el("option", { value: v, text: t })));
    const n = el("input", { type: "number", id: "path-n", min: 3, max: 50, value: 8, "aria-label": "Songs from the first to the last, both included" });
    const continueButton = el("button", { id: "continue", onclick: async () => {
      status.replaceChildren(el("p", { class: "muted", text: "Finding songs that continue the playlist…" }));
      try {
        const { body } = await api("/api/continue", { method: "POST", json: { track_ids: p.tracks.map((t) => t.track_id), k: Number(k.value), score: score.value } });
        const fresh = body.results.map((r) => r.track_id);
        if (!fresh.length) { status.replaceChildren(el("p", { class: "muted", text: "No other song to add: the library has nothing more." })); return; }
        await change(() => api(`/api/playlists/${p.id}/tracks`, { method: "POST", json: { track_ids: fresh } }),
          () => `Added ${plural(fresh.length, "track")} that continue the playlist.`);
      } catch (err) { if (err.status !== 401) status.replaceChildren(errorBox(err)); }
    } }, "Continue");
    const pathButton = el("button", { id: "make-path", class: "secondary", onclick: async () => {
      const first = p.tracks[0];
      const last = p.tracks[p.tracks.length - 1];
      const wanted = Math.max(3, Math.min(50, Number(n.value) || 8));
      status.replaceChildren(el("p", { class: "muted", text: "Walking from the first track to the last…" }));
      try {
        const { body } = await api(`/api/path?start=${first.track_id}&end=${last.track_id}&n=${wanted}`);
        const inside = new Set(p.tracks.map((t) => t.track_id));
        const between = body.results.slice(1, -1);
        const middle = between.filter((r) => !inside.has(r.track_id)).map((r) => r.track_id);
        const already = between.length - middle.length;
        const why = [];
        if (already) why.push(`${plural(already, "song")} of the path ${already === 1 ? "is" : "are"} already in the playlist`);
        if (between.length < wanted - 2) why.push(`the library offered only ${between.length} between them`);
        const text = `Inserted ${middle.length} of the ${wanted - 2} songs between “${first.title}” and “${last.title}” (a path of ${wanted}, both ends included)${why.length ? ": " + why.join("; ") : ""}.`;
        if (!middle.length) { status.replaceChildren(el("p", { class: "muted", text })); return; }
        await change(() => api(`/api/playlists/${p.id}/tracks`, { method: "POST", json: { track_ids: middle, position: p.tracks.length - 1 } }), () => text);
      } catch (err) { if (err.status !== 401) status.replaceChildren(errorBox(err)); }
    } }, "Fill a path first → last");
    const playActions = el("div", { class: "controls", id: "playlist-actions" });
    setView(el("section", { id: "playlist-page", dataset: { playlistId: p.id } },
      el("p", { class: "crumbs" }, el("a", { href: "#/playlists", text: "Playlists" })),
      el("h1", {}, el("label", { class: "title-edit" }, titleInput)),
      summary, playActions,
      el("div", { class: "controls" }, exportLink, exportUrls, exportHint,
        el("button", { class: "secondary danger", id: "delete-playlist", onclick: async () => {
          if (!confirm(`Delete the playlist “${p.name}”? Its tracks stay in the library.`)) return;
          try {
            await api(`/api/playlists/${p.id}`, { method: "DELETE" });
            playlists.setCurrent(null);
            toast(`Deleted “${p.name}”`);
            location.hash = "#/playlists";
          } catch (err) { if (err.status !== 401) status.replaceChildren(errorBox(err)); }
        } }, "Delete playlist")),
      el("details", { class: "grow", open: true }, el("summary", { text: "Grow it with songs that sound alike" }),
        el("div", { class: "controls" }, continueButton, k, score),
        el("div", { class: "controls" }, pathButton, n, el("span", { class: "muted", text: "songs from the first to the last, both included" }))),
      status, list));
    render();
  }
  // ---------------------------------------------------------------- map
  const mapState = { data: null, method: "pca", transform: null };

  // 20 colours told apart easily (Sasha Trubetskoy's list, the palest left out), then labelled clusters.
  const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990",
    "#9a6324", "#800000", "#000075", "#808000", "#e6a8d7", "#ffe119", "#a9a9a9", "#dcbeff", "#ffd8b1", "#aaffc3", "#000000"];
  const NO_ALBUM = "(no album)";

  /** Groups to colour: every album when there are few enough for distinct colours, else k-means clusters of the
   * map labelled by their commonest albums. Returns {mode, group (index per point), labels, albums}. */
  function colourGroups(data) {
    const counts = new Map();
    data.album.forEach((a) => counts.set(a || NO_ALBUM, (counts.get(a || NO_ALBUM) || 0) + 1));
    const albums = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    if (albums.length <= PALETTE.length) {
      const index = new Map(albums.map(([name], i) => [name, i]));
      const groupOf = (album) => index.has(album || NO_ALBUM) ? index.get(album || NO_ALBUM) : PALETTE.length - 5;  // unseen: grey
      return { mode: "albums", group: data.album.map((a) => index.get(a || NO_ALBUM)), labels: albums.map(([name, n]) => `${name} (${n})`), albums, groupOf };
    }
    // k-means on the 2-D positions, started from spread-out points (deterministic: no random start).
    const k = Math.min(12, data.count);
    const centres = [[data.x[0], data.y[0]]];
    while (centres.length < k) {
      let best = 0, bestD = -1;
      for (let i = 0; i < data.count; i++) {
        const d = Math.min(...centres.map(([cx, cy]) => (data.x[i] - cx) ** 2 + (data.y[i] - cy) ** 2));
        if (d > bestD) { bestD = d; best = i; }
      }
      centres.push([data.x[best], data.y[best]]);
    }
    const group = new Array(data.count).fill(0);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < data.count; i++) {
        let best = 0, bestD = Infinity;
        centres.forEach(([cx, cy], c) => { const d = (data.x[i] - cx) ** 2 + (data.y[i] - cy) ** 2; if (d < bestD) { bestD = d; best = c; } });
        group[i] = best;
      }
      const sums = centres.map(() => [0, 0, 0]);
      group.forEach((g, i) => { sums[g][0] += data.x[i]; sums[g][1] += data.y[i]; sums[g][2]++; });
      sums.forEach(([sx, sy, n], c) => { if (n) centres[c] = [sx / n, sy / n]; });
    }
    const labels = centres.map((_, c) => {
      const inside = new Map();
      group.forEach((g, i) => { if (g === c) inside.set(data.album[i] || NO_ALBUM, (inside.get(data.album[i] || NO_ALBUM) || 0) + 1); });
      const top = [...inside.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      const size = top.reduce((s, [, n]) => s + n, 0);
      return `Mostly ${top.slice(0, 2).map(([name]) => name).join(", ")}${top.length > 2 ? ` +${top.length - 2} more` : ""} (${size})`;
    });
    const groupOf = (album, x, y) => {  // the nearest centre, for points that arrive later (map windows)
      let best = 0, bestD = Infinity;
      centres.forEach(([cx, cy], c) => { const d = (x - cx) ** 2 + (y - cy) ** 2; if (d < bestD) { bestD = d; best = c; } });
      return best;
    };
    return { mode: "clusters", group, labels, albums, groupOf };
  }

  async function showMap(params) {
    mapState.method = params.get("method") === "tsne" ? "tsne" : "pca";
    const canvas = el("canvas", { id: "map-canvas", tabindex: 0, "aria-label": "Library map: hover for titles, click to play, wheel to zoom, drag to move" });
    const tip = el("div", { id: "map-tip", class: "tip" });
    const info = el("div", { id: "map-info", class: "muted", text: "Loading the map…" });
    const picked = el("div", { id: "map-picked" });
    const legend = el("ul", { class: "legend", id: "map-legend" });
    const methods = el("div", { class: "segmented" }, ["pca", "tsne"].map((m) => el("a", {
      class: m === mapState.method ? "button active" : "button secondary", href: `#/map?method=${m}`, text: m === "pca" ? "PCA" : "t-SNE" })));
    const zoomIn = el("button", { class: "icon", id: "zoom-in", title: "Zoom in", onclick: () => zoomBy(1.5) }, "+");
    const zoomOut = el("button", { class: "icon", id: "zoom-out", title: "Zoom out", onclick: () => zoomBy(1 / 1.5) }, "−");
    const reset = el("button", { class: "secondary", id: "zoom-reset", onclick: () => { mapState.transform = { k: 1, x: 0, y: 0 }; draw(); viewMoved(); } }, "Reset view");
    setView(el("section", { id: "map-page" }, el("h1", { text: "Library map" }),
      el("div", { class: "controls" }, methods, zoomIn, zoomOut, reset, info),
      el("div", { class: "map-wrap" }, canvas, tip), picked, legend));

    let data;
    const current = ticket("view");
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await api(`/api/map?method=${mapState.method}`);
        if (!current()) return;
        if (response.status === 202) {
          info.textContent = `${response.body.detail} (${attempt * 3} s)`;
          await new Promise((r) => setTimeout(r, 3000));
          if (current()) continue;
          return;
        }
        data = response.body;
        break;
      } catch (err) { if (err.status !== 401 && current()) info.replaceWith(errorBox(err)); return; }
    }
    mapState.data = data;
    mapState.transform = { k: 1, x: 0, y: 0 };
    const overview = data;  // a large library's answer is a sample: zooming in asks the server for the window in view
    const groups = colourGroups(data);
    let colours = groups.group.map((g) => PALETTE[g % PALETTE.length]);
    const overviewColours = colours;
    let focusAlbum = null;  // an album picked in the legend: its points stand out
    const sampled = data.total !== undefined && data.total > data.count && data.method === "pca";
    const windows = { loaded: 0, box: null, timer: null };
    const colourWord = groups.mode === "albums" ? "album" : "area of the map";
    function describe() {
      const shown = sampled ? `${data.count} of ${data.total} tracks shown (zoom in for more)` : `${data.count} tracks`;
      info.textContent = `${shown} · colour = ${colourWord} · wheel to zoom, drag to move, click to play`;
    }
    describe();
    info.title = `${data.method.toUpperCase()} of the ${data.model} embedding`;
    const albumItems = groups.albums.map(([name, count]) => {
      const first = data.album.findIndex((a) => (a || NO_ALBUM) === name);
      const item = el("li", { dataset: { album: name } }, el("button", { class: "legend-item", title: "Show where its tracks are",
        onclick: () => { focusAlbum = focusAlbum === name ? null : name; for (const li of document.querySelectorAll("#map-page li[data-album]")) li.classList.toggle("focus", li.dataset.album === focusAlbum); draw(); } },
        el("span", { class: "swatch", style: `background:${colours[first]}` }), `${name} (${count})`));
      return item;
    });
    if (groups.mode === "albums") legend.replaceChildren(...albumItems);
    else {
      legend.replaceChildren(...groups.labels.map((text, g) => el("li", { class: "cluster" },
        el("span", { class: "swatch", style: `background:${PALETTE[g % PALETTE.length]}` }), text)));
      legend.after(el("details", { id: "map-albums" }, el("summary", { text: `Every album (${groups.albums.length}): pick one to see where it is` }),
        el("ul", { class: "legend", id: "map-album-list" }, albumItems)));
    }
    legend.dataset.mode = groups.mode;

    const ctx = canvas.getContext("2d");
    let width = 0, height = 0, hover = -1, selected = -1;
    const pad = 24;
    function resize() {
      const ratio = window.devicePixelRatio || 1;
      width = canvas.clientWidth; height = canvas.clientHeight;
      canvas.width = Math.round(width * ratio); canvas.height = Math.round(height * ratio);
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      draw();
    }
    function screen(i) {
      const t = mapState.transform;
      const sx = pad + data.x[i] * (width - 2 * pad);
      const sy = pad + (1 - data.y[i]) * (height - 2 * pad);
      return [sx * t.k + t.x, sy * t.k + t.y];
    }
    function draw() {
      ctx.clearRect(0, 0, width, height);
      const base = data.count < 300 ? 5 : data.count < 3000 ? 3.5 : 2.2;  // big dots for small libraries
      const r = Math.min(9, base + Math.log2(mapState.transform.k));
      for (let i = 0; i < data.count; i++) {
        const [x, y] = screen(i);
        if (x < -10 || y < -10 || x > width + 10 || y > height + 10) continue;
        const faded = focusAlbum !== null && (data.album[i] || NO_ALBUM) !== focusAlbum;
        ctx.globalAlpha = faded ? 0.15 : 1;
        ctx.fillStyle = colours[i];
        ctx.beginPath(); ctx.arc(x, y, faded ? r * 0.7 : r, 0, 2 * Math.PI); ctx.fill();
      }
      ctx.globalAlpha = 1;
      for (const [i, style] of [[hover, "#222"], [selected, "#e0115f"]]) {
        if (i < 0) continue;
        const [x, y] = screen(i);
        ctx.strokeStyle = style; ctx.lineWidth = 2.5;
        ctx.beginPath(); ctx.arc(x, y, r + 4, 0, 2 * Math.PI); ctx.stroke();
      }
    }
    function nearest(mx, my, within = 10) {
      let best = -1, bestD = within * within;
      for (let i = 0; i < data.count; i++) {
        const [x, y] = screen(i);
        const d = (x - mx) ** 2 + (y - my) ** 2;
        if (d < bestD) { bestD = d; best = i; }
      }
      return best;
    }
    function trackAt(i) {
      return { track_id: data.ids[i], title: data.title[i], artist: data.artist[i], album: data.album[i], duration: 0 };
    }
    function zoomBy(factor, cx = width / 2, cy = height / 2) {
      const t = mapState.transform;
      const k = Math.min(200, Math.max(0.5, t.k * factor));
      t.x = cx - (cx - t.x) * (k / t.k); t.y = cy - (cy - t.y) * (k / t.k); t.k = k;
      draw();
      viewMoved();
    }
    /** The part of the map's [0, 1] square in view: {x0, x1, y0, y1}, or null when all of it is. */
    function visibleBox() {
      const t = mapState.transform;
      const mx = (sx) => ((sx - t.x) / t.k - pad) / (width - 2 * pad);
      const my = (sy) => 1 - ((sy - t.y) / t.k - pad) / (height - 2 * pad);
      const clamp = (v) => Math.min(1, Math.max(0, v));
      const box = { x0: clamp(mx(0)), x1: clamp(mx(width)), y0: clamp(my(height)), y1: clamp(my(0)) };
      if (box.x0 <= 0 && box.y0 <= 0 && box.x1 >= 1 && box.y1 >= 1) return null;
      return box.x1 > box.x0 && box.y1 > box.y0 ? box : null;
    }
    /** Shows ``points`` (columnar, like the overview) instead of what is drawn now, keeping the selection. */
    function showPoints(points, pointColours) {
      const selectedId = selected >= 0 ? data.ids[selected] : null;
      data = points; colours = pointColours; mapState.data = data;
      hover = -1; selected = selectedId === null ? -1 : data.ids.indexOf(selectedId);
      describe(); draw();
    }
    // A sampled map asks for the window in view once the view rests (wheel, drag, buttons), and again while the
    // server still computes every track's position (a "partial" answer).
    function viewMoved() {
      if (!sampled) return;
      clearTimeout(windows.timer);
      windows.timer = setTimeout(loadWindow, 250);
    }
    async function loadWindow() {
      const box = visibleBox();
      const newest = ticket("map-window");
      if (!box) { windows.box = null; if (data !== overview) showPoints(overview, overviewColours); return; }
      const q = ["x0", "x1", "y0", "y1"].map((key) => `${key}=${box[key].toFixed(5)}`).join("&");
      let body;
      try { ({ body } = await api(`/api/map?method=pca&${q}`)); } catch (err) { if (err.status !== 401 && current()) info.textContent = `The zoomed-in map failed: ${err.message}`; return; }
      if (!current() || !newest()) return;
      // What is drawn: the overview's points with the window's added (a window lists its overview points too).
      const merged = { ids: [...overview.ids], x: [...overview.x], y: [...overview.y], title: [...overview.title], artist: [...overview.artist], album: [...overview.album] };
      const mergedColours = [...overviewColours];
      const known = new Set(overview.ids);
      body.ids.forEach((id, i) => {
        if (known.has(id)) return;
        for (const key of ["ids", "x", "y", "title", "artist", "album"]) merged[key].push(body[key][i]);
        mergedColours.push(PALETTE[groups.groupOf(body.album[i], body.x[i], body.y[i]) % PALETTE.length]);
      });
      merged.count = merged.ids.length; merged.total = overview.total; merged.method = overview.method; merged.model = overview.model;
      windows.loaded += 1; windows.box = body.window;
      showPoints(merged, mergedColours);
      if (body.partial) windows.timer = setTimeout(() => { if (current() && newest()) loadWindow(); }, 2000);
    }
    let drag = null;
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = canvas.getBoundingClientRect();
      zoomBy(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    canvas.addEventListener("mousedown", (event) => { drag = { x: event.clientX, y: event.clientY, moved: false }; });
    window.addEventListener("mouseup", () => { if (drag && drag.moved) viewMoved(); setTimeout(() => { drag = null; }, 0); });
    canvas.addEventListener("mousemove", (event) => {
      const box = canvas.getBoundingClientRect();
      const mx = event.clientX - box.left, my = event.clientY - box.top;
      if (drag && (event.buttons & 1)) {
        const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (drag.moved) {
          mapState.transform.x += dx; mapState.transform.y += dy;
          drag.x = event.clientX; drag.y = event.clientY;
          draw(); return;
        }
      }
      const i = nearest(mx, my);
      if (i !== hover) { hover = i; draw(); }
      if (i >= 0) {
        tip.textContent = `${data.title[i]}${data.artist[i] ? " — " + data.artist[i] : ""}${data.album[i] ? " (" + data.album[i] + ")" : ""}`;
        tip.className = "tip show";
        const flip = mx + 14 + tip.offsetWidth > width;  // near the right edge: show the title on the left
        tip.style.left = `${flip ? mx - 14 - tip.offsetWidth : mx + 14}px`; tip.style.top = `${my + 10}px`;
      } else tip.className = "tip";
    });
    canvas.addEventListener("mouseleave", () => { hover = -1; tip.className = "tip"; draw(); });
    canvas.addEventListener("click", (event) => {
      if (drag && drag.moved) return;
      const box = canvas.getBoundingClientRect();
      const i = nearest(event.clientX - box.left, event.clientY - box.top);
      if (i < 0) return;
      selected = i; draw();
      const track = trackAt(i);
      playList([track], 0, "Map");
      picked.replaceChildren(el("div", { class: "card picked" },
        el("strong", { text: label(track) }), track.album ? el("span", { class: "muted", text: ` · ${track.album}` }) : null, " ",
        el("a", { class: "button", href: `#/track/${track.track_id}`, text: "Open track page" }), " ",
        el("button", { class: "secondary", onclick: () => playlists.add([track]) }, "+ Add to playlist")));
    });
    canvas.addEventListener("dblclick", () => { mapState.transform = { k: 1, x: 0, y: 0 }; draw(); viewMoved(); });
    window.addEventListener("resize", resize);
    // For tests and scripts: where a track's point is on the canvas (CSS pixels, relative to the canvas).
    window.soundalikeMap = { get count() { return data.count; }, get ids() { return data.ids; }, position: (id) => screen(data.ids.indexOf(id)),
      groups, get colours() { return colours; }, sampled, get total() { return data.total || data.count; },
      get windowsLoaded() { return windows.loaded; }, get window() { return windows.box; } };
    resize();
  }

  // ---------------------------------------------------------------- sounds like a file
  async function findLike(file, target) {
    target.replaceChildren(el("p", { class: "muted", id: "upload-progress", text: `Analysing ${file.name} (${(file.size / 1048576).toFixed(1)} MB)…` }));
    const newest = ticket("upload");
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      const { body } = await api(`/api/upload/similar?k=20`, { method: "POST", body: form });
      if (!newest()) return;
      const twin = body.query.same_audio_as;
      fill(target, el("h2", { id: "upload-heading", text: `Sounds like ${file.name}` }),
        twin ? el("p", { class: "ok" }, "The same audio is in the library: ", el("a", { href: `#/track/${twin.track_id}`, text: label(twin) })) : null,
        body.results.length ? resultList(body.results, { origin: `Sounds like ${file.name}` }) : el("p", { class: "muted", text: "The library has no other track." }));
    } catch (err) { if (err.status !== 401 && newest()) target.replaceChildren(errorBox(err)); }
  }

  let pendingFile = null;
  function showUpload() {
    const results = el("div", { id: "upload-results" });
    const input = el("input", { type: "file", id: "upload-input", accept: "audio/*,.opus,.m4a,.flac,.ogg,.mp3,.wav,.aiff,.wma,.ape,.wv,.webm",
      onchange: () => { if (input.files.length) findLike(input.files[0], results); } });
    const zone = el("label", { class: "dropzone", id: "dropzone", for: "upload-input" },
      el("strong", { text: "Drop an audio file here" }), el("span", { class: "muted", text: " or click to choose one" }),
      el("p", { class: "muted small", text: "It is analysed on the server, compared with the library and deleted — never added." }));
    setView(el("section", { id: "upload-page" }, el("h1", { text: "What in my library sounds like this file?" }), zone, input, results));
    if (pendingFile) { findLike(pendingFile, results); pendingFile = null; }
  }

  // Drop a file anywhere on the page.
  let dragDepth = 0;
  const overlay = $("#drop-overlay");
  const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  window.addEventListener("dragenter", (event) => { if (hasFiles(event)) { dragDepth++; overlay.className = "show"; } });
  window.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) overlay.className = ""; });
  window.addEventListener("dragover", (event) => { if (hasFiles(event)) event.preventDefault(); });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault(); dragDepth = 0; overlay.className = "";
    const file = event.dataTransfer.files[0];
    if (!file) return;
    pendingFile = file;
    if (location.hash === "#/upload") showUpload(); else location.hash = "#/upload";
  });

  // ---------------------------------------------------------------- routing
  const SECTIONS = { track: "library", album: "albums", "album-of": "albums", artist: "artists", "artist-of": "artists", playlist: "playlists" };
  function route() {
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, query = ""] = hash.split("?");
    const params = new URLSearchParams(query);
    const first = path.split("/")[1] || "library";
    const section = SECTIONS[first] || first;
    for (const link of document.querySelectorAll("nav a[data-nav]")) link.classList.toggle("active", link.dataset.nav === section);
    let m;
    if ((m = path.match(/^\/track\/(\d+)$/))) return showTrack(m[1]);
    if ((m = path.match(/^\/album\/(al-[0-9a-f]{16})$/))) return showAlbum(`/api/albums/${m[1]}`);
    if ((m = path.match(/^\/album-of\/(\d+)$/))) return showAlbum(`/api/tracks/${m[1]}/album`);
    if ((m = path.match(/^\/artist\/(ar-[0-9a-f]{16})$/))) return showArtist(`/api/artists/${m[1]}`);
    if ((m = path.match(/^\/artist-of\/(\d+)$/))) return showArtist(`/api/tracks/${m[1]}/artist`);
    if ((m = path.match(/^\/playlist\/(\d+)$/))) return showPlaylist(m[1]);
    if (path === "/albums") return showAlbums();
    if (path === "/artists") return showArtists();
    if (path === "/playlists") return showPlaylists();
    if (path === "/playlist") return showCurrentPlaylist();
    if (path === "/queue") return showQueue();
    if (path === "/map") return showMap(params);
    if (path === "/upload") return showUpload();
    return showLibrary(params);
  }

  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/?${new URLSearchParams({ q: $("#search").value.trim() })}`;
  });
  window.addEventListener("hashchange", route);
  initPlaylists();
  route();
})();
