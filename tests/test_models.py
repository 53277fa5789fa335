"""Model infrastructure and MelAE: training steps, shapes, checkpoints, resume, re-embedding, errors."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import fit_steps, synth_library, track_set
from soundalike import synth
from soundalike.library.catalog import Library
from soundalike.models import ModelError, build, load_checkpoint, model_names, save_checkpoint
from soundalike.models.embedding import embed_library, resolve_model
from soundalike.models.training import last_checkpoint_path, train
from soundalike.recommend import QueryError, similar


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_library(tmp_path_factory.mktemp("models"), ["techno", "ambient", "chiptune"], tracks_per_style=4,
                         duration=6.0, seed=7)


def small(name: str = "melae", **kw: object):  # type: ignore[no-untyped-def]
    return build(name, batch_size=8, **kw)


def test_registry_lists_melae_and_rejects_unknown_names() -> None:
    assert "melae" in model_names()
    with pytest.raises(ModelError, match="unknown model 'nope'; known: .*melae"):
        build("nope")
    with pytest.raises(ModelError, match="no setting 'colour'"):
        build("melae", colour=3)


def test_melae_shapes_follow_table_6() -> None:
    model = build("melae")
    assert model.config.lr == 0.0008 and model.config.embedding_dim == 256 and model.config.epochs == 5
    patches = model.segments(np.zeros((128, 1296), np.float32))
    assert patches.shape == (14, 128, 128)  # 000 §4.2.1
    x = model.prepare(torch.from_numpy(patches))
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    code = model.encode(x)
    assert code.shape == (14, 256)
    assert model.reconstruct(x).shape == (14, 128, 128)
    assert model.encoder_convs[-1].kernel_size == 2 and model.to_code.in_features == 16 * 16 * 16
    pooled, seq = model.embed_track(np.random.default_rng(0).normal(-40, 10, (128, 1296)).astype(np.float32))
    assert pooled.shape == (256,) and seq.shape == (14, 256)
    np.testing.assert_allclose(pooled, seq.mean(axis=0), rtol=1e-5, atol=1e-5)


def test_melae_loss_falls_on_real_spectrograms(lib_dir: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        tracks = track_set(lib)
    model = small()
    first, last, _ = fit_steps(model, model.sample_batch(tracks, np.random.default_rng(0), 8), 25)
    assert last < first - 0.01


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path: Path) -> None:
    model = small()
    x = model.prepare(torch.rand(3, 128, 128) * -80)
    save_checkpoint(model, tmp_path / "m.pt", epoch=1, metrics={"val_loss": 0.5})
    again, payload = load_checkpoint(tmp_path / "m.pt")
    assert payload["model_id"].startswith("melae-") and payload["preset"]["hop_length"] == 512
    with torch.no_grad():
        np.testing.assert_array_equal(model.eval().encode(x).numpy(), again.encode(x).numpy())


def test_bad_checkpoints_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(ModelError, match="noise.pt: not a soundalike checkpoint"):
        load_checkpoint(tmp_path / "noise.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="no 'soundalike-checkpoint' header"):
        load_checkpoint(tmp_path / "other.pt")

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": "soundalike-checkpoint", "x": Evil()}))
    with pytest.raises(ModelError, match="evil.pt: not a soundalike checkpoint"):  # weights_only refuses code
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_model_preset_mismatch_and_wrong_weights_are_refused(tmp_path: Path) -> None:
    model = small()
    payload = save_checkpoint(model, tmp_path / "m.pt")
    payload["preset"] = {**payload["preset"], "hop_length": 256}
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ModelError, match="model/preset mismatch"):
        load_checkpoint(tmp_path / "mismatch.pt")
    payload = save_checkpoint(model, tmp_path / "m.pt")
    payload["config"]["embedding_dim"] = 64
    torch.save(payload, tmp_path / "shapes.pt")
    with pytest.raises(ModelError, match="weights do not fit model 'melae'"):
        load_checkpoint(tmp_path / "shapes.pt")


def test_train_keeps_best_checkpoint_plots_and_resumes(lib_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "melae.pt"
    with Library.open(lib_dir / "lib") as lib:
        first = train(lib, "melae", out, epochs=2, batch_size=8)
        assert first.epochs_run == 2 and len(first.history["train_loss"]) == 2
        assert out.exists() and last_checkpoint_path(out).exists()
        assert {p.name for p in first.plots} == {"melae.loss.png", "melae.reconstruction.png"}
        state = torch.load(last_checkpoint_path(out), weights_only=True)
        assert state["epoch"] == 2 and state["step"] == 2 * build("melae", batch_size=8).batches_per_epoch(
            state["data"]["train_tracks"])
        resumed = train(lib, "melae", out, epochs=3, batch_size=8, resume=True)
        assert resumed.epochs_run == 1 and len(resumed.history["train_loss"]) == 3
        assert len(resumed.history["epoch_seconds"]) == 3 and min(resumed.history["epoch_seconds"]) > 0
        assert resumed.history["train_loss"][:2] == first.history["train_loss"]
        later = torch.load(last_checkpoint_path(out), weights_only=True)
        assert later["epoch"] == 3 and later["step"] == state["step"] * 3 // 2
        # A straight 3-epoch run with the same seed ends exactly where the resumed one did.
        straight = train(lib, "melae", tmp_path / "straight.pt", epochs=3, batch_size=8, plots=False)
        assert straight.history["train_loss"] == pytest.approx(resumed.history["train_loss"], rel=1e-5)


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
