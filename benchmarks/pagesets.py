"""The page sets the benchmarks run on.

    shared   trafilatura's evaluation set, 107 real pages, in ../shared/testdata/trafilatura-eval
             beside the checkout ($NEWSARCHIVE_TESTDATA names another testdata folder). Real
             publishers' content: read here, never copied into the repository or the tests.
    corpus   the repository's own 32 pages (tests/data), always there.

load_pages(name) -> list[Page]; default_set() is "shared" when it is present, else "corpus".
A Page has what tests/newssite.py's generated site and the extraction benchmarks read.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Page:
    url: str
    file: str
    body: bytes = field(repr=False)
    content_type: str  # what a server sends with it (for the real pages: the label their own <meta> gives)
    charset: str  # the encoding of the bytes (for the real pages: their label if the bytes decode with it)
    declared: str | None  # the charset the page's own <meta> names (None: none)
    language: str = "en"
    with_: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    title: str | None = None
    author: str | None = None
    date: str | None = None
    kind: str = "article"

    @property
    def utf8(self) -> bool:
        try:
            self.body.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False


def shared_dir() -> Path:
    testdata = os.environ.get("NEWSARCHIVE_TESTDATA")
    return (Path(testdata) if testdata else ROOT.parent / "shared" / "testdata") / "trafilatura-eval"


def _true_charset(body: bytes, declared: str | None) -> str:
    """Its <meta> charset if the bytes decode with it; else windows-1252 (the pages that claim
    UTF-8, or nothing, and are not)."""
    label = (declared or "utf-8").lower()
    try:
        body.decode(label)
        return label
    except (UnicodeDecodeError, LookupError):
        return "windows-1252"


def _text(value) -> str | None:
    """A metadata value of the evaluation set as one string: a list of authors gives the first."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _load_shared() -> list[Page]:
    where = shared_dir()
    data = json.loads((where / "evaldata.json").read_text(encoding="utf-8"))
    pages = []
    for url, e in data.items():
        body = (where / "html" / e["file"]).read_bytes()
        m = _META_CHARSET.search(body[:16384])
        declared = m.group(1).decode("ascii", "replace") if m else None
        charset = _true_charset(body, declared)
        # A server that labels each page as the page labels itself (the label may be wrong: 4
        # pages say UTF-8 and carry windows-1252 bytes too); "text/html" when it says nothing.
        content_type = f"text/html; charset={declared}" if declared else "text/html"
        pages.append(Page(url=url, file=e["file"], body=body, content_type=content_type,
                          charset=charset, declared=declared, with_=tuple(e.get("with", [])),
                          without=tuple(e.get("without", [])), title=_text(e.get("title")),
                          author=_text(e.get("author")), date=_text(e.get("date"))))
    return pages


def _load_corpus() -> list[Page]:
    from corpus import load_corpus

    return [Page(url=p.url, file=p.file, body=p.body, content_type=p.content_type, charset=p.charset,
                 declared=p.declared, language=p.language, with_=p.with_, without=p.without, title=p.title,
                 author=p.author, date=p.date, kind=p.kind) for p in load_corpus()]


def available() -> list[str]:
    return (["shared"] if (shared_dir() / "evaldata.json").is_file() else []) + ["corpus"]


def default_set() -> str:
    return available()[0]


def load_pages(name: str) -> list[Page]:
    if name == "shared":
        if "shared" not in available():
            raise FileNotFoundError(f"no evaluation pages at {shared_dir()} (set NEWSARCHIVE_TESTDATA)")
        return _load_shared()
    if name == "corpus":
        return _load_corpus()
    raise ValueError(f"unknown page set {name!r} (shared or corpus)")
