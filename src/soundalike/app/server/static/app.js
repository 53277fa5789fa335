// soundalike web page: plain JavaScript, no build step, no external resources.
// Every piece of library data is put in the page with textContent (never as HTML): tags are untrusted input.
"use strict";

(() => {
  // ---------------------------------------------------------------- token, API calls
  const TOKEN_KEY = "soundalike.token";
  const PLAYLIST_KEY = "soundalike.playlist";
  const PAGE_SIZE = 50;

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
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function label(track) {
    return track.artist ? `${track.artist} — ${track.title}` : track.title;
  }

  function showTokenForm() {
    if ($("#token-form")) return;
    const input = el("input", { type: "password", id: "token-input", placeholder: "token", "aria-label": "Token" });
    const form = el("form", { id: "token-form", class: "card", onsubmit: (event) => {
      event.preventDefault();
      localStorage.setItem(TOKEN_KEY, input.value.trim());
      route();
    } }, el("h2", { text: "This server needs its token" }),
    el("p", { class: "muted", text: "Ask whoever started `soundalike serve --token …`, or open the address it printed." }),
    input, el("button", { type: "submit", text: "Use token" }));
    setView(form);
  }

  // ---------------------------------------------------------------- player and playlist state
  const player = $("#player");

  function play(track) {
    player.src = withToken(`/api/tracks/${track.track_id}/audio`);
    player.dataset.trackId = track.track_id;
    const now = $("#now-playing");
    now.className = "";
    fill(now, el("span", { class: "muted", text: "Now playing " }),
      el("a", { href: `#/track/${track.track_id}`, text: label(track) }),
      track.album ? el("span", { class: "muted", text: ` · ${track.album}` }) : null);
    player.play().catch(() => { /* autoplay may be refused; the controls stay usable */ });
  }

  const playlist = {
    items: JSON.parse(localStorage.getItem(PLAYLIST_KEY) || "[]"),
    save() {
      localStorage.setItem(PLAYLIST_KEY, JSON.stringify(this.items));
      $("#playlist-count").textContent = String(this.items.length);
    },
    has(id) { return this.items.some((t) => t.track_id === id); },
    add(track, quiet = false) {
      if (this.has(track.track_id)) { if (!quiet) toast(`Already in the playlist: ${label(track)}`); return false; }
      const { track_id, title, artist, album, duration } = track;
      this.items.push({ track_id, title, artist, album, duration });
      this.save();
      if (!quiet) toast(`Added: ${label(track)}`);
      return true;
    },
    move(from, to) {
      if (to < 0 || to >= this.items.length) return;
      const [item] = this.items.splice(from, 1);
      this.items.splice(to, 0, item);
      this.save();
    },
    remove(index) { this.items.splice(index, 1); this.save(); },
  };
  playlist.save();

  // ---------------------------------------------------------------- track rows
  function trackRow(track, { score = null, rank = null } = {}) {
    const row = el("li", { class: "track-row", dataset: { trackId: track.track_id } },
      rank !== null ? el("span", { class: "rank", text: String(rank) }) : null,
      el("button", { class: "icon play", title: "Play", "aria-label": `Play ${label(track)}`, onclick: () => play(track) }, "▶"),
      el("span", { class: "meta" },
        el("a", { class: "title", href: `#/track/${track.track_id}`, text: track.title || "(untitled)" }),
        el("span", { class: "sub", text: [track.artist, track.album].filter(Boolean).join(" · ") })),
      score !== null ? el("span", { class: "score", title: `similarity ${score.toFixed(3)}` },
        el("span", { class: "bar", style: `width:${Math.max(0, Math.min(1, score)) * 100}%` }),
        el("span", { class: "value", text: score.toFixed(3) })) : null,
      el("span", { class: "time", text: duration(track.duration) }),
      el("button", { class: "icon add", title: "Add to playlist", "aria-label": `Add ${label(track)} to the playlist`,
        onclick: () => playlist.add(track) }, "+"));
    return row;
  }

  function resultList(results, { ranked = true } = {}) {
    return el("ol", { class: "tracks results" },
      results.map((r, i) => trackRow(r, { score: typeof r.score === "number" ? r.score : null, rank: ranked ? i + 1 : null })));
  }

  // ---------------------------------------------------------------- library / search
  async function showLibrary(params) {
    const q = params.get("q") || "";
    const page = Math.max(0, parseInt(params.get("page") || "0", 10) || 0);
    $("#search").value = q;
    setView(el("p", { class: "muted", text: "Loading…" }));
    const current = ticket("view");
    try {
      const query = new URLSearchParams({ q, offset: String(page * PAGE_SIZE), limit: String(PAGE_SIZE) });
      const { body } = await api(`/api/tracks?${query}`);
      if (!current()) return;
      const from = body.total ? body.offset + 1 : 0;
      const to = body.offset + body.items.length;
      const nav = (p) => `#/?${new URLSearchParams({ q, page: String(p) })}`;
      const pager = el("div", { class: "pager" },
        page > 0 ? el("a", { class: "button", href: nav(page - 1), text: "← Previous" }) : el("span"),
        el("span", { class: "muted", text: `${from}–${to} of ${body.total}` }),
        to < body.total ? el("a", { class: "button", href: nav(page + 1), id: "next-page", text: "Next →" }) : el("span"));
      const heading = q ? `${body.total} track${body.total === 1 ? "" : "s"} matching “${q}”` : `Library · ${body.total} tracks`;
      setView(el("section", { id: "library" }, el("h1", { text: heading }),
        body.items.length ? el("ol", { class: "tracks", id: "track-list" }, body.items.map((t) => trackRow(t)))
          : el("p", { class: "muted", text: q ? "Nothing matches. Try fewer words." : "The library is empty: run `soundalike index PATH`." }),
        body.total > PAGE_SIZE ? pager : null));
    } catch (err) { if (err.status !== 401 && current()) setView(errorBox(err)); }
  }

  // ---------------------------------------------------------------- track page
  let libraryPromise = null;
  /** /api/library, asked once per page load (the models a client may choose). */
  function libraryInfo() {
    if (!libraryPromise) libraryPromise = api("/api/library").then(({ body }) => body).catch((err) => { libraryPromise = null; throw err; });
    return libraryPromise;
  }

  async function showTrack(id) {
    setView(el("p", { class: "muted", text: "Loading…" }));
    let track;
    const current = ticket("view");
    try { track = (await api(`/api/tracks/${id}`)).body; } catch (err) { if (err.status !== 401 && current()) setView(errorBox(err)); return; }
    if (!current()) return;
    const audio = el("audio", { id: "track-audio", controls: true, preload: "metadata", src: withToken(track.audio_url) });
    const k = el("select", { id: "similar-k", "aria-label": "How many" }, [10, 20, 50].map((n) => el("option", { value: n, text: `${n} tracks` })));
    const model = el("select", { id: "similar-model", "aria-label": "Model" },
      el("option", { value: "default", text: "default model" }));
    const distance = el("select", { id: "similar-distance", "aria-label": "Distance" },
      [["cosine", "cosine (pooled)"], ["dtw", "DTW (segments)"], ["frechet", "Fréchet (segments)"], ["minpoint", "min point (segments)"], ["mean", "mean (segments)"]]
        .map(([v, t]) => el("option", { value: v, text: t })));
    let sequenceModels = null;  // names whose tracks have segment sequences; null until /api/library answers
    /** Offer the segment distances only with a model that has segment sequences (never an option that errs). */
    function fitDistances() {
      const ok = sequenceModels === null || sequenceModels.includes(model.value);
      for (const option of distance.options) {
        option.disabled = !ok && option.value !== "cosine";
        option.title = option.disabled ? "This model describes whole tracks: no segments to compare" : "";
      }
      if (!ok && distance.value !== "cosine") distance.value = "cosine";
    }
    libraryInfo().then((info) => {
      for (const name of info.models_offered.filter((m) => m !== "default")) model.append(el("option", { value: name, text: name }));
      sequenceModels = info.sequence_models || [];
      fitDistances();
    }).catch(() => { /* the default model still works */ });
    model.addEventListener("change", fitDistances);
    const noArtist = el("input", { type: "checkbox", id: "no-same-artist" });
    const noAlbum = el("input", { type: "checkbox", id: "no-same-album" });
    const results = el("div", { id: "similar" }, el("p", { class: "muted", text: "Finding what sounds alike…" }));

    async function loadSimilar() {
      results.replaceChildren(el("p", { class: "muted", text: "Finding what sounds alike…" }));
      const query = new URLSearchParams({ k: k.value, distance: distance.value, model: model.value });
      if (noArtist.checked) query.set("no_same_artist", "true");
      if (noAlbum.checked) query.set("no_same_album", "true");
      const newest = ticket("similar");
      try {
        const { body } = await api(`/api/tracks/${id}/similar?${query}`);
        if (!newest()) return;
        fill(results, (body.notes || []).length ? el("p", { class: "muted note", id: "similar-notes", text: body.notes.join(" · ") }) : null,
          body.results.length ? resultList(body.results) : el("p", { class: "muted", text: "No other track to compare with." }),
          body.results.length ? el("button", { class: "secondary", onclick: () => {
            const added = body.results.filter((r) => playlist.add(r, true)).length;
            toast(`Added ${added} track${added === 1 ? "" : "s"} to the playlist`);
          } }, "Add all to playlist") : null);
      } catch (err) { if (err.status !== 401 && newest()) results.replaceChildren(errorBox(err)); }
    }
    for (const control of [k, model, distance, noArtist, noAlbum]) control.addEventListener("change", loadSimilar);

    const spectrogram = el("img", { id: "spectrogram", class: "spectrogram", alt: `Log-mel spectrogram of ${label(track)}`,
      src: withToken(`${track.spectrogram_url}?width=1000&height=200`), width: 1000, height: 200 });
    spectrogram.addEventListener("error", () => spectrogram.replaceWith(el("p", { class: "muted", text: "No spectrogram stored for this track." })));
    setView(el("section", { id: "track", dataset: { trackId: track.track_id } },
      el("p", { class: "crumbs" }, el("a", { href: "#/", text: "Library" }), " / ",
        el("a", { href: `#/?q=${encodeURIComponent(track.album || track.artist || "")}`, text: track.album || track.artist || "…" })),
      el("h1", { id: "track-title", text: track.title || "(untitled)" }),
      el("p", { class: "sub big", text: [track.artist, track.album, duration(track.duration), track.format.toUpperCase()].filter(Boolean).join(" · ") }),
      el("div", { class: "player-row" }, audio,
        el("button", { id: "add-track", onclick: () => playlist.add(track) }, "+ Add to playlist")),
      el("figure", {}, spectrogram, el("figcaption", { class: "muted", text: "Log-mel spectrogram (128 mel bands, low frequencies at the bottom)" })),
      el("details", { class: "paths" }, el("summary", { text: `${track.paths.length} file${track.paths.length === 1 ? "" : "s"}` }),
        el("ul", {}, track.paths.map((p) => el("li", { class: "mono", text: p })))),
      el("h2", { text: "Sounds like this" }),
      el("div", { class: "controls" }, k, model, distance,
        el("label", {}, noArtist, " no same artist"), el("label", {}, noAlbum, " no same album")),
      results));
    loadSimilar();
  }

  // ---------------------------------------------------------------- playlist builder
  function showPlaylist() {
    const list = el("ol", { class: "tracks playlist", id: "playlist" });
    let dragFrom = null;
    function render() {
      list.replaceChildren(...playlist.items.map((track, index) => {
        const row = trackRow(track, { rank: index + 1 });
        row.draggable = true;
        row.addEventListener("dragstart", () => { dragFrom = index; row.classList.add("dragging"); });
        row.addEventListener("dragend", () => row.classList.remove("dragging"));
        row.addEventListener("dragover", (event) => event.preventDefault());
        row.addEventListener("drop", (event) => { event.preventDefault(); if (dragFrom !== null) { playlist.move(dragFrom, index); dragFrom = null; render(); } });
        row.querySelector(".add").remove();
        row.append(
          el("button", { class: "icon up", title: "Move up", "aria-label": "Move up", onclick: () => { playlist.move(index, index - 1); render(); } }, "▲"),
          el("button", { class: "icon down", title: "Move down", "aria-label": "Move down", onclick: () => { playlist.move(index, index + 1); render(); } }, "▼"),
          el("button", { class: "icon remove", title: "Remove", "aria-label": "Remove", onclick: () => { playlist.remove(index); render(); } }, "✕"));
        return row;
      }));
      const ids = playlist.items.map((t) => t.track_id).join(",");
      exportLink.href = ids ? withToken(`/api/playlist.m3u?ids=${ids}&title=${encodeURIComponent(titleInput.value)}`) : "#/playlist";
      exportUrls.href = ids ? withToken(`/api/playlist.m3u?ids=${ids}&target=urls&title=${encodeURIComponent(titleInput.value)}`) : "#/playlist";
      summary.textContent = playlist.items.length
        ? `${playlist.items.length} tracks · ${duration(playlist.items.reduce((s, t) => s + (t.duration || 0), 0))}`
        : "Empty: add tracks with + from the library, a track page, the map or a file search.";
      for (const b of [continueButton, pathButton]) b.disabled = playlist.items.length < (b === pathButton ? 2 : 1);
    }
    const titleInput = el("input", { id: "playlist-title", value: "soundalike playlist", "aria-label": "Playlist title", oninput: () => render() });
    const exportLink = el("a", { class: "button", id: "export-m3u", download: "playlist.m3u8", text: "Export M3U" });
    const exportUrls = el("a", { class: "button secondary", id: "export-m3u-urls", download: "playlist-stream.m3u8", text: "M3U with stream URLs" });
    const summary = el("p", { class: "muted", id: "playlist-summary" });
    const k = el("select", { id: "continue-k", "aria-label": "How many to add" }, [5, 10, 20].map((n) => el("option", { value: n, text: `+${n}` })));
    const score = el("select", { id: "continue-score", "aria-label": "Score" },
      [["max", "closest to any track"], ["mean", "closest to the average"], ["topk", "closest to the best 3"], ["cluster", "closest to the main cluster"]]
        .map(([v, t]) => el("option", { value: v, text: t })));
    const n = el("input", { type: "number", id: "path-n", min: 3, max: 50, value: 8, "aria-label": "Tracks in the path" });
    const status = el("div", { id: "playlist-status" });
    const continueButton = el("button", { id: "continue", onclick: async () => {
      status.replaceChildren(el("p", { class: "muted", text: "Finding tracks that continue the playlist…" }));
      try {
        const { body } = await api("/api/continue", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ track_ids: playlist.items.map((t) => t.track_id), k: Number(k.value), score: score.value }) });
        const added = body.results.filter((r) => playlist.add(r, true)).length;
        status.replaceChildren(el("p", { class: "ok", text: `Added ${added} track${added === 1 ? "" : "s"} that continue the playlist.` }));
        render();
      } catch (err) { if (err.status !== 401) status.replaceChildren(errorBox(err)); }
    } }, "Continue");
    const pathButton = el("button", { id: "make-path", class: "secondary", onclick: async () => {
      const first = playlist.items[0];
      const last = playlist.items[playlist.items.length - 1];
      status.replaceChildren(el("p", { class: "muted", text: "Walking from the first track to the last…" }));
      try {
        const { body } = await api(`/api/path?start=${first.track_id}&end=${last.track_id}&n=${Number(n.value) || 8}`);
        const middle = body.results.slice(1, -1).filter((r) => !playlist.has(r.track_id));
        playlist.items.splice(playlist.items.length - 1, 0, ...middle.map(({ track_id, title, artist, album, duration }) => ({ track_id, title, artist, album, duration })));
        playlist.save();
        status.replaceChildren(el("p", { class: "ok", text: `Inserted ${middle.length} tracks leading from the first to the last.` }));
        render();
      } catch (err) { if (err.status !== 401) status.replaceChildren(errorBox(err)); }
    } }, "Fill a path first → last");
    setView(el("section", { id: "playlist-page" }, el("h1", { text: "Playlist" }), summary,
      el("div", { class: "controls" }, el("label", {}, "Title ", titleInput), exportLink, exportUrls,
        el("button", { class: "secondary", id: "clear-playlist", onclick: () => { if (confirm("Empty the playlist?")) { playlist.items = []; playlist.save(); render(); } } }, "Clear")),
      el("div", { class: "controls" }, continueButton, k, score, el("span", { class: "sep" }), pathButton, n, el("span", { class: "muted", text: "tracks" })),
      status, list));
    render();
  }

  // ---------------------------------------------------------------- map
  const mapState = { data: null, method: "pca", transform: null };

  function colourOf(name) {
    let h = 2166136261;
    for (let i = 0; i < name.length; i++) { h ^= name.charCodeAt(i); h = Math.imul(h, 16777619); }
    return `hsl(${(h >>> 0) % 360}, 62%, ${45 + ((h >>> 9) % 3) * 8}%)`;
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
    const reset = el("button", { class: "secondary", id: "zoom-reset", onclick: () => { mapState.transform = { k: 1, x: 0, y: 0 }; draw(); } }, "Reset view");
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
    const albums = new Map();
    data.album.forEach((a) => albums.set(a || "(no album)", (albums.get(a || "(no album)") || 0) + 1));
    const colours = data.album.map((a) => colourOf(a || "(no album)"));
    info.textContent = `${data.count} tracks · ${data.method.toUpperCase()} of ${data.model} · colour = album · wheel to zoom, drag to move, click to play`;
    legend.replaceChildren(...[...albums.entries()].sort((a, b) => b[1] - a[1]).slice(0, 16).map(([name, count]) =>
      el("li", {}, el("span", { class: "swatch", style: `background:${colourOf(name)}` }), `${name} (${count})`)));

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
        ctx.fillStyle = colours[i];
        ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fill();
      }
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
    }
    let drag = null;
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = canvas.getBoundingClientRect();
      zoomBy(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    canvas.addEventListener("mousedown", (event) => { drag = { x: event.clientX, y: event.clientY, moved: false }; });
    window.addEventListener("mouseup", () => { setTimeout(() => { drag = null; }, 0); });
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
      play(track);
      picked.replaceChildren(el("div", { class: "card picked" },
        el("strong", { text: label(track) }), track.album ? el("span", { class: "muted", text: ` · ${track.album}` }) : null, " ",
        el("a", { class: "button", href: `#/track/${track.track_id}`, text: "Open track page" }), " ",
        el("button", { class: "secondary", onclick: () => playlist.add(track) }, "+ Add to playlist")));
    });
    canvas.addEventListener("dblclick", () => { mapState.transform = { k: 1, x: 0, y: 0 }; draw(); });
    window.addEventListener("resize", resize);
    // For tests and scripts: where a track's point is on the canvas (CSS pixels, relative to the canvas).
    window.soundalikeMap = { count: data.count, ids: data.ids, position: (id) => screen(data.ids.indexOf(id)) };
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
        body.results.length ? resultList(body.results) : el("p", { class: "muted", text: "The library has no other track." }));
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
  function route() {
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, query = ""] = hash.split("?");
    const params = new URLSearchParams(query);
    const section = path.split("/")[1] || "library";
    for (const link of document.querySelectorAll("nav a[data-nav]")) {
      link.classList.toggle("active", link.dataset.nav === (section === "track" ? "library" : section));
    }
    const trackMatch = path.match(/^\/track\/(\d+)$/);
    if (trackMatch) return showTrack(trackMatch[1]);
    if (path === "/map") return showMap(params);
    if (path === "/playlist") return showPlaylist();
    if (path === "/upload") return showUpload();
    return showLibrary(params);
  }

  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/?${new URLSearchParams({ q: $("#search").value.trim() })}`;
  });
  window.addEventListener("hashchange", route);
  route();
})();
