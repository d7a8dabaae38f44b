"""What a run has requested already: the gates' record, and a cheap look-up before a Request is built.

The gates on `request_scheduled` (NewsSpider._gate for pages,
RequisiteMiddleware._gate for requisites) judge duplicates by request
fingerprint and stay the only judges. A site's pages share most of their links
and nearly all of their stylesheets, scripts and logos, so most URLs a page
names were requested long before; building a Request for each, passing it
through the spider middlewares, the engine and the signal, and refusing it
there was a large share of the crawl process's CPU (benchmarks/README.md).

So the gates also keep the exact URL of every request they admit (or skip as
archived), and the spider and the requisite middleware look a URL up before
building anything. A URL string seen before gives the same fingerprint (same
method, no body), so this drops nothing the gate would let through; a URL that
differs only in spelling still reaches the gate and is judged there.
"""

from __future__ import annotations


class Requested:
    """Fingerprints the gates admitted this run, and the URLs they were admitted as."""

    def __init__(self) -> None:
        self._fingerprints: set[bytes] = set()
        self._urls: set[str] = set()

    def add(self, fingerprint: bytes, url: str) -> None:
        self._fingerprints.add(fingerprint)
        self._urls.add(url)

    def __contains__(self, fingerprint: bytes) -> bool:
        return fingerprint in self._fingerprints

    def __len__(self) -> int:
        return len(self._fingerprints)

    def has_url(self, url: str) -> bool:
        """True when a GET of exactly `url` was requested (or skipped as archived) already."""
        return url in self._urls
