"""The test corpus in tests/data: our own news pages, their bytes as servers send them, and what each must yield.

    load_corpus() -> list[CorpusPage]     (cached; the order of evaldata.json)
    page(key) -> CorpusPage               the one page whose file name or URL contains key

tests/data/README.md says what each page is for; tests/data/make_pages.py builds
the non-UTF-8 ones from their UTF-8 sources in tests/data/src.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class CorpusPage:
    url: str  # where the page "lives" (a .example host); the test site serves it under /news + its path
    file: str  # tests/data/html/<file>: the exact bytes
    kind: str  # "article" or "listing"
    cms: str  # what kind of site made it (why it is here)
    language: str
    charset: str  # the encoding of the bytes, as a label (utf-8, windows-1251, gb2312, ...)
    declared: str  # where the charset is said: header | meta | both | header-over-meta | none | bom | wrong-header
    content_type: str  # what a server sends with it
    body: bytes = field(repr=False)
    with_: tuple[str, ...] = ()  # passages the clean text must contain
    without: tuple[str, ...] = ()  # boilerplate the clean text must not contain
    title: str | None = None
    author: str | None = None
    date: str | None = None  # YYYY-MM-DD
    source: str | None = None  # the UTF-8 source of a generated page (src/...)
    bom: bool = False
    stray: str | None = None  # the charset of stray bytes inside a UTF-8 page

    @property
    def is_article(self) -> bool:
        return self.kind == "article"

    @property
    def legacy(self) -> bool:
        """Bytes that are not plain UTF-8 (a legacy charset, or UTF-8 with stray bytes)."""
        return self.charset != "utf-8" or self.stray is not None

    def decode_as_described(self, data: bytes | None = None) -> str:
        """Decode `data` (default: the page) strictly as this entry says the bytes are encoded."""
        entry = {"charset": self.charset, "bom": self.bom, "stray": self.stray}
        return page_builder().decoded(entry, self.body if data is None else data)

    @property
    def expected_html(self) -> str:
        """The text a correct decoder makes of the bytes: the UTF-8 source we wrote."""
        if self.source:
            return (DATA / self.source).read_text(encoding="utf-8")
        return self.body.decode("utf-8")


@functools.cache
def load_corpus() -> tuple[CorpusPage, ...]:
    evaldata = json.loads((DATA / "evaldata.json").read_text(encoding="utf-8"))
    pages = []
    for url, e in evaldata.items():
        pages.append(CorpusPage(
            url=url, file=e["file"], kind=e["kind"], cms=e["cms"], language=e["language"], charset=e["charset"],
            declared=e["declared"], content_type=e["content_type"], body=(DATA / "html" / e["file"]).read_bytes(),
            with_=tuple(e["with"]), without=tuple(e["without"]), title=e.get("title"), author=e.get("author"),
            date=e.get("date"), source=e.get("source"), bom=bool(e.get("bom")), stray=e.get("stray")))
    return tuple(pages)


def page(key: str) -> CorpusPage:
    hits = [p for p in load_corpus() if key in p.file or key in p.url]
    if len(hits) != 1:
        raise KeyError(f"{key!r} matches {len(hits)} corpus pages")
    return hits[0]


@functools.cache
def page_builder():
    """tests/data/make_pages.py as a module (it is a script beside the data, not a package)."""
    spec = importlib.util.spec_from_file_location("make_pages", DATA / "make_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
