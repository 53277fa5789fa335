"""``soundalike index --engine ray`` on a real local two-node Ray cluster (``ray.cluster_utils.Cluster``, one CPU per
node): the catalogue equals a local scan's, a node lost mid-job changes nothing, an interrupted job re-run adds no
duplicates. One cluster for the module: Ray takes seconds to start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import run_cli

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'soundalike[ray]'")

from soundalike.integrations.ray_engine import (  # noqa: E402
    RayRunner,
    RaySettings,
    list_shards,
    shard_folder,
)
from soundalike.library.catalog import Library  # noqa: E402
from soundalike.library.scan import scan  # noqa: E402

OBJECT_STORE = 120 * 2**20
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")  # Ray's own settings


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head node and a worker node of one CPU each, quiet and small; this process is connected as a driver."""
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in ("RAY_USAGE_STATS_ENABLED", "RAY_TMPDIR", "RAY_ADDRESS")}
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=tmp)
    os.environ.pop("RAY_ADDRESS", None)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                      "object_store_memory": OBJECT_STORE})
    c.worker = c.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(tmp, ignore_errors=True)


def _ensure_worker(c: Any) -> None:
    """Put the second node back if a test removed it."""
    if c.worker is None:
        c.worker = c.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        c.wait_for_nodes()


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 synthetic tracks in 4 formats, a byte-identical copy and a file that is not audio."""
    from soundalike import synth

    root = tmp_path_factory.mktemp("raymusic") / "music"
    synth.make_library(root, styles=["techno", "ambient"], tracks_per_style=4, duration=5.0, seed=7)
    first = sorted((root / "techno").iterdir())[0]
    shutil.copy(first, root / "ambient" / f"copy{first.suffix}")
    (root / "notes.mp3").write_bytes(b"not audio at all")
    return root


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, music: Path) -> Path:
    """The same music indexed by the local engine (with the shipped default model), as a user would."""
    library = tmp_path_factory.mktemp("raylocal") / "lib"
    code, out, err = run_cli("index", str(music), "--library", str(library), "--jobs", "1")
    assert code == 0, out + err
    return library


def catalogue(library: Path) -> dict[str, Any]:
    """Everything a scan stores, keyed by path and audio hash (track ids depend on commit order)."""
    with Library.open(library, create=False, readonly=True) as lib:
        q = lib.conn.execute
        hash_of = {int(r[0]): r[1] for r in q("SELECT id, audio_hash FROM tracks")}
        tracks = {r[0]: tuple(r[1:]) for r in q("SELECT audio_hash, duration, analysed_seconds, artist, album, title"
                                              " FROM tracks")}
        files = sorted((bytes(r[0]), r[1], r[2], r[3], r[4]) for r in q(
            "SELECT f.path, COALESCE(t.audio_hash, ''), f.file_hash, f.status, f.error FROM files f "
            "LEFT JOIN tracks t ON t.id = f.track_id"))
        vectors = {(hash_of[int(r[0])], r[1]): (np.frombuffer(r[2], np.float32), int(r[3]),
                                               None if r[4] is None else np.frombuffer(r[4], np.float16))
                   for r in q("SELECT track_id, model, vector, n_segments, segments FROM vectors")}
        spectrograms = {(hash_of[int(r[0])], r[1]): np.array(lib.spectrogram(int(r[0]), r[1]))
                        for r in q("SELECT track_id, preset FROM spectrograms")}
        models = sorted(r[0] for r in q("SELECT key FROM meta WHERE key LIKE 'model:%'"))
        return {"tracks": tracks, "files": files, "vectors": vectors, "spectrograms": spectrograms,
                "models": models, "fingerprint": lib.fingerprint()}


def assert_same_catalogue(got: Path, want: Path) -> None:
    """Same files, tracks, hashes, tags, errors and spectrograms; vectors equal within float tolerance."""
    a, b = catalogue(got), catalogue(want)
    assert a["fingerprint"] == b["fingerprint"]
    assert a["files"] == b["files"]
    assert a["tracks"] == b["tracks"]
    assert a["models"] == b["models"]
    assert a["spectrograms"].keys() == b["spectrograms"].keys()
    for key, spec in b["spectrograms"].items():
        assert np.array_equal(a["spectrograms"][key], spec), key
    assert a["vectors"].keys() == b["vectors"].keys()
    for key, (vec, n_seg, seg) in b["vectors"].items():
        got_vec, got_n, got_seg = a["vectors"][key]
        np.testing.assert_allclose(got_vec, vec, rtol=1e-4, atol=1e-5, err_msg=str(key))
        assert got_n == n_seg
        if seg is not None:
            np.testing.assert_allclose(got_seg.astype(np.float32), seg.astype(np.float32), rtol=2e-3, atol=2e-3)


def index_on_ray(c: Any, music: Path, library: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``soundalike index MUSIC --engine ray`` in a process of its own, a driver of the test cluster."""
    cmd = [sys.executable, "-m", "soundalike", "index", str(music), "--library", str(library), "--engine", "ray",
           "--ray-address", c.address, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


def test_ray_engine_gives_the_local_catalogue(cluster: Any, music: Path, local: Path, tmp_path: Path) -> None:
    _ensure_worker(cluster)
    shared = tmp_path / "shared"
    done = index_on_ray(cluster, music, tmp_path / "lib", "--shared-dir", str(shared))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on 2 workers (2 CPUs in the cluster)" in done.stderr
    assert f"skip {music / 'notes.mp3'}: " in done.stderr  # a bad file is one line, as in the local scan
    assert "scanned 10 audio files" in done.stdout and "8 analysed, 1 duplicates/moved" in done.stdout
    assert "embedded 0 tracks" in done.stdout  # the actors embedded every track already
    assert_same_catalogue(tmp_path / "lib", local)
    with Library.open(tmp_path / "lib", create=False, readonly=True) as lib:
        assert not list(Path(shard_folder(str(shared), lib)).iterdir())  # merged shards are cleaned up
    again = index_on_ray(cluster, music, tmp_path / "lib", "--shared-dir", str(shared))
    assert again.returncode == 0 and "9 unchanged" in again.stdout, again.stdout + again.stderr


def _checkpoints() -> list[str]:
    """What ``soundalike index`` embeds with by default: every model part of the default."""
    from soundalike.models.pretrained import default_checkpoints

    paths = default_checkpoints()
    assert paths
    return [str(p) for p in paths]


def _presets() -> tuple[str, ...]:
    """The presets ``soundalike index`` computes for the default models."""
    from soundalike.models.embedding import checkpoint_presets

    return checkpoint_presets(*_checkpoints())


def _finish(lib: Library) -> None:
    """What ``soundalike index`` does after the scan: embed what the actors did not."""
    from soundalike.models.embedding import embed_library

    for checkpoint in _checkpoints():
        embed_library(lib, checkpoint)


def test_losing_a_worker_node_mid_job_still_completes_the_catalogue(cluster: Any, music: Path, local: Path,
                                                                    tmp_path: Path) -> None:
    _ensure_worker(cluster)
    removed: list[str] = []

    def lose_the_worker_node(shard: str) -> None:  # after the first results arrived
        if not removed:
            cluster.remove_node(cluster.worker)
            cluster.worker = None
            removed.append(shard)

    settings = RaySettings(shared_dir=str(tmp_path / "shared"), address=cluster.address, batch=1,
                           checkpoints=_checkpoints(), on_shard=lose_the_worker_node)
    runner = RayRunner(settings)
    with Library.open(tmp_path / "lib") as lib:
        summary = scan(lib, [music], runner=runner, presets=_presets())
        _finish(lib)
    assert removed and runner.merged_shards >= 10 and runner.local_files == 0  # all on Ray, none left over
    assert (summary.analysed, summary.linked, len(summary.problems)) == (8, 1, 1)
    assert_same_catalogue(tmp_path / "lib", local)
    _ensure_worker(cluster)


def test_an_interrupted_job_run_again_adds_no_duplicates(cluster: Any, music: Path, local: Path,
                                                         tmp_path: Path) -> None:
    _ensure_worker(cluster)
    shared = tmp_path / "shared"

    def interrupt(shard: str) -> None:  # the driver dies after merging one shard, with others written, unmerged
        deadline = time.monotonic() + 120
        while len(_shards(os.path.dirname(shard))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        raise KeyboardInterrupt

    settings = RaySettings(shared_dir=str(shared), address=cluster.address, batch=2, checkpoints=_checkpoints(),
                           on_shard=interrupt)
    with Library.open(tmp_path / "lib") as lib, pytest.raises(KeyboardInterrupt):
        scan(lib, [music], runner=RayRunner(settings), presets=_presets())
    with Library.open(tmp_path / "lib", create=False, readonly=True) as lib:
        committed = lib.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        left = _shards(shard_folder(str(shared), lib))
    assert 1 <= committed < 10 and len(left) >= 2
    done = index_on_ray(cluster, music, tmp_path / "lib", "--shared-dir", str(shared))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "from the shards of an interrupted run" in done.stderr
    assert_same_catalogue(tmp_path / "lib", local)
    with Library.open(tmp_path / "lib", create=False, readonly=True) as lib:
        assert lib.conn.execute("SELECT COUNT(*) FROM spectrograms").fetchone()[0] == 8 * len(_presets())
        assert lib.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == 8


def _shards(folder: str) -> list[str]:
    import pyarrow.fs as pafs

    return list_shards(pafs.LocalFileSystem(), folder)


@pytest.mark.slow  # ~40 s: the batch is retried (a new actor each time) before the driver takes its files
def test_a_file_that_kills_every_worker_is_recorded_as_crashed_and_the_rest_indexed(
        cluster: Any, music: Path, local: Path, tmp_path: Path) -> None:
    from soundalike.library.scan import FAULT_ENV

    _ensure_worker(cluster)
    victim = sorted((music / "ambient").iterdir())[1]
    env = {**os.environ, FAULT_ENV: victim.stem}
    cmd = [sys.executable, "-m", "soundalike", "index", str(music), "--library", str(tmp_path / "lib"),
           "--engine", "ray", "--ray-address", cluster.address]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "were not finished on the cluster; analysing them here one by one" in done.stderr
    assert f"skip {victim}: the analysing process died of SIGSEGV" in done.stderr
    got, want = catalogue(tmp_path / "lib"), catalogue(local)
    crashed = [f for f in got["files"] if f[3] == "crashed"]
    assert [f[0] for f in crashed] == [bytes(victim)]
    assert [f for f in got["files"] if f[0] != bytes(victim)] == [f for f in want["files"] if f[0] != bytes(victim)]


def test_bad_ray_options_fail_in_one_line(tmp_path: Path, music: Path) -> None:
    code, _, err = run_cli("index", str(music), "--library", str(tmp_path / "lib"), "--ray-address", "auto")
    assert code == 2 and err.strip() == "error: --ray-address and --shared-dir go with --engine ray"
    code, _, err = run_cli("index", str(music), "--library", str(tmp_path / "lib"), "--engine", "ray",
                           "--ray-address", "127.0.0.1:9")  # nothing listens there: at once, not after minutes
    assert code == 2 and err.strip() == "error: cannot reach the Ray cluster at 127.0.0.1:9: Connection refused"
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    code, _, err = run_cli("index", str(music), "--library", str(tmp_path / "lib"), "--engine", "ray",
                           "--shared-dir", str(blocked / "sub"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: cannot write to the shared directory {blocked / 'sub'}")
