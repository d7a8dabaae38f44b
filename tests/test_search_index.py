"""The search index inside the catalog, on real WARCs (tests/fixtures_index.py): texts folded
into one article whatever order they arrive in, unreadable texts recorded and skipped,
texts an unreachable S3 could not give picked up by the next sync, queries that look like
FTS5 syntax taken as words; and the paragraph diff the reading room shows."""

from __future__ import annotations

import pytest

from fixtures_index import STORY, build_spool, publish
from storage.archive import open_archive
from storage.backends import open_backend
from storage.catalog import Catalog
from storage.errors import BadInput
from storage.search import SearchFilters
from storage.textdiff import diff_paragraphs, word_diff


def state(index, url=STORY) -> tuple:
    """What the index holds of one article: its title, body, earlier text and versions."""
    db = index._db()
    art = db.execute("SELECT id, title, versions, text_ts, first_ts FROM articles WHERE url = ?", (url,)).fetchone()
    text = db.execute("SELECT title, body, earlier FROM article_text WHERE rowid = ?", (art["id"],)).fetchone()
    return (art["title"], art["versions"], art["text_ts"], art["first_ts"], text["title"], text["body"],
            sorted(p for p in text["earlier"].split("\n\n") if p))


def test_texts_arriving_in_any_order_make_the_same_article(tmp_path):
    built = build_spool(tmp_path / "spool")
    states = []
    for n, order in enumerate([(1, 2, 3), (3, 1, 2), (2, 3, 1)]):
        location = tmp_path / f"archive{n}"
        location.mkdir()
        for day in order:  # one day's files at a time, the catalog synced in between
            publish(built, str(location), days=(day,))
            archive = open_archive(str(location))
        states.append(state(archive.catalog.search))
        found = archive.catalog.search.search("version")
        assert found.total == 1 and found.hits[0].versions == 3 and len(found.hits[0].captures) == 3
    assert states[0] == states[1] == states[2]
    title, versions, text_ts, first_ts, fts_title, body, earlier = states[0]
    assert (title, versions, text_ts, first_ts) == ("Story, version 3", 3, "20240503100000", "20240501100000")
    assert body == "Version text of Story, version 3 \u2014 caf\u00e9.\n\nSecond paragraph."
    assert earlier == ["Story, version 1", "Story, version 2", "Version text of Story, version 1 \u2014 caf\u00e9.",
                       "Version text of Story, version 2 \u2014 caf\u00e9."]


def test_an_earlier_version_still_finds_the_article(folder_archive):
    index = open_archive(folder_archive).catalog.search
    hit = index.search('"Story, version 1"').hits[0]
    assert hit.url == STORY and hit.matched == "earlier text" and hit.title == "Story, version 3"
    assert index.search("cafe").hits[0].matched == "text"  # café: accents do not matter


def test_a_missing_text_warc_is_recorded_and_the_other_texts_are_indexed(tmp_path):
    built = build_spool(tmp_path / "spool")
    location = tmp_path / "archive"
    location.mkdir()
    publish(built, str(location))
    text_warc = next(k for k in built.keys[2] if k.endswith(".text.warc.gz"))
    (location / text_warc).unlink()
    archive = open_archive(str(location))
    report = archive.last_sync
    assert report.articles == 2
    assert report.skipped == [f"{text_warc}@0: the text WARC is missing"]
    assert archive.catalog.search.search("version").hits[0].versions == 2
    assert archive.sync().skipped == []  # recorded, not tried again on every sync
    assert archive.catalog.search.source_totals()["news"]["unreadable_texts"] == 1


def test_texts_an_unreachable_s3_could_not_give_are_indexed_by_the_next_sync(s3_server_control, s3_archive, built,
                                                                              tmp_path):
    publish(built, s3_archive)
    backend = open_backend(s3_archive)
    catalog = Catalog(tmp_path / "catalog.sqlite")
    for key in sorted(backend.list("indexes/")):
        catalog.ingest_index(key, backend.get_bytes(key))
    s3_server_control.stop()
    try:
        report = catalog.search.update(backend)
    finally:
        s3_server_control.start()
    assert (report.articles, report.pending, report.skipped) == (0, 3, [])
    assert catalog.search.pending_indexes()  # kept for the next sync
    assert catalog.search.search("version").total == 0
    again = catalog.sync(backend)
    assert again.articles == 3 and catalog.search.pending_indexes() == []
    assert catalog.search.search("version").hits[0].versions == 3


@pytest.mark.parametrize("query", [
    "title:version", "{title} : version", "NEAR(version story)", "version^", "^version", "ver-sion",
    "\"version\" \"story\"", "version*story", "col : x", "a'b", "rank:version", "version + story", "*", "a OR (b)",
    "; DROP TABLE articles; --", "\u0000version", "version\\", "[version]", "-(story)", "story -\"x y\"",
])
def test_queries_that_look_like_fts5_syntax_are_words(folder_archive, query):
    index = open_archive(folder_archive).catalog.search
    try:
        found = index.search(query)
    except BadInput as exc:  # a query we refuse is one line, never an SQLite error
        assert str(exc).startswith(f"bad query {query!r}: ") and "\n" not in str(exc)
        return
    assert found.total in (0, 1)
    assert index.search("version").total == 1  # and the tables are all still there


def test_filters_and_counts_on_capture_dates_when_nothing_says_when_it_was_published(folder_archive):
    index = open_archive(folder_archive).catalog.search
    hit = index.search("version").hits[0]
    assert hit.published == "2024-05-03" and hit.date == "2024-05-03"  # the metadata's date
    assert index.search("version", SearchFilters.from_input(end="2024-05-02")).total == 0
    assert index.counts("version", by="month") == [("2024-05", 1)]


def test_paragraph_diff_pairs_changed_paragraphs_and_keeps_order():
    old = ["Title", "A first paragraph about the harbour bridge and its bearings.", "Gone paragraph entirely.",
           "Kept as it was."]
    new = ["Title", "A first paragraph about the harbour bridge and its new bearings.", "Kept as it was.",
           "A brand new ending."]
    changes = diff_paragraphs(old, new)
    assert [c.op for c in changes] == ["same", "changed", "removed", "same", "added"]
    assert ("added", "new ") in changes[1].segments
    assert [c.op for c in diff_paragraphs(old, old)] == ["same"] * 4
    # unrelated paragraphs are removed and added, not "changed"
    assert [c.op for c in diff_paragraphs(["Alpha beta gamma."], ["Something else entirely here."])] == [
        "removed", "added"]


def test_word_diff_compares_chinese_character_by_character():
    assert word_diff("我们讨论了气候变化", "我们讨论了海洋变化") == [
        ("same", "我们讨论了"), ("removed", "气候"), ("added", "海洋"), ("same", "变化")]
    assert word_diff("气候", "天气") == [("added", "天"), ("same", "气"), ("removed", "候")]  # one character kept
    assert word_diff("two weeks", "three weeks") == [("removed", "two"), ("added", "three"), ("same", " weeks")]
