"""Extraction quality on the corpus of tests/data: 31 news articles and a section page, our own writing.

An article passes when every "with" passage is in the clean text and no
"without" passage (cookie banners, related stories, comments, footers...) is.
The pages imitate real CMS output, so trafilatura misses some boilerplate
here as it does on the web: the thresholds are the scores we measured, less
a few passages of slack, so they catch regressions; they are not a claim of
quality. The same measurement on 107 real pages is a benchmark
(benchmarks/eval_extraction.py), not a test: those pages are not ours to
put in the repository.
"""

from __future__ import annotations

import re

import pytest

from spiders.extraction import _normalise_space

# Measured with trafilatura 2.3.1 (constraints.txt), per mode (fixtures_extraction.MODES):
# articles passing everything, "with" passages found, "without" passages absent, of 31 / 121 / 146.
MEASURED = {
    "served": {"pages": 20, "with": 119, "without": 127},
    "bare": {"pages": 20, "with": 115, "without": 129},  # the iso-8859-2 page is misread bare: see test_extraction_charsets
}
SLACK = {"pages": 2, "with": 3, "without": 5}  # what an extractor upgrade may move without it being a regression

MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|Å[\u0080-\u00bf]|â€|Ä[\u0080-\u00bf]|Ð[\u0080-\u00bf]|Ñ[\u0080-\u00bf]")


def _articles(pages):
    return [p for p in pages if p.is_article]


def _score(pages, extracts):
    passing, found, absent = 0, 0, 0
    for page in pages:
        text = extracts[page.url][0]
        missing = [p for p in page.with_ if _normalise_space(p) not in text]
        leaked = [p for p in page.without if _normalise_space(p) in text]
        found += len(page.with_) - len(missing)
        absent += len(page.without) - len(leaked)
        passing += not missing and not leaked
    return {"pages": passing, "with": found, "without": absent}


def test_the_corpus_has_what_the_thresholds_count(corpus_pages):
    articles = _articles(corpus_pages)
    assert len(articles) == 31
    assert sum(len(p.with_) for p in articles) == 121 and sum(len(p.without) for p in articles) == 146
    assert all(p.with_ and p.without for p in articles)  # every article can pass and can fail


@pytest.mark.parametrize("mode", ["served", "bare"])
def test_articles_pass_at_the_measured_rate(corpus_pages, corpus_extracts, mode):
    score = _score(_articles(corpus_pages), corpus_extracts[mode])
    floor = {k: MEASURED[mode][k] - SLACK[k] for k in SLACK}
    assert all(score[k] >= floor[k] for k in floor), f"measured {score}, at least {floor} expected"


def test_every_article_is_extracted(corpus_pages, corpus_extracts):
    errors = {p.file: corpus_extracts["served"][p.url][0] for p in _articles(corpus_pages)
              if corpus_extracts["served"][p.url][0].startswith("ERROR")}
    assert errors == {}


def test_a_section_page_brings_none_of_its_boilerplate(corpus_pages, corpus_extracts):
    listings = [p for p in corpus_pages if p.kind == "listing"]
    assert listings
    for page in listings:
        text = corpus_extracts["served"][page.url][0]
        assert [b for b in page.without if _normalise_space(b) in text] == [], page.file


def test_the_text_is_the_same_with_or_without_the_http_charset(corpus_pages, corpus_extracts):
    # Without the HTTP charset, pages that name theirs in <meta> or a BOM (or need
    # none) must come out the same, and detection gets every header-only one right.
    differ = sorted(p.file for p in corpus_pages
                    if corpus_extracts["served"][p.url][0] != corpus_extracts["bare"][p.url][0])
    assert differ == []


def test_no_replacement_characters_or_mojibake_in_any_text(corpus_pages, corpus_extracts):
    for mode, extracts in corpus_extracts.items():
        for page in corpus_pages:
            text = extracts[page.url][0]
            assert "\ufffd" not in text, (mode, page.file)
            assert not MOJIBAKE.search(text), (mode, page.file, MOJIBAKE.search(text).group())


def test_non_ascii_passages_of_legacy_pages_survive_decoding(corpus_pages, corpus_extracts):
    # Umlauts, Polish and Cyrillic letters, Chinese: the bytes became the right characters, through
    # decoding and extraction. Measured: all 53 such passages of the 16 legacy-charset pages.
    legacy = [p for p in corpus_pages if p.legacy]
    assert len(legacy) == 16
    passages = [(page, passage) for page in legacy for passage in page.with_ if not passage.isascii()]
    found = [(page.file, passage) for page, passage in passages
             if _normalise_space(passage) in corpus_extracts["served"][page.url][0]]
    assert len(passages) == 53 and len(found) >= 51, sorted(set(passages) - set(found))


def test_all_texts_have_the_plain_text_form(corpus_pages, corpus_extracts):
    for page in corpus_pages:
        text = corpus_extracts["served"][page.url][0]
        head, _, body = text.partition("\n\n")
        assert page.url == head.splitlines()[-1], page.file
        assert body.endswith("\n") and not body.endswith("\n\n"), page.file
        assert "\n\n\n" not in text, page.file
        for para in body.rstrip("\n").split("\n\n"):
            assert para and para == para.strip() and "  " not in para and "\n" not in para, (page.file, para)


def test_metadata_matches_what_the_pages_say(corpus_pages, corpus_extracts):
    # Measured: 28 titles, 28 authors, 30 dates right of 31 (trafilatura takes a table
    # site's <title> prefix, a CMS's "Redaktion" meta author, a copyright year as the date).
    articles = _articles(corpus_pages)
    metas = [(p, corpus_extracts["served"][p.url][1]) for p in articles]
    titles = [p.file for p, m in metas if m["title"] == p.title]
    authors = [p.file for p, m in metas if p.author in (m["author"] or "")]
    dates = [p.file for p, m in metas if m["date"] == p.date]
    assert len(titles) >= 27 and len(authors) >= 27 and len(dates) >= 29, (len(titles), len(authors), len(dates))
    assert all(p.title and p.author and re.fullmatch(r"\d{4}-\d\d-\d\d", p.date) for p in articles)
    bylines = {p.file: corpus_extracts["served"][p.url][0].split("\n")[1] for p in articles}
    for file in dates:
        page = next(p for p in articles if p.file == file)
        assert bylines[file].endswith(f"date {page.date}"), (file, bylines[file])  # the header line says it too
