"""descriptor-ae (seed 001): shapes, loss, checkpoints, training end to end, features CSV, threshold search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import fit_steps
from soundalike import synth
from soundalike.audio.analysis import analyse_file
from soundalike.audio.descriptors import DESCRIPTOR_DIM
from soundalike.library.catalog import Library
from soundalike.library.scan import scan
from soundalike.models import ModelError, build, load_checkpoint, save_checkpoint
from soundalike.models.base import TrackSet
from soundalike.models.descriptor_ae import within_threshold
from soundalike.models.embedding import embed_library
from soundalike.models.training import train


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[synth.SynthTrack]]:
    root = tmp_path_factory.mktemp("descriptor_ae")
    tracks = synth.make_library(root / "music", styles=["techno", "ambient", "chiptune"], tracks_per_style=3,
                                duration=8.0, seed=11)
    with Library.open(root / "lib") as lib:
        scan(lib, [root / "music"], isolate=False)
    return root, tracks


def _data(lib: Library, model) -> tuple[TrackSet, TrackSet]:  # type: ignore[no-untyped-def]
    ids = [int(t) for t in lib.vectors("descriptor")[0]]
    return TrackSet(ids[:7], model.load_inputs(lib, ids[:7])), TrackSet(ids[7:], model.load_inputs(lib, ids[7:]))


def test_architecture_follows_seed_001() -> None:
    model = build("descriptor-ae")
    cfg = model.config
    assert (cfg.embedding_dim, cfg.l1_activity, cfg.validation_fraction, cfg.epochs) == (3, 0.01, 0.2, 100)
    assert cfg.input_dim == DESCRIPTOR_DIM == 120 and model.input_kind == "descriptor"
    widths = [m.out_features for m in list(model.encoder) + list(model.decoder) if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 64, 3, 64, 128, 120]
    x = torch.randn(5, 120)
    assert model.encode(x).shape == (5, 3) and model.reconstruct(x).shape == (5, 120)
    pooled, seq = model.embed_track(np.random.default_rng(0).normal(size=120).astype(np.float32))
    assert pooled.shape == (3,) and seq.shape == (1, 3)
    np.testing.assert_allclose(pooled, seq[0])
    with pytest.raises(ModelError, match="expects 120 features, got 7"):
        model.embed_track(np.zeros(7, np.float32))


def test_loss_falls_and_checkpoint_round_trip(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _ = env
    model = build("descriptor-ae", batch_size=8)
    with Library.open(root / "lib") as lib:
        tr, va = _data(lib, model)
        card = model.setup_training(lib, tr, va, {})
    assert card == {"features": "descriptor", "input_dim": 120}
    assert float(model.std.min()) > 0 and float(model.mean.abs().max()) > 0  # statistics of the training split
    batch = model.sample_batch(tr, np.random.default_rng(0), 8)
    assert batch["features"].shape == (7, 120)  # whole tracks, no repeats
    assert abs(float(batch["features"].mean())) < 1e-4  # standardised
    first, last, extra = fit_steps(model, batch, 40)
    assert last < 0.7 * first and set(extra) == {"mse", "l1"}
    model.eval()
    save_checkpoint(model, tmp_path / "ae.pt")
    again, payload = load_checkpoint(tmp_path / "ae.pt")
    assert payload["config"]["input_dim"] == 120
    raw = tr.inputs[0]
    np.testing.assert_array_equal(model.embed_track(raw)[0], again.embed_track(raw)[0])
    torch.testing.assert_close(again.mean, model.mean)


def test_train_end_to_end_embeds_every_track_and_cold_start(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks = env
    with Library.open(root / "lib") as lib:
        result = train(lib, "descriptor-ae", tmp_path / "ae.pt", epochs=3, batch_size=4, plots=True)
        assert len(result.history["train_loss"]) == 3
        assert [p.suffixes[-2:] for p in result.plots] == [[".loss", ".png"]]  # vectors: no reconstruction image
        _, payload = load_checkpoint(result.checkpoint)
        assert payload["data"]["input"] == "descriptor" and payload["data"]["train_tracks"] == 9
        model_id, count = embed_library(lib, result.checkpoint)
        ids, vecs = lib.vectors(model_id)
        assert count == 9 and vecs.shape == (9, 3)
        model, _ = load_checkpoint(result.checkpoint)
        track = lib.track_by_path(tracks[0].path)
        assert track is not None
        query = model.embed_track(model.query_input(analyse_file(tracks[0].path)))[0]
        np.testing.assert_allclose(query, vecs[list(ids).index(track.id)], rtol=1e-4, atol=1e-4)


def _features_csv(path: Path, tracks: list[synth.SynthTrack], root: Path) -> Path:
    rows = ["path,title,tempo,loudness,energy,year,explicit"]
    for i, t in enumerate(tracks[:-1]):  # the last track is not in the CSV
        rel = Path("..") / t.path.relative_to(root.parent)
        loud = "" if i == 2 else f"{-10 - i % 3}"  # one empty cell: the column mean
        year = "1999" if i == 0 else ""  # mostly empty: dropped
        flag = "true" if i % 2 else "false"
        rows.append(f"{rel},\"Song, {i}\",{100 + 10 * (i % 3)},{loud},{0.1 * i:.1f},{year},{flag}")
    rows.append(f"{path.parent / 'not-indexed.mp3'},x,1,1,1,,false")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_features_csv_variant(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks = env
    csv_path = _features_csv(tmp_path / "features.csv", tracks, root)
    with Library.open(root / "lib") as lib:
        result = train(lib, "descriptor-ae", tmp_path / "csv.pt", epochs=2, batch_size=4, plots=False,
                       options={"features_csv": csv_path})
        model, payload = load_checkpoint(result.checkpoint)
        data = payload["data"]
        assert data["feature_names"] == ["tempo", "loudness", "energy", "explicit"]
        assert data["ignored_columns"] == ["title", "year"] and data["csv_rows_not_in_catalogue"] == 1
        assert data["tracks_not_in_csv"] == 1 and "left out of training" in data["note"]
        assert data["train_tracks"] == 8 and model.config.input_dim == 4 and model.config.feature_source == "csv"
        all_ids = [int(t) for t in lib.vectors("descriptor")[0]]
        missing = lib.track_by_path(tracks[-1].path)
        assert missing is not None
        usable = model.trackable(lib, all_ids)
        assert len(usable) == 8 and missing.id not in usable
        pooled, seq = model.embed_track(model.load_inputs(lib, usable[:1])[0])
        assert pooled.shape == (3,) and seq.shape == (1, 3)
        with pytest.raises(ModelError, match=f"track {missing.id} is not in the features CSV"):
            model.load_inputs(lib, [missing.id])
    with pytest.raises(ModelError, match="cannot embed an outside file|not an outside file"):
        model.query_input(object())


@pytest.mark.parametrize(("text", "match"), [
    ("name,tempo\na,1\n", r"bad\.csv: a features CSV needs a 'path' or 'track_id' column \(found: name,tempo\)"),
    ("track_id,title\n1,x\n", r"bad\.csv: no numeric feature column \(ignored: title\)"),
    ("track_id,tempo\n9999,1\n", r"bad\.csv: names no catalogue track .*9999"),
    ("track_id,tempo\n1,2,3\n", r"bad\.csv, row 2: expected 2 columns, got 3"),
    ("", r"bad\.csv: empty CSV file"),
])
def test_bad_features_csv(env, tmp_path: Path, text: str, match: str) -> None:  # type: ignore[no-untyped-def]
    root, _ = env
    (tmp_path / "bad.csv").write_text(text, encoding="utf-8")
    with Library.open(root / "lib") as lib, pytest.raises(ModelError, match=match):
        train(lib, "descriptor-ae", tmp_path / "x.pt", epochs=1, plots=False,
              options={"features_csv": tmp_path / "bad.csv"})


def test_unknown_option_and_missing_csv(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _ = env
    with Library.open(root / "lib") as lib:
        with pytest.raises(ModelError, match="takes no training option interactions"):
            train(lib, "descriptor-ae", tmp_path / "x.pt", epochs=1, plots=False, options={"interactions": "x"})
        with pytest.raises(ModelError, match=r"nope\.csv: no such features CSV"):
            train(lib, "descriptor-ae", tmp_path / "x.pt", epochs=1, plots=False,
                  options={"features_csv": tmp_path / "nope.csv"})


def test_within_threshold_follows_seed_001() -> None:
    vectors = np.array([[0, 0, 0], [0.01, 0, 0], [0, 0.02, 0], [0.03, 0, 0], [0, 0, 0]], np.float32)
    rows, dist = within_threshold(vectors, np.zeros(3))
    assert rows.tolist() == [1, 2]  # distance 0 (the query itself, exact copies) and >= 0.025 excluded
    np.testing.assert_allclose(dist, [0.01, 0.02], rtol=1e-5)
    assert within_threshold(vectors, np.zeros(3), threshold=1.0)[0].tolist() == [1, 2, 3]
    with pytest.raises(ModelError, match="query has 2 values"):
        within_threshold(vectors, np.zeros(2))
