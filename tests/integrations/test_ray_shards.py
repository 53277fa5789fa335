"""The Ray engine without a cluster: an actor's batch written through a pyarrow URI reads back as the very outcomes
the local scan's ``process_file`` gives (analysis, errors, links), plus the embedding; without Ray installed,
``--engine ray`` says how to install it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from helpers import make_signal, write_audio
from soundalike.audio import decode as audio
from soundalike.audio.analysis import BLAKE2B, DEFAULT_WINDOW, XXH3, Window, analyse_file, file_hash
from soundalike.integrations.ray_engine import (
    INSTALL_HINT,
    Analyser,
    filesystem,
    job_key,
    list_shards,
    outcome_from_row,
    read_shard,
)
from soundalike.library.scan import ScanJob, process_file
from soundalike.models.embedding import checkpoint_presets
from soundalike.models.pretrained import default_checkpoint


def _job(path: Path) -> ScanJob:
    st = os.stat(path) if path.exists() else None
    return ScanJob(os.fsencode(path), st.st_size if st else 10, st.st_mtime_ns if st else 1)


def _batch(jobs: list[ScanJob], keys: list[str]) -> pa.Table:
    """The driver's batch of jobs, as `RayRunner` sends it to the actors."""
    return pa.table({"key": keys, "path": [j.path for j in jobs], "size": [j.size for j in jobs],
                     "mtime_ns": [j.mtime_ns for j in jobs], "reanalyse": [j.reanalyse for j in jobs],
                     "window_seconds": [j.window.seconds for j in jobs],
                     "window_excerpts": [j.window.excerpts for j in jobs],
                     "window_decoder": [j.window.decoder for j in jobs],
                     "window_hashes": [j.window.hashes for j in jobs]})


def test_an_actor_analyses_with_the_librarys_window(tmp_path: Path) -> None:
    song = write_audio(tmp_path / "music" / "long.wav", make_signal(40.0, 330.0, seed=3))
    jobs = [_job(song), replace(_job(song), window=Window.of_seconds(15)),
            replace(_job(song), window=DEFAULT_WINDOW.hashed_by(BLAKE2B))]
    keys = [job_key(j, ("melae",)) for j in jobs]
    assert len(set(keys)) == 3
    actor = Analyser(f"file://{tmp_path}/shared", ("melae",), [], frozenset())
    fs, _ = filesystem(f"file://{tmp_path}/shared")
    rows = read_shard(fs, actor(_batch(jobs, keys))["shard"][0])
    (whole, _), (windowed, _), (blake, _) = (outcome_from_row(r) for r in rows)
    assert whole.analysis is not None and windowed.analysis is not None and blake.analysis is not None
    assert whole.analysis.analysed_seconds == 40.0 and windowed.analysis.analysed_seconds == 15.0  # not 105 s
    # and with the library's hash algorithm (one from before XXH3 keeps BLAKE2b)
    assert (whole.fhash, blake.fhash) == (file_hash(song, XXH3), file_hash(song, BLAKE2B))
    assert blake.analysis.audio_hash == analyse_file(song, window=DEFAULT_WINDOW.hashed_by(BLAKE2B)).audio_hash
    assert whole.analysis.audio_hash != blake.analysis.audio_hash


def test_a_shard_reads_back_as_the_local_scans_outcomes(tmp_path: Path) -> None:
    checkpoint = default_checkpoint()
    assert checkpoint is not None
    presets = checkpoint_presets(checkpoint)
    song = write_audio(tmp_path / "music" / "song.flac", make_signal(6.0, 330.0, seed=1))
    copy = write_audio(tmp_path / "music" / "copy.wav", make_signal(5.0, 220.0, seed=2))
    junk = tmp_path / "music" / "junk.mp3"
    junk.write_bytes(b"no audio here")
    gone = tmp_path / "music" / "gone.ogg"
    jobs = [_job(p) for p in (song, copy, junk, gone)]
    keys = [job_key(j, presets, ["m"]) for j in jobs]
    batch = _batch(jobs, keys)

    actor = Analyser(f"file://{tmp_path}/shared", presets, [checkpoint.read_bytes()], frozenset({file_hash(copy)}))
    answer = actor(batch)
    fs, folder = filesystem(f"file://{tmp_path}/shared")
    assert list_shards(fs, folder) == answer["shard"] and answer["files"] == [4]
    rows = read_shard(fs, answer["shard"][0])
    assert [r["key"] for r in rows] == keys

    (got_song, vectors), (got_copy, none), (got_junk, _), (got_gone, _) = [outcome_from_row(r) for r in rows]
    want = process_file(jobs[0], presets)
    assert want.analysis is not None and got_song.analysis is not None
    assert got_song.job == jobs[0] and got_song.fhash == want.fhash
    assert got_song.analysis.audio_hash == want.analysis.audio_hash and got_song.analysis.tags == want.analysis.tags
    assert got_song.analysis.duration == want.analysis.duration
    assert got_song.analysis.spectrograms.keys() == want.analysis.spectrograms.keys() == set(presets)
    for name, spec in want.analysis.spectrograms.items():
        assert np.array_equal(got_song.analysis.spectrograms[name], spec)
    assert np.array_equal(got_song.analysis.descriptor, np.asarray(want.analysis.descriptor, np.float32))
    [(model_id, model)] = actor.models
    [(got_id, pooled, segments)] = vectors
    assert got_id == model_id and segments.shape[0] >= 1 and none == []
    expected = model.embed_tracks([model.query_input(want.analysis)], "cpu")[0]
    np.testing.assert_allclose(pooled, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(segments, expected[1], rtol=1e-5, atol=1e-6)

    assert got_copy.linked_track == -1 and got_copy.fhash == file_hash(copy)  # known bytes: linked by the driver
    assert isinstance(got_junk.error, audio.AudioError) and got_junk.error.kind == "not-audio"
    assert got_junk.error.path == audio.display_path(junk)
    assert isinstance(got_gone.error, audio.MissingFileError)  # so the scan forgets it, as locally
    assert rows[0]["cpu_seconds"] > 0


def test_the_shard_key_changes_with_anything_that_changes_the_analysis(tmp_path: Path) -> None:
    job = ScanJob(b"/music/a.flac", 100, 5)
    base = job_key(job, ("melae",), ["m1"])
    assert base == job_key(ScanJob(b"/music/a.flac", 100, 5), ("melae",), ["m1"])  # deterministic
    others = {job_key(ScanJob(b"/music/b.flac", 100, 5), ("melae",), ["m1"]),
              job_key(ScanJob(b"/music/a.flac", 101, 5), ("melae",), ["m1"]),
              job_key(ScanJob(b"/music/a.flac", 100, 6), ("melae",), ["m1"]),
              job_key(ScanJob(b"/music/a.flac", 100, 5, reanalyse=True), ("melae",), ["m1"]),
              job_key(job, ("melae", "musicnn"), ["m1"]), job_key(job, ("melae",), ["m2"]),
              job_key(job, ("melae",), ["m1", "m2"]), job_key(job, ("melae",))}
    assert base not in others and len(others) == 8


def test_without_the_extra_the_ray_engine_says_how_to_install_it(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None; from soundalike.app.cli import main; "  # as if not installed
            f"sys.argv = ['soundalike', 'index', {str(tmp_path)!r}, '--library', {str(tmp_path / 'lib')!r}, "
            "'--engine', 'ray']; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {INSTALL_HINT}"]
