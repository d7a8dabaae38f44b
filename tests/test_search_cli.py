"""`newsarchive search` over a real archive: a loopback site in four languages crawled twice
(tests/fixtures_reading.py). Phrases, prefixes, boolean operators, diacritics, Cyrillic and
Chinese, date, source and language filters, one result per article with its captures,
counts per day/week/month, one-line errors, reindex, and an S3 archive."""

from __future__ import annotations

import json
import shutil

import pytest

from fixtures_reading import ARTICLES
from test_cli_support import assert_one_line_error, cli_env, run


def search(archive, *args) -> dict:
    result = archive.cli("search", *args, "--json", check=True)
    return json.loads(result.stdout)


def found(archive, *args) -> set[str]:
    """The article keys (fixtures_reading.ARTICLES) a query finds."""
    by_url = {url: key for key, url in archive.urls.items()}
    return {by_url[r["url"]] for r in search(archive, *args)["results"]}


def highlighted(result: dict) -> list[str]:
    return [result["snippet"][a:b] for a, b in result["highlights"]]


def test_the_runs_own_catalog_step_made_the_texts_searchable(reading_archive):
    # read straight from the catalog after each crawl, before any command synced it again
    assert reading_archive.indexed_after_first == set(reading_archive.urls.values())
    assert reading_archive.indexed_after_second == {"shuttle": 1, "cyclists": 1, "seagrass": 1}


def test_a_phrase_finds_its_article_with_title_date_source_url_captures_and_snippet(reading_archive):
    out = search(reading_archive, '"seagrass restoration"')
    assert out["total"] == 1 and len(out["results"]) == 1
    hit = out["results"][0]
    source, path, lang, published, author, title, _ = ARTICLES["seagrass"]
    assert hit["url"] == reading_archive.urls["seagrass"]
    assert (hit["title"], hit["source"], hit["published"], hit["date"], hit["language"]) == (
        title, "harbour", published, "2024-05-13", "en")
    assert hit["author"] == author
    # captured twice (the second crawl found it unchanged: a revisit), one result
    assert len(hit["captures"]) == 2 and [c["revisit"] for c in hit["captures"]] == [False, True]
    assert hit["versions"] == 1 and hit["captured"].endswith("Z")
    assert [h.lower() for h in highlighted(hit)] == ["seagrass restoration"]
    assert [hit["title"][a:b] for a, b in hit["title_highlights"]] == ["seagrass restoration"]
    # a phrase is the words in order: the same words apart do not match
    assert found(reading_archive, '"restoration seagrass"') == set()


def test_prefixes_and_boolean_operators(reading_archive):
    assert found(reading_archive, "climat*") == {"seagrass", "ferry"}  # climate, climatic (not Klimawandel)
    assert found(reading_archive, "climate") == {"seagrass"}
    assert found(reading_archive, "climat* AND ferry") == {"ferry"}
    assert found(reading_archive, "climat* ferry") == {"ferry"}  # side by side means AND
    assert found(reading_archive, "climat* NOT ferry") == {"seagrass"}
    assert found(reading_archive, "climat* -ferry") == {"seagrass"}
    assert found(reading_archive, "ferry OR Fährverkehr") == {"ferry", "flood"}
    assert found(reading_archive, "(ferry OR bearings) AND crew") == {"ferry"}
    assert found(reading_archive, "harbour AND NOT (bridge OR seagrass)") == {"gala"}


def test_case_and_diacritics_do_not_matter(reading_archive):
    for query in ("Überschwemmung", "uberschwemmung", "UEBERSCHWEMMUNG OR überschwemmung"):
        assert found(reading_archive, query) == {"flood"}, query


def test_cyrillic(reading_archive):
    assert found(reading_archive, "совет") == {"sovet"}
    assert found(reading_archive, "СОВЕТ") == {"sovet"}
    assert found(reading_archive, '"морской травы"') == {"sovet"}
    assert found(reading_archive, "восстановл*") == {"sovet"}
    hit = search(reading_archive, "углерод")["results"][0]
    assert highlighted(hit) == ["углерод"] and hit["language"] == "ru"


def test_chinese_words_are_found_inside_sentences(reading_archive):
    assert found(reading_archive, "气候") == {"haicao"}  # two characters inside 我们讨论了气候变化的问题
    assert found(reading_archive, "气候变化") == {"haicao"}
    assert found(reading_archive, "海草恢复") == {"haicao"}
    assert found(reading_archive, "草") == {"haicao"}  # one character
    assert found(reading_archive, "候变问") == set()  # characters that are never next to each other
    assert found(reading_archive, "气候 OR совет") == {"haicao", "sovet"}
    hit = search(reading_archive, "气候")["results"][0]
    assert "气候" in highlighted(hit) and "我们讨论了气候变化的问题" in hit["snippet"]
    assert hit["title"] == "市议会批准海草恢复计划" and hit["published"] == "2024-05-15T10:00:00+08:00"


EVERY = "seagrass OR ferry OR Hafenrat OR bearings OR совет OR 海草 OR lifeboat"


def test_date_filters_use_the_date_as_published(reading_archive):
    assert found(reading_archive, EVERY) == set(ARTICLES)
    assert found(reading_archive, EVERY, "--from", "2024-05-14", "--to", "2024-05-14") == {"ferry", "flood"}
    assert found(reading_archive, EVERY, "--to", "2024-05-13") == {"seagrass", "sovet"}
    assert found(reading_archive, EVERY, "--from", "20240515") == {"bridge", "haicao", "gala"}
    assert found(reading_archive, EVERY, "--from", "2024-05-15T09:00", "--to", "2024-05-15T23:59") == {"haicao"}
    assert found(reading_archive, EVERY, "--from", "2024-06") == set()
    assert found(reading_archive, EVERY, "--from", "2024-05", "--to", "2024-05") == set(ARTICLES)


def test_source_and_language_filters(reading_archive):
    assert found(reading_archive, EVERY, "--source", "world") == {"sovet", "haicao"}
    assert found(reading_archive, EVERY, "--source", "harbour", "--source", "world") == set(ARTICLES)
    assert found(reading_archive, EVERY, "--lang", "de") == {"flood"}
    assert found(reading_archive, EVERY, "--lang", "zh", "--source", "world") == {"haicao"}
    assert found(reading_archive, EVERY, "--lang", "zh", "--source", "harbour") == set()
    assert found(reading_archive, EVERY, "--source", "nosuch") == set()


def test_limit_offset_and_order(reading_archive):
    newest = search(reading_archive, EVERY, "--sort", "newest")["results"]
    assert [r["date"] for r in newest] == sorted((r["date"] for r in newest), reverse=True)
    page = search(reading_archive, EVERY, "--sort", "newest", "--limit", "2", "--offset", "2")
    assert page["total"] == len(ARTICLES)
    assert [r["url"] for r in page["results"]] == [r["url"] for r in newest[2:4]]


def test_an_article_that_changed_is_one_result_with_both_versions_searchable(reading_archive):
    out = search(reading_archive, "bearings")
    assert out["total"] == 1
    hit = out["results"][0]
    assert hit["versions"] == 2 and len(hit["captures"]) == 2
    assert not any(c["revisit"] for c in hit["captures"])
    # the newest text is what results show
    assert found(reading_archive, '"shuttle boat"') == {"bridge"}
    assert search(reading_archive, '"shuttle boat"')["results"][0]["matched"] == "text"
    # a paragraph only the first capture had still finds the article, and says so
    earlier = search(reading_archive, "cyclists footway")["results"]
    assert [r["url"] for r in earlier] == [reading_archive.urls["bridge"]]
    assert earlier[0]["matched"] == "earlier text" and "footway" in highlighted(earlier[0])


def test_counts_by_day_week_and_month(reading_archive):
    by_day = search(reading_archive, EVERY, "--count-by", "day")
    assert by_day["by"] == "day" and by_day["total"] == len(ARTICLES)
    assert by_day["counts"] == [{"period": "2024-05-13", "count": 2}, {"period": "2024-05-14", "count": 2},
                                {"period": "2024-05-15", "count": 2}, {"period": "2024-05-16", "count": 1}]
    assert search(reading_archive, "climat* OR 海草", "--count-by", "day")["counts"] == [
        {"period": "2024-05-13", "count": 1}, {"period": "2024-05-14", "count": 1},
        {"period": "2024-05-15", "count": 1}]
    assert search(reading_archive, "seagrass OR lifeboat", "--count-by", "day")["counts"] == [
        {"period": "2024-05-13", "count": 1}, {"period": "2024-05-14", "count": 0},
        {"period": "2024-05-15", "count": 0}, {"period": "2024-05-16", "count": 1}]  # gaps are zeros
    assert search(reading_archive, EVERY, "--count-by", "week")["counts"] == [{"period": "2024-05-13", "count": 7}]
    assert search(reading_archive, EVERY, "--count-by", "month", "--source", "world")["counts"] == [
        {"period": "2024-05", "count": 2}]
    text = reading_archive.cli("search", EVERY, "--count-by", "day", check=True).stdout.splitlines()
    assert text[0] == f"articles matching {EVERY!r} per day: 7 in all"
    assert [line.split()[:2] for line in text[1:]] == [["2024-05-13", "2"], ["2024-05-14", "2"],
                                                        ["2024-05-15", "2"], ["2024-05-16", "1"]]


def test_text_output_names_each_article_with_its_match(reading_archive):
    out = reading_archive.cli("search", "climate", check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "1 article match 'climate'"
    assert lines[2] == "1. Harbour council approves seagrass restoration plan"
    assert "harbour · published 2024-05-13T09:00:00+02:00 · en · captured " in lines[3]
    assert "(2 captures)" in lines[3]
    assert lines[4].strip() == reading_archive.urls["seagrass"]
    assert "**climate**" in lines[5]  # off a terminal, matches are between **


def test_html_in_titles_and_text_is_kept_as_text(reading_archive):
    hit = search(reading_archive, "lifeboat raffle")["results"][0]
    assert hit["title"].startswith('<script>alert("title")</script> Harbour <b>gala</b>')
    assert "<img src=x onerror=alert(1)>" in hit["snippet"]


@pytest.mark.parametrize("args, needle", [
    (['"seagrass'], "a double quote is not closed"),
    (["NOT seagrass"], "NOT needs something to match first"),
    (["seagrass AND"], "AND needs a term on each side"),
    (["(seagrass OR ferry"], "a parenthesis is not closed"),
    (["&&&"], "nothing to search for"),
    (["seagrass", "--from", "soon"], "not a time: 'soon'"),
    (["seagrass", "--from", "2024-06", "--to", "2024-05"], "is after --to"),
    (["seagrass", "--lang", "english!"], "not a language code"),
])
def test_bad_input_is_one_line(reading_archive, args, needle):
    result = reading_archive.cli("search", *args)
    assert result.returncode == 2
    assert_one_line_error(result, needle)


def test_reindex_rebuilds_the_index_and_a_fresh_catalog_finds_the_same(reading_archive, tmp_path):
    before = search(reading_archive, EVERY)
    rebuilt = reading_archive.cli("reindex", check=True)
    assert "texts searchable" in rebuilt.stderr
    after = search(reading_archive, EVERY)
    assert [r["url"] for r in after["results"]] == [r["url"] for r in before["results"]]
    # another machine: its own catalog, built from the archive's indexes alone
    env = cli_env(tmp_path, NEWSARCHIVE_CATALOG=str(tmp_path / "catalog.sqlite"))
    fresh = run("search", '"worn bearings"', "--json", "--archive", reading_archive.path, cwd=tmp_path, env=env,
                check=True)
    hit = json.loads(fresh.stdout)["results"][0]
    assert hit["url"] == reading_archive.urls["bridge"] and hit["versions"] == 2
    assert found(reading_archive, "cyclists") == {"bridge"}


def test_an_s3_archive_is_searched_the_same_way(reading_archive, s3_archive, tmp_path):
    from storage.backends import open_backend

    backend = open_backend(s3_archive)
    for path in sorted(reading_archive.path.rglob("*")):
        rel = path.relative_to(reading_archive.path).as_posix()
        if path.is_file() and rel.split("/")[0] in ("warc", "indexes", "articles", "runs"):
            backend.put_file(rel, path)
    import os

    env = cli_env(tmp_path, XDG_CACHE_HOME=str(tmp_path / "cache"),
                  **{k: os.environ[k] for k in os.environ if k.startswith("AWS_")})
    out = run("search", "气候 OR совет OR climate", "--json", "--archive", s3_archive, cwd=tmp_path, env=env,
              check=True)
    results = json.loads(out.stdout)["results"]
    assert {r["url"] for r in results} == {reading_archive.urls[k] for k in ("haicao", "sovet", "seagrass")}
    assert list((tmp_path / "cache").rglob("*.sqlite")), "the S3 archive's catalog lives in the user cache"
    counts = run("search", EVERY, "--count-by", "day", "--json", "--archive", s3_archive, cwd=tmp_path, env=env,
                 check=True)
    assert json.loads(counts.stdout)["total"] == len(ARTICLES)
    shutil.rmtree(tmp_path / "cache")
