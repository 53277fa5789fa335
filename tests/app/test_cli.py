"""The command line end to end on a small synthetic library: index, similar (every query kind), info."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli
from soundalike import synth
from soundalike.library.catalog import Library


def test_index_turns_an_embedding_failure_into_one_line(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from soundalike.models import ModelError, embedding

    root, library, _ = indexed
    copy = tmp_path / "lib"
    shutil.copytree(library, copy)

    def dies(*_: object, **__: object) -> tuple[str, int]:
        raise ModelError("part.pt: an embedding worker process died (killed); run the command again")

    monkeypatch.setattr(embedding, "embed_library", dies)
    code, out, err = run_cli("index", str(root / "music"), "--library", str(copy))
    assert code == 2 and "error: part.pt: an embedding worker process died" in err and "Traceback" not in err + out
    with Library.open(copy, create=False) as lib:
        assert len(lib.tracks()) == 20  # what was analysed stays


def style_of(tracks: list[synth.SynthTrack], path: str) -> str:
    return next(t.style for t in tracks if t.path.resolve() == Path(path).resolve())


def test_index_prints_a_summary_and_json(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    root, library, _ = indexed
    code, out, _ = run_cli("index", str(root / "music"), "--library", str(library), "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["summary"]["found"] == 20 and payload["summary"]["unchanged"] == 20
    assert payload["library"]["tracks"] == 20


def test_similar_by_id_json_contract(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, tracks = indexed
    code, out, _ = run_cli("similar", "1", "-k", "4", "--library", str(library), "--format", "json")
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
    code, out, _ = run_cli("similar", str(t.path), "--library", str(library), "-f", "json")
    assert code == 0 and json.loads(out)["query"]["title"] == t.title
    code, out, _ = run_cli("similar", f"{t.artist} - {t.title}", "--library", str(library), "-f", "json")
    assert code == 0 and json.loads(out)["query"]["path"] == str(t.path.resolve())


def test_cold_start_file_outside_the_library(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                             tmp_path: Path) -> None:
    _, library, tracks = indexed
    new = tmp_path / "new.flac"
    synth.write_track(new, synth.render_track("chiptune", seed=999, duration=8.0), 22050,
                      artist="Newcomer", album="Unplayed", title="Fresh")
    code, out, _ = run_cli("similar", str(new), "-k", "5", "--library", str(library), "-f", "json")
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
    code, out, _ = run_cli("similar", str(copy), "-k", "19", "--library", str(library), "-f", "json")
    assert code == 0
    paths = [r["path"] for r in json.loads(out)["results"]]
    assert str(original.path.resolve()) not in paths and len(paths) == 19
    # A byte-identical copy inside the library is the same track: querying one never returns the other.
    twin = original.path.with_name("twin.wav")
    shutil.copy(original.path, twin)
    try:
        assert run_cli("index", str(original.path.parent), "--library", str(library))[0] == 0
        code, out, _ = run_cli("similar", str(twin), "-k", "19", "--library", str(library), "-f", "json")
        paths = [r["path"] for r in json.loads(out)["results"]]
        assert code == 0 and str(original.path.resolve()) not in paths and str(twin) not in paths
    finally:
        twin.unlink()
        run_cli("index", str(original.path.parent), "--library", str(library))


@pytest.mark.parametrize("model", ["default", "default~nn4", "descriptor~nn3"])
def test_an_outside_copy_finds_what_its_library_track_finds(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                                            tmp_path: Path, model: str) -> None:
    """Smoothed over the neighbourhood or not, an outside file is expanded as a library track is smoothed: the same
    recording from outside the library gets the same recommendations as the library track."""
    import soundfile as sf

    _, library, tracks = indexed
    original = next(t for t in tracks if t.path.suffix == ".wav")
    copy = tmp_path / "outside copy.flac"
    data, sr = sf.read(original.path, dtype="int16")
    sf.write(copy, data, sr)
    answers = []
    for query in (str(original.path), str(copy)):
        code, out, err = run_cli("similar", query, "-k", "8", "--model", model, "--library", str(library), "-f",
                                 "json")
        assert code == 0, err
        answers.append(json.loads(out))
    assert answers[1]["query"]["in_library"] is False
    assert [r["path"] for r in answers[0]["results"]] == [r["path"] for r in answers[1]["results"]]
    np.testing.assert_allclose([r["score"] for r in answers[0]["results"]],
                               [r["score"] for r in answers[1]["results"]], atol=2e-3)


def test_m3u_and_text_output(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, _ = indexed
    code, out, _ = run_cli("similar", "3", "-k", "3", "--library", str(library), "--format", "m3u")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "#EXTM3U"
    paths = [ln for ln in lines if not ln.startswith("#")]
    assert len(paths) == 3 and all(Path(p).exists() for p in paths)
    assert sum(ln.startswith("#EXTINF:8,") for ln in lines) == 3
    code, out, _ = run_cli("similar", "3", "-k", "3", "--library", str(library))
    assert code == 0 and out.startswith("more like: ") and len(out.splitlines()) == 4
    with Library.open(library) as lib:
        first = lib.tracks([int(out.splitlines()[1].split("(id ")[1].rstrip(")"))])[0]
    assert f"[{first.album}]" in out.splitlines()[1]  # square brackets are text, not terminal markup


def test_unknown_query_fails_with_a_clear_message(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, _ = indexed
    for query, words in [("no such song", "no track matches"), ("9999", "no track with id 9999"),
                         ("/nowhere/x.mp3", "file not found")]:
        code, out, err = run_cli("similar", query, "--library", str(library))
        assert code == 2 and out == "" and words in err


def test_bad_audio_query_names_the_file(indexed: tuple[Path, Path, list[synth.SynthTrack]], tmp_path: Path) -> None:
    _, library, _ = indexed
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio")
    code, _, err = run_cli("similar", str(bad), "--library", str(library))
    assert code == 2 and str(bad) in err and "not an audio file" in err


def test_empty_library_says_what_to_run(tmp_path: Path) -> None:
    code, _, err = run_cli("similar", "1", "--library", str(tmp_path / "none"))
    assert code == 2 and "soundalike index" in err
    Library.open(tmp_path / "empty").close()
    code, _, err = run_cli("similar", "x", "--library", str(tmp_path / "empty"))
    assert code == 2 and "soundalike index" in err


def test_info_and_version(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    _, library, _ = indexed
    code, out, _ = run_cli("info", "--library", str(library))
    assert code == 0 and json.loads(out)["tracks"] == 20
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("soundalike ")


def test_moved_library_folder_is_found_again(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                             tmp_path: Path) -> None:
    root, library, _ = indexed
    moved_lib = tmp_path / "lib-copy"
    shutil.copytree(library, moved_lib)
    code, out, _ = run_cli("similar", "2", "-k", "2", "--library", str(moved_lib), "-f", "json")
    assert code == 0 and len(json.loads(out)["results"]) == 2


def test_index_rejects_an_unknown_model(tmp_path: Path) -> None:
    code, _, err = run_cli("index", str(tmp_path), "--library", str(tmp_path / "lib"), "--model", "nope")
    assert code == 2 and "nope: no such checkpoint file" in err


def test_index_embeds_with_the_shipped_default(indexed: tuple[Path, Path, list[synth.SynthTrack]]) -> None:
    from soundalike.models import load_checkpoint
    from soundalike.models.embedding import resolve_model, stored_key
    from soundalike.models.pretrained import (
        default_checkpoint,
        default_checkpoints,
        default_metrics,
        default_parts,
        model_card,
        shipped_model_ids,
        shipped_part,
    )

    checkpoints = default_checkpoints()
    assert checkpoints and checkpoints[0] == default_checkpoint(), "the package ships the default's models"
    assert len(checkpoints) == len(default_parts()) - 1  # every model part of default.json is in the package
    card = model_card()
    _, library, tracks = indexed
    for checkpoint in checkpoints:
        assert checkpoint.stat().st_size <= 20 * 1024 * 1024
        _, payload = load_checkpoint(checkpoint)
        assert shipped_model_ids()[checkpoint.name] == payload["model_id"]  # default.json names it rightly
        assert shipped_part(checkpoint) == {"model_id": payload["model_id"], "model": payload["model"],
                                            "input": stored_key(payload)}  # what a scan's workers go by
        with Library.open(library, create=False) as lib:
            assert payload["model_id"] in lib.models()
            ids, vectors = lib.vectors(payload["model_id"])
            paths = [lib.track(int(i)).path for i in ids]  # type: ignore[union-attr]
        assert len(ids) == 20 and np.isfinite(vectors).all()
        # each model alone places same-style synthetic tracks together (chance: 4 of 19 neighbours)
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        sims = unit @ unit.T
        np.fill_diagonal(sims, -np.inf)
        styles = [style_of(tracks, p) for p in paths]
        hits = [sum(styles[j] == styles[i] for j in np.argsort(-sims[i])[:4]) / 4 for i in range(len(ids))]
        assert float(np.mean(hits)) >= 0.8, (checkpoint.name, np.mean(hits))  # measured 1.0 and 1.0
    with Library.open(library, create=False) as lib:  # `--model default` searches every part, weighted
        key = resolve_model(lib, "default")
    assert [float(part.split("@")[1]) for part in key.split("+")] == [w for _, w in default_parts()]
    assert all(part.split("@")[0].split("#")[0] in card for part in key.split("+")[1:])  # the card names every model
    assert all(metric in card for metric in default_metrics().values())  # and every metric


def test_a_query_of_a_library_track_does_not_load_pytorch(indexed: tuple[Path, Path, list[synth.SynthTrack]]
                                                          ) -> None:
    """`similar` of an indexed track resolves ``default`` (every part of it) and searches without a model, so
    without importing PyTorch (1.5 of the 2.4 s such a command took)."""
    import subprocess
    import sys

    _, library, _ = indexed
    with Library.open(library, create=False) as lib:
        track = lib.tracks()[0].id
    code = ("import json, sys; from soundalike.app.cli import main; "
            f"sys.argv = ['soundalike', 'similar', '{track}', '--library', {str(library)!r}, '-k', '3', "
            "'--format', 'json']\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('torch imported:', 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer, flag = done.stdout.rsplit("torch imported:", 1)
    assert flag.strip() == "False"
    results = json.loads(answer)
    assert len(results["results"]) == 3 and "+" in results["model"]  # the fused default, not the descriptors


def test_index_with_nothing_new_does_not_load_pytorch(tmp_path: Path) -> None:
    """A second `index` of the same folder finds every track embedded by the default's parts and loads neither a
    model nor PyTorch (~1.2 CPU-s of a command that has nothing to do)."""
    import subprocess
    import sys

    from soundalike.models.pretrained import shipped_model_ids

    music = tmp_path / "music"
    for i, style in enumerate(["techno", "ambient", "chiptune"]):
        synth.write_track(music / f"t{i}.wav", synth.render_track(style, 70 + i, 8.0), 22050, artist="a",
                          album=style, title=f"t{i}")
    code = ("import sys; from soundalike.app.cli import main; "
            f"sys.argv = ['soundalike', 'index', {str(music)!r}, '--library', {str(tmp_path / 'lib')!r}, '-j', '1']\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('torch imported:', 'torch' in sys.modules)")
    for count, torch_imported in ((3, "True"), (0, "False")):  # everything new, then nothing
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.rsplit("torch imported:", 1)[1].strip() == torch_imported
        for model_id in shipped_model_ids().values():
            assert f"embedded {count} tracks with {model_id}" in done.stdout


def test_train_takes_typed_hyper_parameters(indexed: tuple[Path, Path, list[synth.SynthTrack]],
                                            tmp_path: Path) -> None:
    _, library, _ = indexed
    out_file = tmp_path / "c.pt"
    code, _, err = run_cli("train", "contrastive", "--library", str(library), "--epochs", "1", "--out",
                           str(out_file), "--no-embed", "--workers", "1", "--set", "positives=album",
                           "--set", "pitch-shift=2", "--set", "channels=8,8,16,16", "--set", "mix=0.5")
    assert code == 0, err
    from soundalike.models.checkpoint import read_checkpoint

    config = read_checkpoint(out_file)["config"]
    assert (config["positives"], config["pitch_shift"], list(config["channels"]), config["mix"]) == \
        ("album", 2, [8, 8, 16, 16], 0.5)
    code, _, err = run_cli("train", "contrastive", "--library", str(library), "--set", "pitch_shift=big")
    assert code != 0 and "pitch_shift takes an integer" in err
    code, out, _ = run_cli("models", "--settings", "contrastive")
    assert code == 0 and "time_stretch" in out
