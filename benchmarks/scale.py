"""A million tracks in one server: build a synthetic catalogue, serve it, measure size, memory and latency.

    python benchmarks/scale.py [--n 1000000] [--library DIR] [--clients 8] [--seconds 30] [--rounds 1] [--alone 30]
                               [--concurrency N] [--workers N] [--json] [--out FILE]
    python benchmarks/scale.py --ann-only --library DIR [--out FILE]   # the IVF / IVF-SQ8 / PCA-rotated IVF-PQ table
    python benchmarks/scale.py --recall-only --library DIR [--rerank 1,2] [--out FILE]  # the served IVF-SQ8, re-ranked
    python benchmarks/scale.py --cpu-only --library DIR [--requests 40] [--out FILE]   # CPU a request, in-process
    python benchmarks/scale.py --library DIR --versus OTHER_CHECKOUT [--pairs 2] [load options] [--out FILE]  # A/B

**Build** (skipped when ``--library`` already holds ``--n`` tracks): ``--n`` tracks catalogued through
:meth:`Library.add_tracks <soundalike.library.catalog.Library.add_tracks>` in batches, no audio: realistic tags
(artists with albums of numbered tracks, genres, years; titles from a vocabulary of words), paths
``MUSIC/Artist/Year - Album/NN Title.flac``, and clustered random vectors for every part of the default model
(``models/pretrained/default.json``: the descriptors and the embeddings of ``default.pt`` and
``default_contrastive.pt``, registered as the shipped checkpoints made them, so ``--model default`` resolves to the
same three-part key as on a real library): a centre per genre, one per artist near it, each track near its artist.
The search index of ``default`` is then built the way the server would build it (:func:`load_index`) and saved in
the library, so the server opens it instead of building it.

**Measure**: the catalogue's and the indexes' size on disk; ``soundalike serve`` started on loopback
(:func:`background_server`, ``--workers`` processes), its start-up (index load) time, the first map overview's time,
its memory after the run (the proportional set sizes of its processes, summed: pages the workers share count once;
the peak sampled every 2 s); each endpoint's latency with one client alone (``--alone`` requests of each kind: no
queueing); then ``--rounds`` times ``--clients`` keep-alive clients for ``--seconds`` (the load generator of
``benchmarks/server.py``, imported; the results pool the rounds, and each round's p99 ratios are kept) over:

| endpoint | request |
|---|---|
| ``search`` | ``GET /api/tracks?q=<a title word>&limit=50`` |
| ``detail`` | ``GET /api/tracks/<id>`` |
| ``similar`` | ``GET /api/tracks/<id>/similar?k=10`` |
| ``continue`` | ``POST /api/continue`` with 5 tracks of one album, ``k=10`` |
| ``path`` | ``GET /api/path?start=<id>&end=<id>&n=10`` |
| ``map`` | ``GET /api/map`` (the sampled overview) |
| ``map_window`` | ``GET /api/map?x0=..&x1=..&y0=..&y1=..`` (detail on zoom: a random 1/16 of the plane) |
| ``health`` | ``GET /api/health``: the baseline under the same load |

The JSON (``{"n", "rss_mb", "disk_mb", "results": [{"endpoint", "p50_ms", "p99_ms", ...}], ...}``) gives each
endpoint's p99 as a multiple of ``health``'s: on a shared machine that ratio, not the milliseconds, is the figure
to compare. ``--ann-only`` measures recall@10 (against exact search, 200 library queries), search time and memory of
IVF-Flat, IVF-SQ8 and PCA-rotated IVF-PQ (JSON key "opq+ivf-pq") over the same search vectors (the default's, from
the library), the compact ones also with the exact re-rank of their candidates; ``--recall-only`` the served IVF-SQ8
alone, with and without the re-rank (one pass over the library, no IVF-Flat copy in memory).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import commit  # noqa: E402
from server import CLIENTS, Workload, cpu_seconds, log, percentiles, run_load, unloaded  # noqa: E402 - the load generator is shared

BATCH = 10_000
#: Tracks of an album in the synthetic catalogue (consecutive ids; ten albums an artist).
ALBUM_TRACKS = 10
WEIGHTS = {"search": 15, "detail": 15, "similar": 20, "continue": 10, "path": 10, "map": 5, "map_window": 10,
           "health": 15}
GENRES = ["Rock", "Pop", "Jazz", "Blues", "Folk", "Electronic", "Techno", "House", "Ambient", "Hip-Hop", "Soul",
          "Funk", "Reggae", "Metal", "Punk", "Classical", "Country", "Latin", "Disco", "Indie"]
def _split(text: str) -> list[str]:
    return text.split()


_WORDS = _split("love night blue river heart light dream fire rain summer road home city gold wild shadow silver storm "
          "ocean moon sun star glass iron velvet paper ember hollow neon quiet golden lunar static cedar drift "
          "echo morning winter angel devil train radio dance fever honey sugar stone bridge garden window mirror "
          "thunder lightning desert mountain valley island harbour highway midnight sunrise sunset forever never "
          "always tonight yesterday tomorrow secret broken tender lonely crazy sweet bitter electric magnetic "
          "cosmic crystal diamond paradise heaven spirit ghost shadows memory story letter promise whisper")
_SYLLABLES = ["ka", "lo", "mi", "ra", "ven", "tor", "sel", "na", "dor", "fi", "bel", "qui", "zan", "mor", "lis",
              "the", "ar", "on", "es", "ul"]
_FIRST = _split("Anna Ben Clara David Eva Felix Greta Hugo Ida Jonas Karla Leo Maya Nils Olga Paul Rosa Sven Tara Ugo "
          "Vera Will Xenia Yann Zoe")
_LAST = _split("Holm Berg Lind Strand Moreau Rossi Novak Silva Costa Kowal Fischer Weber Meyer Dahl Nyman Vidal Ortiz "
         "Keane Doyle Brandt")


def vocabulary(seed: int = 0) -> list[str]:
    """Title words: common song words plus made-up ones (about 2,000 in all), capitalised."""
    rng = np.random.default_rng(seed)
    made = {"".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4)))) for _ in range(2200)}
    return [w.capitalize() for w in _WORDS] + sorted(w.capitalize() for w in made)


def default_parts_dims() -> list[tuple[str, str, Path | None, int]]:
    """``(part name in default.json, catalogue model id, checkpoint, dimension)`` of every part of the default."""
    from soundalike.audio.descriptors import DESCRIPTOR_DIM
    from soundalike.library.catalog import DESCRIPTOR_MODEL
    from soundalike.models.checkpoint import load_checkpoint
    from soundalike.models.pretrained import default_checkpoint, default_parts

    folder = default_checkpoint()
    out: list[tuple[str, str, Path | None, int]] = []
    for part, _ in default_parts():
        if part == DESCRIPTOR_MODEL:
            out.append((part, DESCRIPTOR_MODEL, None, DESCRIPTOR_DIM))
            continue
        assert folder is not None, "this build ships no default checkpoint"
        path = folder.parent / part
        model, payload = load_checkpoint(path)
        out.append((part, str(payload["model_id"]), path, int(model.embedding_dim)))
    return out


class Catalogue:
    """The synthetic library's plan: artists, albums, genres and the vector centres they are drawn around."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed = n, seed
        rng = np.random.default_rng(seed)
        self.words = vocabulary(seed)
        self.n_artists = max(1, n // 100)
        self.parts = default_parts_dims()
        self.artist_genre = rng.integers(0, len(GENRES), self.n_artists)
        names = []
        for a in range(self.n_artists):
            if a % 3 == 0:
                names.append(f"{_FIRST[a % len(_FIRST)]} {_LAST[(a // len(_FIRST)) % len(_LAST)]}")
            else:
                w = rng.choice(len(self.words), 2)
                names.append(f"The {self.words[w[0]]} {self.words[w[1]]}" if a % 3 == 1 else
                             f"{self.words[w[0]]} {self.words[w[1]]}")
        self.artist_names = [f"{name} {a // 600}" if a >= 600 else name for a, name in enumerate(names)]
        # Centres: per genre, per artist near its genre (seeded, per part); a track is drawn near its artist.
        self.genre_centres = [rng.standard_normal((len(GENRES), dim)).astype(np.float32) * 2.0
                              for _, _, _, dim in self.parts]
        self.artist_offsets_seed = int(rng.integers(2**31))

    def artist_centres(self, part: int, artists: np.ndarray) -> np.ndarray:
        """The vector centre of each artist in ``artists`` for one part (drawn from the artist's own seed)."""
        dim = self.parts[part][3]
        out = np.empty((len(artists), dim), np.float32)
        for row, a in enumerate(artists):
            r = np.random.default_rng([self.artist_offsets_seed, part, int(a)])
            out[row] = self.genre_centres[part][self.artist_genre[a]] + r.standard_normal(dim).astype(np.float32)
        return out

    def batch(self, start: int, stop: int, music: Path) -> list[Any]:
        """The :class:`NewTrack` records of tracks ``start .. stop - 1``."""
        from soundalike.audio.analysis import Tags
        from soundalike.library.catalog import NewTrack

        rng = np.random.default_rng([self.seed, start])
        idx = np.arange(start, stop)
        artists = idx // 100
        artists = np.minimum(artists, self.n_artists - 1)
        unique, inverse = np.unique(artists, return_inverse=True)
        vectors = []
        for part in range(len(self.parts)):
            centres = self.artist_centres(part, unique)[inverse]
            dim = self.parts[part][3]
            vectors.append(centres + 0.8 * rng.standard_normal((len(idx), dim)).astype(np.float32))
        out = []
        for row, i in enumerate(idx.tolist()):
            a = int(artists[row])
            album_no, track_no = (i % 100) // ALBUM_TRACKS, i % ALBUM_TRACKS + 1
            aw = np.random.default_rng([self.seed, a, album_no]).choice(len(self.words), 2)
            album = f"{self.words[aw[0]]} {self.words[aw[1]]}"
            year = 1960 + (a * 7 + album_no * 3) % 64
            tw = rng.choice(len(self.words), int(rng.integers(1, 4)))
            title = " ".join(self.words[w] for w in tw)
            artist = self.artist_names[a]
            genre = GENRES[int(self.artist_genre[a])]
            path = music / artist / f"{year} - {album}" / f"{track_no:02d} {title}.flac"
            out.append(NewTrack(path=str(path), audio_hash=f"synthetic-{self.seed}-{i}", duration=float(
                rng.uniform(120, 420)), tags=Tags(artist=artist, album=album, title=title, album_artist=artist,
                                                 genre=genre, track_no=track_no, disc_no=1, year=year),
                vectors={self.parts[p][1]: vectors[p][row] for p in range(len(self.parts))},
                size=int(rng.integers(5, 60)) << 20, mtime_ns=1_700_000_000_000_000_000 + i))
        return out


def build(library: Path, n: int, seed: int = 0, index: bool = True) -> dict[str, Any]:
    """Catalogue ``n`` synthetic tracks in ``library`` (unless it holds them already) and build the default's index;
    returns timings."""
    from soundalike.library.catalog import Library
    from soundalike.models.embedding import register_model
    from soundalike.recommend import load_index

    timings: dict[str, Any] = {}
    music = library.parent / "music"
    with Library.open(library) as lib:
        have = int(lib.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0])
        if have not in (0, n):
            raise SystemExit(f"{library} holds {have} tracks, not {n}: give another --library")
        plan = Catalogue(n, seed)
        for _, model_id, path, _ in plan.parts:
            if path is not None:
                register_model(lib, {"model_id": model_id, "model": model_id.split("-")[0]}, path)
        lib.add_roots([str(music)])
        if have == 0:
            t0 = time.perf_counter()
            for start in range(0, n, BATCH):
                lib.add_tracks(plan.batch(start, min(n, start + BATCH), music))
                if start and start % (BATCH * 20) == 0:
                    rate = start / (time.perf_counter() - t0)
                    log(f"catalogued {start} tracks ({rate:.0f}/s)")
            timings["catalogue_s"] = round(time.perf_counter() - t0, 1)
            log(f"catalogued {n} tracks in {timings['catalogue_s']} s")
        if index:
            t0 = time.perf_counter()
            built = load_index(lib, "default")
            timings["index_s"] = round(time.perf_counter() - t0, 1)
            timings["index"] = {"model": built.embedding.model, "dim": built.embedding.dim, "kind": built.ann.kind,
                                "codec": built.ann.params.codec, "nlist": built.ann.params.nlist,
                                "nprobe": built.ann.params.nprobe, "calibration": built.ann.params.calibration}
            log(f"index of default: {timings['index']} in {timings['index_s']} s")
    return timings


def disk_mb(path: Path) -> float:
    """Megabytes of the file ``path``, or of the files under it (what they take on disk)."""
    if path.is_file():
        return round(path.stat().st_blocks * 512 / 2**20, 1)
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return round(total / 2**20, 1)


def tree_memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of a server and its workers (Linux ``/proc``), MB: ``rss`` sums each process's resident set
    (pages the workers share counted once a process), ``pss`` their proportional sets (a shared page split among
    the processes that map it: the tree's real footprint; about ``rss`` for one process)."""
    from server import process_tree

    rss = pss = 0.0
    for one in process_tree(pid):
        try:
            lines = Path(f"/proc/{one}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {k: v.split()[0] for k, _, v in (line.partition(":") for line in lines) if v.strip()}
        rss, pss = rss + int(fields.get("Rss", 0)) / 1024, pss + int(fields.get("Pss", 0)) / 1024
    return {"rss": round(rss, 1), "pss": round(pss, 1)}


def connections_by_worker(pid: int, port: int) -> list[int]:
    """How many established client connections to ``port`` each worker process of the server ``pid`` holds (Linux
    ``/proc``; one entry for a single-process server): a keep-alive connection stays with the worker that
    accepted it."""
    from server import process_tree

    from soundalike.app.server.run import held_connections

    tree = process_tree(pid)
    return held_connections(tree[1:] or tree, port)


class MemoryPeak:
    """The largest :func:`tree_memory_mb` ``pss`` seen, sampled every ``every`` seconds in a thread."""

    def __init__(self, pid: int, every: float = 2.0) -> None:
        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, tree_memory_mb(self.pid)["pss"])

    def stop(self) -> float:
        """Stop sampling; the peak (MB)."""
        self._stop.set()
        self._thread.join()
        return max(self.peak, tree_memory_mb(self.pid)["pss"])


def rss_mb(pid: int) -> tuple[float, float]:
    """``(current, peak)`` resident memory of a process in MB (Linux ``/proc``)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return (round(int(fields.get("VmRSS", "0 kB").split()[0]) / 1024, 1),
            round(int(fields.get("VmHWM", "0 kB").split()[0]) / 1024, 1))


class ScaleWorkload(Workload):
    """The requests of this benchmark (see the module docstring) over a catalogue's ids and title words."""

    def __init__(self, ids: list[int], sample: list[dict[str, Any]], seed: int = 0, map_limit: int | None = None
                 ) -> None:
        super().__init__(sample, {}, seed)
        self.ids = sorted(ids)
        self.map_query = f"limit={map_limit}&" if map_limit else ""
        self.weights = dict(WEIGHTS)
        self.words = sorted({w for t in sample for w in t["title"].split() if len(w) >= 3})

    def request(self, kind: str, tid: int) -> tuple[Any, ...]:
        """The server benchmark's requests (search, detail, similar), and this one's: continue, path, the map's
        overview and windows."""
        if kind == "continue":  # five tracks of the album of tid (ALBUM_TRACKS consecutive ids), as a user's playlist
            at = bisect.bisect_left(self.ids, tid)
            first = at - at % ALBUM_TRACKS
            album = self.ids[first:first + ALBUM_TRACKS]
            return kind, "/api/continue", {}, {"track_ids": sorted(self.rng.sample(album, min(5, len(album)))),
                                               "k": 10}
        if kind == "path":
            return kind, f"/api/path?start={tid}&end={self.rng.choice(self.ids)}&n=10", {}
        if kind == "map":
            return kind, f"/api/map?{self.map_query}", {}
        if kind == "map_window":
            x0, y0 = self.rng.uniform(0, 0.75), self.rng.uniform(0, 0.75)
            return kind, f"/api/map?{self.map_query}x0={x0:.4f}&x1={x0 + 0.25:.4f}&y0={y0:.4f}&y1={y0 + 0.25:.4f}", {}
        return super().request(kind, tid)


def workload(library: Path, seed: int = 0, map_limit: int | None = None) -> ScaleWorkload:
    """Every track id of the library and the tags of a seeded sample of 2,000 (for search words)."""
    from soundalike.library.catalog import Library

    with Library.open(library, create=False, readonly=True) as lib:
        ids = [int(r[0]) for r in lib.conn.execute("SELECT id FROM tracks ORDER BY id")]
        rng = np.random.default_rng(seed)
        pick = sorted(int(i) for i in rng.choice(ids, min(2000, len(ids)), replace=False))
        sample = [t.to_dict() for t in lib.tracks(pick)]
    return ScaleWorkload(ids, sample, seed, map_limit)


def _send(http: Any, url: str, request: tuple[Any, ...]) -> Any:
    """Send one request of :meth:`ScaleWorkload.request` (a fourth item, a JSON body, makes it a POST) to ``url``;
    raises on an error status."""
    answer = http.post(url + request[1], json=request[3]) if len(request) == 4 else http.get(url + request[1])
    answer.raise_for_status()
    return answer


def _timed_get(http: Any, url: str) -> tuple[float, Any]:
    start = time.perf_counter()
    answer = http.get(url)
    answer.raise_for_status()
    return (time.perf_counter() - start) * 1000, answer


def warm_up(url: str, work: ScaleWorkload) -> dict[str, Any]:
    """The first requests, timed: the index load (first ``similar``), the first map overview, and how long every
    track's map position takes in the background (polling a window until it is no longer ``partial``). The server
    loads the index and computes the overview at start-up in the background (``maplayout.warm_up``): the first
    ``similar`` waits for what is left of that, and the overview is then served from its cache."""
    import httpx2

    out: dict[str, Any] = {}
    with httpx2.Client(timeout=1800.0) as http:
        ms, _ = _timed_get(http, f"{url}/api/tracks/{work.ids[0]}/similar")
        out["first_similar_s"] = round(ms / 1000, 2)
        ms, answer = _timed_get(http, f"{url}/api/map?{work.map_query}")
        out["map_overview_first_ms"] = round(ms, 1)
        body = answer.json()
        out["map_overview_points"] = body["count"]
        out["map_overview_total"] = body.get("total", body["count"])
        out["map_overview_bytes"] = len(answer.content)
        out["map_overview_ms"] = percentiles([_timed_get(http, f"{url}/api/map?{work.map_query}")[0]
                                              for _ in range(20)])
        t0 = time.perf_counter()
        while True:
            _, answer = _timed_get(http, f"{url}/api/map?{work.map_query}x0=0.4&x1=0.6&y0=0.4&y1=0.6")
            if not answer.json().get("partial") or time.perf_counter() - t0 > 240:
                break
            time.sleep(1.0)
        out["map_full_layout_s"] = round(time.perf_counter() - t0, 1)
        for kind in ("search", "detail", "continue", "path", "map_window"):
            while True:
                request = work.next()
                if request[0] == kind:
                    break
            _send(http, url, request)
    return out


#: Leaf frames of a server thread that waits (an idle thread of the pool: not CPU).
IDLE_FRAMES = ("Condition.wait", "Queue.get", "Event.wait", "Thread.join")
#: Modules whose frames name a request's endpoint in a sampled stack (the first such frame is the endpoint).
ENDPOINT_MODULES = ("soundalike/app/server/app.py", "soundalike/app/server/library_views.py",
                    "soundalike/app/server/subsonic")


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the server ``pid`` and its workers for ``seconds`` (50 Hz, raw stacks to ``out``); None when
    py-spy is not installed."""
    import shutil

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        log("--profile: py-spy is not installed (pip install py-spy); no profile")
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "50", "--nonblocking",
                             "--duration", str(max(1, round(seconds))), "--format", "raw", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise_profile(raw: str, top: int = 6) -> dict[str, Any]:
    """Where the server's CPU went, from py-spy's raw stacks (``frame;frame;... count`` lines): each endpoint's share
    of the busy samples (the first frame of an endpoint module names it; the rest is "event loop and HTTP"), and
    each one's heaviest leaf functions as shares of its own samples. Threads waiting in the pool are left out."""
    import re

    frame = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")
    by: dict[str, dict[str, int]] = {}
    busy = 0
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [(m.group(1), m.group(2)) if (m := frame.match(f)) else (f, "") for f in stack.split(";")]
        if frames[-1][0] in IDLE_FRAMES:
            continue
        n = int(count)
        busy += n
        owner = next((name for name, path in frames if any(path.endswith(m) or m in path for m in ENDPOINT_MODULES)),
                     "event loop and HTTP")
        leaf = frames[-1][0]
        by.setdefault(owner, {})
        by[owner][leaf] = by[owner].get(leaf, 0) + n
    totals = {owner: sum(leaves.values()) for owner, leaves in by.items()}
    return {"busy_samples": busy,
            "shares": {o: round(t / max(busy, 1), 3) for o, t in sorted(totals.items(), key=lambda kv: -kv[1])},
            "top_leaves": {o: [[leaf, round(n / totals[o], 3)] for leaf, n in
                               sorted(leaves.items(), key=lambda kv: -kv[1])[:top]] for o, leaves in by.items()}}


def measure(library: Path, clients: int, seconds: float, seed: int = 0, map_limit: int | None = None,
            rounds: int = 1, alone: int = 30, concurrency: int = 0, workers: int = 1,
            server_env: dict[str, str] | None = None, profile: float = 0.0, client: str = "lean") -> dict[str, Any]:
    """Serve ``library`` (``serve --concurrency --workers``; concurrency 0: the server's default), warm up, time
    each endpoint with one client alone (``alone`` requests each), then run the load ``rounds`` times for
    ``seconds`` each; sizes, memory, latencies (the JSON of this benchmark). The results pool every round's
    latencies; ``rounds`` holds each round's p99 ratios to ``health`` (how much they move). CPU and memory count
    the server's worker processes too; ``rss_mb`` is their proportional sets' sum (shared pages counted once).
    ``server_env`` is added to the server's environment (``--versus``: another checkout's code); ``profile`` > 0
    samples the server for that many seconds of the first round with py-spy (:func:`summarise_profile`); ``client``
    the load generator (:data:`server.CLIENTS`)."""
    from soundalike.app.server.middleware import default_concurrency
    from soundalike.app.server.run import background_server

    work = workload(library, seed, map_limit)
    load_before = [round(x, 2) for x in os.getloadavg()]
    disk = {"catalogue_mb": sum(disk_mb(p) for p in library.glob("catalog.sqlite*")),
            "indexes_mb": disk_mb(library / "indexes"), "features_mb": disk_mb(library / "features")}
    pooled: dict[str, list[float]] = {}
    per_round: list[dict[str, Any]] = []
    requests = errors = 0
    samples: list[str] = []
    failed: dict[str, int] = {}
    profiled: dict[str, Any] | None = None
    spy_out = Path(tempfile.gettempdir()) / f"soundalike-scale-profile-{os.getpid()}.txt"
    started = time.monotonic()
    with background_server(library, "--concurrency", str(concurrency), "--workers", str(workers),
                           timeout=1800, env=server_env) as server:
        up_s = time.monotonic() - started  # several workers answer once the library is loaded
        peak = MemoryPeak(server.pid)
        url = server.url
        log(f"server {url}: {len(work.ids)} tracks; warm-up")
        warm = warm_up(url, work)
        warm["health_first_s"] = round(up_s, 1)
        rss_warm = tree_memory_mb(server.pid)["pss"]
        one_client = unloaded(url, work, alone) if alone else {}
        log(f"warm-up {warm}; RSS {rss_warm} MB; one client alone: {one_client}")
        cpu_before = cpu_seconds(server.pid)
        wall = 0.0
        for r in range(rounds):
            log(f"round {r + 1}/{rounds}: {clients} clients for {seconds} s")
            held: list[list[int]] = []
            port = int(url.rsplit(":", 1)[1])
            census = threading.Timer(seconds / 2, lambda into, pid, at: into.append(connections_by_worker(pid, at)),
                                     args=(held, server.pid, port))
            census.start()
            spying = start_profile(server.pid, min(profile, seconds), spy_out) if profile > 0 and not r else None
            load = asyncio.run(run_load(url, clients, seconds, work, keep=pooled, client=client))
            census.join()
            if spying is not None:
                spying.wait(timeout=60)
                if spy_out.exists():
                    profiled = {"seconds": min(profile, seconds), "round": 1,
                                **summarise_profile(spy_out.read_text(errors="replace"))}
            requests, errors, wall = requests + load["requests"], errors + load["errors"], wall + load["seconds"]
            samples += load["error_samples"][:10 - len(samples)]
            ends = load["endpoints"]
            for kind, row in ends.items():
                failed[kind] = failed.get(kind, 0) + row["errors"]
            per_round.append({"requests": load["requests"], "requests_per_s": load["requests_per_s"],
                              "connections_by_worker": held[0] if held else None,
                              "client_cpu_ms_per_request": load["client_cpu_ms_per_request"],
                              "health_p99_ms": ends["health"]["p99_ms"],
                              "p99_vs_health": {k: v.get("p99_vs_health") for k, v in ends.items() if k != "health"}})
        cpu_after = cpu_seconds(server.pid)
        memory = tree_memory_mb(server.pid)
        rss_now = memory["pss"]
        rss_peak = max(peak.stop(), rss_mb(server.pid)[1])  # the parent's own peak: its loading, before any fork
    stats = {kind: percentiles(pooled.get(kind, [])) for kind in work.weights}
    health = stats["health"]
    results = []
    for kind, row in stats.items():
        results.append({"endpoint": kind, "p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"],
                        "p99_vs_health": round(row["p99_ms"] / health["p99_ms"], 2) if health["p99_ms"] else None,
                        "max_ms": row["max_ms"], "count": len(pooled.get(kind, [])), "errors": failed.get(kind, 0),
                        "alone_p50_ms": one_client.get(kind, {}).get("p50_ms"),
                        "alone_p99_ms": one_client.get(kind, {}).get("p99_ms")})
    by = {r["endpoint"]: r for r in results}
    answered = {k: by[k]["count"] > 0 and by["health"]["count"] > 0 for k in ("similar", "continue", "search")}
    targets = {
        "p99_within_3x_health": {k: answered[k] and by[k]["p99_vs_health"] is not None
                                 and by[k]["p99_vs_health"] <= 3.0 for k in answered},
        "p99_within_50ms": {k: answered[k] and by[k]["p99_ms"] <= 50.0 for k in answered},
        "rss_within_6gb": rss_peak <= 6144,
        "map_overview_within_1s": warm["map_overview_first_ms"] <= 1000.0,
    }
    used = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "n": len(work.ids), "workers": workers, "client": client,
        "concurrency": concurrency or f"default ({max(1, default_concurrency() // workers)} a worker)",
        "rss_mb": rss_now, "rss_sum_mb": memory["rss"], "rss_peak_mb": rss_peak, "rss_after_warm_up_mb": rss_warm,
        "disk_mb": round(sum(disk.values()), 1), "disk": disk, "clients": clients, "seconds": seconds,
        "rounds": per_round, "results": results, "warm_up": warm, "targets": targets,
        "rounds_within_3x_health": {k: sum(1 for r in per_round if (r["p99_vs_health"].get(k) or 1e9) <= 3.0)
                                    for k in answered},
        "requests_per_s": round(requests / max(wall, 1e-9), 1), "errors": errors, "error_samples": samples,
        "server_cpu_ms_per_request": None if used is None else round(1000 * used / max(requests, 1), 2),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
                    "load_average_before": load_before,
                    "note": "the 8 clients run on the server's cores; other jobs' load shows in the load averages "
                            "(before the run: 1, 5, 15 min); compare each endpoint's p99 with health's in the same "
                            "run"},
        "weights": WEIGHTS,
        **({"profile": profiled} if profiled is not None else {}),
    }


def versus(library: Path, other: Path, pairs: int, **load: Any) -> dict[str, Any]:
    """The load run (:func:`measure` with ``load``) of the server of another checkout ``other`` (its ``src`` first on
    the server's ``PYTHONPATH``; this checkout's clients) and of this checkout's, alternated ``pairs`` times
    (other first), on the same catalogue: on a shared machine only runs close in time compare (``--versus``).
    ``ratios`` divide this code's medians over the pairs by the other's."""
    other = other.resolve()
    if not (other / "src" / "soundalike").is_dir():
        raise SystemExit(f"--versus {other}: not a soundalike checkout (no src/soundalike)")
    other_commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=other, capture_output=True,
                                  text=True).stdout.strip() or None
    codes = {"versus": {"PYTHONPATH": str(other / "src")}, "this": None}
    runs: list[dict[str, Any]] = []
    for pair in range(pairs):
        for code, env in codes.items():
            log(f"pair {pair + 1}/{pairs}: {code}'s server")
            runs.append({"code": code, "pair": pair + 1, **measure(library, server_env=env, **load)})

    def medians(code: str) -> dict[str, float]:
        mine = [r for r in runs if r["code"] == code]
        out = {"requests_per_s": float(np.median([r["requests_per_s"] for r in mine])),
               "server_cpu_ms_per_request": float(np.median([r["server_cpu_ms_per_request"] or np.nan for r in mine]))}
        for kind in WEIGHTS:
            for key in ("p50_ms", "p99_ms", "alone_p50_ms"):
                values = [row[key] for r in mine for row in r["results"] if row["endpoint"] == kind and row[key]]
                out[f"{kind}_{key}"] = float(np.median(values)) if values else float("nan")
        return {k: round(v, 2) for k, v in out.items()}

    summary = {code: medians(code) for code in codes}
    ratios = {k: round(summary["this"][k] / summary["versus"][k], 3) for k in summary["this"]
              if summary["versus"][k] and np.isfinite(summary["versus"][k])}
    return {"versus": {"checkout": str(other), "commit": other_commit}, "pairs": pairs, "summary": summary,
            "ratios": ratios, "runs": runs}


def cpu_per_request(library: Path, per_kind: int = 40, seed: int = 0, map_limit: int | None = None
                    ) -> dict[str, Any]:
    """CPU milliseconds of one request of each kind, served in this process (FastAPI's test client, torch and faiss
    on one thread) after the index load and the map's background pass: the work behind each endpoint, without the
    queueing of the load run (``--cpu-only``). ``similar`` is the baseline the others are compared with."""
    import torch
    from fastapi.testclient import TestClient

    from soundalike.app.server.app import create_app
    from soundalike.search import ann

    ann.set_search_threads(1)  # in every thread that searches (the app sets it too)
    torch.set_num_threads(1)
    work = workload(library, seed, map_limit)

    rows = []
    app = create_app(library)
    with TestClient(app) as http:
        t0 = time.perf_counter()
        _send(http, "", ("similar", f"/api/tracks/{work.ids[0]}/similar"))  # waits for the index load
        while http.get(f"/api/map?{work.map_query}x0=0.4&x1=0.6&y0=0.4&y1=0.6").json().get("partial"):
            if time.perf_counter() - t0 > 600:
                raise RuntimeError("the map's background pass did not finish in 10 minutes")
            time.sleep(1.0)
        for kind in ("health", "search", "detail", "similar", "continue", "path", "map", "map_window"):
            requests = [work.request(kind, work.rng.choice(work.ids)) for _ in range(per_kind + 1)]
            _send(http, "", requests[0])  # untimed: a first request of a kind may fill a cache
            started = time.process_time()
            for request in requests[1:]:
                _send(http, "", request)
            rows.append({"endpoint": kind, "cpu_ms": round((time.process_time() - started) * 1000 / per_kind, 2)})
        cells = index_cells(app.state.server.state.index("default"), seed)  # the index it served, not loaded again
    base = next(r["cpu_ms"] for r in rows if r["endpoint"] == "similar")
    for row in rows:
        row["vs_similar"] = round(row["cpu_ms"] / max(base, 1e-9), 2)
    return {"n": len(work.ids), "requests_per_endpoint": per_kind, "threads": 1, "results": rows, "index": cells}


#: Search words of one and two characters (rare, absent and common in the synthetic tags) and a 3-letter one.
SHORT_SEARCH_WORDS = ("u2", "zq", "8", "7", "x", "q", "ab", "or", "e", "lis")


def search_word_costs(library: Path, words: Sequence[str] = SHORT_SEARCH_WORDS, repeats: int = 5
                      ) -> dict[str, Any]:
    """CPU milliseconds of a search as ``GET /api/tracks?q=`` makes it (its count up to the cap, then the first page
    of 50) for each word, through the full-text index and by scanning the tracks (as words under 3 characters were
    before the padded index), on the same catalogue; the median of ``repeats``. Opening the catalogue brings an
    older one's index up to date first (timed)."""
    import sqlite3

    from soundalike.app.server.app import SEARCH_TOTAL_CAP
    from soundalike.library.catalog import DB_NAME, Library

    with sqlite3.connect(library / DB_NAME) as conn:
        before = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    t0 = time.perf_counter()
    with Library.open(library, create=False) as lib:
        migrate_s = time.perf_counter() - t0
        n = lib.search_count("")
        rows = []
        for word in words:
            row: dict[str, Any] = {"word": word}
            for how in ("index", "scan"):
                lib._fts_short = how == "index"
                costs = []
                for _ in range(repeats):
                    started = time.process_time()
                    total = lib.search_count(word, limit=SEARCH_TOTAL_CAP + 1)
                    lib.search(word, limit=50)
                    costs.append((time.process_time() - started) * 1000)
                row[f"{how}_ms"] = round(float(np.median(costs)), 2)
            row["matches"] = total if total <= SEARCH_TOTAL_CAP else f"{SEARCH_TOTAL_CAP}+"
            lib._fts_short = True
            row["through_index"] = len(word) >= 3 or lib._short_word_terms(word) is not None
            rows.append(row)
    return {"n": n, "schema_before": int(before), "open_and_migrate_s": round(migrate_s, 1),
            "repeats": repeats, "words": rows}


def rerank_read_costs(library: Path, tracks: int = 40, sets: int = 200, rounds: int = 5, seed: int = 0
                      ) -> dict[str, Any]:
    """CPU milliseconds of reading what a compact index's re-rank of 10 results reads, ``tracks`` random tracks: the
    stored vectors of every model, one query a model (``Library.vectors``, as before) against one for every model
    (``Library.vectors_of``); and the search vectors as the re-rank gets them (``VectorIndex.exact_vectors``) from
    the catalogue (``vectors_of`` and the transform) against the re-rank store (:mod:`soundalike.search.refine`),
    with the largest difference of a score between the two. Alternated for ``rounds`` rounds of ``sets`` random
    sets each, after a first untimed round (``--rerank-reads``). The default's compact index is opened (built, with
    its store, if the library has none)."""
    from soundalike.library.catalog import Library
    from soundalike.models.embedding import resolve_model
    from soundalike.search.index import VectorIndex

    rng = np.random.default_rng(seed)
    with Library.open(library, create=False) as lib:
        n = lib.search_count("")
        models = lib.models()  # the synthetic catalogue holds the default's parts only
        index = VectorIndex.from_library(lib, resolve_model(lib, "default"), ann=True, codec="sq8")
        assert index.refine is not None, "the library's folder is read-only: no re-rank store"
        ids_all = index.ids

        def per_model(ids: np.ndarray) -> None:
            for model in models:
                lib.vectors(model, ids=ids)

        def together(ids: np.ndarray) -> None:
            lib.vectors_of(models, ids)

        def catalogue(ids: np.ndarray) -> None:
            index._catalogue_vectors(lib, ids)

        def store(ids: np.ndarray) -> None:
            index.exact_vectors(lib, ids)

        reads = {"query_a_model": per_model, "one_query": together, "catalogue_exact": catalogue,
                 "store_exact": store}
        costs: dict[str, list[float]] = {name: [] for name in reads}
        for round_ in range(rounds + 1):
            for name, read in reads.items():
                draws = [np.sort(rng.choice(ids_all, tracks, replace=False)) for _ in range(sets)]
                started = time.process_time()
                for ids in draws:
                    read(ids)
                if round_:
                    costs[name].append((time.process_time() - started) * 1000 / sets)
        check = np.sort(rng.choice(ids_all, min(len(ids_all), 2000), replace=False))
        _, exact = index._catalogue_vectors(lib, check)
        _, stored = index.exact_vectors(lib, check)
        queries = exact[rng.choice(len(check), min(len(check), 200), replace=False)]
        score_error = float(np.abs(stored @ queries.T - exact @ queries.T).max())
    median = {k: round(float(np.median(vs)), 3) for k, vs in costs.items()}
    return {"n": n, "models": models, "tracks_a_read": tracks, "sets_a_round": sets,
            "ms_a_read": {k: [round(v, 3) for v in vs] for k, vs in costs.items()}, "median_ms": median,
            "one_vs_per_model": round(float(np.median(np.array(costs["one_query"]) / np.array(costs["query_a_model"]))),
                                      3),
            "store_vs_catalogue": round(float(np.median(np.array(costs["store_exact"])
                                                        / np.array(costs["catalogue_exact"]))), 3),
            "store_max_score_error": round(score_error, 7),
            "store_score_error_pairs": int(len(check) * len(queries))}


def index_cells(index: Any, seed: int = 0, queries: int = 200) -> dict[str, Any]:
    """A search index's (:class:`~soundalike.search.index.VectorIndex`) IVF cells: their sizes, and how many vectors
    a search of a library track scans at the served ``nprobe`` (``queries`` seeded tracks) against an even split's
    ``nprobe × n / nlist``."""
    ann = index.ann
    sizes = ann.cell_sizes()
    pick = np.sort(np.random.default_rng(seed).choice(index.ids, min(queries, len(index)), replace=False))
    probed = ann.probed_cells(index.vectors_of(pick))  # (queries, nprobe); one cell of every track if exact
    scanned = sizes[probed].sum(axis=1)
    pct = (0, 50, 90, 99, 100)
    return {"kind": ann.kind, "nlist": int(len(sizes)), "nprobe": int(probed.shape[1]),
            "cell_size": {f"p{p}": int(v) for p, v in zip(pct, np.percentile(sizes, pct), strict=True)},
            "scanned_per_search": {"mean": round(float(scanned.mean()), 1),
                                   **{f"p{p}": int(v) for p, v in
                                      zip(pct[1:4], np.percentile(scanned, pct[1:4]), strict=True)},
                                   "even_split": round(probed.shape[1] * len(index) / len(sizes), 1),
                                   "queries": len(pick)}}


def _search_rows(name: str, index: Any, q: np.ndarray, qids: np.ndarray, truth: np.ndarray, nprobes: list[int],
                 lib: Any = None) -> list[dict[str, Any]]:
    """Recall@10 and time per query of ``index`` at each ``nprobe``: an :class:`AnnIndex` searched in one batch, or
    (``lib`` given) a compact :class:`VectorIndex` searched query by query as the server does, re-ranking its
    candidates with the exact vectors read from the catalogue."""
    from soundalike.search.ann import overlap_at_k

    rows = []
    for nprobe in nprobes:
        t1 = time.perf_counter()
        if lib is None:
            found, _ = index.search(q, 11, nprobe=nprobe)
        else:
            index.ann.params.nprobe = nprobe
            found = np.full((len(q), 11), -1, np.int64)
            for row, vector in enumerate(q):
                got, _ = index.search(vector, 11, lib=lib)
                found[row, :len(got)] = got
        ms = (time.perf_counter() - t1) * 1000 / len(q)
        found = np.array([[t for t in row if t != qid][:10] for row, qid in zip(found, qids, strict=True)])
        rows.append({"index": name, "nprobe": nprobe, "recall_at_10": round(overlap_at_k(found, truth, 10), 4),
                     "ms_per_query": round(ms, 2)})
    log(f"{name}: {[(r['nprobe'], r['recall_at_10'], r['ms_per_query']) for r in rows]}")
    return rows


def ann_table(library: Path, seed: int = 0, queries: int = 200, served_only: bool = False,
              reranks: tuple[int, ...] = ()) -> dict[str, Any]:
    """Recall@10 (leave-one-out, against exact search of the stored float vectors), time per query and memory of
    IVF-Flat, IVF-SQ8 (the index the server uses, read from the library) and PCA-rotated IVF-PQ over the default's
    search vectors, at several ``nprobe``; the compact ones also with their candidates re-ranked by the exact vectors
    (:data:`~soundalike.search.index.RERANK` per result, as ``similar`` does). IVF-Flat shares the SQ8 index's
    cells (each vector goes to the cell it is in there). ``served_only``: only the served IVF-SQ8, with and
    without the re-rank (one pass over the library for the exact neighbours; no IVF-Flat copy, no PQ). ``reranks``:
    also the served index re-ranking that many candidates per result instead of ``RERANK``."""
    import faiss

    from soundalike.library.catalog import Library
    from soundalike.models.embedding import resolve_model
    from soundalike.search.ann import MAX_TRAIN, AnnIndex, AnnParams, exact_search
    from soundalike.search.index import CHUNK, RERANK, VectorIndex
    from soundalike.search.space import read_raw

    with Library.open(library) as lib:
        # What load_index serves at a million tracks (the saved IVF-SQ8 is opened); a small library gets one too.
        served = VectorIndex.from_library(lib, resolve_model(lib, "default"), ann=True, codec="sq8")
        emb, ids = served.embedding, served.ids
        sq8 = served.ann
        served_nprobe = sq8.params.nprobe
        nlist, d = sq8.params.nlist, emb.dim
        rng = np.random.default_rng(seed)
        qids = np.sort(rng.choice(ids, min(queries, len(ids)), replace=False))
        q = emb.transform(read_raw(lib, emb.model, qids))
        flat_ivf = pq = None
        pq_train_s = 0.0
        cell: dict[int, int] = {}
        if not served_only:
            sq8_ivf = faiss.extract_index_ivf(sq8._index)
            lists = sq8_ivf.invlists
            for i in range(nlist):
                size = lists.list_size(i)
                if size:
                    for tid in faiss.rev_swig_ptr(lists.get_ids(i), size):
                        cell[int(tid)] = i
            stored = sq8_ivf.d  # the SQ8 index's cells are over its padded dimension (search/ann.py, SQ8_ALIGN)
            flat_ivf = faiss.IndexIVFFlat(faiss.clone_index(sq8_ivf.quantizer), stored, nlist,
                                          faiss.METRIC_INNER_PRODUCT)
            flat_ivf.is_trained = True
            t0 = time.perf_counter()
            sample_ids = np.sort(rng.choice(ids, min(MAX_TRAIN, len(ids)), replace=False))
            pq = AnnIndex.trained(emb.transform(read_raw(lib, emb.model, sample_ids)), nlist=nlist, codec="pq",
                                  seed=seed)
            pq_train_s = time.perf_counter() - t0
        k = 11
        best_ids = np.full((len(q), k), -1, np.int64)
        best = np.full((len(q), k), -np.inf, np.float32)
        t0 = time.perf_counter()
        for start in range(0, len(ids), CHUNK):
            part = ids[start:start + CHUNK]
            x = np.ascontiguousarray(emb.transform(read_raw(lib, emb.model, part)))
            if flat_ivf is not None and pq is not None:
                assign = np.array([cell[int(t)] for t in part], dtype=np.int64)
                padded = np.ascontiguousarray(np.hstack([x, np.zeros((len(x), stored - d), np.float32)]))
                flat_ivf.add_core(len(part), faiss.swig_ptr(padded), faiss.swig_ptr(part), faiss.swig_ptr(assign))
                pq.add(part, x)
            found, scores = exact_search(part, x, q, k)
            all_ids, all_scores = np.hstack([best_ids, found]), np.hstack([best, scores])
            order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
            best_ids = np.take_along_axis(all_ids, order, axis=1)
            best = np.take_along_axis(all_scores, order, axis=1)
            if start % (CHUNK * 20) == 0:
                log(f"ann table: {start} of {len(ids)} vectors read")
        add_s = time.perf_counter() - t0
        truth = np.array([[t for t in row if t != qid][:10] for row, qid in zip(best_ids, qids, strict=True)])
        nprobes = [1, 2, 4, 8, 16, 64] if served_only else [1, 2, 4, 16, 64]
        rows = _search_rows("ivf-sq8", sq8, q, qids, truth, nprobes)
        rows += _search_rows(f"ivf-sq8+rerank{RERANK}", served, q, qids, truth, nprobes, lib=lib)
        import soundalike.search.index as search_index

        for factor in sorted(set(reranks) - {RERANK}):
            search_index.RERANK = factor  # what VectorIndex.search reads; restored below
            try:
                rows += _search_rows(f"ivf-sq8+rerank{factor}", served, q, qids, truth, nprobes, lib=lib)
            finally:
                search_index.RERANK = RERANK
        memory = {"ivf-sq8": round(sq8.memory_bytes() / 2**20, 1)}
        if flat_ivf is not None and pq is not None:
            flat = AnnIndex(flat_ivf, AnnParams("ivf", d, nlist=nlist, nprobe=served_nprobe, codec="flat"))
            rows += _search_rows("ivf-flat", flat, q, qids, truth, nprobes)
            rows += _search_rows("opq+ivf-pq", pq, q, qids, truth, nprobes)
            rows += _search_rows(f"opq+ivf-pq+rerank{RERANK}", VectorIndex(ids, None, emb, ann=pq), q, qids, truth,
                                 nprobes, lib=lib)
            memory.update({"ivf-flat": round(flat.memory_bytes() / 2**20, 1),
                           "opq+ivf-pq": round(pq.memory_bytes() / 2**20, 1)})
        sq8.params.nprobe = served_nprobe
    return {"n": len(ids), "dim": d, "nlist": nlist, "queries": len(q), "served": "ivf-sq8",
            "served_nprobe": served_nprobe, "rerank": RERANK, "memory_mb": memory, "rows": rows,
            "pq_train_s": round(pq_train_s, 1), "pass_s": round(add_s, 1), "threads": faiss.omp_get_max_threads()}


def main(argv: list[str] | None = None) -> int:
    """Build (if needed) and measure; print or write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="Tracks in the synthetic catalogue.")
    parser.add_argument("--library", type=Path, help="Library folder to build into / reuse (default: a temporary "
                                                     "one, deleted afterwards).")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent loopback clients.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Duration of the load.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--map-limit", type=int, help="Points per map answer (default: the server's).")
    parser.add_argument("--ann-only", action="store_true", help="Only the IVF / IVF-SQ8 / PCA-rotated IVF-PQ table.")
    parser.add_argument("--rerank", default="", help="With --recall-only: also these candidates per result re-ranked "
                        "(comma-separated, e.g. 1,2,8).")
    parser.add_argument("--recall-only", action="store_true", help="Only the served IVF-SQ8's recall@10, with and "
                                                                   "without the exact re-rank.")
    parser.add_argument("--build-only", action="store_true", help="Only build the catalogue and its index.")
    parser.add_argument("--cpu-only", action="store_true", help="Only the CPU of one request of each endpoint, "
                        "served in-process on one thread (an existing --library).")
    parser.add_argument("--rounds", type=int, default=1, help="Load runs of --seconds each against the same server "
                        "(results pool them; each round's ratios are kept).")
    parser.add_argument("--alone", type=int, default=30, help="Requests of each kind timed with one client alone "
                        "before the load (0: none).")
    parser.add_argument("--concurrency", type=int, default=0, help="The server's --concurrency (API requests "
                        "computed at once; default 0: the server's default, one a CPU).")
    parser.add_argument("--workers", type=int, default=1, help="The server's --workers (processes; default 1).")
    parser.add_argument("--requests", type=int, default=40, help="Requests of each kind --cpu-only times "
                        "(default 40).")
    parser.add_argument("--search-words", action="store_true", help="Only the CPU of searches for short words "
                        "through the full-text index and by scanning (in this process, an existing --library).")
    parser.add_argument("--rerank-reads", action="store_true", help="Only the CPU of reading a re-rank's stored "
                        "vectors, a query a model against one query, and from the catalogue against the re-rank "
                        "store (in this process, an existing --library).")
    parser.add_argument("--versus", type=Path, help="Another checkout (a folder with src/soundalike): its server and "
                        "this one's, alternated --pairs times under the same load (an A/B on one machine).")
    parser.add_argument("--pairs", type=int, default=2, help="With --versus: runs of each server (default 2).")
    parser.add_argument("--profile", type=float, default=0.0, help="Sample the server with py-spy for this many "
                        "seconds of the first load round; the JSON says where its CPU went (endpoint shares).")
    parser.add_argument("--client", choices=CLIENTS, default="lean", help="The load generator: lean (benchmarks/"
                        "http1.py, default) or httpx (the one used before 2026-12-04; more CPU on the same cores).")
    parser.add_argument("--json", action="store_true", help="Print only the JSON report.")
    parser.add_argument("--out", type=Path, help="Also write the JSON report here.")
    args = parser.parse_args(argv)
    if args.n < 100 or not 1 <= args.clients <= 500 or not 1 <= args.seconds <= 600 or args.requests < 1 \
            or not 1 <= args.rounds <= 20 or args.alone < 0 or not 0 <= args.concurrency <= 256 \
            or not 1 <= args.workers <= 64 or not 1 <= args.pairs <= 20:
        parser.error("--n must be >= 100, --clients 1-500, --seconds 1-600, --requests >= 1, --rounds 1-20, "
                     "--alone >= 0, --concurrency 0-256, --workers 1-64 and --pairs 1-20")

    with tempfile.TemporaryDirectory(prefix="soundalike-scale-") as tmp:
        library = args.library or Path(tmp) / "lib"
        if args.ann_only or args.recall_only:
            report: dict[str, Any] = {"n": args.n, "commit": commit(),
                                      "ann": ann_table(library, seed=args.seed, served_only=args.recall_only,
                                                       reranks=tuple(int(x) for x in args.rerank.split(",") if x))}
        elif args.rerank_reads:
            if args.library is None:
                parser.error("--rerank-reads needs --library (a catalogue built before)")
            report = {"benchmark": "scale-rerank-reads", "commit": commit(), **rerank_read_costs(library)}
        elif args.search_words:
            if args.library is None:
                parser.error("--search-words needs --library (a catalogue built before)")
            report = {"benchmark": "scale-search-words", "commit": commit(), **search_word_costs(library)}
        elif args.build_only:
            report = {"n": args.n, "commit": commit(), "build": build(library, args.n, args.seed)}
        elif args.cpu_only:
            report = {"benchmark": "scale-cpu", "commit": commit(),
                      **cpu_per_request(library, args.requests, seed=args.seed, map_limit=args.map_limit)}
        elif args.versus is not None:
            if args.library is None:
                parser.error("--versus needs --library (a catalogue built before)")
            report = {"benchmark": "scale-versus", "commit": commit(),
                      **versus(library, args.versus, args.pairs, clients=args.clients, seconds=args.seconds,
                               seed=args.seed, map_limit=args.map_limit, rounds=args.rounds, alone=args.alone,
                               concurrency=args.concurrency, workers=args.workers, client=args.client)}
        else:
            t0 = time.perf_counter()
            timings = build(library, args.n, args.seed)
            timings["build_s"] = round(time.perf_counter() - t0, 1)
            report = {"benchmark": "scale", "commit": commit(),
                      **measure(library, args.clients, args.seconds, args.seed, args.map_limit, args.rounds,
                                args.alone, args.concurrency, args.workers, profile=args.profile,
                                client=args.client), "build": timings}
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        for row in report.get("results", []):
            if "cpu_ms" in row:
                log(f"{row['endpoint']:>10}: {row['cpu_ms']:7.2f} ms CPU ({row['vs_similar']}x similar)")
                continue
            log(f"{row['endpoint']:>10}: p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
                f"({row['p99_vs_health']}x health)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
