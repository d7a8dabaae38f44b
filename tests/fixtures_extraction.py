"""Fixtures for the extraction tests: the corpus of tests/data extracted once, and a news-page builder."""

from __future__ import annotations

import html as htmlmod
import json
from concurrent.futures import ProcessPoolExecutor

import pytest

from corpus import CorpusPage, load_corpus

# How a page reaches the extractor: with the Content-Type its server sends, and
# as a bare "text/html" (a server that names no charset, or a re-extraction that lost it).
MODES = {
    "served": lambda p: p.content_type,
    "bare": lambda p: "text/html",
}


def _extract_for_eval(args):
    # Top level so the pool can pickle it; returns (text, metadata) or ("ERROR <line>", {}).
    from spiders.extraction import ExtractionError, extract_article

    body, url, content_type = args
    try:
        article = extract_article(body, url=url, content_type=content_type)
        return article.text, article.metadata
    except ExtractionError as exc:
        return f"ERROR {exc}", {}


@pytest.fixture(scope="session")
def corpus_pages() -> tuple[CorpusPage, ...]:
    return load_corpus()


@pytest.fixture(scope="session")
def corpus_extracts(corpus_pages) -> dict[str, dict[str, tuple[str, dict]]]:
    """{mode: {url: (text, metadata)}} for every corpus page in each of MODES."""
    jobs = [(mode, p.url, (p.body, p.url, ct(p))) for mode, ct in MODES.items() for p in corpus_pages]
    with ProcessPoolExecutor() as pool:  # trafilatura runs in processes, never threads
        results = list(pool.map(_extract_for_eval, [j[2] for j in jobs], chunksize=4))
    out: dict[str, dict[str, tuple[str, dict]]] = {m: {} for m in MODES}
    for (mode, url, _), result in zip(jobs, results):
        out[mode][url] = result
    return out


def build_news_page(
    *,
    title: str = "Putin invites Biden to live talks over 'killer' remark",
    paragraphs: list[str] | None = None,
    author: str | None = "WION Web Team",
    published: str | None = "2021-03-19T10:20:00+05:30",
    lang: str | None = "en",
    meta_charset: str | None = None,
    extra_head: str = "",
    extra_article: str = "",
    jsonld: dict | None = None,
) -> str:
    """A realistic news article page: site chrome around an <article>."""
    paragraphs = paragraphs if paragraphs is not None else [
        "Russian President Vladimir Putin on March 18 extended an invitation to his American "
        "counterpart, Joe Biden, to hold virtual talks over his \u2018killer\u2019 remark.",
        "Speaking on the sidelines of an event marking seven years since Russia\u2019s annexation "
        "of Crimea, Putin hit back at Biden and challenged him to hold a \u201clive-broadcast\u201d discussion.",
        "\u201cI want to propose to President Biden to continue our discussion, but on the condition "
        "that we do it basically live,\u201d Putin said in remarks broadcast by state television.",
        "The White House suggested that the discussion was unlikely to happen as Biden would be in "
        "Georgia on Friday and quite busy with a working trip.",
    ]
    e = htmlmod.escape
    head = [f'<meta charset="{meta_charset}">' if meta_charset else "", f"<title>{e(title)} | WION</title>"]
    if published:
        head.append(f'<meta property="article:published_time" content="{published}">')
    if author:
        head.append(f'<meta name="author" content="{e(author)}">')
    head.append('<meta property="og:site_name" content="WION">')
    head.append('<meta name="description" content="Putin challenges Biden to a live debate.">')
    head.append('<link rel="canonical" href="https://www.wionews.com/world/putin-biden">')
    if jsonld is not None:
        head.append(f'<script type="application/ld+json">{json.dumps(jsonld)}</script>')
    head.append(extra_head)
    body_ps = "\n".join(f"<p>{e(p, quote=False)}</p>" for p in paragraphs)
    lang_attr = f' lang="{lang}"' if lang else ""
    return f"""<!DOCTYPE html>
<html{lang_attr}><head>{''.join(head)}</head>
<body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/business">Business</a></li><li><a href="/sports">Sports</a></li></ul></nav></header>
<main><article>
<h1>{e(title)}</h1>
{f'<p class="byline">By {e(author)}</p>' if author else ''}
{extra_article}
{body_ps}
</article>
<aside><h2>Related stories</h2><ul><li><a href="/a">Another story about something else</a></li>
<li><a href="/b">Yet another story</a></li></ul></aside></main>
<footer><p>Copyright 2021 WION. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>"""


@pytest.fixture
def news_page():
    """The page builder: news_page(title=..., paragraphs=[...], ...) -> str."""
    return build_news_page
