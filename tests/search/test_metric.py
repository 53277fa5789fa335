"""Learned metrics (RCA) of a search part: fitting, files and names, the ``model#metric`` key, the shipped ones."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli
from soundalike.audio.descriptors import DESCRIPTOR_VERSION
from soundalike.library.catalog import CatalogError, Library
from soundalike.models import embedding
from soundalike.models.embedding import resolve_model
from soundalike.models.pretrained import default_metrics, shipped_model_ids
from soundalike.search.metric import (
    METRICS_ENV,
    Metric,
    MetricError,
    fit_rca,
    known_metrics,
    load_metric,
    split_metric,
)
from soundalike.search.space import Embedding, SpaceError, fit_embedding, model_parts, part_metrics
from soundalike.search.vectors import standardise, unit_rows


def _albums(seed: int, albums: int = 12, per: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose album is told by 3 quiet columns, buried under 3 loud columns that vary as much inside an album
    as between albums (the mix and level of one album's tracks), plus 2 columns of pure noise; the 8 columns then
    mixed by one rotation (the same for every seed: the same kind of music)."""
    mixing = np.linalg.qr(np.random.default_rng(0).normal(size=(8, 8)))[0]  # the telling directions are not columns
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(albums), per)
    centre = rng.normal(0, 1, (albums, 3))[labels]
    loud = rng.normal(0, 3, (len(labels), 3))
    x = np.hstack([centre + rng.normal(0, 0.3, centre.shape), loud, rng.normal(0, 1, (len(labels), 2))])
    return x @ mixing + 5.0, labels


def _precision(vectors: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :k]
    return float((labels[top] == labels[:, None]).mean())


def test_rca_fitted_on_some_albums_finds_the_albums_of_others() -> None:
    train, train_labels = _albums(0)
    other, other_labels = _albums(1)  # other albums of the same kind of music
    metric = fit_rca("descriptor", train, train_labels, shrink=0.1)
    plain = unit_rows(standardise(other)[0])
    mapped = metric.apply(other)
    learned = unit_rows(mapped - mapped.mean(axis=0))
    assert _precision(learned, other_labels) > _precision(plain, other_labels) + 0.15  # measured 0.42 against 0.19
    assert metric.info["albums"] == 12 and metric.info["within_rows"] == 96


def test_rca_leaves_out_constant_columns_and_albums_of_one_track() -> None:
    x, labels = _albums(2, albums=5, per=4)
    x = np.hstack([x, np.full((len(x), 1), 3.0)])  # a column no training track moves
    x = np.vstack([x, np.append(x[0, :8] + 1.0, 3.0)])
    labels = np.append(labels, 99)  # an album of one track: no spread within it
    metric = fit_rca("descriptor", x, labels, shrink=0.5)
    assert metric.dim == 9 and not metric.matrix[8].any() and metric.info["within_rows"] == 20
    moved = x.copy()
    moved[:, 8] = 1e6  # a library where that column differs: nothing changes
    np.testing.assert_allclose(metric.apply(moved), metric.apply(x), rtol=1e-5, atol=1e-4)
    with pytest.raises(MetricError, match="two tracks"):
        fit_rca("descriptor", x[:3], np.arange(3))
    with pytest.raises(MetricError, match="shrink"):
        fit_rca("descriptor", x, labels, shrink=0.0)
    with pytest.raises(MetricError, match="one album per row"):
        fit_rca("descriptor", x, labels[:-1])


def test_a_metric_file_round_trips_and_its_name_follows_its_numbers(tmp_path: Path) -> None:
    x, labels = _albums(3)
    metric = fit_rca("contrastive-1a2b", x, labels, info={"fitted_on": ["a", "b"]})
    metric.save(tmp_path / "m.npz")
    again = Metric.load(tmp_path / "m.npz")
    assert again.name == metric.name and again.name.startswith("rca-") and again.model == "contrastive-1a2b"
    assert again.info["fitted_on"] == ["a", "b"]
    np.testing.assert_array_equal(again.apply(x), metric.apply(x))
    assert fit_rca("contrastive-1a2b", x, labels, shrink=0.3).name != metric.name
    assert fit_rca("contrastive-9999", x, labels).name != metric.name
    (tmp_path / "bad.npz").write_bytes(b"not a metric")
    with pytest.raises(MetricError, match="bad.npz: not a soundalike metric"):
        Metric.load(tmp_path / "bad.npz")
    with pytest.raises(MetricError, match="fitted for 8 columns"):
        metric.apply(x[:, :5])


def test_a_key_names_a_part_metric_after_its_model() -> None:
    assert split_metric("descriptor#rca-1a2b3c4d") == ("descriptor", "rca-1a2b3c4d")
    assert split_metric("descriptor") == ("descriptor", None)
    for bad in ("#rca-1", "descriptor#", "descriptor#a#b"):
        with pytest.raises(MetricError):
            split_metric(bad)
    assert model_parts("descriptor#rca-1@0.3+musicnn-2@0.4+contrastive-3#rca-4@0.3~nn5") == \
        ["descriptor", "musicnn-2", "contrastive-3"]


def test_a_part_with_a_metric_is_mapped_then_centred_and_saved_by_name(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    x, labels = _albums(4)
    metric = fit_rca("learned-1", x, labels)
    metric.save(tmp_path / "learned.npz")
    monkeypatch.setenv(METRICS_ENV, str(tmp_path))
    assert known_metrics()[metric.name] == tmp_path / "learned.npz"
    rng = np.random.default_rng(5)
    raw = np.hstack([rng.normal(50, 10, (len(x), 4)), x])
    key = f"descriptor@0.3+learned-1#{metric.name}@0.7"
    embedding = fit_embedding(key, raw, [4, 8])
    part = embedding.parts[1]
    assert part.metric is not None and part.metric.name == metric.name
    np.testing.assert_allclose(part.mean, metric.apply(x).mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(part.std, np.ones(8, dtype=np.float32))  # the whitening sets the scale
    v = embedding.transform(raw)
    mapped = metric.apply(x)
    np.testing.assert_allclose(v[:, 4:] / np.sqrt(0.7), unit_rows(mapped - mapped.mean(axis=0)), atol=1e-5)
    saved = embedding.to_json()
    assert saved["parts"][1]["metric"] == metric.name and "metric" not in saved["parts"][0]
    np.testing.assert_array_equal(Embedding.from_json(json.loads(json.dumps(saved))).transform(raw), v)
    assert embedding.describe()["parts"][1]["metric"] == metric.name
    with pytest.raises(SpaceError, match="fitted for learned-1, not descriptor"):
        part_metrics(f"descriptor#{metric.name}")
    with pytest.raises(SpaceError, match="unknown metric 'rca-00000000'"):
        part_metrics("learned-1#rca-00000000")
    with pytest.raises(SpaceError, match="maps 8 columns"):
        fit_embedding(f"learned-1#{metric.name}", raw[:, :4], [4])
    monkeypatch.delenv(METRICS_ENV)
    with pytest.raises(ValueError, match="unknown metric"):  # a saved index then fits again, and says why
        Embedding.from_json(saved)


def test_the_shipped_metrics_fit_the_default_parts_they_are_named_for() -> None:
    named = default_metrics()
    assert named, "default.json names the metrics of its parts"
    ids = {**shipped_model_ids(), "descriptor": "descriptor"}
    for part, name in named.items():
        metric = Metric.load(known_metrics()[name])
        assert metric.model == ids[part] and metric.info["kind"] == "rca"
        assert set(metric.info["fitted_on"]) <= set(_train_albums())  # train albums only (issue 12)
        if part == "descriptor":
            assert metric.info["descriptor_version"] == DESCRIPTOR_VERSION


def _train_albums() -> list[str]:
    sets = json.loads((Path(__file__).parents[2] / "benchmarks" / "album_sets.json").read_text())["train"]
    return sets["dev"] + sets["train"]


def test_the_default_searches_its_parts_through_their_metrics(indexed: tuple[Path, Path, list]) -> None:
    _, lib_path, _ = indexed
    with Library.open(lib_path, create=False) as lib:
        key = resolve_model(lib, "default")
        descriptor_metric = default_metrics()["descriptor"]
        assert f"descriptor#{descriptor_metric}@" in key
        assert resolve_model(lib, f"descriptor#{descriptor_metric}") == f"descriptor#{descriptor_metric}"
    code, out, err = run_cli("similar", "1", "--library", str(lib_path), "-k", "3", "--model",
                             f"descriptor#{descriptor_metric}")
    assert code == 0 and out.count("(id ") == 3, out + err
    code, out, err = run_cli("similar", "1", "--library", str(lib_path), "--model", "descriptor#rca-00000000")
    assert code != 0 and "unknown metric 'rca-00000000'" in out + err and "Traceback" not in out + err


def test_models_lists_the_shipped_metrics_with_the_key_that_searches_them() -> None:
    code, out, err = run_cli("models")
    assert code == 0, err
    for part, name in default_metrics().items():
        model = {**shipped_model_ids(), "descriptor": "descriptor"}[part]
        assert f"search it as {model}#{name}" in " ".join(out.split())


def test_a_broken_file_among_the_metrics_hides_no_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    x, labels = _albums(6)
    good = fit_rca("learned-1", x, labels)
    good.save(tmp_path / "good.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:100])  # a truncated zip
    for broken in ("empty.npz", "cut.npz"):
        with pytest.raises(MetricError, match=f"{broken}: not a soundalike metric"):
            Metric.load(tmp_path / broken)
    monkeypatch.setenv(METRICS_ENV, str(tmp_path))
    assert load_metric(good.name).name == good.name  # the shipped ones and this one are still found
    assert set(default_metrics().values()) <= set(known_metrics())
    assert "cut.npz: not a soundalike metric" in caplog.text


def test_a_metric_file_replaced_in_place_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, labels = _albums(7)
    first, second = fit_rca("learned-1", x, labels, shrink=0.1), fit_rca("learned-1", x, labels, shrink=1.0)
    folder = tmp_path / "metrics"
    folder.mkdir()
    first.save(folder / "m.npz")
    monkeypatch.setenv(METRICS_ENV, str(folder))
    assert load_metric(first.name).name == first.name
    mtime = folder.stat().st_mtime_ns
    second.save(folder / "m.npz")  # same path, new numbers (and name)
    os.utime(folder, ns=(mtime, mtime))  # the folder looks unchanged
    assert load_metric(second.name).name == second.name  # never the other metric under this name
    with pytest.raises(MetricError, match=f"unknown metric '{first.name}'"):
        load_metric(first.name)


def test_a_key_names_each_embedding_once(indexed: tuple[Path, Path, list]) -> None:
    _, lib_path, _ = indexed
    metric = default_metrics()["descriptor"]
    with pytest.raises(SpaceError, match="descriptor named twice"):
        model_parts(f"descriptor@0.5+descriptor#{metric}@0.5")
    code, out, err = run_cli("similar", "1", "--library", str(lib_path), "--model",
                             f"descriptor@0.5+descriptor#{metric}@0.5")
    assert code != 0 and "named twice" in out + err and "Traceback" not in out + err


def test_a_default_whose_metric_is_missing_fails_in_one_line(indexed: tuple[Path, Path, list],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _, lib_path, _ = indexed
    monkeypatch.setattr(embedding, "default_metrics", lambda: {"descriptor": "rca-00000000"})  # a broken build
    with Library.open(lib_path, create=False) as lib, pytest.raises(CatalogError, match="the default model: unknown"):
        resolve_model(lib, "default")
    code, out, err = run_cli("similar", "1", "--library", str(lib_path))
    assert code != 0 and "unknown metric 'rca-00000000'" in out + err and "Traceback" not in out + err


def test_a_family_name_may_carry_its_metric_on_the_command_line_and_the_api(indexed: tuple[Path, Path, list]) -> None:
    from fastapi.testclient import TestClient

    from soundalike.app.server.app import create_app

    _, lib_path, _ = indexed
    metric = default_metrics()["default_contrastive.pt"]
    code, out, err = run_cli("similar", "1", "--library", str(lib_path), "-k", "2", "--model", f"contrastive#{metric}")
    assert code == 0 and out.count("(id ") == 2, out + err
    with TestClient(create_app(lib_path, refresh_seconds=0.0), raise_server_exceptions=False) as client:
        ok = client.get("/api/tracks/1/similar", params={"model": f"contrastive#{metric}", "k": 2})
        assert ok.status_code == 200 and ok.json()["model"].endswith(f"#{metric}"), ok.text
        wrong = client.get("/api/tracks/1/similar", params={"model": f"descriptor#{metric}", "k": 2})
        assert wrong.status_code == 400 and "was fitted for contrastive-" in wrong.text
