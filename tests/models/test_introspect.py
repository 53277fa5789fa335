"""Looking inside models (seed 004 §6): filters, activation playlists; the library and segment maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import synth_library
from soundalike.app.cli import app
from soundalike.library.catalog import Library
from soundalike.models import ModelError, build, load_checkpoint
from soundalike.models.introspect import activation_table, first_layer_filters, unit_activations
from soundalike.models.training import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = synth_library(tmp_path_factory.mktemp("introspect"), ["techno", "ambient", "chiptune"],
                         tracks_per_style=3, duration=6.0, seed=4)
    with Library.open(root / "lib") as lib:
        result = train(lib, "contrastive", root / "c.pt", epochs=1, batch_size=8, plots=False, frontend="conv1d",
                       input_pool=1, channels=(16, 16, 16, 16), embedding_dim=8)
    from soundalike.models.embedding import embed_library

    with Library.open(root / "lib") as lib:
        embed_library(lib, result.checkpoint)
    return root, result.checkpoint


def test_filters_and_activations_agree(trained: tuple[Path, Path]) -> None:
    root, ckpt = trained
    model, _ = load_checkpoint(ckpt)
    filters = first_layer_filters(model)
    assert filters.shape == (16, 128, 3)  # conv1d over time: mel bins x 3 frames
    with Library.open(root / "lib") as lib:
        table = activation_table(lib, model, mode="mean")
        assert table.values.shape == (9, 16) and (table.values >= 0).all()  # rectified
        (best,) = table.playlists([5], k=3)
        column = [unit_activations(model, model.load_inputs(lib, [t])[0])[1][5] for t in table.track_ids]
        assert best.track_ids[0] == table.track_ids[int(np.argmax(column))]
        assert best.values == sorted(best.values, reverse=True)
        emb = activation_table(lib, model, mode="embedding")
        assert emb.values.shape == (9, 8)
        with pytest.raises(ModelError, match="unit 99 does not exist"):
            table.playlists([99])
        with pytest.raises(ModelError, match="unknown activation mode"):
            activation_table(lib, model, mode="median")
    with pytest.raises(ModelError, match="no convolutional layer"):
        first_layer_filters(build("descriptor-ae"))


def test_cli_inspect_and_map(trained: tuple[Path, Path], tmp_path: Path) -> None:
    root, ckpt = trained
    lib = str(root / "lib")
    res = CliRunner().invoke(app, ["inspect", "contrastive", "--library", lib, "--out", str(tmp_path / "i"),
                                   "--units", "0,3", "-k", "4", "--tracks", "3"])
    assert res.exit_code == 0, res.output
    for name in ("filters.png", "segments.png", "unit000-max.m3u", "unit003-max.m3u"):
        assert (tmp_path / "i" / name).stat().st_size > 100
    lists = json.loads((tmp_path / "i" / "playlists.json").read_text())
    assert [pl["unit"] for pl in lists] == [0, 3] and all(len(pl["tracks"]) == 4 for pl in lists)
    res = CliRunner().invoke(app, ["map", "--library", lib, "--model", "descriptor", "--out",
                                   str(tmp_path / "m.png"), "--method", "pca"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m.png").stat().st_size > 10_000
    res = CliRunner().invoke(app, ["inspect", "nope", "--library", lib])
    assert res.exit_code == 2 and "no model of that name" in res.stderr
