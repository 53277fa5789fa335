"""soundalike export: the search vectors `similar` compares (default by default), or the stored values."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli
from soundalike import synth
from soundalike.library.catalog import Library
from soundalike.models.pretrained import default_metrics
from soundalike.recommend import Filters, load_index, similar
from soundalike.search.space import model_parts


@pytest.mark.parametrize("fmt", ["npz", "parquet", "csv"])
def test_export_writes_the_search_vectors_of_default(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                                     tmp_path: Path, fmt: str) -> None:
    _, library, _ = indexed
    out_file = tmp_path / f"export.{fmt}"
    code, out, _ = run_cli("export", "--out", str(out_file), "--library", str(library))
    with Library.open(library) as lib:
        index = load_index(lib, "default")
        _, found = similar(lib, str(int(index.ids[0])), 5, filters=Filters(skip_duplicates=False))
    key = index.embedding.model
    metrics = default_metrics()  # the parts default.json names, through their metrics, with its weights
    assert key.startswith(f"descriptor#{metrics['descriptor']}@0.3+musicnn-") and "@0.4+contrastive-" in key
    assert key.endswith(f"#{metrics['default_contrastive.pt']}@0.3")
    assert code == 0 and "20 tracks" in out and key in out and "search vectors" in out
    assert f"descriptor (120, through {metrics['descriptor']})" in " ".join(out.split())
    if fmt == "npz":
        data = np.load(out_file)
        ids, vectors = data["track_id"], data["vectors"]
        meta = json.loads(str(data["meta"]))
        assert meta["model"] == key and [p["model"] for p in meta["parts"]] == model_parts(key)
        assert [p["weight"] for p in meta["parts"]] == pytest.approx([0.3, 0.4, 0.3])  # default.json
        assert [p.get("metric") for p in meta["parts"]] == [metrics["descriptor"], None,
                                                            metrics["default_contrastive.pt"]]
        lengths = data["segment_lengths"]
        assert (lengths > 0).all() and data["segments"].shape == (lengths.sum(), vectors.shape[1])
        np.testing.assert_allclose(np.linalg.norm(data["segments"], axis=1), 1.0, atol=1e-5)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out_file)
        assert table.schema.metadata[b"model"] == key.encode()
        ids, vectors = np.array(table.column("track_id")), np.array(table.column("vector").to_pylist())
    else:
        with open(out_file, newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0][:6] == ["track_id", "path", "artist", "album", "title", "duration"]
        # the descriptors' search columns mix them through their metric: named by it, not by descriptor names
        assert rows[0][6] == f"descriptor#{metrics['descriptor']}:v0" and rows[0][-1].startswith("contrastive-")
        ids = np.array([int(r[0]) for r in rows[1:]])
        vectors = np.array([r[6:] for r in rows[1:]], dtype=float)
    np.testing.assert_array_equal(ids, index.ids)
    np.testing.assert_allclose(vectors, index.vectors, rtol=1e-4, atol=1e-5)
    # what `similar` ranks is the inner product of exported vectors
    scores = vectors @ vectors[0]
    scores[0] = -np.inf
    assert [r.track.id for r in found] == ids[np.argsort(-scores, kind="stable")[:5]].tolist()


def test_export_raw_descriptors_by_name(indexed: tuple[Path, Path, list[synth.SynthTrack]], tmp_path: Path) -> None:
    _, library, _ = indexed
    out_file = tmp_path / "raw.csv"
    code, out, _ = run_cli("export", "--out", str(out_file), "--library", str(library), "--model", "descriptor",
                       "--raw")
    assert code == 0 and "stored vectors" in out
    with Library.open(library) as lib:
        ids, vectors = lib.vectors()
    with open(out_file, newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 21 and rows[0][6] == "mfcc00_mean"
    np.testing.assert_allclose(np.array([r[6:] for r in rows[1:]], dtype=float), vectors, rtol=1e-5, atol=1e-5)
    code, _, err = run_cli("export", "--out", str(tmp_path / "x.npz"), "--library", str(library), "--model", "melae")
    assert code == 2 and "melae" in err


def test_export_of_a_smoothed_key_writes_the_smoothed_vectors(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                                             tmp_path: Path) -> None:
    _, library, _ = indexed
    out_file = tmp_path / "smoothed.npz"
    code, _, err = run_cli("export", "--out", str(out_file), "--library", str(library), "--model", "descriptor~nn3")
    assert code == 0, err
    data = np.load(out_file)
    meta = json.loads(str(data["meta"]))
    assert meta["model"] == "descriptor~nn3" and meta["smoothed"] is True
    with Library.open(library) as lib:
        index = load_index(lib, "descriptor~nn3")
    np.testing.assert_allclose(data["vectors"], index.vectors, rtol=1e-5, atol=1e-6)
    code, _, err = run_cli("export", "--out", str(tmp_path / "bad.npz"), "--library", str(library), "--model",
                           "descriptor~nn1")
    assert code == 2 and "from 2 to" in err and "Traceback" not in err
