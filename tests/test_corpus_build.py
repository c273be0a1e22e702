"""`build_corpus` and the `deephype corpus` commands end to end on small inputs we wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deephype.cli import main
from deephype.corpus.build import BuildSettings, build_corpus
from deephype.corpus.genres import Catalog, load_catalog, load_vocabulary
from deephype.corpus.sources import detect_format

FIXTURES = Path(__file__).parent / "fixtures" / "corpus"
NO_PLOT = BuildSettings(plot=False)


def read_all(out: Path) -> list[dict]:
    return [json.loads(line) for name in ("train", "valid", "test") for line in (out / f"{name}.jsonl").open()]


def test_posts_become_clean_labelled_sentences(tmp_path: Path) -> None:
    catalog = Catalog({"velvet harbor": ["dream pop", "indie rock"]})
    manifest = build_corpus([FIXTURES / "posts.json"], tmp_path / "out", settings=NO_PLOT, catalog=catalog)
    records = read_all(tmp_path / "out")
    texts = [r["text"] for r in records]

    assert 'Brooklyn four-piece <artist> are back with "<title>," a slow-burning song about leaving home.' in texts
    assert "It's their best work yet, and the video is lovely too." in texts  # mojibake fixed, link text kept
    assert not any("Instagram" in t or "Listen below" in t or "Bandcamp" in t for t in texts)  # boilerplate
    assert not any("Home" in t for t in texts)  # menu
    assert not any("chanson" in t for t in texts)  # French post
    shimmer = [t for t in texts if t.startswith("The guitars shimmer")]
    assert len(shimmer) == 1  # the same sentence in two posts is kept once

    velvet = [r for r in records if r["artist"] == "Velvet Harbor"]
    assert velvet and all(r["genres"] == ["dream pop", "indie rock"] for r in velvet)
    assert all(r["families"] == ["indie"] for r in velvet)
    assert {r["split"] for r in velvet} == {velvet[0]["split"]}
    assert all(set(r) == {"text", "artist", "title", "genres", "families", "source", "split"} for r in records)

    counts = manifest["counts"]
    assert counts["posts"] == 4
    assert counts["posts_not_english"] == 1
    assert counts["posts_with_artist"] == 3
    assert counts["posts_with_genres"] == 1
    assert counts["dropped_boilerplate"] == 3
    assert counts["dropped_exact_duplicate"] == 1
    assert manifest["splits"] == {name: sum(r["split"] == name for r in records) for name in ("train", "valid", "test")}
    assert manifest["genres"] == {"dream pop": len(velvet), "indie rock": len(velvet)}
    assert all(len(digest) == 64 for digest in manifest["inputs"][0]["sha256"].values())
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["content_sha256"] == manifest["content_sha256"]


def test_build_is_deterministic(tmp_path: Path) -> None:
    inputs = [FIXTURES / "posts.json", FIXTURES / "own"]
    first = build_corpus(inputs, tmp_path / "a", settings=NO_PLOT)
    second = build_corpus(inputs, tmp_path / "b", settings=NO_PLOT)
    assert first["content_sha256"] == second["content_sha256"]
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()


def test_labelled_folder_skips_parsing_but_not_filters(tmp_path: Path) -> None:
    manifest = build_corpus([FIXTURES / "own"], tmp_path / "built", settings=NO_PLOT)
    records = read_all(tmp_path / "built")
    assert manifest["counts"]["labelled_sentences"] == 5
    assert manifest["counts"]["dropped_near_duplicate"] == 1  # '... drone.' vs '... drone!' after cleaning
    assert manifest["counts"]["dropped_exact_duplicate"] == 0
    quartz = [r for r in records if r["artist"] == "DJ Quartz"]
    assert {r["text"] for r in quartz} == {
        "The bass on <title> hits like a slammed car door at three in the morning.",
        "<artist>'s drums never sit still, yet the whole thing feels strangely calm.",
    }
    assert all(r["families"] == ["dance"] for r in quartz)
    assert all(r["title"] == "Concrete Bloom" for r in quartz)


def test_html_folder_keeps_the_article_only(tmp_path: Path) -> None:
    build_corpus([FIXTURES / "html", FIXTURES / "own"], tmp_path / "out", settings=NO_PLOT)
    records = read_all(tmp_path / "out")
    texts = {r["text"] for r in records}
    assert "<artist> wrote <title> in a rented cabin during a snowed-in week." in texts
    assert "The song opens with a lone organ note & then the whole band falls in, loose and warm." in texts
    assert not any("tracking" in t or "Related" in t or "Copyright" in t or "friends" in t for t in texts)
    velvet = [r for r in records if r["artist"] == "Velvet Harbor"]
    assert velvet[0]["source"] == "https://blog.example/velvet-harbor-paper-lanterns"  # canonical link
    # DJ Quartz is known from our labelled sentences, so the HTML post about it gets genres too.
    quartz_html = [r for r in records if r["artist"] == "DJ Quartz" and r["source"].endswith("quartz.htm")]
    assert quartz_html and all(r["genres"] == ["techno", "house"] for r in quartz_html)


def test_rebuild_replaces_output_atomically(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_corpus([FIXTURES / "own"], out, settings=NO_PLOT)
    before = (out / "manifest.json").read_text()
    binary = write(tmp_path / "binary.jsonl", b"\x00\x01\x02")
    with pytest.raises(ValueError, match="binary"):
        build_corpus([FIXTURES / "own", binary], out, settings=NO_PLOT)
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["binary.jsonl", "out"]  # no temp folders left behind


def test_refuses_to_replace_a_folder_that_is_not_a_corpus(tmp_path: Path) -> None:
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing"):
        build_corpus([FIXTURES / "own"], tmp_path / "precious", settings=NO_PLOT)
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


def test_catalog_holds_only_vocabulary_genres() -> None:
    vocabulary = load_vocabulary()
    catalog = load_catalog(vocabulary=vocabulary)
    assert len(catalog.genres_by_artist) > 200
    assert all(g in vocabulary.family_of for genres in catalog.genres_by_artist.values() for g in genres)
    assert catalog.lookup("Alina Baraz & Galimatias")  # a collaboration finds its members


# --- bad input ----------------------------------------------------------------------------------------


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


LABELLED_OK = {"text": "<artist> is loud.", "artist": "A", "title": "B", "genres": ["punk"], "families": ["punk"]}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.json", "", "empty"),
        ("blank.jsonl", "\n\n  \n", "empty"),
        ("binary.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
        ("latin1.json", '[{"title": "Caf\xe9", "content": "x"}]'.encode("latin-1"), "UTF-8"),
        ("broken.json", '[{"title": "a", "content": ', "invalid JSON"),
        ("no_content.json", '[{"title": "a", "content": "b"}, {"title": "c"}]', "record 2: missing field 'content'"),
        ("wrong_type.json", '[{"title": "a", "content": 5}]', "record 1: field 'content' must be str"),
        ("not_object.jsonl", '{"title": "a", "content": "b"}\n[1, 2]\n', "record 2: expected a JSON object"),
        ("unknown.json", '[{"name": "a"}]', "record 1: not a post"),
        (
            "bad_genre.jsonl",
            json.dumps(LABELLED_OK) + "\n" + json.dumps({**LABELLED_OK, "genres": ["polka"]}) + "\n",
            "record 2: unknown genre",
        ),
        (
            "no_artist.jsonl",
            json.dumps({k: v for k, v in LABELLED_OK.items() if k != "artist"}),
            "missing field 'artist'",
        ),
        ("bad_family.jsonl", json.dumps({**LABELLED_OK, "families": ["noise"]}), "unknown family"),
        ("feeds.txt", "https://ok.example/feed\nnot a url\n", "line 2: not an http"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    bad = write(tmp_path / name, content)
    with pytest.raises(ValueError, match=message):
        build_corpus([FIXTURES / "own", bad], tmp_path / "out", settings=NO_PLOT)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_missing_input_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_corpus([tmp_path / "nope.json"], tmp_path / "out", settings=NO_PLOT)


def test_folder_without_usable_files(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "readme.md", "hello")
    with pytest.raises(ValueError, match=r"no \.html or \.jsonl files"):
        build_corpus([tmp_path / "in"], tmp_path / "out", settings=NO_PLOT)


def test_unreadable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    # Tests may run as root, where chmod 000 does not stop reads; make the folder refuse like a locked one.
    real_iterdir = Path.iterdir

    def locked_iterdir(self: Path):  # type: ignore[no-untyped-def]
        if self == folder:
            raise PermissionError(13, "Permission denied")
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", locked_iterdir)
    with pytest.raises(ValueError, match="cannot read folder"):
        detect_format(folder)
    assert main(["corpus", "build", str(folder), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert not (tmp_path / "out").exists()


def test_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min-words"):
        build_corpus([FIXTURES / "own"], tmp_path / "out", settings=BuildSettings(min_words=10, max_words=5))


# --- CLI --------------------------------------------------------------------------------------------------


def test_cli_build_and_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    own = tmp_path / "own"
    shutil.copytree(FIXTURES / "own", own)
    out = tmp_path / "built"
    assert main(["corpus", "build", str(own), "--out", str(out)]) == 0
    assert (out / "stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "after near dedupe" in printed and "folk & americana" in printed
    assert main(["corpus", "stats", str(out), "--plot", str(tmp_path / "stats.png"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out.split("\nwrote ")[0])
    assert stats["sentences"] == 4
    assert stats["families"] == {"dance": 2, "folk & americana": 2}
    assert stats["with_title_placeholder"] == 0.5
    assert (tmp_path / "stats.png").stat().st_size > 10_000


def test_cli_reports_bad_input_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path / "bad.json", '[{"title": "a"}]')
    assert main(["corpus", "build", str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "record 1: missing field 'content'" in capsys.readouterr().err
    assert main(["corpus", "stats", str(tmp_path / "nothing")]) == 2


def test_catalog_own_records_labelled_artists(tmp_path: Path) -> None:
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps({"version": 1, "description": "t", "artists": {"mt joy": ["folk rock"]}}))
    assert main(["corpus", "catalog-own", str(FIXTURES / "own"), "--catalog", str(catalog_file)]) == 0
    catalog = load_catalog(catalog_file)
    assert catalog.lookup("DJ Quartz") == ["techno", "house"]
    assert catalog.lookup("Cobalt Meadow") == ["indie folk"]
    assert catalog.lookup("Mt. Joy") == ["folk rock"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html><body><nav>menu only</nav></body></html>", "no article text"),
        ("<html><body><p>Caf\xe9 bleu</p></body></html>".encode("latin-1"), "not valid UTF-8"),
        (b"", "empty"),
    ],
)
def test_bad_html_file_names_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    folder = tmp_path / "pages"
    shutil.copytree(FIXTURES / "html", folder)
    write(folder / "broken.html", content)
    with pytest.raises(ValueError, match=message) as error:
        build_corpus([folder], tmp_path / "out", settings=NO_PLOT)
    assert "broken.html" in str(error.value)
    assert not (tmp_path / "out").exists()
