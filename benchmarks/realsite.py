"""A news site of real pages on 127.0.0.1, for the pipeline benchmark.

Article pages are real news pages (benchmarks/pagesets.py: the evaluation set
in ../shared/testdata when it is there, else the repository's corpus in
tests/data), multiplied: copy I of a page gets its own URL (/2026/11/story-I.html) and its
own text (a paragraph naming its edition, with a link to the next story and a
link to a page that is gone), so neither the URL dedupe nor the payload digest
folds copies together. Listing pages (/news/page-K.html) link 20 stories and a
few dead ones; the home page links every listing. A crawl of depth 3 from the
home page fetches:

    robots.txt, /, N/20 listings, N articles, N + N/4 dead links (404)

that is ~2.3 pages per article, about the share of small pages a real news
crawl sees (issue 10: 3,800 listing and 404 pages for 1,810 articles).

`typical_pages()` keeps the pages whose extraction (trafilatura alone) costs
10-30 ms CPU here: on the shared set, the middle of the distribution (mean
~19 ms, median ~18 ms), without the long tail that would hide the crawl's own
cost. Each is served with the Content-Type its page set gives it (the
charset its own <meta> names).

The server runs in a process of its own (asyncio, bodies assembled from the
page and the edition's paragraph per request, nothing stored per article) and
counts the requests it answered in a shared counter, so the benchmark knows
how many pages a crawl has fetched without asking the crawl.

With `encoding="gzip"` (the default) it answers a request whose
Accept-Encoding names gzip as news sites' servers and CDNs do: HTML gzipped
at level 6 (`Content-Encoding: gzip`, `Vary: Accept-Encoding`). An article is
three gzip members in a row, its page's head and tail compressed once and the
edition's paragraph per request, so serving costs the shared cores next to
nothing. RFC 1952 allows a sequence of members, and the readers here (Scrapy's
gunzip, storage.contentcoding, warcio, Python's gzip) decode it as one body.
`encoding="identity"` sends every body as it is.
"""

from __future__ import annotations

import asyncio
import gzip
import multiprocessing
import os
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "tests", ROOT / "benchmarks"):  # pagesets and the corpus of tests/data
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

PER_LISTING = 20  # stories linked from a listing page
DEAD_PER_LISTING = 5  # dead links on a listing page
ARTICLE_PATH = "/2026/11/story-{}.html"
ARTICLE_PATH_PATTERN = re.compile(r"/2026/11/story-(\d+)\.html")  # ARTICLE_PATH; group 1 is I
DEAD_ARTICLE_PATH = "/2026/11/gone-{}.html"  # linked from story I: 404
DEAD_LISTED_PATH = "/2026/10/removed-{}-{}.html"  # linked from listing K: 404
ALLOW = r"/2026/\d{2}/"
WORDS = ("council", "harbour", "budget", "election", "river", "school", "court", "market", "storm",
         "museum", "railway", "hospital", "festival", "bridge", "library", "station")


@dataclass(frozen=True)
class BasePage:
    name: str
    body: bytes
    content_type: str
    ms: float = 0.0  # trafilatura alone, CPU ms (typical_pages)


def load_pages(page_set: str | None = None) -> list[BasePage]:
    """The article pages of a page set (benchmarks/pagesets.py; default: shared when present)."""
    from pagesets import default_set, load_pages as load_set

    return [BasePage(p.file, p.body, p.content_type)
            for p in sorted(load_set(page_set or default_set()), key=lambda p: p.file) if p.kind == "article"]


def trafilatura_alone(body: bytes, url: str, content_type: str | None = "text/html") -> None:
    """The bound: what extraction costs with nothing around it (as bench_extraction.py times it)."""
    import trafilatura

    from spiders.extraction import decode_html

    trafilatura.bare_extraction(decode_html(body, content_type), url=url, with_metadata=True)


def typical_pages(pages: list[BasePage], low_ms: float = 10.0, high_ms: float = 30.0, rounds: int = 2,
                  at_least: int = 8) -> list[BasePage]:
    """The pages whose trafilatura extraction costs low..high ms CPU, with that cost.

    A page set with fewer than `at_least` such pages (the small corpus of
    tests/data) is used whole.
    """
    timed = []
    for page in pages:
        trafilatura_alone(page.body, "http://127.0.0.1/", page.content_type)  # warm: first calls fill caches
        start = time.process_time()
        for _ in range(rounds):
            trafilatura_alone(page.body, "http://127.0.0.1/", page.content_type)
        timed.append(replace(page, ms=(time.process_time() - start) / rounds * 1000))
    typical = [p for p in timed if low_ms <= p.ms <= high_ms]
    return typical if len(typical) >= at_least else timed


_FIRST_P = re.compile(rb"<p[\s>]", re.IGNORECASE)
_BODY = re.compile(rb"<body[^>]*>", re.IGNORECASE)


GZIP_LEVEL = 6  # zlib's default, and so Apache mod_deflate's


class Site:
    """The pages of the site, computed from a path; bodies built per request."""

    def __init__(self, bases: list[BasePage], articles: int, encoding: str = "gzip"):
        if encoding not in ("gzip", "identity"):
            raise ValueError(f"encoding must be gzip or identity, not {encoding!r}")
        self.articles = articles
        self.encoding = encoding
        self.listings = (articles + PER_LISTING - 1) // PER_LISTING
        self.bases = [self._split(b.body) for b in bases]
        self.gzipped_bases = [tuple(gzip.compress(part, GZIP_LEVEL, mtime=0) for part in base)
                              for base in self.bases] if encoding == "gzip" else []
        self.content_types = [b.content_type for b in bases]

    @staticmethod
    def _split(body: bytes) -> tuple[bytes, bytes]:
        body_tag = _BODY.search(body)
        start = body_tag.end() if body_tag else 0
        m = _FIRST_P.search(body, start)
        at = m.start() if m else start
        return body[:at], body[at:]

    def pages(self) -> int:
        """Pages a crawl of depth 3 fetches: robots.txt, home, listings, articles, dead links."""
        return 2 + self.listings + self.articles + self.articles + self.listings * DEAD_PER_LISTING

    def content_type(self, i: int) -> str:
        return self.content_types[i % len(self.content_types)]

    def _edition(self, i: int) -> bytes:
        words = " ".join(WORDS[(i >> s) % len(WORDS)] for s in range(0, 24, 4))
        return (f'<p>Edition {i} of this report, filed as story number {i}: {words}. '
                f'<a href="{ARTICLE_PATH.format((i + 1) % self.articles)}">Next story</a> '
                f'<a href="{DEAD_ARTICLE_PATH.format(i)}">Earlier coverage</a></p>\n').encode("ascii")

    def article(self, i: int) -> bytes:
        head, tail = self.bases[i % len(self.bases)]
        return head + self._edition(i) + tail

    def gzipped_article(self, i: int) -> bytes:
        """article(i) as gzip members: the page's head and tail compressed once, the edition now."""
        head, tail = self.gzipped_bases[i % len(self.gzipped_bases)]
        return head + gzip.compress(self._edition(i), GZIP_LEVEL, mtime=0) + tail

    def listing(self, k: int) -> bytes:
        links = [f'<li><a href="{ARTICLE_PATH.format(i)}">Story {i}</a></li>'
                 for i in range(k * PER_LISTING, min(self.articles, (k + 1) * PER_LISTING))]
        links += [f'<li><a href="{DEAD_LISTED_PATH.format(k, j)}">Removed {k}-{j}</a></li>'
                  for j in range(DEAD_PER_LISTING)]
        return (f"<!doctype html><html><head><title>News, page {k}</title></head><body><h1>News</h1>"
                f"<ul>{''.join(links)}</ul></body></html>").encode("utf-8")

    def home(self) -> bytes:
        links = "".join(f'<li><a href="/news/page-{k}.html">Page {k}</a></li>' for k in range(self.listings))
        return f"<!doctype html><html><head><title>Bench news</title></head><body><ul>{links}</ul></body></html>".encode()

    def respond(self, path: str, accepts_gzip: bool = False) -> tuple[int, str, bytes, str | None]:
        """(status, content type, body, content coding) for a path; HTML is gzipped when the
        client accepts it and the site serves gzip, robots.txt never."""
        gzipped = accepts_gzip and self.encoding == "gzip"
        coding = "gzip" if gzipped else None

        def html(body: bytes) -> bytes:
            return gzip.compress(body, GZIP_LEVEL, mtime=0) if gzipped else body

        path = path.split("?", 1)[0]
        if path == "/robots.txt":
            return 200, "text/plain", b"User-agent: *\nAllow: /\n", None
        if path in ("/", "/index.html"):
            return 200, "text/html; charset=utf-8", html(self.home()), coding
        m = re.fullmatch(r"/news/page-(\d+)\.html", path)
        if m and int(m.group(1)) < self.listings:
            return 200, "text/html; charset=utf-8", html(self.listing(int(m.group(1)))), coding
        m = ARTICLE_PATH_PATTERN.fullmatch(path)
        if m and int(m.group(1)) < self.articles:
            i = int(m.group(1))
            return 200, self.content_type(i), self.gzipped_article(i) if gzipped else self.article(i), coding
        return 404, "text/html; charset=utf-8", html(b"<html><body><h1>Not found</h1></body></html>"), coding


def _http(status: int, ctype: str, body: bytes, coding: str | None) -> bytes:
    reason = "OK" if status == 200 else "Not Found"
    coded = f"Content-Encoding: {coding}\r\nVary: Accept-Encoding\r\n" if coding else ""
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n{coded}Content-Length: {len(body)}\r\n"
            f"Connection: keep-alive\r\n\r\n").encode("latin-1") + body


_ACCEPTS_GZIP = re.compile(rb"^accept-encoding:[^\r\n]*\bgzip\b", re.IGNORECASE | re.MULTILINE)


def _serve(site: Site, counter, port_queue) -> None:
    async def main() -> None:
        class Http(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                self.buf = b""

            def data_received(self, data):
                self.buf += data
                while b"\r\n\r\n" in self.buf:
                    head, self.buf = self.buf.split(b"\r\n\r\n", 1)
                    parts = head.split(b"\r\n", 1)[0].split(b" ")
                    path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
                    accepts_gzip = _ACCEPTS_GZIP.search(head) is not None
                    self.transport.write(_http(*site.respond(path, accepts_gzip)))
                    with counter.get_lock():
                        counter.value += 1

        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=512)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


class SiteProcess:
    """The site served from a forked process; `served` counts requests answered."""

    def __init__(self, site: Site):
        self.site = site  # what it serves, for checking what a crawl of it stored
        ctx = multiprocessing.get_context("fork")
        self.counter = ctx.Value("Q", 0)
        ports = ctx.Queue()
        self.proc = ctx.Process(target=_serve, args=(site, self.counter, ports), daemon=True)
        self.proc.start()
        self.port = ports.get(timeout=30)
        self.base = f"http://127.0.0.1:{self.port}"

    @property
    def served(self) -> int:
        return self.counter.value

    def reset(self) -> None:
        with self.counter.get_lock():
            self.counter.value = 0

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)


def sources_toml(base: str, name: str = "bench") -> str:
    return (f'[[source]]\nname = "{name}"\nstart_urls = ["{base}/"]\nallow = [\'{ALLOW}\']\n'
            f"depth = 3\nmax_pages = 1000000\ndelay = 0\nconcurrency = 16\n")


if __name__ == "__main__":  # serve a site by hand: python benchmarks/realsite.py [ARTICLES]
    proc = SiteProcess(Site(typical_pages(load_pages()), int(sys.argv[1]) if len(sys.argv) > 1 else 100))
    print(proc.base, flush=True)
    try:
        proc.proc.join()
    except KeyboardInterrupt:
        os._exit(0)
