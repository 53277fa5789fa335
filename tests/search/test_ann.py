"""ANN index: exact below the threshold, IVF above; incremental updates; atomic, checked files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from soundalike.search import ann


def clustered(n: int, d: int = 32, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors from a Gaussian mixture on the sphere (so that neighbours mean something)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def library() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = clustered(4050, seed=1)
    ids = np.arange(4000, dtype=np.int64) * 7 + 3          # track ids are not row numbers
    return ids, x[:4000], x[4000:]


@pytest.fixture(scope="module")
def ivf(library: tuple[np.ndarray, np.ndarray, np.ndarray]) -> ann.AnnIndex:
    ids, x, _ = library
    return ann.AnnIndex.build(ids, x, kind="ivf", seed=3)


def test_choose_kind_and_nlist() -> None:
    assert ann.choose_kind(10) == "flat"
    assert ann.choose_kind(ann.EXACT_MAX_TRACKS) == "flat"
    assert ann.choose_kind(ann.EXACT_MAX_TRACKS + 1) == "ivf"
    assert ann.default_nlist(1_000_000) == 4096
    assert ann.default_nlist(100_000) == 1024
    assert ann.default_nlist(10) == 1
    for n in (100, 1000, 4000, 30_000):
        assert n >= 39 * ann.default_nlist(n)
    # cells a training sample of at most max_train vectors holds at 40 a cell (MAX_TRAIN by default)
    assert ann.trainable_nlist(1_000_000) == 2048 and ann.trainable_nlist(10_000_000) == 2048
    assert ann.trainable_nlist(100_000) == ann.default_nlist(100_000)
    assert ann.trainable_nlist(1_000_000, max_train=1000) == 16


def test_cells_a_search_scans(ivf: ann.AnnIndex, library: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, x, queries = library
    sizes = ivf.cell_sizes()
    assert len(sizes) == ivf.params.nlist and sizes.sum() == len(ivf)
    probed = ivf.probed_cells(queries, 3)
    assert probed.shape == (len(queries), 3) and len({tuple(sorted(r)) for r in probed}) > 1
    np.testing.assert_array_equal(probed[:, 0], ivf.cells(queries))
    assert ivf.probed_cells(queries).shape == (len(queries), ivf.params.nprobe)
    assert ivf.probed_cells(queries, 10 * ivf.params.nlist).shape == (len(queries), ivf.params.nlist)  # capped
    found, _ = ivf.search(queries, 20, nprobe=3)  # a search finds only vectors of the cells it scans
    cell_of = dict(zip(ids.tolist(), ivf.cells(x).tolist(), strict=True))
    for row, cells in zip(found, probed, strict=True):
        assert {cell_of[t] for t in row.tolist() if t >= 0} <= set(cells.tolist())
    flat = ann.AnnIndex.build(np.arange(10), x[:10], kind="flat")
    assert flat.cell_sizes().tolist() == [10] and flat.probed_cells(x[:3]).tolist() == [[0], [0], [0]]


def test_auto_is_exact_for_small_libraries(library: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, x, queries = library
    index = ann.AnnIndex.build(ids, x)
    assert index.kind == "flat" and len(index) == len(ids)
    found, scores = index.search(queries, 10)
    want, want_scores = ann.exact_search(ids, x, queries, 10)
    np.testing.assert_array_equal(found, want)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
    assert ann.recall_at_k(index, queries, want) == 1.0


def test_ivf_recall_after_calibration(ivf: ann.AnnIndex, library: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, x, queries = library
    assert ivf.kind == "ivf" and ivf.params.nlist == ann.default_nlist(len(ids))
    assert 1 <= ivf.params.nprobe <= ivf.params.nlist
    assert ivf.params.calibration["recall"] >= ann.TARGET_RECALL
    exact, _ = ann.exact_search(ids, x, queries, 10)
    assert ann.recall_at_k(ivf, queries, exact) >= 0.9          # held-out queries
    assert ann.recall_at_k(ivf, queries, exact, nprobe=ivf.params.nlist) == 1.0   # probing every cell is exact
    found, scores = ivf.search(queries[0], 10)
    assert found.shape == (1, 10) and np.all(np.diff(scores[0]) <= 1e-6)


def test_same_seed_same_index(library: tuple[np.ndarray, np.ndarray, np.ndarray], ivf: ann.AnnIndex) -> None:
    ids, x, queries = library
    again = ann.AnnIndex.build(ids, x, kind="ivf", seed=3)
    assert again.params == ivf.params
    np.testing.assert_array_equal(again.search(queries, 10)[0], ivf.search(queries, 10)[0])


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_add_replace_and_remove(kind: str, library: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, x, _ = library
    index = ann.AnnIndex.build(ids[:3000], x[:3000], kind=kind, nprobe=8)  # type: ignore[arg-type]
    index.add(ids[3000:], x[3000:])                        # new tracks go to the trained cells
    assert len(index) == 4000 and int(ids[3500]) in index
    found, _ = index.search(x[3500], 1, nprobe=index.params.nlist or None)
    assert found[0, 0] == ids[3500]

    gone = ids[:100]
    assert index.remove(np.concatenate([gone, [10**9]])) == 100   # unknown ids are ignored
    assert index.remove(gone) == 0
    assert len(index) == 3900 and int(gone[0]) not in index
    found, _ = index.search(x[:100], 20, nprobe=index.params.nlist or None)
    assert not np.isin(found, gone).any()

    # re-adding an id replaces its vector
    index.add(ids[200:201], x[3999:4000])
    assert len(index) == 3900
    found, scores = index.search(x[3999], 2, nprobe=index.params.nlist or None)
    assert set(found[0].tolist()) == {int(ids[200]), int(ids[3999])} and scores[0, 0] == pytest.approx(1.0)
    np.testing.assert_array_equal(index.ids, np.sort(np.concatenate([ids[100:]])))


def test_stale_when_grown_past_threshold_or_training_set(monkeypatch: pytest.MonkeyPatch,
                                                         library: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, x, _ = library
    monkeypatch.setattr(ann, "EXACT_MAX_TRACKS", 500)
    flat = ann.AnnIndex.build(ids[:400], x[:400])
    assert flat.kind == "flat" and not flat.stale
    flat.add(ids[400:600], x[400:600])
    assert flat.stale                                      # now big enough for IVF
    small = ann.AnnIndex.build(ids[:600], x[:600], nprobe=4)
    assert small.kind == "ivf" and not small.stale
    small.add(ids[600:2401], x[600:2401])
    assert small.stale                                     # > 4x the vectors its cells were trained on


def test_save_load_round_trip_is_atomic(tmp_path: Path, ivf: ann.AnnIndex,
                                        library: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    _, _, queries = library
    path = tmp_path / "sub" / "tracks.ann"
    ivf.save(path)
    path.write_bytes(path.read_bytes())                    # a second save replaces the file whole
    ivf.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["tracks.ann"]
    back = ann.AnnIndex.load(path, dim=ivf.params.dim)
    assert back.params == ivf.params and len(back) == len(ivf)
    np.testing.assert_array_equal(back.ids, ivf.ids)
    np.testing.assert_array_equal(back.search(queries, 10)[0], ivf.search(queries, 10)[0])

    flat = ann.AnnIndex.build(np.array([5, 9]), np.eye(2, dtype=np.float32))
    flat.save(tmp_path / "flat.ann")
    again = ann.AnnIndex.load(tmp_path / "flat.ann")
    assert again.kind == "flat" and again.search(np.array([0.0, 1.0]), 1)[0].tolist() == [[9]]


def test_bad_files_are_named(tmp_path: Path) -> None:
    good = tmp_path / "good.ann"
    ann.AnnIndex.build(np.arange(50), clustered(50, d=8)).save(good)
    data = good.read_bytes()
    cases = {
        "missing.ann": None,
        "magic.ann": b"NOT AN INDEX" + data[12:],
        "truncated.ann": data[: len(data) - 100],
        "tail.ann": data + b"x",
        "header.ann": data[:len(ann.MAGIC) + 8] + b"[" + data[len(ann.MAGIC) + 9:],
        "version.ann": data.replace(b'"format": 1', b'"format": 9'),
        "faiss.ann": data[:-(len(data) // 2)] + b"\0" * (len(data) // 2),
    }
    messages = {
        "missing.ann": "cannot open", "magic.ann": "not a soundalike ANN index", "truncated.ann": "corrupt",
        "tail.ann": "unexpected bytes", "header.ann": "header", "version.ann": "format 9", "faiss.ann": "corrupt",
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ann.AnnError, match=messages[name]) as err:
            ann.AnnIndex.load(path)
        assert str(path) in str(err.value)
    with pytest.raises(ann.AnnError, match=r"good\.ann.*dimension 8, expected 16"):
        ann.AnnIndex.load(good, dim=16)


def test_bad_input() -> None:
    x = clustered(10, d=4)
    with pytest.raises(ann.AnnError, match="unit length"):
        ann.AnnIndex.build(np.arange(10), x * 2)
    with pytest.raises(ann.AnnError, match="unique"):
        ann.AnnIndex.build(np.zeros(10, dtype=int), x)
    with pytest.raises(ann.AnnError, match=">= 0"):
        ann.AnnIndex.build(-np.arange(1, 11), x)
    with pytest.raises(ann.AnnError, match="10 ids"):
        ann.AnnIndex.build(np.arange(9), x)
    with pytest.raises(ann.AnnError, match="NaN"):
        ann.AnnIndex.build(np.arange(10), np.full((10, 4), np.nan))
    with pytest.raises(ann.AnnError, match="unknown index kind"):
        ann.AnnIndex.build(np.arange(10), x, kind="hnsw")  # type: ignore[arg-type]
    index = ann.AnnIndex.build(np.arange(10), x)
    with pytest.raises(ann.AnnError, match=r"\(n, 4\)"):
        index.add(np.arange(10, 12), clustered(2, d=5))
    with pytest.raises(ann.AnnError, match=r"\(q, 4\)"):
        index.search(np.ones(5), 3)


def test_empty_and_short_results() -> None:
    empty = ann.AnnIndex.build(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), dim=4)
    found, scores = empty.search(np.ones(4) / 2, 3)
    assert found.tolist() == [[-1, -1, -1]] and np.isneginf(scores).all()
    two = ann.AnnIndex.build(np.array([1, 2]), np.eye(4, dtype=np.float32)[:2])
    found, scores = two.search(np.eye(4, dtype=np.float32)[0], 5)
    assert found[0, :2].tolist() == [1, 2] and found[0, 2:].tolist() == [-1, -1, -1]


def test_overlap_ignores_padding_and_self() -> None:
    assert ann.overlap_at_k(np.array([[1, 2, 3]]), np.array([[3, 2, 9]])) == pytest.approx(2 / 3)
    assert ann.overlap_at_k(np.array([[1, -1]]), np.array([[1, -1]])) == 1.0
    dropped = ann._drop_self(np.array([[5, 1, 2], [1, 5, 2]]), np.array([5, 5]), 2)
    assert dropped.tolist() == [[1, 2], [1, 2]]


def test_search_threads_apply_in_every_thread(ivf: ann.AnnIndex, library: tuple[np.ndarray, np.ndarray, np.ndarray],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A server's searches run in its request threads: the thread count it sets must hold there, not only in the
    thread that set it (faiss.omp_set_num_threads alone is per thread)."""
    import threading

    import faiss

    _, vectors, _ = library
    monkeypatch.setattr(ann, "_search_threads", None)
    ann.set_search_threads(1)
    seen: list[tuple[int, int]] = []

    def request() -> None:
        before = faiss.omp_get_max_threads()
        ivf.search(vectors[:2], 5)
        seen.append((before, faiss.omp_get_max_threads()))

    worker = threading.Thread(target=request)
    worker.start()
    worker.join()
    assert seen and seen[0][1] == 1
    if (os.cpu_count() or 1) > 1 and "OMP_NUM_THREADS" not in os.environ:
        assert seen[0][0] > 1  # a new thread starts with faiss's default: what the server used to search with
