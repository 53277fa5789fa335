"""The ``soundalike`` command line: a thin shell over the library's functions."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from soundalike import __version__
from soundalike.library.catalog import CatalogError, Library, default_library_dir

if TYPE_CHECKING:
    from soundalike.recommend import Filters

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Content-based music recommendation: index a music library and find what sounds alike.")
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)

LibraryOption = typer.Option(None, "--library", "-L", envvar="SOUNDALIKE_LIBRARY",
                             help="Library folder (catalogue + features). Default: ~/.local/share/soundalike.")


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    m3u = "m3u"


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class ExportFormat(str, Enum):
    npz = "npz"
    parquet = "parquet"
    csv = "csv"


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", markup=True)
    return typer.Exit(code)


def _open(library: Path | None, create: bool = False) -> Library:
    try:
        return Library.open(library or default_library_dir(), create=create)
    except CatalogError as exc:
        raise _fail(str(exc)) from None


@app.command()
def index(
    paths: list[Path] = typer.Argument(..., help="Music files or folders to scan (recursively)."),
    library: Path | None = LibraryOption,
    jobs: int = typer.Option(0, "--jobs", "-j", help="Worker processes for the analysis, and for embedding from "
                                                     "200 tracks on (0 = one per core)."),
    model: str = typer.Option("default", "--model",
                              help="Embedding besides the descriptors (always computed): 'default' (the shipped "
                                   "pretrained model), 'descriptor' (nothing more), 'musicnn' / 'musicnn-mtt' "
                                   "(musicnn pretrained on the Million Song Dataset / MagnaTagATune), a checkpoint "
                                   "file, or the name/id of a model trained on this library."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Analyse again files that failed before."),
    prune: bool = typer.Option(False, "--prune", help="Also remove every known file under PATHS that is gone, even "
                                                      "where a folder could not be read or is empty (says how many "
                                                      "first)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="When another soundalike is writing this library: "
                                                            "wait for it (default), or stop at once."),
    json_out: bool = typer.Option(False, "--json", help="Print the scan summary as JSON."),
    engine: Engine = typer.Option(Engine.local, "--engine",
                                  help="Where files are analysed: 'local' (worker processes here) or 'ray' (a Ray "
                                       "cluster; needs pip install 'soundalike\\[ray]'). --jobs caps Ray's workers."),
    ray_address: str | None = typer.Option(None, "--ray-address",
                                           help="With --engine ray: 'auto' (the cluster this machine is in) or "
                                                "HOST:PORT. Default: $RAY_ADDRESS, else Ray started on this machine."),
    shared_dir: str | None = typer.Option(None, "--shared-dir",
                                          help="With --engine ray: folder every node can write (NFS path or a "
                                               "pyarrow URI such as s3://bucket/dir) for the result shards. "
                                               "Default: the library folder."),
    analyse_seconds: float | None = typer.Option(
        None, "--analyse-seconds", metavar="SECONDS",
        help="How much of each track to analyse, in evenly spread excerpts of ~15 s: 105 by default (within 1 % "
             "of whole tracks on the validation albums, docs/performance.md); 0 = whole tracks (up to 10 min). "
             "Set when a library is first indexed; libraries from before it analyse whole tracks."),
) -> None:
    """Scan, analyse and embed music; resumable, incremental (only new or changed files are analysed).

    Files that are gone leave the library only when their folder was read and is not empty: an unmounted disk or
    share removes nothing (see `soundalike prune`). With --engine ray the same analysis runs on a Ray cluster."""
    import os

    from soundalike.audio.decode import display_path
    from soundalike.library.scan import ScanProblem, WorkerStartError, scan
    from soundalike.models import ModelError
    from soundalike.models.embedding import checkpoint_presets, embed_library

    from .progress import progress_bar

    n_jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
    from soundalike.audio.analysis import Window

    try:
        window = Window.of_seconds(analyse_seconds) if analyse_seconds is not None else None
    except ValueError as exc:
        raise _fail(f"--analyse-seconds: {exc}") from None
    runner = None
    fatal: tuple[type[Exception], ...] = (CatalogError, WorkerStartError, ModelError)
    if engine is Engine.ray:
        from soundalike.integrations.ray_engine import RayEngineError, check_reachable, require_ray

        fatal += (RayEngineError,)  # one line: Ray missing, cluster unreachable, shared directory unusable
        try:
            require_ray()
            check_reachable(ray_address or os.environ.get("RAY_ADDRESS") or "")
        except RayEngineError as exc:
            raise _fail(str(exc)) from None
    elif ray_address is not None or shared_dir is not None:
        raise _fail("--ray-address and --shared-dir go with --engine ray")
    checkpoints = _checkpoints_for(model, library)
    lib = _open(library, create=True)
    if engine is Engine.ray:
        from soundalike.integrations.ray_engine import RayRunner, RaySettings

        runner = RayRunner(RaySettings(shared_dir=shared_dir or str(lib.root), address=ray_address,
                                       workers=jobs, checkpoints=checkpoints,
                                       on_note=err.print))
        try:
            runner.check_shared_dir(lib)
        except RayEngineError as exc:
            lib.close()
            raise _fail(str(exc)) from None

    def on_problem(p: ScanProblem) -> None:
        err.print(f"[yellow]skip[/yellow] {escape(p.line())}", markup=True)

    embedded = []
    try:
        with lib.writing(wait=wait, on_wait=err.print), progress_bar("analysing", console=err) as on_progress:
            summary = scan(lib, list(paths), jobs=n_jobs, on_problem=on_problem, on_progress=on_progress,
                           retry_errors=retry_errors, presets=checkpoint_presets(*checkpoints), runner=runner,
                           window=window)
            if prune:
                from soundalike.library.prune import plan_prune
                from soundalike.library.prune import prune as remove_gone

                plan = plan_prune(lib, list(paths))
                if plan.files:
                    err.print(f"removing: {plan.describe()}")
                    summary.removed += remove_gone(lib, plan)
                    summary.missing_kept = 0
        for checkpoint in checkpoints:
            with progress_bar("embedding", unit="tracks", console=err) as on_embed:
                model_id, count = embed_library(lib, checkpoint, on_progress=on_embed, jobs=n_jobs)
            embedded.append({"model_id": model_id, "tracks": count})
    except KeyboardInterrupt:
        lib.close()
        err.print("interrupted: everything analysed so far is kept; run the same command again to resume")
        raise typer.Exit(130) from None
    except fatal as exc:  # one line: a catalogue, worker, Ray or model (embedding worker) problem
        lib.close()
        raise _fail(str(exc)) from None
    stats = lib.stats()
    lib.close()
    if embedded:
        stats["embedded"] = embedded
    if json_out:
        out.print_json(json.dumps({"summary": summary.to_dict(), "library": stats}))
        return
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(summary.errors_by_kind.items()))
    out.print(f"scanned {summary.found} audio files in {summary.seconds:.1f} s: {summary.analysed} analysed, "
              f"{summary.linked} duplicates/moved, {summary.unchanged} unchanged, {summary.refreshed_text}"
              f"{summary.removed} removed, "
              f"{len(summary.problems)} errors{f' ({kinds})' if kinds else ''}"
              f"{f', {summary.known_bad} known bad skipped' if summary.known_bad else ''}")
    if summary.missing_kept:
        out.print(f"kept {summary.missing_kept} known files that were not found where a folder could not be read, "
                  "was gone or was empty (an unmounted disk?); `soundalike prune` removes what is really gone")
    out.print(f"library {display_path(str(stats['library']))}: {stats['tracks']} tracks, {stats['hours']} h")
    for done in embedded:
        out.print(f"embedded {done['tracks']} tracks with {done['model_id']}")


@app.command(name="prune")
def prune_(
    paths: list[Path] = typer.Argument(None, help="Only files under these folders (default: the whole library)."),
    library: Path | None = LibraryOption,
    yes: bool = typer.Option(False, "--yes", "-y", help="Remove without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
) -> None:
    """Remove from the library the indexed files that no longer exist (says how many, and asks, first)."""
    from soundalike.library.prune import plan_prune, prune

    lib = _open(library)
    try:
        plan = plan_prune(lib, list(paths or []))
        if not plan.files:
            out.print("nothing to prune: every indexed file is there")
            return
        out.print(plan.describe())
        if dry_run:
            return
        if not yes:
            if not sys.stdin.isatty():
                raise _fail("not removing anything without confirmation: run again with --yes")
            if not typer.confirm("remove them from the library?", default=False):
                raise typer.Exit(1)
        removed = prune(lib, plan)
        out.print(f"removed {removed} files; {lib.stats()['tracks']} tracks left")
    except CatalogError as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()


def _checkpoints_for(model: str, library: Path | None) -> list[Path]:
    """The checkpoints ``--model`` names (:func:`~soundalike.models.embedding.checkpoints_for`; the beets plugin
    resolves its ``model`` with the same function); checked now so a bad one fails before the scan starts."""
    from soundalike.models import ModelError
    from soundalike.models.embedding import checkpoints_for

    try:
        return checkpoints_for(model, library)
    except ModelError as exc:
        raise _fail(str(exc)) from None


def _checkpoint_for(model: str, library: Path | None) -> Path:
    """The one checkpoint ``--model`` names (the default's first part for ``default``)."""
    found = _checkpoints_for(model, library)
    if not found:
        raise _fail(f"{model}: not a trained model (it has no checkpoint)")
    return found[0]


@app.command()
def train(
    name: str = typer.Argument(..., help="Model family: melae, clothier, stollery, descriptor-ae, cf-regression, "
                                         "contrastive, student (see `soundalike models`; musicnn is pretrained)."),
    library: Path | None = LibraryOption,
    out_file: Path | None = typer.Option(None, "--out", "-o", help="Checkpoint to write (default: NAME.pt)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Epochs (default: the paper's)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Batch size (default: the paper's)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default 0)."),
    device: str = typer.Option("cpu", "--device", help="torch device: cpu, cuda, cuda:1, mps..."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run whose state is in OUT's .last.pt."),
    embed: bool = typer.Option(True, "--embed/--no-embed", help="Embed the library with the best checkpoint."),
    interactions: Path | None = typer.Option(None, "--interactions",
                                             help="cf-regression: listening data (MPD JSON, M3U folder or CSV)."),
    features_csv: Path | None = typer.Option(None, "--features-csv",
                                             help="descriptor-ae: per-track features CSV instead of descriptors."),
    track_map: Path | None = typer.Option(None, "--track-map",
                                          help="cf-regression with MPD JSON: CSV of track_uri,path."),
    settings: list[str] = typer.Option([], "--set", metavar="KEY=VALUE",
                                       help="A hyper-parameter of the family (repeatable), e.g. --set positives=album "
                                            "--set pitch_shift=2; `soundalike models --settings NAME` lists them."),
    workers: int | None = typer.Option(None, "--workers", min=0,
                                       help="Processes drawing batches beside training (default 1 on 2+ cores)."),
) -> None:
    """Train a model on the library's cached spectrograms; keeps the best checkpoint, a loss curve and plots."""
    from soundalike.models import ModelError
    from soundalike.models.embedding import embed_library
    from soundalike.models.training import train as run_training

    from .progress import progress_bar

    try:
        overrides = _settings(name, settings)
    except ModelError as exc:
        raise _fail(str(exc)) from None
    lib = _open(library)
    target = out_file or Path(f"{name}.pt")
    options = {k: v for k, v in {"interactions": interactions, "features_csv": features_csv,
                                 "track_map": track_map}.items() if v}
    try:
        with progress_bar(f"training {name}", unit="steps", console=err) as bar:
            def on_progress(stage: str, done: int, total: int, info: dict[str, float]) -> None:
                if stage == "train":
                    bar(stage, done, total)
                else:
                    val = info.get("val_loss", float("nan"))
                    err.print(f"epoch {done}/{total}: train loss {info['train_loss']:.5f}, "
                              f"validation loss {val:.5f}")

            result = run_training(lib, name, target, epochs=epochs, batch_size=batch_size, seed=seed,
                                  device=device, resume=resume, on_progress=on_progress, options=options,
                                  workers=workers, **overrides)
        out.print(f"best checkpoint: {result.checkpoint} ({result.model_id}), {result.epochs_run} epochs in "
                  f"{result.seconds:.0f} s; plots: {', '.join(str(p) for p in result.plots)}")
        if embed:
            with progress_bar("embedding", unit="tracks", console=err) as on_embed:
                model_id, count = embed_library(lib, result.checkpoint, device=device, on_progress=on_embed)
            out.print(f"embedded {count} tracks as {model_id}: `soundalike similar QUERY --model {name}`")
    except (ModelError, CatalogError) as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()


def _settings(name: str, pairs: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as typed config overrides of family ``name`` (the type of the default)."""
    import dataclasses

    from soundalike.models import ModelError, model_class

    defaults = model_class(name).config_cls()
    # epochs, batch size and seed have options of their own
    keys = [f.name for f in dataclasses.fields(defaults) if f.name not in ("epochs", "batch_size", "seed")]
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in keys:
            raise ModelError(f"--set {pair}: {name} settings are KEY=VALUE with KEY one of {', '.join(keys)}")
        default = getattr(defaults, key)
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                values[key] = text.lower() in ("true", "1", "yes")
            elif isinstance(default, tuple):
                values[key] = tuple(int(v) for v in text.split(","))
            else:
                values[key] = type(default)(text)
        except ValueError:
            kinds = {"int": "an integer", "float": "a number", "bool": "true or false", "tuple": "integers a,b,..."}
            raise ModelError(f"--set {pair}: {key} takes {kinds.get(type(default).__name__, 'a word')} "
                             f"(default {default!r})") from None
    return values


@app.command()
def models(settings: str | None = typer.Option(None, "--settings", metavar="NAME",
                                               help="List one family's hyper-parameters and their defaults.")) -> None:
    """List the model families with their seed paper and mel preset, then the learned metrics a search key may name
    after a part (``descriptor#rca-…``)."""
    import dataclasses

    from soundalike.models import ModelError, model_class, model_names
    from soundalike.search.metric import known_metrics, load_metric

    if settings is not None:
        try:
            config = model_class(settings).config_cls()
        except ModelError as exc:
            raise _fail(str(exc)) from None
        for f in dataclasses.fields(config):
            out.print(f"{f.name:22s} {getattr(config, f.name)!r}")
        return
    for name in model_names():
        cls = model_class(name)
        out.print(f"{name:15s} preset {cls.preset_name:9s} {cls.source}")
    for name in known_metrics():
        metric = load_metric(name)
        out.print(f"{name:15s} metric of {metric.model} ({metric.info.get('kind', 'rca')}, "
                  f"{metric.info.get('albums', '?')} train albums): search it as {metric.model}#{name}")


def _filters(no_same_artist: bool, no_same_album: bool, max_per_artist: int | None, max_per_album: int | None,
             keep_duplicates: bool) -> Filters:
    from soundalike.recommend import Filters

    return Filters.from_options(no_same_artist, no_same_album, max_per_artist, max_per_album, keep_duplicates)


NoSameArtist = typer.Option(False, "--no-same-artist", help="No track by the query's (or playlist's) artists.")
NoSameAlbum = typer.Option(False, "--no-same-album", help="No track from the query's (or playlist's) albums.")
MaxPerArtist = typer.Option(None, "--max-per-artist", min=1, help="At most N results by one artist.")
MaxPerAlbum = typer.Option(None, "--max-per-album", min=1, help="At most N results from one album.")
KeepDuplicates = typer.Option(False, "--keep-duplicates",
                              help="Also list other versions of one recording (same artist and title).")
ModelOption = typer.Option("default", "--model", help="Embedding to search: default, descriptor, a family name, a "
                                                      "model id, a fused key (descriptor+melae) or a checkpoint file; "
                                                      "a part may name a learned metric after # "
                                                      "(descriptor#rca-3c9442fb); ~nnK at the end averages each "
                                                      "track with its nearest (K tracks, itself included: "
                                                      "default~nn5).")
FormatOption = typer.Option(OutputFormat.text, "--format", "-f", help="text, json or m3u.")


def _print_results(fmt: OutputFormat, head: dict[str, object], heading: str, results: list, title: str,
                   model: str, notes: list[str]) -> None:
    """Results as text, JSON or M3U on stdout; notes (fallbacks, left-out candidates) also on stderr."""
    from soundalike.recommend.playlists import to_m3u

    for note in notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}", markup=True)
    if fmt is OutputFormat.json:
        payload = {**head, "model": model, "notes": notes, "results": [r.to_dict() for r in results]}
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    elif fmt is OutputFormat.m3u:
        sys.stdout.write(to_m3u([r.track for r in results], title=title))
    else:
        out.print(heading)
        for rank, r in enumerate(results, 1):
            out.print(f"{rank:3d}. {r.score:6.3f}  {r.track.label}  [{r.track.album}]  (id {r.track.id})")


@app.command()
def similar(
    query: str = typer.Argument(..., help="Track id, path of an indexed file, 'artist - title', or any audio file."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="How many tracks."),
    library: Path | None = LibraryOption,
    model: str = ModelOption,
    fmt: OutputFormat = FormatOption,
    distance: str = typer.Option("cosine", "--distance",
                                 help="cosine (pooled vectors), or re-rank the nearest candidates by a distance "
                                      "between segment sequences: mean, minpoint, frechet, dtw (seed 002)."),
    candidates: int = typer.Option(200, "--candidates", min=1, help="How many candidates a sequence distance "
                                                                     "re-ranks."),
    no_same_artist: bool = NoSameArtist,
    no_same_album: bool = NoSameAlbum,
    max_per_artist: int | None = MaxPerArtist,
    max_per_album: int | None = MaxPerAlbum,
    keep_duplicates: bool = KeepDuplicates,
) -> None:
    """Tracks that sound like QUERY (never the query itself or its duplicates)."""
    from soundalike.recommend import QueryError
    from soundalike.recommend import similar as find_similar

    lib = _open(library)
    try:
        query_info, results = find_similar(lib, query, k, model=model, distance=distance, candidates=candidates,
                                           filters=_filters(no_same_artist, no_same_album, max_per_artist,
                                                            max_per_album, keep_duplicates))
    except (QueryError, CatalogError) as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    head = query_info.track.label if query_info.track else query_info.path
    _print_results(fmt, {"query": query_info.to_dict()}, f"more like: {head}", results, f"like {query}",
                   query_info.model, query_info.notes)


@app.command(name="continue")
def continue_(
    playlist: Path = typer.Argument(..., help="An M3U/M3U8 playlist, or a JSON list of track ids, paths or "
                                              "'artist - title' texts."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="How many tracks to add."),
    score: str = typer.Option("max", "--score", help="max, mean, topk (mean of the 3 best) or cluster (the "
                                                     "playlist's largest cluster) — seed 000 eq. 1."),
    library: Path | None = LibraryOption,
    model: str = ModelOption,
    fmt: OutputFormat = FormatOption,
    no_same_artist: bool = NoSameArtist,
    no_same_album: bool = NoSameAlbum,
    max_per_artist: int | None = MaxPerArtist,
    max_per_album: int | None = MaxPerAlbum,
    keep_duplicates: bool = KeepDuplicates,
) -> None:
    """Tracks that continue PLAYLIST (never its own tracks or their duplicates); outside files are analysed."""
    from soundalike.recommend import QueryError, continue_playlist

    lib = _open(library)
    try:
        pq, results = continue_playlist(lib, playlist, k, score=score, model=model, filters=_filters(
            no_same_artist, no_same_album, max_per_artist, max_per_album, keep_duplicates))
    except (QueryError, CatalogError) as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    for line in pq.skipped:
        err.print(f"[yellow]skip[/yellow] {escape(line)}", markup=True)
    _print_results(fmt, {"playlist": pq.to_dict()}, f"continuing {playlist} ({len(pq.queries)} tracks, score {score}):",
                   results, f"continuing {playlist.name}", pq.model, pq.notes)


@app.command()
def path(
    start: str = typer.Argument(..., help="First track: id, indexed path or 'artist - title'."),
    end: str = typer.Argument(..., help="Last track."),
    n: int = typer.Option(10, "-n", min=2, help="Tracks in the path, both ends included."),
    library: Path | None = LibraryOption,
    model: str = ModelOption,
    fmt: OutputFormat = FormatOption,
    no_same_artist: bool = NoSameArtist,
    no_same_album: bool = NoSameAlbum,
    max_per_artist: int | None = MaxPerArtist,
    max_per_album: int | None = MaxPerAlbum,
    keep_duplicates: bool = KeepDuplicates,
) -> None:
    """A smooth sequence of N distinct tracks leading from START to END."""
    from soundalike.recommend import QueryError, path_between

    lib = _open(library)
    try:
        a, b, results = path_between(lib, start, end, n, model=model, filters=_filters(
            no_same_artist, no_same_album, max_per_artist, max_per_album, keep_duplicates))
    except (QueryError, CatalogError) as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    assert a.track is not None and b.track is not None
    _print_results(fmt, {"start": a.to_dict(), "end": b.to_dict()},
                   f"from {a.track.label} to {b.track.label}:", results, f"{a.track.label} to {b.track.label}",
                   a.model, a.notes)


mpd_app = typer.Typer(no_args_is_help=True, help="MPD companion: queue and stored playlists filled with what sounds "
                                                "alike (needs `pip install 'soundalike\\[mpd]'`). MPD is found as "
                                                "every MPD client finds it: MPD_HOST (\\[password@]host or a socket "
                                                "path) and MPD_PORT, else localhost:6600.")
app.add_typer(mpd_app, name="mpd")

MpdHostOption = typer.Option(None, "--host", help="MPD host, \\[password@]host, or socket path (default: MPD_HOST, "
                                                  "else localhost).")
MpdPortOption = typer.Option(None, "--port", help="MPD port (default: MPD_PORT, else 6600).")
MusicDirOption = typer.Option(None, "--music-dir", help="MPD's music directory as this machine sees it (its song "
                                                        "paths are relative to it). Default: what MPD says over a "
                                                        "local socket, else found from the queued songs.")


def _mpd_session(host: str | None, port: int | None, library: Path | None) -> tuple[Any, Any, Library]:
    """``(address, client, library)`` for an mpd command, or a one-line failure."""
    from soundalike.integrations import MissingExtraError
    from soundalike.integrations.mpd import MpdError, connect, mpd_address

    try:
        address = mpd_address(host, port)
        client = connect(address)
    except (MpdError, MissingExtraError) as exc:
        raise _fail(str(exc)) from None
    return address, client, _open(library)


def _print_added(added: Any, verb: str) -> None:
    for note in added.notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}", markup=True)
    for track in added.tracks:
        out.print(f"{verb} {track.label}  [{track.album}]  (id {track.id})")


@mpd_app.command(name="queue")
def mpd_queue(
    k: int = typer.Option(5, "-k", "--k", min=1, help="How many tracks to append."),
    host: str | None = MpdHostOption,
    port: int | None = MpdPortOption,
    music_dir: Path | None = MusicDirOption,
    library: Path | None = LibraryOption,
    model: str = ModelOption,
    no_same_artist: bool = NoSameArtist,
    no_same_album: bool = NoSameAlbum,
    max_per_artist: int | None = MaxPerArtist,
    max_per_album: int | None = MaxPerAlbum,
    keep_duplicates: bool = KeepDuplicates,
) -> None:
    """Append to MPD's queue the K tracks most like the current song (none already queued)."""
    from soundalike.integrations.mpd import Companion, MpdError, close, refusals

    address, client, lib = _mpd_session(host, port, library)
    try:
        companion = Companion(client, lib, address, music_dir=music_dir, model=model, filters=_filters(
            no_same_artist, no_same_album, max_per_artist, max_per_album, keep_duplicates))
        with refusals(address):
            added = companion.queue_similar(k)
    except (MpdError, CatalogError) as exc:
        raise _fail(str(exc)) from None
    finally:
        close(client)
        lib.close()
    _print_added(added, "queued")


@mpd_app.command(name="continue")
def mpd_continue(
    keep: int = typer.Option(5, "--keep", min=1, help="Keep at least this many songs queued after the current one."),
    history: int = typer.Option(5, "--history", min=1, help="How many of the queue's last songs are continued."),
    window: int = typer.Option(50, "--window", min=1, help="No track comes back within this many songs."),
    score: str = typer.Option("max", "--score", help="max, mean, topk or cluster (as `soundalike continue`)."),
    once: bool = typer.Option(False, "--once", help="Top the queue up once and exit (for cron or scripts)."),
    host: str | None = MpdHostOption,
    port: int | None = MpdPortOption,
    music_dir: Path | None = MusicDirOption,
    library: Path | None = LibraryOption,
    model: str = ModelOption,
    no_same_artist: bool = NoSameArtist,
    no_same_album: bool = NoSameAlbum,
    max_per_artist: int | None = MaxPerArtist,
    max_per_album: int | None = MaxPerAlbum,
    keep_duplicates: bool = KeepDuplicates,
) -> None:
    """Keep MPD's queue going with tracks that continue its last songs (a daemon; Ctrl+C stops it).

    Whenever fewer than KEEP songs follow the current one, appends the tracks that best continue the queue's last
    HISTORY songs (as `soundalike continue` with the same filters), none played or queued within WINDOW songs.
    Reconnects when MPD restarts; --once tops up once and exits."""
    import signal

    from soundalike.integrations import MissingExtraError
    from soundalike.integrations.mpd import MpdError, keep_queued, mpd_address
    from soundalike.recommend.scoring import ScoreError, score_method

    try:
        score_method(score)
        address = mpd_address(host, port)
    except (ScoreError, MpdError) as exc:
        raise _fail(str(exc)) from None
    lib = _open(library)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl+C, and SIGINT/SIGTERM from a service manager or a script (a shell starts background jobs with SIGINT
    # ignored), stop it cleanly.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        total = keep_queued(address, lib, keep, history=history, window=window, score=score, model=model,
                            filters=_filters(no_same_artist, no_same_album, max_per_artist, max_per_album,
                                             keep_duplicates), music_dir=music_dir, once=once,
                            on_added=lambda added: _print_added(added, "queued"), on_event=err.print)
    except KeyboardInterrupt:
        err.print("stopped")
        return
    except (MpdError, MissingExtraError, CatalogError) as exc:
        raise _fail(str(exc)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lib.close()
    if once:
        err.print(f"queued {total} tracks")


@mpd_app.command(name="playlist")
def mpd_playlist(
    name: str = typer.Argument(..., help="Name of the MPD stored playlist to write."),
    song: str = typer.Option(..., "--from", help="First song: an MPD song path, a track id, an indexed path, "
                                                 "'artist - title', or any audio file."),
    n: int = typer.Option(20, "-n", min=1, help="Songs in the playlist, the first included."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite a stored playlist of that name."),
    host: str | None = MpdHostOption,
    port: int | None = MpdPortOption,
    music_dir: Path | None = MusicDirOption,
    library: Path | None = LibraryOption,
    model: str = ModelOption,
    no_same_artist: bool = NoSameArtist,
    no_same_album: bool = NoSameAlbum,
    max_per_artist: int | None = MaxPerArtist,
    max_per_album: int | None = MaxPerAlbum,
    keep_duplicates: bool = KeepDuplicates,
) -> None:
    """Save an MPD stored playlist NAME: SONG and the tracks most like it, N songs in all."""
    from soundalike.integrations.mpd import Companion, MpdError, close, refusals

    address, client, lib = _mpd_session(host, port, library)
    try:
        companion = Companion(client, lib, address, music_dir=music_dir, model=model, filters=_filters(
            no_same_artist, no_same_album, max_per_artist, max_per_album, keep_duplicates))
        with refusals(address):
            added = companion.save_playlist(name, song, n, replace=replace)
    except (MpdError, CatalogError) as exc:
        raise _fail(str(exc)) from None
    finally:
        close(client)
        lib.close()
    _print_added(added, "saved")
    out.print(f"stored playlist {name!r} on MPD at {address}: {len(added.tracks)} songs")


@app.command()
def evaluate(
    library: Path | None = LibraryOption,
    models: list[str] | None = typer.Option(None, "--model", "-m",
                                            help="Embedding to evaluate (repeat). Default: every one the library "
                                                 "holds, plus spfy10 (seed 000's 10-feature baseline)."),
    playlists: str = typer.Option("album", "--playlists",
                                  help="album or artist (playlists derived from tags), an MPD JSON slice or folder, "
                                       "a folder of M3U files, or a CSV of list,track rows."),
    track_map: Path | None = typer.Option(None, "--track-map", help="MPD: CSV of track_uri,path."),
    scores: str = typer.Option("max,mean,topk,cluster", "--scores", help="Score methods, comma-separated."),
    top_n: str = typer.Option("5,10", "--top-n", help="List lengths N, comma-separated."),
    holdout: float = typer.Option(0.5, "--holdout", min=0.05, max=0.95, help="Fraction of each playlist held out."),
    min_length: int = typer.Option(10, "--min-length", min=2, help="Shortest playlist evaluated."),
    retrieval: str = typer.Option("album", "--retrieval", help="Same-label retrieval by album, artist, or none."),
    seed: int = typer.Option(0, "--seed"),
    out_dir: Path = typer.Option(Path("soundalike-eval"), "--out", "-o", help="Folder for report.json/.md and PNGs."),
) -> None:
    """Compare embeddings: seed 000's playlist continuation (MAP, nDCG, R-precision, coverage, novelty; baselines
    most-popular and random) and same-album retrieval; writes a JSON + Markdown report with charts."""
    from soundalike.evaluation import EvaluationError
    from soundalike.evaluation.report import run_evaluation

    from .progress import progress_bar

    lib = _open(library)
    try:
        with progress_bar("evaluating", unit="playlists", console=err) as bar:
            payload = run_evaluation(
                lib, out_dir, models=models or None, playlists=playlists, track_map=str(track_map) if track_map
                else None, scores=[x.strip() for x in scores.split(",") if x.strip()],
                top_n=[int(x) for x in top_n.split(",") if x.strip()], holdout_fraction=holdout,
                min_length=min_length, seed=seed, retrieval_by=None if retrieval == "none" else retrieval,
                on_progress=lambda done, total: bar("evaluate", done, total))
    except (EvaluationError, CatalogError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    skipped = payload.get("continuation", {}).get("skipped")
    if skipped:
        err.print(f"[yellow]playlist continuation skipped:[/yellow] {escape(skipped)}", markup=True)
    out.print((out_dir / "report.md").read_text())
    out.print(f"report: {out_dir / 'report.md'}, {out_dir / 'report.json'}")


@app.command(name="map")
def map_(
    out_file: Path = typer.Option(Path("library-map.png"), "--out", "-o", help="PNG to write."),
    library: Path | None = LibraryOption,
    model: str = ModelOption,
    method: str = typer.Option("tsne", "--method", help="tsne or pca."),
    by: str = typer.Option("album", "--by", help="Colour by album or artist (the 19 largest; the rest grey)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """A 2-D map of the whole library (seed 002 fig. 3.7): one point per track, coloured by album or artist."""
    from collections import Counter

    from soundalike.plots.figures import library_map
    from soundalike.recommend import QueryError, load_index

    if method not in ("tsne", "pca") or by not in ("album", "artist"):
        raise _fail("--method is tsne or pca, --by is album or artist")
    lib = _open(library)
    try:
        index = load_index(lib, model)
        tracks = {t.id: t for t in lib.tracks(index.ids.tolist())}
    except (QueryError, CatalogError) as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    if len(index) < 3:
        raise _fail(f"a map needs at least 3 tracks; the library has {len(index)}")
    labels = [getattr(tracks[int(i)], by) or "(untagged)" for i in index.ids]
    top = {name for name, _ in Counter(labels).most_common(19)}
    labels = [name if name in top else "other" for name in labels]
    library_map(index.vectors, labels, out_file, method=method, seed=seed,
                title=f"{len(index)} tracks, {index.embedding.model} ({method.upper()}), by {by}")
    out.print(f"wrote {out_file}")


@app.command()
def inspect(
    model: str = typer.Argument(..., help="A convolutional model: family name or id trained on this library, or a "
                                          "checkpoint file."),
    library: Path | None = LibraryOption,
    out_dir: Path = typer.Option(Path("soundalike-inspect"), "--out", "-o", help="Folder for PNGs and playlists."),
    units: str = typer.Option("auto", "--units", help="Units to build playlists for (comma-separated), or auto: "
                                                      "the 4 units that vary most across tracks."),
    mode: str = typer.Option("max", "--mode", help="max or mean activation of first-layer filters over time (seed "
                                                   "004 §6.1, §6.2), or embedding (a dimension of the track vector)."),
    k: int = typer.Option(10, "-k", min=1, help="Tracks per playlist."),
    tracks: int = typer.Option(8, "--tracks", min=2, help="Tracks in the segment t-SNE (seed 000 fig. 2)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Look inside a model: first-layer filters, segment embeddings of a few tracks, max-activation playlists."""
    import numpy as np

    from soundalike.models import ModelError, load_checkpoint
    from soundalike.models.introspect import activation_table, first_layer_filters
    from soundalike.plots.figures import filters_image, segment_map
    from soundalike.recommend.playlists import to_m3u

    from .progress import progress_bar

    checkpoint = _checkpoint_for(model, library)
    lib = _open(library)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        net, payload = load_checkpoint(checkpoint)
        written = [filters_image(first_layer_filters(net), out_dir / "filters.png",
                                 title=f"{payload['model_id']}: first-layer filters")]
        from soundalike.models.embedding import trackable_ids

        ids = trackable_ids(lib, net)
        picks = sorted(np.random.default_rng(seed).choice(ids, size=min(tracks, len(ids)), replace=False).tolist())
        chosen = lib.tracks(picks)
        seqs = [net.embed_track(net.load_inputs(lib, [t.id])[0])[1] for t in chosen]
        written.append(segment_map(seqs, [t.label[:40] for t in chosen], out_dir / "segments.png", seed=seed,
                                   title=f"{payload['model_id']}: segment embeddings of {len(chosen)} tracks"))
        with progress_bar("activations", unit="tracks", console=err) as bar:
            table = activation_table(lib, net, mode=mode, track_ids=ids, on_progress=bar)
        wanted = table.selective_units(4) if units == "auto" else [int(u) for u in units.split(",") if u.strip()]
        lists = table.playlists(wanted, k)
        unit_tracks = [lib.tracks(pl.track_ids) for pl in lists]
    except (ModelError, CatalogError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    summary = []
    for pl, chosen_tracks in zip(lists, unit_tracks, strict=True):
        m3u = out_dir / f"unit{pl.unit:03d}-{pl.mode}.m3u"
        m3u.write_text(to_m3u(chosen_tracks, title=f"unit {pl.unit} ({pl.mode} activation)"))
        written.append(m3u)
        out.print(f"unit {pl.unit} ({pl.mode} activation):")
        for t, v in zip(chosen_tracks, pl.values, strict=False):
            out.print(f"  {v:8.3f}  {t.label}  [{t.album}]")
        summary.append({"unit": pl.unit, "mode": pl.mode, "tracks": [
            {**t.to_dict(), "activation": round(v, 6)} for t, v in zip(chosen_tracks, pl.values, strict=False)]})
    (out_dir / "playlists.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    out.print("wrote " + ", ".join(str(p) for p in written))


@app.command()
def export(
    out_file: Path = typer.Option(..., "--out", "-o", help="File to write."),
    fmt: ExportFormat | None = typer.Option(None, "--format", "-f", help="npz, parquet or csv (default: by suffix)."),
    library: Path | None = LibraryOption,
    model: str = typer.Option("default", "--model", help="Which embedding: default (what `similar` searches), "
                                                        "descriptor, a family name, a model id, a fused key or a "
                                                        "checkpoint file."),
    raw: bool = typer.Option(False, "--raw", help="Stored values instead of the search vectors (unit length, "
                                                   "z-scored per part) that `similar` compares."),
) -> None:
    """Export track ids, paths, tags, vectors and segment sequences (the search vectors of --model by default)."""
    from soundalike.app.export import export as do_export
    from soundalike.recommend import QueryError

    lib = _open(library)
    try:
        summary = do_export(lib, out_file, fmt.value if fmt else None, model=model, raw=raw)
    except (CatalogError, QueryError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    out.print(f"wrote {out_file}: {summary.line()}")


@app.command()
def info(library: Path | None = LibraryOption) -> None:
    """Show what the library holds: tracks, files, errors by kind, embeddings, disk use (JSON)."""
    lib = _open(library)
    try:
        out.print_json(json.dumps(lib.stats()))
    finally:
        lib.close()


@app.command()
def demo(
    folder: Path = typer.Option(Path("soundalike-demo"), "--dir", help="Where to write the demo library and report."),
    tracks_per_style: int = typer.Option(10, "--tracks-per-style", min=2),
    duration: float = typer.Option(30.0, "--duration", help="Seconds per synthetic track."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Worker processes (0 = one per core)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Generate a synthetic library (8+ styles), index it, show recommendations and same-style precision@10."""
    import os

    from .demo import run_demo

    n_jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
    run_demo(folder, tracks_per_style=tracks_per_style, duration=duration, jobs=n_jobs, seed=seed,
             console=out, progress_console=err)


@app.command()
def serve(
    library: Path | None = LibraryOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but loopback needs --token."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    token: str | None = typer.Option(None, "--token", envvar="SOUNDALIKE_TOKEN",
                                     help="Require this token (Authorization: Bearer T, or ?token=T)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow a non-loopback bind without a token."),
    cors_origin: list[str] = typer.Option([], "--cors-origin", help="Web origin allowed to call the API from a "
                                                                     "browser (repeat). Default: none."),
    max_upload_mb: int = typer.Option(50, "--max-upload-mb", min=1, max=2048, help="Largest accepted upload."),
    public_url: str | None = typer.Option(None, "--public-url", help="The address clients reach this server at "
                                                                      "(e.g. behind a proxy): stream URLs in "
                                                                      "playlists use it, not the request's Host."),
    map_points: int = typer.Option(4000, "--map-points", min=1, max=20_000,
                                   help="A larger library's map shows a sample of this many tracks, and as many "
                                        "again in each zoomed-in window."),
    concurrency: int = typer.Option(0, "--concurrency", min=0, max=256,
                                    help="API requests computed at once; the others wait their turn (file streams "
                                         "and uploads are not counted), in each worker process. Default (0): "
                                         "the CPUs shared out among the workers."),
    workers: int = typer.Option(1, "--workers", min=1, max=64,
                                help="Server processes (POSIX): one computes a request at a time in Python, so a "
                                     "large library answers more requests with one for each CPU. The library is "
                                     "loaded once before they start, and shared."),
) -> None:
    """Web page and HTTP API (OpenAPI docs at /docs; the Subsonic API for Subsonic apps under /rest)."""
    from soundalike.app.server.run import serve as run_server
    from soundalike.app.server.security import BindError

    root = library or default_library_dir()
    _open(root).close()  # a clear message now if there is no library
    try:
        run_server(root, host=host, port=port, token=token, insecure=insecure, cors_origins=cors_origin,
                   public_url=public_url, map_points=map_points, concurrency=concurrency, workers=workers,
                   max_upload_bytes=max_upload_mb << 20,
                   on_ready=lambda url: err.print(f"serving {root} at {url}  (API docs: {url.split('?')[0]}docs; "
                                                  "Ctrl+C stops)"))
    except BindError as exc:
        raise _fail(str(exc)) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"soundalike {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version.")) -> None:
    """Content-based music recommendation from the audio itself."""


def main() -> None:
    """Entry point of the ``soundalike`` script."""
    app()


if __name__ == "__main__":  # python -m soundalike.app.cli
    main()
