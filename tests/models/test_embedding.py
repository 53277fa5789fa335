"""Embedding a library: models side by side, queries by family name, re-embedding from cached spectrograms."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from soundalike import synth
from soundalike.library.catalog import Library
from soundalike.models.embedding import embed_library, resolve_model
from soundalike.models.training import train
from soundalike.recommend import QueryError, similar


def test_embeddings_live_side_by_side_and_answer_queries(lib_dir: Path, tmp_path: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        result = train(lib, "melae", tmp_path / "m.pt", epochs=1, batch_size=8, plots=False)
        model_id, count = embed_library(lib, result.checkpoint)
        assert count == 12 and model_id == result.model_id
        assert set(lib.models()) >= {"descriptor", model_id}
        assert embed_library(lib, result.checkpoint)[1] == 0  # already embedded: nothing to do
        tid = lib.tracks()[0].id
        segs = lib.segments(tid, model_id)
        assert segs is not None and segs.shape[1] == 256 and segs.shape[0] >= 1
        assert resolve_model(lib, "melae") == model_id
        q, results = similar(lib, str(tid), k=4, model="melae")
        assert len(results) == 4 and all(r.track.id != tid for r in results)
        outside = tmp_path / "new.wav"
        synth.write_track(outside, synth.render_track("ambient", 123, 6.0), 22050, artist="a", album="b", title="c")
        q, results = similar(lib, str(outside), k=3, model=model_id)
        assert q.track is None and len(results) == 3
        # Sequence distances re-rank the pooled-vector candidates (seed 002 §3.3.1), for library and outside queries.
        for distance in ("mean", "minpoint", "frechet", "dtw"):
            _, ranked = similar(lib, str(tid), k=5, model=model_id, distance=distance, candidates=11)
            dists = [r.distance for r in ranked]
            assert len(ranked) == 5 and None not in dists and dists == sorted(dists)  # type: ignore[type-var]
            assert all(abs(r.score - (1 - r.distance)) < 1e-6 for r in ranked)  # type: ignore[operator]
            assert tid not in {r.track.id for r in ranked}
        _, ranked = similar(lib, str(outside), k=3, model=model_id, distance="frechet")
        assert len(ranked) == 3
        with pytest.raises(QueryError, match="has none"):
            similar(lib, str(tid), k=3, model="descriptor", distance="dtw")
        with pytest.raises(QueryError, match="unknown distance"):
            similar(lib, str(tid), k=3, model=model_id, distance="hamming")
        # A fused key: descriptors and the learned embedding, each z-scored and weighted equally.
        fused = f"descriptor+{model_id}"
        assert resolve_model(lib, "descriptor+melae") == fused
        q, results = similar(lib, str(outside), k=3, model=fused)
        assert len(results) == 3 and abs(float(np.linalg.norm(q.vector)) - 1.0) < 1e-5
        q, results = similar(lib, str(tid), k=3, model=fused)
        assert all(r.track.id != tid for r in results)


def test_index_model_by_name_reembeds_from_cached_spectrograms(lib_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from soundalike.app.cli import app

    library = tmp_path / "lib"
    shutil.copytree(lib_dir / "lib", library)
    with Library.open(library) as lib:
        result = train(lib, "melae", tmp_path / "named.pt", epochs=1, batch_size=8, plots=False)
        embed_library(lib, result.checkpoint)
        lib.conn.execute("DELETE FROM vectors WHERE model=?", (result.model_id,))  # as if never embedded
        lib.conn.commit()
    music = tmp_path / "empty"
    music.mkdir()
    # Scanning nothing new: the model's vectors come back from the cached spectrograms alone.
    out = CliRunner().invoke(app, ["index", str(lib_dir / "music"), "--library", str(library), "--model", "melae"])
    assert out.exit_code == 0, out.output
    assert f"embedded 12 tracks with {result.model_id}" in out.stdout
    with Library.open(library) as lib:
        assert len(lib.vectors(result.model_id)[0]) == 12
    bad = CliRunner().invoke(app, ["index", str(music), "--library", str(library), "--model", "clothier"])
    assert bad.exit_code == 2 and "no model of that name was trained on this library" in bad.stderr


def test_default_searches_the_parts_a_library_has(lib_dir: Path) -> None:
    """A library indexed before a part of the default shipped searches the parts it has, with their weights."""
    from soundalike.models.checkpoint import read_checkpoint
    from soundalike.models.embedding import default_key
    from soundalike.models.pretrained import default_checkpoints, default_metrics, default_parts

    weights = [w for _, w in default_parts()]
    musicnn, contrastive = (str(read_checkpoint(c)["model_id"]) for c in default_checkpoints())
    descriptor = f"descriptor#{default_metrics()['descriptor']}"  # the parts through their metrics
    contrastive_part = f"{contrastive}#{default_metrics()['default_contrastive.pt']}"
    with Library.open(lib_dir / "lib") as lib:
        assert default_key(lib, set()) == "descriptor"  # alone: plain, not through the fusion's metric
        assert default_key(lib, {musicnn}) == f"{descriptor}@{weights[0]:g}+{musicnn}@{weights[1]:g}"
        assert default_key(lib, {musicnn, contrastive}) == \
            f"{descriptor}@{weights[0]:g}+{musicnn}@{weights[1]:g}+{contrastive_part}@{weights[2]:g}"
        assert resolve_model(lib, "default") == "descriptor"  # this library has no model embeddings


def test_one_cpu_thread_inside_the_block_and_restored_after() -> None:
    import torch

    from soundalike.models.embedding import one_cpu_thread

    before = torch.get_num_threads()
    with one_cpu_thread("cpu"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_embedding_in_worker_processes_equals_embedding_here(lib_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from soundalike.models import embedding
    from soundalike.models.pretrained import default_checkpoints

    for name in ("here", "there"):  # copies: the package's library stays as the other tests expect it
        shutil.copytree(lib_dir / "lib", tmp_path / name)
    monkeypatch.setattr(embedding, "PARALLEL_MIN_TRACKS", 1)
    monkeypatch.setattr(embedding, "EMBED_BATCH", 3)  # 12 tracks: 4 batches over 2 workers, in order
    contrastive = default_checkpoints()[-1]
    with Library.open(tmp_path / "here") as here, Library.open(tmp_path / "there") as there:
        model_id, count = embed_library(here, contrastive)
        assert embed_library(there, contrastive, jobs=2) == (model_id, count) and count == 12
        ids, serial = here.vectors(model_id)
        ids2, parallel = there.vectors(model_id)
        np.testing.assert_array_equal(ids, ids2)
        np.testing.assert_allclose(parallel, serial, rtol=1e-5, atol=1e-6)
        for tid in ids[:3]:
            np.testing.assert_allclose(there.segments(int(tid), model_id), here.segments(int(tid), model_id),
                                       rtol=1e-5, atol=1e-6)
        assert embed_library(there, contrastive, jobs=2)[1] == 0  # nothing left to do


def test_a_dying_embedding_worker_is_a_one_line_error(lib_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from soundalike.models import ModelError, embedding
    from soundalike.models.pretrained import default_checkpoints

    shutil.copytree(lib_dir / "lib", tmp_path / "lib")
    checkpoint = tmp_path / "part.pt"
    shutil.copy(default_checkpoints()[-1], checkpoint)
    monkeypatch.setattr(embedding, "PARALLEL_MIN_TRACKS", 1)

    def spoil(stage: str, done: int, total: int) -> None:  # after this process loaded it, before the workers do
        if stage == "embed" and done == 0:
            checkpoint.write_bytes(b"not a checkpoint")

    with Library.open(tmp_path / "lib") as lib, pytest.raises(ModelError, match="embedding worker process died"):
        embed_library(lib, checkpoint, jobs=2, on_progress=spoil)


def test_the_default_keeps_only_musicnn_s_patches_and_older_libraries_embed_from_whole_spectrograms(
        lib_dir: Path, tmp_path: Path) -> None:
    """A scan for the default stores musicnn's 4 patches (``musicnn-p4``), not its whole spectrogram; the embedding
    from them equals the one from the whole spectrogram; a library from before (whole ``musicnn`` spectrograms)
    embeds without decoding again; and musicnn's full extractor, which reads every patch, gets the whole one."""
    import shutil

    from soundalike.library.catalog import Library
    from soundalike.library.scan import ensure_spectrograms
    from soundalike.models import load_checkpoint
    from soundalike.models.embedding import checkpoint_presets, embed_library, trackable_ids
    from soundalike.models.pretrained import default_checkpoint, shipped_checkpoint

    part = default_checkpoint()
    assert part is not None and "musicnn-p4" in checkpoint_presets(part)
    assert "musicnn" in checkpoint_presets(shipped_checkpoint("musicnn-msd"))  # every patch: the whole one
    model, _ = load_checkpoint(part)
    lib_path = tmp_path / "lib"
    shutil.copytree(lib_dir / "lib", lib_path)
    with Library.open(lib_path) as lib:
        ids = [t.id for t in lib.tracks()]
        assert ensure_spectrograms(lib, "musicnn-p4") == len(ids)  # as a scan for the default stores them
        patches = lib.spectrogram(ids[0], "musicnn-p4")
        whole = lib.spectrogram(ids[0], "musicnn") if ensure_spectrograms(lib, "musicnn") else None
        assert whole is not None and patches.shape[1] <= whole.shape[1]
        a, _ = model.embed_track(np.asarray(patches, np.float32))
        b, _ = model.embed_track(np.asarray(whole, np.float32))
        # (these 6 s tracks keep every patch; tests/audio/test_analysis.py checks long ones patch by patch)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    old = tmp_path / "old"  # a library from before the key: whole musicnn spectrograms only
    shutil.copytree(lib_dir / "lib", old)
    with Library.open(old) as lib:
        ensure_spectrograms(lib, "musicnn")
        assert trackable_ids(lib, model) == sorted(t.id for t in lib.tracks())
        stored = {r[0] for r in lib.conn.execute("SELECT DISTINCT preset FROM spectrograms")}
        assert "musicnn-p4" not in stored  # nothing decoded again
        _, count = embed_library(lib, part)
        assert count == len(lib.tracks())


def test_an_outside_file_s_input_is_the_first_key_the_analysis_has() -> None:
    from types import SimpleNamespace

    from soundalike.models import load_checkpoint
    from soundalike.models.pretrained import default_checkpoint

    model, _ = load_checkpoint(default_checkpoint())
    assert model.input_keys == ("musicnn-p4", "musicnn")
    patches, whole = np.zeros((96, 748), np.float16), np.zeros((96, 5000), np.float16)
    assert model.query_input(SimpleNamespace(spectrograms={"musicnn-p4": patches})) is patches
    assert model.query_input(SimpleNamespace(spectrograms={"musicnn": whole})) is whole
    assert model.query_input(SimpleNamespace(spectrograms={"musicnn": whole, "musicnn-p4": patches})) is patches


def test_nothing_left_to_embed_loads_no_model(tmp_path: Path) -> None:
    from soundalike.library.scan import scan
    from soundalike.models import checkpoint
    from soundalike.models.embedding import checkpoint_presets
    from soundalike.models.pretrained import default_checkpoints, shipped_model_ids

    music = tmp_path / "music"
    for i, style in enumerate(["techno", "ambient", "chiptune"]):
        synth.write_track(music / f"t{i}.wav", synth.render_track(style, 40 + i, 8.0), 22050, artist="a",
                          album=style, title=f"t{i}")
    checkpoints = default_checkpoints()
    presets = checkpoint_presets(*checkpoints)  # the default's input keys from default.json
    assert "musicnn-p4" in presets
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [music], jobs=1, presets=presets)
        ids = [embed_library(lib, c) for c in checkpoints]
        assert ids == [(shipped_model_ids()[c.name], 3) for c in checkpoints]
        loads = []
        original = checkpoint.load_checkpoint

        def counting(*args: object, **kwargs: object) -> object:
            loads.append(args)
            return original(*args, **kwargs)  # type: ignore[arg-type]

        checkpoint.load_checkpoint = counting  # type: ignore[assignment]
        try:
            assert [embed_library(lib, c) for c in checkpoints] == [(m, 0) for m, _ in ids]
            assert loads == []  # every track has its vectors: no model loaded
            with lib.transaction():  # a track without one: the model is loaded and embeds it
                lib.conn.execute("DELETE FROM vectors WHERE model=? AND track_id=(SELECT MIN(id) FROM tracks)",
                                 (ids[0][0],))
            assert embed_library(lib, checkpoints[0]) == (ids[0][0], 1) and len(loads) == 1
            # registered from another copy of the file: the full path runs again and registers the shipped one
            copy = tmp_path / "copy.pt"
            shutil.copy(checkpoints[0], copy)
            assert embed_library(lib, copy, only_missing=False)[1] == 3 and len(loads) == 2
            from soundalike.models.embedding import registered_models

            assert registered_models(lib)[ids[0][0]]["checkpoint"] == str(copy.resolve())
            assert embed_library(lib, checkpoints[0]) == (ids[0][0], 0) and len(loads) == 3
            assert registered_models(lib)[ids[0][0]]["checkpoint"] == "package:default.pt"
            assert embed_library(lib, checkpoints[0]) == (ids[0][0], 0) and len(loads) == 3  # shortcut again
        finally:
            checkpoint.load_checkpoint = original  # type: ignore[assignment]
