"""The beets plugin through the real ``beet`` command (beets from PyPI, ``plugins: soundalike``) on a beets library
made in a temporary folder from synthetic files: what it answers is what ``soundalike similar`` / ``continue`` say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import run_cli, written_tags
from soundalike.audio.analysis import Tags

pytest.importorskip("beets", reason="beets is not installed (pip install -e '.[dev]')")

BEET = str(Path(sys.executable).with_name("beet"))
RENAMED = "Renamed By Beets"


@dataclass
class BeetsHome:
    """A beets configuration folder (BEETSDIR) with its library, the music it imported and soundalike's catalogue."""

    root: Path

    @property
    def music(self) -> Path:
        return self.root / "music"

    @property
    def catalogue(self) -> Path:
        return self.root / "soundalike"

    def beet(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        """``beet ARGS`` as a user types it, with this home's configuration."""
        env = {**os.environ, "BEETSDIR": str(self.root), "SOUNDALIKE_LIBRARY": "/nonexistent"}
        done = subprocess.run([BEET, *args], env=env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        if ok:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def paths(self, *query: str) -> list[str]:
        """Paths of the beets items matching ``query``, as beets lists them."""
        return self.beet("ls", "-f", "$path", *query).stdout.splitlines()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> BeetsHome:
    """12 synthetic tracks imported as-is into a fresh beets library (one title changed in beets only), then
    analysed with ``beet soundalike-index`` (descriptors, for speed)."""
    from soundalike import synth

    if not Path(BEET).is_file():
        pytest.skip("the beet command is not installed beside this Python")
    root = tmp_path_factory.mktemp("beets")
    home = BeetsHome(root)
    synth.make_library(home.music, styles=["techno", "ambient", "chiptune"], tracks_per_style=4, duration=5.0,
                       seed=7)
    (root / "config.yaml").write_text(json.dumps({  # JSON is YAML
        "directory": str(home.music), "library": str(root / "beets.db"), "plugins": ["soundalike"],
        "import": {"copy": False, "write": False, "autotag": False, "quiet": True, "log": str(root / "import.log")},
        "soundalike": {"library": str(home.catalogue), "model": "descriptor", "jobs": 1}}))
    home.beet("import", "-A", "-q", str(home.music))
    assert len(home.paths()) == 12
    home.beet("modify", "-y", "-W", "title:Acid Signal", f"title={RENAMED}")  # in beets' database only
    done = home.beet("soundalike-index")
    assert "12 items: 12 analysed" in done.stdout and "12 items hold their soundalike_id" in done.stdout
    return home


def expected(home: BeetsHome, command: str, query: str, k: int, *options: str) -> list[str]:
    """The paths ``soundalike COMMAND QUERY -k K`` answers on the plugin's catalogue."""
    code, out, err = run_cli(command, query, "-k", str(k), "--format", "json", "--library", str(home.catalogue),
                             "--model", "descriptor", *options)
    assert code == 0, err
    return [r["path"] for r in json.loads(out)["results"]]


def listed(stdout: str) -> list[str]:
    """The items of an answer printed with ``-f '$path'`` (``score  path`` lines)."""
    return [line.split("  ", 1)[1] for line in stdout.splitlines() if not line.startswith("soundalike:")]


def test_index_stores_each_items_track_id_and_gives_the_catalogue_beets_tags(home: BeetsHome) -> None:
    from soundalike.library.catalog import Library

    rows = [line.split("|", 1) for line in home.beet("ls", "-f", "$soundalike_id|$path").stdout.splitlines()]
    with Library.open(home.catalogue, create=False) as lib:
        for track_id, path in rows:
            track = lib.track_by_path(path)
            assert track is not None and int(track_id) == track.id, path
        renamed = lib.search(RENAMED)
    assert len(renamed) == 1 and renamed[0].title == RENAMED
    assert written_tags(Path(renamed[0].path))["title"] == "Acid Signal"  # beets' title; the file keeps its own
    assert home.paths(f"soundalike_id:{renamed[0].id}") == [renamed[0].path]  # an integer field beets can query
    again = home.beet("soundalike-index", "album:Techno Nights")
    assert "2 items: 0 analysed, 0 duplicates/moved, 2 unchanged" in again.stdout


def test_similar_answers_what_soundalike_similar_does(home: BeetsHome, tmp_path: Path) -> None:
    seed = home.paths("title:Bonus Rocket")[0]
    playlist = tmp_path / "like.m3u"
    done = home.beet("similar", "title:Bonus Rocket", "-k", "4", "-f", "$path", "--playlist", str(playlist))
    answer = expected(home, "similar", seed, 4)
    assert listed(done.stdout) == answer and seed not in answer
    assert [line for line in playlist.read_text().splitlines() if not line.startswith("#")] == answer
    done = home.beet("similar", "title:Bonus Rocket", "-k", "3", "--no-same-artist")
    answer = expected(home, "similar", seed, 3, "--no-same-artist")
    # without -f: beets' own item format (format_item), as `beet ls` prints the items
    shown = dict(line.split("|", 1) for line in home.beet("ls", "-f", "$path|$artist - $album - $title").stdout
                 .splitlines())
    assert listed(done.stdout) == [shown[path] for path in answer]


def test_sonicmix_continues_the_matching_items(home: BeetsHome, tmp_path: Path) -> None:
    seeds = home.paths("album:Ambient Drift")
    assert len(seeds) == 2
    playlist = tmp_path / "mix.m3u"
    done = home.beet("sonicmix", "album:Ambient Drift", "-k", "4", "-f", "$path", "--no-same-album", "--score",
                     "mean", "-p", str(playlist))
    seeds_m3u = tmp_path / "seeds.m3u"
    seeds_m3u.write_text("\n".join(seeds) + "\n")
    answer = expected(home, "continue", str(seeds_m3u), 4, "--no-same-album", "--score", "mean")
    assert listed(done.stdout) == answer and not set(answer) & set(seeds)
    assert [line for line in playlist.read_text().splitlines() if not line.startswith("#")] == seeds + answer


def test_items_not_analysed_yet_are_said_and_skipped(home: BeetsHome) -> None:
    from soundalike import synth

    (late,) = synth.make_library(home.root / "late", styles=["jazz"], tracks_per_style=1, duration=5.0, seed=9)
    home.beet("import", "-A", "-q", str(late.path.parent))
    query = f"path:{late.path}"
    done = home.beet("similar", query, ok=False)
    assert done.returncode == 1 and "not analysed by soundalike yet" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    mixed = home.beet("sonicmix", "album:Warehouse Techno", ",", f"album:{late.album}", "-k", "2")  # , is OR
    assert f"soundalike: skip {late.path}: not analysed" in mixed.stdout and len(listed(mixed.stdout)) == 2
    assert home.beet("ls", "-f", "[$soundalike_id]", query).stdout.strip() == "[$soundalike_id]"  # no such field


def test_the_plugin_and_the_integration_name_one_field() -> None:
    from beetsplug.soundalike import FLEX_FIELD, SoundalikePlugin
    from soundalike.integrations.beets import FLEX_FIELD as INTEGRATION_FIELD

    assert FLEX_FIELD == INTEGRATION_FIELD and set(SoundalikePlugin.item_types) == {FLEX_FIELD}


def test_bad_input_is_one_line(home: BeetsHome) -> None:
    for args, message in ((["similar", "title:no such title anywhere"], "no beets item matches"),
                          (["similar"], "give a query"),
                          (["similar", "title:Bonus Rocket", "-k", "0"], "-k 0: must be at least 1"),
                          (["sonicmix", "album:Ambient Drift", "--score", "loudest"], "loudest"),
                          (["soundalike-index", "title:no such title anywhere"], "no beets item matches")):
        done = home.beet(*args, ok=False)
        assert done.returncode == 1 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow
def test_index_with_the_shipped_model_embeds_and_answers_as_soundalike_does(tmp_path: Path) -> None:
    from soundalike import synth

    home = BeetsHome(tmp_path)
    synth.make_library(home.music, styles=["techno", "ambient"], tracks_per_style=3, duration=6.0, seed=11)
    (tmp_path / "config.yaml").write_text(json.dumps({
        "directory": str(home.music), "library": str(tmp_path / "beets.db"), "plugins": ["soundalike"],
        "import": {"copy": False, "write": False, "autotag": False, "quiet": True},
        "soundalike": {"library": str(home.catalogue), "jobs": 1}}))  # model: default
    home.beet("import", "-A", "-q", str(home.music))
    done = home.beet("soundalike-index")
    assert "6 items: 6 analysed" in done.stdout and "embedded 6 tracks with" in done.stdout
    seed = home.paths()[0]
    answer = home.beet("similar", f"path:{seed}", "-k", "3", "-f", "$path")
    code, out, err = run_cli("similar", seed, "-k", "3", "--format", "json", "--library", str(home.catalogue))
    assert code == 0, err
    assert json.loads(out)["model"] != "descriptor"  # the shipped model answered, not a fallback
    assert listed(answer.stdout) == [r["path"] for r in json.loads(out)["results"]]


def _tag_flac(path: Path, **tags: str) -> None:
    """Write Vorbis comments (mutagen's easy keys) into a FLAC file."""
    import mutagen

    f = mutagen.File(path, easy=True)
    for key, value in tags.items():
        f[key] = value
    f.save()


def test_index_keeps_the_tags_beets_does_not_know_and_takes_those_it_does(tmp_path: Path) -> None:
    from beets.library import Item
    from beets.library import Library as BeetsLibrary

    from helpers import make_signal, write_audio
    from soundalike.integrations.beets import index_items
    from soundalike.library.catalog import Library
    from soundalike.library.scan import scan

    path = write_audio(tmp_path / "music" / "song.flac", make_signal(3.0, 330.0, seed=4))
    _tag_flac(path, artist="File Artist", album="File Album", title="File Title", albumartist="Various Artists",
              genre="Techno", tracknumber="3", discnumber="2", date="1999")
    beets_lib = BeetsLibrary(str(tmp_path / "beets.db"))
    item = Item.from_path(str(path))
    item.artist, item.albumartist, item.genre, item.year = "Beets Artist", "Beets Album Artist", "", 0
    beets_lib.add(item)
    with Library.open(tmp_path / "lib") as lib:
        scan(lib, [str(path)], isolate=False)
        index_items(lib, [item], model="descriptor")
        track = lib.track_by_path(path)
        assert track is not None
        assert (track.artist, track.album, track.title) == ("Beets Artist", "File Album", "File Title")
        assert track.album_artist == "Beets Album Artist"  # beets knows it: the user's truth
        assert (track.genre, track.year) == ("Techno", 1999)  # beets has none: the file's stay
        assert (track.track_no, track.disc_no) == (3, 2)
        assert lib.search("beets artist")[0].id == track.id  # the folded search column follows
        lib.set_tags(track.id, Tags(artist="A", album="B", title="C"))  # default: artist, album, title only
        again = lib.track(track.id)
        assert again is not None and (again.artist, again.genre, again.track_no) == ("A", "Techno", 3)
        with pytest.raises(ValueError, match="unknown tag field"):
            lib.set_tags(track.id, Tags(), ["mood"])


def test_index_embeds_with_every_part_of_the_default_as_soundalike_index_does(tmp_path: Path) -> None:
    from beets.library import Item
    from beets.library import Library as BeetsLibrary

    from helpers import make_signal, write_audio
    from soundalike.integrations.beets import index_items
    from soundalike.library.catalog import Library
    from soundalike.models.checkpoint import read_checkpoint
    from soundalike.models.embedding import CheckpointChoiceError, checkpoints_for
    from soundalike.models.pretrained import default_checkpoints
    from soundalike.recommend import QueryError

    shipped = default_checkpoints()
    if len(shipped) < 2:
        pytest.skip("this build ships a one-part default")
    beets_lib = BeetsLibrary(str(tmp_path / "beets.db"))
    items = []
    for n in range(2):
        path = write_audio(tmp_path / "music" / f"song{n}.wav", make_signal(3.0, 220.0 * (n + 1), seed=n))
        items.append(Item.from_path(str(path)))
        beets_lib.add(items[-1])
    with Library.open(tmp_path / "lib") as lib:
        assert checkpoints_for("default", lib) == shipped and checkpoints_for("descriptor", lib) == []
        with pytest.raises(CheckpointChoiceError, match="no such checkpoint file"):
            checkpoints_for("no-such-model", lib)
        with pytest.raises(QueryError, match="soundalike.model: no-such-model"):
            index_items(lib, items, model="no-such-model")
        report = index_items(lib, items, model="default")
        expected = {str(read_checkpoint(c)["model_id"]) for c in shipped}
        assert {model_id for model_id, _ in report.embedded} == expected
        assert expected <= set(lib.models()) and all(count == 2 for _, count in report.embedded)


def test_an_item_whose_file_name_is_not_utf8_is_found(tmp_path: Path) -> None:
    from beets.library import Item
    from beets.library import Library as BeetsLibrary

    from helpers import make_signal, write_audio
    from soundalike.integrations.beets import beets_items, index_items
    from soundalike.library.catalog import Library

    made = write_audio(tmp_path / "music" / "plain.wav", make_signal(2.0, 440.0))
    raw = os.path.join(os.fsencode(made.parent), b"caf\xe9.wav")
    os.rename(made, raw)
    beets_lib = BeetsLibrary(str(tmp_path / "beets.db"))
    item = Item.from_path(raw)
    beets_lib.add(item)
    with Library.open(tmp_path / "lib") as lib:
        report = index_items(lib, [item], model="descriptor")
        assert report.tagged == 1
        track = lib.track_by_path(raw)
        assert track is not None
        found = beets_items(beets_lib, lib, [track])
        assert list(found) == [track.id] and found[track.id].id == item.id and found[track.id].path == raw
