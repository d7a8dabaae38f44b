"""What an extraction worker spends on an article page besides trafilatura, old reader against new.

    .venv/bin/python benchmarks/bench_reader.py                  # CPU ms per page, 5 rounds, in this process
    .venv/bin/python benchmarks/bench_reader.py --check          # and: old and new give the same on every page
    .venv/bin/python benchmarks/bench_reader.py --pages corpus   # tests/data instead of ../shared/testdata

In one process, over every article page of the page set (benchmarks/pagesets.py),
CPU time (time.process_time) per page; the jobs take turns on each page and each
page counts its least time over `--rounds` rounds (the machine's drift, tens of
percent on a shared one, falls on every job alike):

- extract_article alone (decode, parse, trafilatura, our text form);
- read_page as a worker runs it for a followed article (links, requisites, text);
- its parts on a tree parsed once: links (LinkExtractor as before: the old reader,
  tests/reader_oracle.py; the single walk: spiders.pagereader.tree_links) and requisites
  (XPath and tinycss2 before; spiders.requisites.html_requisites now), the response both read;
  "no CSS text seen before": the parsed-CSS cache emptied before each page (the cost
  of a page whose <style>s no page before it had; a site's template repeats them);
- the pickling of a job and its result across the pool (what ProcessPoolExecutor sends).

`--check` compares, on every page and under three scopes (the benchmark site's
127.0.0.1, the page's own host, no hosts), the old and new links and requisites,
and read_page's article with extract_article's: any difference is printed and
the exit status is 1. Pages are served as the benchmark site serves them (the
Content-Type their page set gives).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "tests", ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import trafilatura  # noqa: E402
from scrapy.utils.response import get_base_url  # noqa: E402

from reader_oracle import old_html_requisites, old_page_links  # noqa: E402  (tests/: the oracle)
from spiders.extraction import decode_html, extract_article  # noqa: E402
from spiders.pagereader import LinkRules, _response, read_page, tree_links  # noqa: E402
from spiders.requisites import _CSS_TEXTS, html_requisites  # noqa: E402
from spiders.scrapy_internals import with_tree  # noqa: E402

EXTRACTOR = "spiders.extraction.extract_article"
REQUISITES = "spiders.requisites.html_requisites"
SITE_URL = "http://127.0.0.1:8000/2026/11/story-{}.html"  # where the benchmark site serves article I


def load(page_set: str | None):
    from pagesets import default_set, load_pages

    return [p for p in load_pages(page_set or default_set()) if p.kind == "article"]


def tree_of(page):
    return trafilatura.load_html(decode_html(page.body, page.content_type))


def cpu_ms(pages, jobs: dict, rounds: int) -> dict[str, float]:
    """CPU ms per page of each job(i, page): jobs take turns on each page, each page's
    cost is its least over `rounds` rounds, so the machine's drift falls on all alike."""
    for i, page in enumerate(pages):  # warm: caches, lru_caches, first-call costs
        for job in jobs.values():
            job(i, page)
    least = {name: [float("inf")] * len(pages) for name in jobs}
    for _ in range(rounds):
        for i, page in enumerate(pages):
            for name, job in jobs.items():
                start = time.process_time()
                job(i, page)
                least[name][i] = min(least[name][i], time.process_time() - start)
    return {name: sum(costs) / len(pages) * 1000 for name, costs in least.items()}


def scopes(i, page):
    own = urlsplit(page.url).hostname or "example.com"
    yield "127.0.0.1", SITE_URL.format(i), LinkRules(hosts=("127.0.0.1",), requisites=REQUISITES)
    yield "own host", page.url, LinkRules(deny=(r"/tag/", r"\?share="), hosts=(own,), requisites=REQUISITES)
    yield "no hosts", page.url, LinkRules(hosts=None, requisites=REQUISITES)


def check(pages) -> int:
    differences = 0
    for i, page in enumerate(pages):
        for name, url, rules in scopes(i, page):
            old_tree, new_tree = tree_of(page), tree_of(page)
            old_response = with_tree(_response(page.body, url, page.content_type), old_tree)
            new_response = with_tree(_response(page.body, url, page.content_type), new_tree)
            old = (old_page_links(old_response, old_tree, rules), old_html_requisites(old_response))
            new = (tree_links(new_response, new_tree, rules), html_requisites(new_response))
            for what, a, b in (("links", old[0], new[0]), ("requisites", old[1], new[1])):
                if a != b:
                    differences += 1
                    print(f"DIFFERENT {what}: {page.file} ({name}): old {len(a)}, new {len(b)}; "
                          f"first difference: {next((x, y) for x, y in zip(a + [None], b + [None]) if x != y)}")
            read = read_page(EXTRACTOR, page.body, url=url, content_type=page.content_type, links=rules)
            if read.links != old[0] or read.requisites != old[1]:
                differences += 1
                print(f"DIFFERENT read_page links/requisites: {page.file} ({name})")
            try:
                alone = extract_article(page.body, url=url, content_type=page.content_type)
            except Exception as exc:  # noqa: BLE001 (compared as the error it is)
                alone = repr(exc)
            got = read.article if read.error is None else repr(read.error)
            if got != alone:
                differences += 1
                print(f"DIFFERENT article: {page.file} ({name})")
    print(f"checked {len(pages)} pages x 3 scopes: {differences} differences")
    return differences


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", choices=("shared", "corpus"), default=None, help="page set (default: shared if present)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--check", action="store_true", help="also check old and new give the same on every page")
    args = ap.parse_args(argv)
    pages = load(args.pages)
    rules = LinkRules(hosts=("127.0.0.1",), requisites=REQUISITES)
    if args.check and check(pages):
        return 1

    trees = [tree_of(p) for p in pages]

    def response(i, page):
        return with_tree(_response(page.body, SITE_URL.format(i), page.content_type), trees[i])

    def alone(i, page):
        try:
            extract_article(page.body, url=SITE_URL.format(i), content_type=page.content_type)
        except Exception:  # noqa: BLE001 (a page without an article costs what it costs)
            pass

    def full(i, page):
        read_page(EXTRACTOR, page.body, url=SITE_URL.format(i), content_type=page.content_type, links=rules)

    def full_cold(i, page):
        _CSS_TEXTS.clear()
        full(i, page)

    def old_full(i, page):  # read_page before: a response each for LinkExtractor and the XPath reader
        url = SITE_URL.format(i)

        def on_parsed(tree):
            old_page_links(with_tree(_response(page.body, url, page.content_type), tree), tree, rules)
            old_html_requisites(with_tree(_response(page.body, url, page.content_type), tree))
        try:
            extract_article(page.body, url=url, content_type=page.content_type, on_parsed=on_parsed)
        except Exception:  # noqa: BLE001
            pass

    def requisites_cold(i, page):
        _CSS_TEXTS.clear()
        html_requisites(response(i, page))

    def pickled(i, page):
        job = pickle.dumps((read_page, (EXTRACTOR, page.body), {"url": SITE_URL.format(i), "links": rules}))
        pickle.loads(job)
        pickle.loads(pickle.dumps(results[i]))

    results = [read_page(EXTRACTOR, p.body, url=SITE_URL.format(i), content_type=p.content_type, links=rules)
               for i, p in enumerate(pages)]
    def base_url_and_encoding(i, page):
        r = response(i, page)
        return r.encoding, get_base_url(r)

    rows = list(cpu_ms(pages, {
        "extract_article alone": alone,
        "read_page (links, requisites, article)": full,
        "read_page, no CSS text seen before": full_cold,
        "read_page as before (the old reader)": old_full,
        "  response (Scrapy: base URL, encoding)": base_url_and_encoding,
        "  links, old (LinkExtractor)": lambda i, p: old_page_links(response(i, p), trees[i], rules),
        "  links, new (tree_links)": lambda i, p: tree_links(response(i, p), trees[i], rules),
        "  requisites, old (XPath, tinycss2)": lambda i, p: old_html_requisites(response(i, p)),
        "  requisites, new (html_requisites)": lambda i, p: html_requisites(response(i, p)),
        "  requisites, new, no CSS text seen before": requisites_cold,
        "  pickling: job in, result out": pickled,
    }, args.rounds).items())
    print(f"{len(pages)} article pages, CPU ms per page (least per page over {args.rounds} rounds, one process)")
    for name, ms in rows:
        print(f"  {name:<44} {ms:7.2f}")
    for name, ms in rows[1:4]:
        print(f"  {name + ' - extract_article alone':<66} {ms - rows[0][1]:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
