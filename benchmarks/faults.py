"""The fault campaign: prove that no fault loses, duplicates or corrupts what a library holds, one JSON.

    python benchmarks/faults.py [--trials 50] [--fuzz 200] [--api-examples 25] [--seed 0] [--json] [--out FILE]

Four parts, each counted in the JSON (``trials``, ``faults_injected``, ``tracks_lost``, ``tracks_duplicated``,
``mismatches``, ``server_errors``):

1. **kill -9 during scans** — a mixed library (synthetic tracks in six formats, corrupt and empty files, a file that
   crashes its worker, files that vanish while the scan runs) is indexed by ``soundalike index`` (analysis and the
   shipped model's embeddings, two workers), killed with SIGKILL at a random moment, then indexed again to the end.
   The result must equal an uninterrupted run's catalogue exactly (paths, audio hashes, statuses, every vector,
   readable spectrograms, SQLite integrity) and no worker may outlive the killed scan.
2. **concurrent writers and readers** — ``soundalike serve`` answers HTTP clients while ``index`` adds tracks and
   ``train`` trains and embeds: no server error, both writers finish (one waits for the other's lock), and the
   catalogue equals a serial run's.
3. **decoder fuzz** — real files of every format with random byte mutations (flips, truncations, insertions,
   duplicated blocks): each ends as a track or a typed error; the scan never fails.
4. **API fuzz** — schemathesis generates requests for every operation of the OpenAPI document: no 5xx.

The fast test subset (``tests/faults/``) calls the same functions with small counts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

CRASH_NAME = "crashes-its-worker"
FORMATS = ("wav", "flac", "ogg", "mp3", "opus", "m4a")


# --- the mixed library ----------------------------------------------------------------------------------------------
def make_mixed_library(folder: Path, *, seed: int = 0, tracks_per_style: int = 4, duration: float = 6.0
                       ) -> dict[str, Any]:
    """Write a library with good tracks in every format, broken files, a worker-crashing file and two files that
    will vanish during scans; returns what is where."""
    from soundalike import synth

    folder.mkdir(parents=True, exist_ok=True)
    styles = ["techno", "ambient", "chiptune", "classical"]
    good = synth.make_library(folder / "albums", styles=styles, tracks_per_style=tracks_per_style,
                              duration=duration, seed=seed, formats=FORMATS)
    broken = folder / "broken"
    broken.mkdir()
    first = Path(good[0].path).read_bytes()
    (broken / "truncated.flac").write_bytes(Path(next(t.path for t in good if str(t.path).endswith(".flac")))
                                            .read_bytes()[:2000])
    (broken / "noise.mp3").write_bytes(np.random.default_rng(seed).bytes(40_000))
    (broken / "empty.wav").write_bytes(b"")
    (broken / "text.ogg").write_text("not audio\n" * 100)
    y = synth.render_track("jazz", seed=seed + 1, duration=duration)
    synth.write_track(folder / "crash" / f"{CRASH_NAME}.wav", y, 22050, artist="Crash", album="Crash", title="C")
    vanish = []
    for i, style in enumerate(("folk", "reggae")):
        path = folder / "vanishing" / f"going-{i}.ogg"
        synth.write_track(path, synth.render_track(style, seed=seed + 10 + i, duration=duration), 22050,
                          artist="Gone", album="Vanishing", title=f"Going {i}")
        vanish.append(path)
    # One track stays beside them: a scan that finds a known file's folder empty keeps the file (the mount point of
    # an unmounted disk looks the same: library/scan.py), so files that vanish from a folder that is then empty stay
    # in the catalogue until `soundalike prune` — by design, not what this campaign checks.
    synth.write_track(folder / "vanishing" / "stays.ogg", synth.render_track("rock", seed=seed + 12,
                      duration=duration), 22050, artist="Gone", album="Vanishing", title="Stays")
    return {"good": len(good) + 1, "broken": 4, "crash": 1, "vanishing": [str(p) for p in vanish],
            "bytes": len(first)}


# --- catalogue state ------------------------------------------------------------------------------------------------
def catalogue_state(library: Path) -> dict[str, Any]:
    """Everything a library holds, keyed by content (track ids differ between runs)."""
    from soundalike.library.catalog import Library

    with Library.open(library, create=False, readonly=True) as lib:
        hashes = {int(r[0]): str(r[1]) for r in lib.conn.execute("SELECT id, audio_hash FROM tracks")}
        vectors: dict[str, dict[str, np.ndarray]] = {}
        for model in lib.models():
            ids, mat = lib.vectors(model)
            vectors[model] = {hashes[int(i)]: row for i, row in zip(ids, mat, strict=True)}
        unreadable = 0
        for track_id in hashes:
            try:
                spec = np.asarray(lib.spectrogram(track_id))
                unreadable += int(spec.ndim != 2 or not np.isfinite(spec.astype(np.float32)).all())
            except Exception:  # noqa: BLE001 - counted, not raised: this is what the campaign measures
                unreadable += 1
        return {"fingerprint": lib.fingerprint(), "hashes": sorted(hashes.values()), "vectors": vectors,
                "integrity": lib.conn.execute("PRAGMA integrity_check").fetchone()[0],
                "unreadable_spectrograms": unreadable,
                "orphan_files": lib.conn.execute("SELECT COUNT(*) FROM files WHERE status='ok' AND track_id NOT IN "
                                                 "(SELECT id FROM tracks)").fetchone()[0]}


def compare(trial: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """How a trial's catalogue differs from the reference's: counts, and the first differences."""
    ref_hashes, got_hashes = set(reference["hashes"]), trial["hashes"]
    lost = len(ref_hashes - set(got_hashes))
    duplicated = len(got_hashes) - len(set(got_hashes)) + trial["orphan_files"]
    problems: list[str] = []
    if trial["fingerprint"] != reference["fingerprint"]:
        ref_fp, got_fp = set(reference["fingerprint"]), set(trial["fingerprint"])
        problems.append(f"files differ: missing {sorted(ref_fp - got_fp)[:3]}, extra {sorted(got_fp - ref_fp)[:3]}")
    if set(trial["vectors"]) != set(reference["vectors"]):
        problems.append(f"embeddings differ: {sorted(trial['vectors'])} vs {sorted(reference['vectors'])}")
    for model, rows in reference["vectors"].items():
        got = trial["vectors"].get(model, {})
        if set(got) != set(rows):
            problems.append(f"{model}: {len(set(rows) - set(got))} vectors missing, {len(set(got) - set(rows))} extra")
            continue
        worst = max((float(np.abs(got[h] - v).max()) for h, v in rows.items()), default=0.0)
        if worst > 1e-4:
            problems.append(f"{model}: vectors differ by up to {worst:.2e}")
    if trial["integrity"] != "ok":
        problems.append(f"integrity check: {trial['integrity']}")
    if trial["unreadable_spectrograms"]:
        problems.append(f"{trial['unreadable_spectrograms']} spectrograms unreadable")
    return {"lost": lost, "duplicated": duplicated, "problems": problems}


# --- 1. kill -9 -----------------------------------------------------------------------------------------------------
def _index_command(music: Path, library: Path, jobs: int) -> list[str]:
    return [sys.executable, "-m", "soundalike", "index", str(music), "--library", str(library), "--jobs", str(jobs)]


def _env() -> dict[str, str]:
    from soundalike.library.scan import FAULT_ENV

    return {**os.environ, FAULT_ENV: CRASH_NAME}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _restore(pristine: Path, music: Path) -> None:
    if music.exists():
        shutil.rmtree(music)
    shutil.copytree(pristine, music)  # copy2: sizes and mtimes as the reference saw them


def kill_campaign(work: Path, trials: int, *, seed: int = 0, jobs: int = 2, log: Any = None,
                  latest: float = 1.05) -> dict[str, Any]:
    """``trials`` randomised SIGKILLs of ``soundalike index`` on the mixed library, each resumed and compared; a
    kill falls between 0.3 s and ``latest`` × the uninterrupted run's time (past 1, some runs finish first)."""
    pristine, music = work / "pristine", work / "music"
    layout = make_mixed_library(pristine, seed=seed)
    # The reference: the same library, the vanishing files already gone, indexed without interruption.
    _restore(pristine, music)
    for p in layout["vanishing"]:
        (music / Path(p).relative_to(pristine)).unlink()
    started = time.monotonic()
    subprocess.run(_index_command(music, work / "reference", jobs), env=_env(), check=True, capture_output=True)
    duration = time.monotonic() - started
    reference = catalogue_state(work / "reference")
    rng = random.Random(seed)
    out: dict[str, Any] = {"trials": 0, "faults_injected": 0, "finished_before_kill": 0, "tracks_lost": 0,
                           "tracks_duplicated": 0, "mismatches": 0, "orphaned_workers": 0,
                           "reference_seconds": round(duration, 2), "reference_tracks": len(reference["hashes"]),
                           "layout": {k: v for k, v in layout.items() if k != "vanishing"}, "failures": []}
    for trial in range(trials):
        _restore(pristine, music)
        library = work / f"trial-{trial}"
        delay = rng.uniform(0.3, max(0.4, duration * latest))
        vanish_at = rng.uniform(0.0, delay)
        proc = subprocess.Popen(_index_command(music, library, jobs), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        vanisher = threading.Timer(vanish_at, lambda: [
            (music / Path(p).relative_to(pristine)).unlink(missing_ok=True) for p in layout["vanishing"]])
        vanisher.start()
        deadline = time.monotonic() + delay
        workers: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            workers.update(_children(proc.pid))
            time.sleep(0.02)
        killed = proc.poll() is None
        if killed:
            workers.update(_children(proc.pid))
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        vanisher.join()
        for p in layout["vanishing"]:  # gone by the resume, whenever the timer fired
            (music / Path(p).relative_to(pristine)).unlink(missing_ok=True)
        stop = time.monotonic() + 10
        while time.monotonic() < stop and any(_alive(w) for w in workers):
            time.sleep(0.05)
        orphans = sum(_alive(w) for w in workers)
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        resumed = subprocess.run(_index_command(music, library, jobs), env=_env(), capture_output=True, text=True)
        diff = compare(catalogue_state(library), reference) if resumed.returncode == 0 else \
            {"lost": len(reference["hashes"]), "duplicated": 0, "problems": [f"resume failed: {resumed.stderr[-300:]}"]}
        out["trials"] += 1
        out["faults_injected"] += killed
        out["finished_before_kill"] += not killed
        out["tracks_lost"] += diff["lost"]
        out["tracks_duplicated"] += diff["duplicated"]
        out["mismatches"] += bool(diff["problems"])
        out["orphaned_workers"] += orphans
        if diff["problems"] or orphans:
            out["failures"].append({"trial": trial, "kill_after_s": round(delay, 2), "problems": diff["problems"],
                                    "orphans": orphans})
        if log:
            log(f"trial {trial + 1}/{trials}: {'killed' if killed else 'finished'} after {delay:.2f} s, "
                f"{len(diff['problems'])} problems, {orphans} orphans")
        shutil.rmtree(library, ignore_errors=True)
    return out


# --- 2. concurrency -------------------------------------------------------------------------------------------------
def concurrency_run(work: Path, *, seed: int = 0, seconds_limit: float = 600.0) -> dict[str, Any]:
    """serve + index + train at once on one library; HTTP clients keep asking; then compare with a serial run."""
    from soundalike import synth
    from soundalike.app.server.run import background_server

    first, second = work / "first", work / "second"
    synth.make_library(first, styles=["techno", "ambient", "jazz"], tracks_per_style=4, duration=6.0, seed=seed)
    synth.make_library(second, styles=["folk", "rock", "drone"], tracks_per_style=4, duration=6.0, seed=seed + 1)
    library = work / "lib"
    subprocess.run(_index_command(first, library, 1) + ["--model", "descriptor"], check=True, capture_output=True)
    counts = {"requests": 0, "server_errors": 0, "other_errors": 0}
    stop = threading.Event()
    with background_server(library) as server:
        def client() -> None:
            urls = ["/api/tracks", "/api/library", "/api/tracks/1/similar?model=descriptor", "/api/map",
                    "/api/tracks?q=a", "/api/tracks/2"]
            i = 0
            while not stop.is_set():
                url = server.url + urls[i % len(urls)]
                i += 1
                try:
                    with urllib.request.urlopen(url, timeout=30) as answer:
                        answer.read()
                except urllib.error.HTTPError as exc:
                    counts["server_errors" if exc.code >= 500 else "other_errors"] += 1
                except OSError:
                    counts["other_errors"] += 1
                counts["requests"] += 1

        clients = [threading.Thread(target=client) for _ in range(4)]
        for c in clients:
            c.start()
        indexer = subprocess.Popen(_index_command(second, library, 2) + ["--model", "descriptor"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        trainer = subprocess.Popen([sys.executable, "-m", "soundalike", "train", "descriptor-ae", "--library",
                                    str(library), "--epochs", "3", "--out", str(work / "dae.pt")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        index_out, index_err = indexer.communicate(timeout=seconds_limit)
        train_out, train_err = trainer.communicate(timeout=seconds_limit)
        time.sleep(4)  # the server notices the last commits
        stop.set()
        for c in clients:
            c.join()
    serial = work / "serial"
    subprocess.run(_index_command(first, serial, 1) + ["--model", "descriptor"], check=True, capture_output=True)
    subprocess.run(_index_command(second, serial, 1) + ["--model", "descriptor"], check=True, capture_output=True)
    got, ref = catalogue_state(library), catalogue_state(serial)
    descriptor_only = {**got, "vectors": {"descriptor": got["vectors"].get("descriptor", {})}}
    diff = compare(descriptor_only, ref)
    return {"requests": counts["requests"], "server_errors": counts["server_errors"],
            "client_errors": counts["other_errors"], "index_exit": indexer.returncode,
            "train_exit": trainer.returncode, "trained_model_embedded": any(m.startswith("descriptor-ae")
                                                                            for m in got["vectors"]),
            "tracks_lost": diff["lost"], "tracks_duplicated": diff["duplicated"], "problems": diff["problems"],
            "index_stderr": index_err[-300:] if indexer.returncode else "",
            "train_stderr": train_err[-300:] if trainer.returncode else ""}


# --- 3. decoder fuzz ------------------------------------------------------------------------------------------------
def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random mutation of a file's bytes: flips, a truncation, an insertion, a duplicated or zeroed block."""
    b = bytearray(data)
    kind = int(rng.integers(5))
    if kind == 0:  # flip bytes
        for pos in rng.integers(0, len(b), size=int(rng.integers(1, 64))):
            b[int(pos)] ^= int(rng.integers(1, 256))
    elif kind == 1:  # truncate
        b = b[: int(rng.integers(0, len(b)))]
    elif kind == 2:  # insert random bytes
        pos = int(rng.integers(0, len(b) + 1))
        b[pos:pos] = rng.bytes(int(rng.integers(1, 4096)))
    elif kind == 3:  # duplicate a block
        start = int(rng.integers(0, len(b)))
        end = min(len(b), start + int(rng.integers(1, 8192)))
        b[start:start] = b[start:end]
    else:  # zero a block (often the header)
        start = int(rng.integers(0, min(len(b), 512)))
        b[start:start + int(rng.integers(1, 2048))] = bytes(min(len(b) - start, 2048))
    return bytes(b)


def fuzz_run(work: Path, files: int, *, seed: int = 0, jobs: int = 2) -> dict[str, Any]:
    """``files`` mutated copies of real files of every format, scanned in worker processes: each must end as a
    track or a typed error, and the scan must finish."""
    from soundalike import synth
    from soundalike.library.catalog import Library
    from soundalike.library.scan import scan

    sources = synth.make_library(work / "sources", styles=["techno", "classical"], tracks_per_style=3,
                                 duration=4.0, seed=seed, formats=FORMATS)
    rng = np.random.default_rng(seed)
    fuzzed = work / "fuzzed"
    fuzzed.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        src = Path(sources[i % len(sources)].path)
        (fuzzed / f"m{i:04d}{src.suffix}").write_bytes(mutate(src.read_bytes(), rng))
    with Library.open(work / "lib") as lib:
        summary = scan(lib, [fuzzed], jobs=jobs)
        statuses = dict(lib.conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall())
    accounted = sum(statuses.values())
    return {"files": files, "analysed": summary.analysed, "linked": summary.linked,
            "errors_by_kind": summary.errors_by_kind, "statuses": statuses, "unaccounted": files - accounted,
            "scan_failed": False}


# --- 4. API fuzz ----------------------------------------------------------------------------------------------------
API_TIMEOUT = 60.0  # seconds a fuzzed request may take (loopback ASGI; see api_run)


def api_run(library: Path, max_examples: int, *, seed: int = 0) -> dict[str, Any]:
    """schemathesis over every operation of the OpenAPI document (a loopback client): requests and 5xx counts."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    from soundalike.app.server.app import create_app

    app = create_app(library)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    counts: dict[str, Any] = {"operations": 0, "requests": 0, "server_errors": 0, "by_status": {}, "failures": []}
    for result in schema.get_all_operations():
        operation = result.ok()
        counts["operations"] += 1

        @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy())
        def run(case: Any) -> None:
            # 5xx is what this counts, not latency: an upload's first analysis starts a worker that loads the
            # models, which on a loaded 2-core machine took longer than schemathesis's 10 s default
            answer = case.call(timeout=API_TIMEOUT)
            counts["requests"] += 1
            key = str(answer.status_code)
            counts["by_status"][key] = counts["by_status"].get(key, 0) + 1
            if answer.status_code >= 500:
                counts["server_errors"] += 1
                if len(counts["failures"]) < 5:
                    counts["failures"].append(f"{case.method} {case.formatted_path} {case.query}: "
                                              f"{answer.status_code}")

        run()
    return counts


def main() -> None:
    """Run the campaign and print or write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--fuzz", type=int, default=200)
    parser.add_argument("--api-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soundalike-faults-") as tmp:
        work = Path(tmp)

        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        kills = kill_campaign(work / "kill", args.trials, seed=args.seed, log=log)
        log(f"kill -9: {kills['faults_injected']} faults, {kills['tracks_lost']} lost, {kills['mismatches']} "
            "mismatches")
        concurrent = concurrency_run(work / "concurrent", seed=args.seed)
        log(f"concurrent: {concurrent['requests']} requests, {concurrent['server_errors']} server errors")
        fuzz = fuzz_run(work / "fuzz", args.fuzz, seed=args.seed)
        log(f"fuzz: {fuzz['files']} files, {fuzz['errors_by_kind']}")
        api = api_run(work / "concurrent" / "lib", args.api_examples, seed=args.seed)
        log(f"api: {api['requests']} requests, {api['server_errors']} server errors")
    payload = {
        "benchmark": "faults", "seed": args.seed, "seconds": round(time.monotonic() - started, 1),
        "totals": {"trials": kills["trials"], "faults_injected": kills["faults_injected"],
                   "tracks_lost": kills["tracks_lost"] + concurrent["tracks_lost"],
                   "tracks_duplicated": kills["tracks_duplicated"] + concurrent["tracks_duplicated"],
                   "mismatches": kills["mismatches"] + len(concurrent["problems"]),
                   "server_errors": concurrent["server_errors"] + api["server_errors"],
                   "orphaned_workers": kills["orphaned_workers"], "fuzzed_files_unaccounted": fuzz["unaccounted"]},
        "kill9": kills, "concurrent": concurrent, "fuzz": fuzz, "api": api,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    text = json.dumps(payload, indent=2, default=str)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json or not args.out:
        print(text)


if __name__ == "__main__":
    main()
