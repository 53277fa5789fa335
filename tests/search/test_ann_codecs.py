"""IVF codecs for large libraries: 8-bit scalar quantization and OPQ + product quantization, trained on a sample
and filled in parts; vectors decoded back; memory counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soundalike.search import ann

from .test_ann import clustered


def test_choose_codec_by_memory() -> None:
    assert ann.choose_codec(20_000, 120) == "flat"
    assert ann.choose_codec(1_000_000, 120) == "flat"            # 480 MB of float32
    assert ann.choose_codec(1_000_000, 1882) == "sq8"            # 7.5 GB float32, 1.9 GB at a byte a dimension
    assert ann.choose_codec(10_000_000, 1882) == "pq"
    assert ann.choose_codec(3_000_000, 1882) == "pq"


@pytest.mark.parametrize("codec", ["sq8", "pq"])
def test_trained_then_filled_in_parts(codec: str, tmp_path: Path) -> None:
    x = clustered(6000, d=64, seed=4)
    ids = np.arange(6000, dtype=np.int64) * 3 + 1
    index = ann.AnnIndex.trained(x[::3], nlist=32, codec=codec, seed=0)  # type: ignore[arg-type]
    assert len(index) == 0 and index.params.codec == codec
    for start in range(0, 6000, 2000):
        index.add(ids[start:start + 2000], x[start:start + 2000])
    truth, _ = ann.exact_search(ids, x, x[:100], 11)
    nprobe = index.calibrate_queries(x[:100], ids[:100], truth, target_recall=0.8)
    assert 1 <= nprobe <= 32 and index.params.calibration["recall"] >= (0.8 if codec == "sq8" else 0.0)
    found, scores = index.search(x[:5], 3)
    good = 0.8 if codec == "sq8" else 0.4  # product quantization is coarse: why it is kept for 10 M+ tracks
    assert (found[:, 0] == ids[:5]).mean() >= good and np.all(scores[:, 0] > good)
    back = index.reconstruct(ids[:10])
    cosines = np.einsum("ij,ij->i", back, x[:10])
    assert np.allclose(np.linalg.norm(back, axis=1), 1.0, atol=1e-5)
    assert cosines.min() > (0.999 if codec == "sq8" else 0.8)
    assert index.remove(ids[:10]) == 10 and len(index) == 5990 and ids[0] not in index
    index.save(tmp_path / "a.ann")
    loaded = ann.AnnIndex.load(tmp_path / "a.ann")
    assert len(loaded) == 5990 and loaded.params.codec == codec
    np.testing.assert_allclose(loaded.reconstruct(ids[10:12]), index.reconstruct(ids[10:12]), atol=1e-6)
    seen = np.concatenate([part for part, _ in loaded.decoded(chunk=1000)])
    assert np.array_equal(np.sort(seen), loaded.ids)


def test_memory_of_the_codecs() -> None:
    x = clustered(5000, d=64, seed=5)
    ids = np.arange(5000, dtype=np.int64)
    sizes = {codec: ann.AnnIndex.build(ids, x, kind="ivf", codec=codec, nlist=16, nprobe=4).memory_bytes()
             for codec in ("flat", "sq8", "pq")}
    assert sizes["flat"] > 5000 * 64 * 4 > sizes["sq8"] > 5000 * 64
    assert sizes["pq"] < sizes["sq8"]
    flat = ann.AnnIndex.build(ids, x, kind="flat")
    assert flat.memory_bytes() == 5000 * (64 * 4 + 8)


def test_decoded_sq8_lists_match_reconstruct() -> None:
    x = clustered(3000, d=64, seed=6)
    ids = np.arange(3000, dtype=np.int64) + 10
    index = ann.AnnIndex.build(ids, x, kind="ivf", codec="sq8", nlist=8, nprobe=2)
    for part, vectors in index.decoded(chunk=500):
        np.testing.assert_allclose(vectors, index.reconstruct(part), atol=1e-6)


@pytest.mark.parametrize("kind,codec,d", [("ivf", "sq8", 64), ("ivf", "sq8", 70), ("ivf", "pq", 64),
                                          ("flat", "flat", 64)])
def test_projected_lists_match_the_decoded_vectors_times_the_matrix(kind: str, codec: str, d: int) -> None:
    x = clustered(3000, d=d, seed=7)
    ids = np.arange(3000, dtype=np.int64) + 3
    index = ann.AnnIndex.build(ids, x, kind=kind, codec=codec, nlist=8, nprobe=2)
    matrix = np.random.default_rng(0).normal(size=(d, 2)).astype(np.float32)
    seen = []
    for part, products in index.projected(matrix):
        assert products.shape == (len(part), 2)
        np.testing.assert_allclose(products, index.reconstruct(part) @ matrix, atol=2e-5)
        seen.append(part)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.sort(ids))


def test_sq8_codes_are_stored_padded_to_an_aligned_dimension(tmp_path: Path) -> None:
    import faiss

    x = clustered(3000, d=70, seed=6)  # 70 dimensions: stored as 80
    ids = np.arange(3000, dtype=np.int64) + 5
    index = ann.AnnIndex.trained(x, nlist=16, codec="sq8", seed=0)
    index.add(ids, x)
    assert index.params.dim == 70 and index._index.d == 80
    found, scores = index.search(x[:20], 1, nprobe=16)
    assert (found[:, 0] == ids[:20]).all() and np.allclose(scores[:, 0], 1.0, atol=5e-3)
    assert index.reconstruct(ids[:3]).shape == (3, 70)
    assert all(v.shape[1] == 70 for _, v in index.decoded(chunk=1000))
    index.save(tmp_path / "padded.ann")
    assert ann.AnnIndex.load(tmp_path / "padded.ann", dim=70)._index.d == 80
    # An sq8 index saved before the padding (faiss at the vectors' own dimension) still opens and answers.
    quantizer = faiss.IndexFlatIP(70)
    old = faiss.IndexIVFScalarQuantizer(quantizer, 70, 16, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    old.train(x)
    old.set_direct_map_type(faiss.DirectMap.Hashtable)
    old.add_with_ids(x, ids)
    ann.AnnIndex(old, ann.AnnParams("ivf", 70, nlist=16, nprobe=16, codec="sq8")).save(tmp_path / "old.ann")
    loaded = ann.AnnIndex.load(tmp_path / "old.ann", dim=70)
    found, _ = loaded.search(x[:20], 1)
    assert (found[:, 0] == ids[:20]).all() and loaded.reconstruct(ids[:2]).shape == (2, 70)


@pytest.mark.parametrize("codec", ["flat", "sq8", "pq"])
def test_cells_are_the_lists_that_hold_the_vectors(codec: str) -> None:
    """:meth:`AnnIndex.cells` names the cell an ``nprobe = 1`` search scans: the one each vector was added to
    (after the PCA rotation for ``pq``)."""
    import faiss

    x = clustered(3000, d=64, seed=5)
    ids = np.arange(3000, dtype=np.int64)
    index = ann.AnnIndex.trained(x, nlist=16, codec=codec, seed=0)  # type: ignore[arg-type]
    index.add(ids, x)
    lists = faiss.extract_index_ivf(index._index).invlists
    held = np.full(3000, -1)
    for cell in range(16):
        held[faiss.rev_swig_ptr(lists.get_ids(cell), lists.list_size(cell))] = cell
    assert np.array_equal(index.cells(x), held)
    flat = ann.AnnIndex.build(ids[:100], x[:100], kind="flat")
    assert flat.cells(x[:3]).tolist() == [0, 0, 0]
