"""cf-regression (seed 004 §5): convnet shapes, ALS targets from playlists, loss, checkpoints, training, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import fit_steps
from soundalike import synth
from soundalike.library.catalog import Library
from soundalike.library.scan import scan
from soundalike.models import ModelError, build, load_checkpoint, save_checkpoint
from soundalike.models.base import TrackSet
from soundalike.models.embedding import embed_library
from soundalike.models.training import train

TINY = {"conv_channels": (8, 8, 16, 16), "dense_units": 32, "batch_size": 4, "lr": 0.05}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[synth.SynthTrack], dict[Path, int]]:
    """A 9-track library (3 styles) and playlists, one per style, leaving out the last track (no listening data)."""
    root = tmp_path_factory.mktemp("cf_regression")
    tracks = synth.make_library(root / "music", styles=["techno", "ambient", "chiptune"], tracks_per_style=3,
                                duration=8.0, seed=13)
    with Library.open(root / "lib") as lib:
        scan(lib, [root / "music"], isolate=False, presets=("melae", "dieleman"))
        ids = {t.path: lib.track_by_path(t.path).id for t in tracks}  # type: ignore[union-attr]
    listed = tracks[:-1]
    m3u = root / "playlists"
    m3u.mkdir()
    for style in {t.style for t in listed}:
        for k in range(2):  # two playlists per style, relative entries
            members = [t for t in listed if t.style == style]
            lines = ["#EXTM3U"] + [f"#EXTINF:8,{t.title}\n../music/{t.path.relative_to(root / 'music')}"
                                   for t in members[k:] + members[:k]]
            (m3u / f"{style}{k}.m3u8").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "lists.csv").write_text("list,track\n" + "".join(f"{t.style},{ids[t.path]}\n" for t in listed)
                                    + "".join(f"mix,{t.path}\n" for t in listed[::2]), encoding="utf-8")
    return root, tracks, ids


def _sets(lib: Library, model) -> tuple[TrackSet, TrackSet]:  # type: ignore[no-untyped-def]
    ids = [int(r[0]) for r in lib.conn.execute("SELECT id FROM tracks ORDER BY id")]
    return TrackSet(ids[:7], model.load_inputs(lib, ids[:7])), TrackSet(ids[7:], model.load_inputs(lib, ids[7:]))


def test_default_architecture_is_the_blog_post() -> None:
    model = build("cf-regression")
    cfg = model.config
    assert (cfg.n_factors, cfg.embedding_dim, cfg.window_frames, cfg.window_hop) == (40, 40, 599, 300)
    assert model.preset_name == "dieleman" and model.preset.n_mels == 128
    convs = [m for m in model.convs if isinstance(m, torch.nn.Conv1d)]
    assert [c.kernel_size for c in convs] == [(4,)] * 4 and convs[0].in_channels == 128  # bins as channels
    assert [c.out_channels for c in convs] == [256, 256, 512, 512]
    assert [m.kernel_size for m in model.convs if isinstance(m, torch.nn.MaxPool1d)] == [4, 2, 2]
    dense = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(1536, 2048), (2048, 2048), (2048, 40)]
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.head) == 2
    opt = model.optimizer()
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    model.eval()
    x = torch.rand(2, 128, 599)
    assert model.convs(x).shape == (2, 512, 32)  # 599 -> 596 -> 149 -> 146 -> 73 -> 70 -> 35 -> 32
    pooled = model.pooled_features(x)
    h = model.convs(x)
    torch.testing.assert_close(pooled[:, :512], h.mean(-1))
    torch.testing.assert_close(pooled[:, 512:1024], h.amax(-1))
    torch.testing.assert_close(pooled[:, 1024:], h.norm(dim=-1), rtol=1e-4, atol=1e-3)
    assert model.encode(x).shape == (2, 40)
    assert model.segments(np.zeros((128, 1200), np.float32)).shape == (3, 128, 599)


def test_nips_variant_three_second_windows_averaged() -> None:
    model = build("cf-regression", window_frames=60, conv_channels=(8, 8), dense_units=16)
    cfg = model.config
    assert (cfg.window_hop, cfg.pool_sizes, cfg.dense_layers) == (60, (4,), 1)
    assert sum(isinstance(m, torch.nn.Conv1d) for m in model.convs) == 2
    assert sum(isinstance(m, torch.nn.Linear) for m in model.head) == 2  # two fully connected layers
    assert build("cf-regression", window_frames=60).config.conv_channels == (256, 256)
    model.eval()
    spec = np.random.default_rng(0).normal(-40, 10, (128, 600)).astype(np.float32)
    pooled, seq = model.embed_track(spec)
    assert seq.shape == (10, 40) and pooled.shape == (40,)
    np.testing.assert_allclose(pooled, seq.mean(axis=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelError, match="too short"):
        build("cf-regression", window_frames=20, conv_channels=(8, 8, 8, 8))


def test_targets_loss_and_checkpoint(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks, ids = env
    model = build("cf-regression", **TINY)
    with Library.open(root / "lib") as lib:
        tr, va = _sets(lib, model)
        card = model.setup_training(lib, tr, va, {"interactions": root / "playlists"})
        again = build("cf-regression", **TINY)
        again.setup_training(lib, *_sets(lib, again), {"interactions": root / "playlists"})
    unheard = ids[tracks[-1].path]
    assert card["playlists"] == 6 and card["interaction_tracks"] == 8 and card["cf_factors"] == 40
    assert card["validation_tracks_without_listening_data"] + card["train_tracks_without_listening_data"] == 1
    assert unheard not in tr.ids + va.ids and len(tr) + len(va) == 8
    targets = np.stack([model._targets[t] for t in tr.ids])
    assert targets.shape == (len(tr), 40)
    np.testing.assert_allclose(np.linalg.norm(targets, axis=1), 1.0, rtol=1e-5)  # unit norm (004 §5.2)
    np.testing.assert_array_equal(targets, np.stack([again._targets[t] for t in tr.ids]))  # deterministic ALS
    batch = model.sample_batch(tr, np.random.default_rng(0), 4)
    assert batch["x"].shape == (4, 128, 599) and batch["target"].shape == (4, 40)
    first, last, _ = fit_steps(model, batch, 15, train_mode=False)  # no dropout noise: the loss must fall
    assert last < 0.9 * first
    save_checkpoint(model, tmp_path / "cf.pt")
    loaded, payload = load_checkpoint(tmp_path / "cf.pt")
    assert tuple(payload["config"]["conv_channels"]) == (8, 8, 16, 16)
    spec = tr.inputs[0]
    np.testing.assert_array_equal(model.embed_track(spec)[0], loaded.embed_track(spec)[0])


def test_train_end_to_end_embeds_tracks_without_listening_data(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, tracks, ids = env
    with Library.open(root / "lib") as lib:
        result = train(lib, "cf-regression", tmp_path / "cf.pt", epochs=2, plots=False,
                       options={"interactions": root / "lists.csv"}, **TINY)
        _, payload = load_checkpoint(result.checkpoint)
        data = payload["data"]
        assert data["interactions_format"] == "csv" and data["train_tracks"] == 8
        assert data["train_tracks_without_listening_data"] == 1 and data["duplicate_entries"] == 0
        model_id, count = embed_library(lib, result.checkpoint)
        got, vecs = lib.vectors(model_id)
        assert count == 9 and vecs.shape == (9, 40) and np.isfinite(vecs).all()
        assert ids[tracks[-1].path] in got.tolist()  # placed although nobody listened to it


def test_clear_errors(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _, _ = env
    with Library.open(root / "lib") as lib:
        with pytest.raises(ModelError, match="needs listening data: pass interactions"):
            train(lib, "cf-regression", tmp_path / "a.pt", epochs=1, plots=False, **TINY)
        (tmp_path / "strangers.m3u").write_text(f"{tmp_path / 'nobody.mp3'}\n")
        with pytest.raises(ModelError, match=r"strangers\.m3u: names no catalogue track .*1 missing file"):
            train(lib, "cf-regression", tmp_path / "a.pt", epochs=1, plots=False,
                  options={"interactions": tmp_path / "strangers.m3u"}, **TINY)
        (tmp_path / "bad.csv").write_text("who,what\nx,y\n")
        with pytest.raises(ModelError, match=r"bad\.csv: expected a header with the columns list,track"):
            train(lib, "cf-regression", tmp_path / "a.pt", epochs=1, plots=False,
                  options={"interactions": tmp_path / "bad.csv"}, **TINY)
        with pytest.raises(ModelError, match="takes no training option features_csv"):
            train(lib, "cf-regression", tmp_path / "a.pt", epochs=1, plots=False,
                  options={"interactions": root / "lists.csv", "features_csv": "f.csv"}, **TINY)
