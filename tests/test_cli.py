"""The command line end to end on a small synthetic library: index, similar (every query kind), export."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from soundalike import synth
from soundalike.app.cli import app
from soundalike.library.catalog import Library
from soundalike.recommend import Filters, load_index, similar

STYLES = ["techno", "ambient", "chiptune", "classical"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[synth.SynthTrack]]:
    root = tmp_path_factory.mktemp("cli")
    tracks = synth.make_library(root / "music", styles=STYLES, tracks_per_style=5, duration=8.0, seed=3)
    library = root / "lib"
    result = CliRunner().invoke(app, ["index", str(root / "music"), "--library", str(library), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    return root, library, tracks


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def style_of(tracks: list[synth.SynthTrack], path: str) -> str:
    return next(t.style for t in tracks if t.path.resolve() == Path(path).resolve())


def test_index_prints_a_summary_and_json(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    root, library, _ = indexed
    code, out, _ = run("index", str(root / "music"), "--library", str(library), "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["summary"]["found"] == 20 and payload["summary"]["unchanged"] == 20
    assert payload["library"]["tracks"] == 20


def test_similar_by_id_json_contract(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, tracks = indexed
    code, out, _ = run("similar", "1", "-k", "4", "--library", str(library), "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["query"]["track_id"] == 1 and payload["query"]["in_library"] is True
    results = payload["results"]
    assert len(results) == 4
    assert set(results[0]) >= {"track_id", "path", "artist", "album", "title", "score"}
    assert all(r["track_id"] != 1 for r in results)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    query_style = style_of(tracks, payload["query"]["path"])
    assert sum(style_of(tracks, r["path"]) == query_style for r in results) >= 3


def test_similar_by_path_and_by_search_string(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, tracks = indexed
    t = tracks[7]
    code, out, _ = run("similar", str(t.path), "--library", str(library), "-f", "json")
    assert code == 0 and json.loads(out)["query"]["title"] == t.title
    code, out, _ = run("similar", f"{t.artist} - {t.title}", "--library", str(library), "-f", "json")
    assert code == 0 and json.loads(out)["query"]["path"] == str(t.path.resolve())


def test_cold_start_file_outside_the_library(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                             tmp_path: Path) -> None:
    _, library, tracks = indexed
    new = tmp_path / "new.flac"
    synth.write_track(new, synth.render_track("chiptune", seed=999, duration=8.0), 22050,
                      artist="Newcomer", album="Unplayed", title="Fresh")
    code, out, _ = run("similar", str(new), "-k", "5", "--library", str(library), "-f", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["query"]["in_library"] is False
    assert sum(style_of(tracks, r["path"]) == "chiptune" for r in payload["results"]) >= 4
    with Library.open(library) as lib:
        assert lib.stats()["tracks"] == 20  # analysed on the fly, never added


def test_query_and_its_duplicates_are_never_returned(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                                     tmp_path: Path) -> None:
    import soundfile as sf

    _, library, tracks = indexed
    original = next(t for t in tracks if t.path.suffix == ".wav")
    # The same recording re-encoded losslessly under another name, with other tags: same decoded audio.
    copy = tmp_path / "a copy.flac"
    data, sr = sf.read(original.path, dtype="int16")
    sf.write(copy, data, sr)
    code, out, _ = run("similar", str(copy), "-k", "19", "--library", str(library), "-f", "json")
    assert code == 0
    paths = [r["path"] for r in json.loads(out)["results"]]
    assert str(original.path.resolve()) not in paths and len(paths) == 19
    # A byte-identical copy inside the library is the same track: querying one never returns the other.
    twin = original.path.with_name("twin.wav")
    shutil.copy(original.path, twin)
    try:
        assert run("index", str(original.path.parent), "--library", str(library))[0] == 0
        code, out, _ = run("similar", str(twin), "-k", "19", "--library", str(library), "-f", "json")
        paths = [r["path"] for r in json.loads(out)["results"]]
        assert code == 0 and str(original.path.resolve()) not in paths and str(twin) not in paths
    finally:
        twin.unlink()
        run("index", str(original.path.parent), "--library", str(library))


def test_m3u_and_text_output(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, _ = indexed
    code, out, _ = run("similar", "3", "-k", "3", "--library", str(library), "--format", "m3u")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "#EXTM3U"
    paths = [ln for ln in lines if not ln.startswith("#")]
    assert len(paths) == 3 and all(Path(p).exists() for p in paths)
    assert sum(ln.startswith("#EXTINF:8,") for ln in lines) == 3
    code, out, _ = run("similar", "3", "-k", "3", "--library", str(library))
    assert code == 0 and out.startswith("more like: ") and len(out.splitlines()) == 4
    with Library.open(library) as lib:
        first = lib.tracks([int(out.splitlines()[1].split("(id ")[1].rstrip(")"))])[0]
    assert f"[{first.album}]" in out.splitlines()[1]  # square brackets are text, not terminal markup


def test_search_ranks_exact_titles_first(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, tracks = indexed
    with Library.open(library) as lib:
        for t in tracks[:6]:
            assert lib.search(t.title)[0].title == t.title
            assert lib.search(f"{t.artist} - {t.title}")[0].path == str(t.path.resolve())
        assert lib.search("zzz-no-such-words") == [] and lib.search_count("zzz") == 0
        assert len(lib.search("", limit=None)) == lib.search_count("  -  ") == 20  # no words: every track


def test_unknown_query_fails_with_a_clear_message(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, _ = indexed
    for query, words in [("no such song", "no track matches"), ("9999", "no track with id 9999"),
                         ("/nowhere/x.mp3", "file not found")]:
        code, out, err = run("similar", query, "--library", str(library))
        assert code == 2 and out == "" and words in err


def test_bad_audio_query_names_the_file(indexed: tuple[Path, Path, list[synth.SynthTrack]], tmp_path: Path) -> None:
    _, library, _ = indexed
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio")
    code, _, err = run("similar", str(bad), "--library", str(library))
    assert code == 2 and str(bad) in err and "not an audio file" in err


def test_empty_library_says_what_to_run(tmp_path: Path) -> None:
    code, _, err = run("similar", "1", "--library", str(tmp_path / "none"))
    assert code == 2 and "soundalike index" in err
    Library.open(tmp_path / "empty").close()
    code, _, err = run("similar", "x", "--library", str(tmp_path / "empty"))
    assert code == 2 and "soundalike index" in err


@pytest.mark.parametrize("fmt", ["npz", "parquet", "csv"])
def test_export_writes_the_search_vectors_of_default(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                                     tmp_path: Path, fmt: str) -> None:
    _, library, _ = indexed
    out_file = tmp_path / f"export.{fmt}"
    code, out, _ = run("export", "--out", str(out_file), "--library", str(library))
    with Library.open(library) as lib:
        index = load_index(lib, "default")
        _, found = similar(lib, str(int(index.ids[0])), 5, filters=Filters(skip_duplicates=False))
    key = index.embedding.model
    assert key.startswith("descriptor+contrastive-")
    assert code == 0 and "20 tracks" in out and key in out and "search vectors" in out
    if fmt == "npz":
        data = np.load(out_file)
        ids, vectors = data["track_id"], data["vectors"]
        meta = json.loads(str(data["meta"]))
        assert meta["model"] == key and [p["model"] for p in meta["parts"]] == key.split("+")
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
        assert rows[0][6] == "descriptor:mfcc00_mean" and rows[0][-1].startswith("contrastive-")
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
    code, out, _ = run("export", "--out", str(out_file), "--library", str(library), "--model", "descriptor",
                       "--raw")
    assert code == 0 and "stored vectors" in out
    with Library.open(library) as lib:
        ids, vectors = lib.vectors()
    with open(out_file, newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 21 and rows[0][6] == "mfcc00_mean"
    np.testing.assert_allclose(np.array([r[6:] for r in rows[1:]], dtype=float), vectors, rtol=1e-5, atol=1e-5)
    code, _, err = run("export", "--out", str(tmp_path / "x.npz"), "--library", str(library), "--model", "melae")
    assert code == 2 and "melae" in err


def test_info_and_version(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, _ = indexed
    code, out, _ = run("info", "--library", str(library))
    assert code == 0 and json.loads(out)["tracks"] == 20
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("soundalike ")


def test_moved_library_folder_is_found_again(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                             tmp_path: Path) -> None:
    root, library, _ = indexed
    moved_lib = tmp_path / "lib-copy"
    shutil.copytree(library, moved_lib)
    code, out, _ = run("similar", "2", "-k", "2", "--library", str(moved_lib), "-f", "json")
    assert code == 0 and len(json.loads(out)["results"]) == 2


def test_index_rejects_an_unknown_model(tmp_path: Path) -> None:
    code, _, err = run("index", str(tmp_path), "--library", str(tmp_path / "lib"), "--model", "nope")
    assert code == 2 and "nope: no such checkpoint file" in err


def test_index_embeds_with_the_shipped_default(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    from soundalike.models import load_checkpoint
    from soundalike.models.pretrained import default_checkpoint, model_card

    checkpoint = default_checkpoint()
    assert checkpoint is not None, "the package ships src/soundalike/models/pretrained/default.pt"
    assert checkpoint.stat().st_size <= 20 * 1024 * 1024
    _, payload = load_checkpoint(checkpoint)
    card = model_card()
    assert payload["model_id"] in card and "| default (descriptor+model) |" in card
    _, library, tracks = indexed
    with Library.open(library, create=False) as lib:
        assert payload["model_id"] in lib.models()
        ids, vectors = lib.vectors(payload["model_id"])
    assert len(ids) == 20 and np.isfinite(vectors).all()
    # the default model alone places same-style synthetic tracks together (chance: 4 of 19 neighbours)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    with Library.open(library, create=False) as lib:
        paths = [lib.track(int(i)).path for i in ids]
    styles = [style_of(tracks, p) for p in paths]
    hits = [sum(styles[j] == styles[i] for j in np.argsort(-sims[i])[:4]) / 4 for i in range(len(ids))]
    assert float(np.mean(hits)) >= 0.8, np.mean(hits)  # measured 0.99
