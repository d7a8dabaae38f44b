"""Page requisites: the stylesheets, images, fonts and scripts a page needs to look like itself.

`RequisiteMiddleware` (spider middleware 800, closer to the spider than
Scrapy's RefererMiddleware, so requisites carry the page as Referer) reads every
page the spider read (2xx HTML within the parse limits: NewsSpider.parse_page
marks it with PAGE_READ_META), article or listing, and requests what it needs:

    <link rel=stylesheet>, rel=icon, rel=preload|modulepreload as style/font/script/image
    <img src>, the first candidate of <img srcset> and <picture><source srcset>, <video poster>
    <script src>, <input type=image src>
    url() and @import in <style> elements, style="" attributes and every stylesheet archived

Each is a Request marked with REQUISITE_META (its kind); nothing else makes
one. They are archived byte for byte like pages (spiders.warccapture, the same
WARC response and request records, so replay, CDXJ, WACZ and pywb see them),
never text-extracted, never counted as pages or articles (stats under
`newsarchive/requisites/*`, the stats JSON's "requisites").

What is fetched is judged on `request_scheduled`, where the spider judges its
pages, so redirects and retries of requisites are judged too:

- scope: http(s) only, on the source's own hosts or its `requisite_hosts`
  (spiders.guard.Scope(requisites=True)), not matching the source's `deny`; ScopeGuardMiddleware and the
  connection-time address guard hold the same line behind it. Off-scope and
  `data:` requisites are not fetched and are no failure (like links to other
  sites); a requisite's redirect off scope is a refusal, counted like a page's.
- once per run: one fingerprint set with the spider's pages, so a stylesheet
  shared by every page (or also a start URL) is fetched once.
- recheck: a requisite the archive holds (any status) from less than
  Source.requisite_recheck hours ago is not fetched again; replay takes the
  nearest capture (spiders.seen.SeenCaptures.requisite_due).
- budget: at most Source.requisite_budget requests per run (`max_requisites`;
  0 switches requisites off for the source), redirect hops included.
- robots.txt is obeyed for requisites as for pages.

NEWSARCHIVE_REQUISITES = False switches the middleware off (NotConfigured).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from urllib.parse import urldefrag, urljoin

import tinycss2
from lxml import etree
from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, Request, Response
from scrapy.utils.response import get_base_url

from spiders.failures import error_kind, status_kind
from spiders.guard import REQUISITE_META, Refused, Scope, record_refusal, redact_url
from spiders.limits import ForbiddenByRobots
from spiders.news import PAGE_READ_META, PAGE_REQUISITES_META
from spiders.requested import Requested

logger = logging.getLogger(__name__)

# request.meta: [url, redirect count] of a requisite the gate admitted (a retry carries it unchanged)
ADMITTED_META = "newsarchive_requisite_admitted"
NESTING_META = "newsarchive_requisite_nesting"  # @import / url() hops from the page
MAX_NESTING = 4  # a stylesheet importing a stylesheet ... this deep at most
# Between articles (10) and feeds (20): a page's requisites are fetched close to the page,
# so its capture and theirs are close in time (replay takes the nearest capture of each).
PRIORITY = 15
STATS = "newsarchive/requisites"

_FONT = re.compile(r"\.(woff2?|ttf|otf|eot)$", re.I)
_CSS = re.compile(r"\.css$", re.I)
_PRELOAD_AS = {"style": "stylesheet", "font": "font", "script": "script", "image": "image"}
_NOT_FETCHED = ("data:", "javascript:", "about:", "blob:", "mailto:", "#")


def _first_candidate(srcset: str) -> str | None:
    """The first URL of a srcset ("a.jpg 1x, b.jpg 2x" -> a.jpg)."""
    first = srcset.strip().split(",", 1)[0].strip()
    return first.split()[0] if first else None


def html_requisites(response: HtmlResponse) -> list[tuple[str, str]]:
    """(absolute URL, kind) of what the page needs, in document order, duplicates removed."""
    return tree_requisites(response.selector.root, get_base_url(response))


_REQUISITE_TAGS = ("link", "img", "source", "input", "video", "script", "style")
# plain strings: lxml's "smart" ones hold their element, so the whole tree, alive
_STYLE_ATTRIBUTES = etree.XPath("//@style", smart_strings=False)
_TEXT_NODES = etree.XPath("text()", smart_strings=False)


def tree_requisites(root, base: str) -> list[tuple[str, str]]:
    """html_requisites over `root`, an lxml tree of the page, with `base` its base URL.

    One walk of the elements that can name a requisite (lxml filters the tags,
    so no other element becomes a Python object), grouped as they always were:
    <link>s, then images, posters, scripts, <style> texts and style=""
    attributes, each group in document order. `//` in XPath is the whole
    document, so the walk covers every top-level element of it (lxml's HTML
    parser leaves a second <html> beside the first on some broken pages).
    """
    links: list[tuple[str, str]] = []
    images: list[tuple[str, str]] = []
    posters: list[str] = []
    scripts: list[str] = []
    styles: list[str] = []
    for el in (el for top in _top_level(root) for el in top.iter(*_REQUISITE_TAGS)):
        tag = el.tag
        if tag == "link":
            href = el.get("href")
            if href is None:
                continue
            rel = set((el.get("rel") or "").lower().split())
            if "stylesheet" in rel and "alternate" not in rel:
                links.append((href, "stylesheet"))
            elif rel & {"icon", "apple-touch-icon"}:
                links.append((href, "image"))
            elif rel & {"preload", "modulepreload"}:
                kind = "script" if "modulepreload" in rel else _PRELOAD_AS.get((el.get("as") or "").lower())
                if kind:
                    links.append((href, kind))
        elif tag == "img" or (tag == "source" and _parent_tag(el) == "picture") or (
                tag == "input" and el.get("type") == "image"):
            images.append((el.get("src"), "image"))
            srcset = el.get("srcset")
            if srcset:
                images.append((_first_candidate(srcset), "image"))
        elif tag == "video":
            posters.append(el.get("poster"))
        elif tag == "script":
            scripts.append(el.get("src"))
        elif tag == "style":
            styles.extend(_TEXT_NODES(el))  # each text node, as //style/text() gives them
    found: list[tuple[str, str]] = []
    for url, kind in (*links, *images, *((p, "image") for p in posters), *((s, "script") for s in scripts)):
        if url and url.strip():
            found.append((urljoin(base, url.strip()), kind))
    for css in styles:
        found.extend(css_requisites(css, base))
    for css in _STYLE_ATTRIBUTES(root):
        found.extend(css_requisites(css, base, declarations=True))
    return _unique(found)


def _top_level(root) -> list:
    """The document's top-level elements, in document order."""
    first = root.getroottree().getroot()
    return [*reversed(list(first.itersiblings(preceding=True))), first, *first.itersiblings()]


def _parent_tag(el) -> str | None:
    parent = el.getparent()
    return parent.tag if parent is not None else None


# What every url(), src() and @import needs in the CSS text itself when it has no escapes;
# with a backslash anywhere, tinycss2 decides (an escape can spell any of them).
_MAYBE_CSS_REFERENCE = re.compile(r"url\(|src\(|@import|\\", re.I)


def css_requisites(css: str | bytes, base_url: str, *, encoding: str | None = None,
                   declarations: bool = False) -> list[tuple[str, str]]:
    """(absolute URL, kind) of every @import and url() of a stylesheet (bytes: decoded as
    CSS says, its @charset or `encoding` from the HTTP header), or of a style="" attribute."""
    if isinstance(css, bytes):
        rules, _ = tinycss2.parse_stylesheet_bytes(css, protocol_encoding=encoding, skip_comments=True)
        references = _references(rules)
    elif not _MAYBE_CSS_REFERENCE.search(css):
        return []  # most style="" attributes and many <style>s: nothing tinycss2 could find
    else:
        references = _CSS_TEXTS.references(css, declarations)
    return _unique([(urljoin(base_url, url.strip()), kind) for url, kind in references])


def _references(rules) -> list[tuple[str, str]]:
    """(URL as written, kind) of every @import and url() in tinycss2's rules, in order."""
    found: list[tuple[str, str]] = []

    def url_of(token) -> str | None:
        if token.type == "url":
            return token.value
        if token.type == "function" and token.lower_name in ("url", "src"):
            strings = [t for t in token.arguments if t.type == "string"]
            return strings[0].value if strings else None
        return None

    def walk(tokens, kind_in: str | None) -> None:
        for token in tokens or ():
            url = url_of(token)
            if url is not None:
                found.append((url, kind_in or _kind_by_name(url)))
                continue
            if token.type == "at-rule":
                if token.lower_at_keyword == "import":
                    for t in token.prelude:
                        target = url_of(t) or (t.value if t.type == "string" else None)
                        if target is not None:
                            found.append((target, "stylesheet"))
                            break
                    continue
                inner = "font" if token.lower_at_keyword == "font-face" else kind_in
                walk(token.prelude, inner)
                walk(token.content, inner)
            elif token.type == "qualified-rule":
                walk(token.prelude, kind_in)
                walk(token.content, kind_in)
            elif token.type == "declaration":
                walk(token.value, kind_in)
            elif token.type == "function" or token.type in ("() block", "[] block", "{} block"):
                walk(getattr(token, "arguments", None) or getattr(token, "content", None), kind_in)

    walk(rules, None)
    return found


class _ParsedCss:
    """What tinycss2 found in recent CSS texts: a site's pages repeat their template's <style>s.

    The references are kept as written (not joined to a page's base), so a hit
    is exact for any page; the texts kept are bounded in total length.
    """

    MAX_CHARS = 1_000_000  # all texts kept, together (per worker)
    MAX_TEXT = 200_000  # a longer text is parsed each time

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[str, bool], tuple[tuple[str, str], ...]] = OrderedDict()
        self._chars = 0

    def references(self, css: str, declarations: bool) -> tuple[tuple[str, str], ...]:
        css = str(css)  # never an lxml smart string (it would keep its page's tree)
        key = (css, declarations)
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
            return found
        rules = (tinycss2.parse_blocks_contents(css, skip_comments=True) if declarations
                 else tinycss2.parse_stylesheet(css, skip_comments=True))
        found = tuple(_references(rules))
        if len(css) <= self.MAX_TEXT:
            self._kept[key] = found
            self._chars += len(css)
            while self._chars > self.MAX_CHARS:
                (old, _), _ = self._kept.popitem(last=False)
                self._chars -= len(old)
        return found

    def clear(self) -> None:
        self._kept.clear()
        self._chars = 0


_CSS_TEXTS = _ParsedCss()


def _kind_by_name(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    return "font" if _FONT.search(path) else "stylesheet" if _CSS.search(path) else "image"


def _unique(found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for url, kind in found:
        if url not in seen:
            seen.add(url)
            out.append((url, kind))
    return out


class RequisiteMiddleware:
    """Spider middleware: request each read page's requisites; judge, fetch and count them."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self.admitted = 0  # requests let through this run (the budget)
        self._source = None
        self._scope: Scope | None = None
        self._deny: list[re.Pattern] | None = None
        self._requested: Requested | None = None

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.getbool("NEWSARCHIVE_REQUISITES", True):
            raise NotConfigured("NEWSARCHIVE_REQUISITES is off: pages are archived without their requisites")
        mw = cls(crawler)
        crawler.signals.connect(mw._gate, signal=signals.request_scheduled)
        return mw

    # -- the source, once the spider exists ---------------------------------

    @property
    def source(self):
        if self._source is None:
            self._source = getattr(self.crawler.spider, "source", None)
        return self._source

    def scope(self) -> Scope:
        if self._scope is None:
            self._scope = Scope(self.source, requisites=True)
        return self._scope

    def denied(self, url: str) -> bool:
        """The source's `deny` regexes: never fetched, pages or requisites."""
        if self._deny is None:
            self._deny = [re.compile(p) for p in (self.source.deny if self.source is not None else ())]
        return any(p.search(url) for p in self._deny)

    def requested(self) -> Requested:
        """The run's requests, shared with the spider's gate (a spider without one: our own)."""
        if self._requested is None:
            self._requested = getattr(self.crawler.spider, "requested", None)
            if not isinstance(self._requested, Requested):
                self._requested = Requested()
        return self._requested

    @property
    def budget(self) -> int:
        return self.source.requisite_budget if self.source is not None else 0

    # -- finding requisites ---------------------------------------------------

    def process_spider_output(self, response, result, spider=None):
        for item in result:
            yield item
        yield from self._page_requisites(response)

    async def process_spider_output_async(self, response, result, spider=None):
        async for item in result:
            yield item
        for request in self._page_requisites(response):
            yield request

    def _page_requisites(self, response: Response):
        if not response.meta.get(PAGE_READ_META) or not isinstance(response, HtmlResponse):
            return
        response.meta.pop(PAGE_READ_META)  # once per page
        if self.source is None or self.admitted >= self.budget:
            return
        found = response.meta.pop(PAGE_REQUISITES_META, None)  # an article's, read in the pool from its one parse
        yield from self._requests(found if found is not None else html_requisites(response), nesting=1)

    def _requests(self, found: list[tuple[str, str]], *, nesting: int):
        requested = self.requested()
        for url, kind in found:
            if self.admitted >= self.budget:
                self.stats.inc_value(f"{STATS}/dropped/budget")
                continue  # counted, not built: a hostile page's 50,000 <img> cost a counter each
            url = urldefrag(url).url
            if url.lower().startswith(_NOT_FETCHED):
                continue  # inline data, script or nothing at all: nothing to fetch
            refusal = self.scope().refusal(url)
            if refusal is not None:
                self.stats.inc_value(f"{STATS}/dropped/{refusal.kind}")  # another site's file is no failure
                continue
            if self.denied(url):
                self.stats.inc_value(f"{STATS}/dropped/denied")
                continue
            if requested.has_url(url):
                # the site's stylesheet, script or logo, requested for an earlier page: the gate would
                # refuse it, so no Request is built for it
                self.stats.inc_value(f"{STATS}/dropped/duplicate")
                continue
            yield Request(url, callback=self.parse_requisite, errback=self.on_error, priority=PRIORITY,
                          meta={REQUISITE_META: kind, NESTING_META: nesting})

    # -- the gate (request_scheduled, as the spider's) --------------------------

    def _gate(self, request: Request, spider=None) -> None:
        meta = request.meta
        if not meta.get(REQUISITE_META):
            return  # a page: the spider's gate judges it
        admitted_as = [request.url, meta.get("redirect_times", 0)]
        if meta.get(ADMITTED_META) == admitted_as:
            return  # a retry of a requisite admitted here
        refusal = self.scope().refusal(request.url)
        if refusal is not None:
            if meta.get("redirect_urls"):  # the requisite's host sent us off scope: a refusal, as for a page
                record_refusal(self.crawler, request.url, refusal)
            else:
                self.stats.inc_value(f"{STATS}/dropped/{refusal.kind}")
            raise IgnoreRequest(refusal.message)
        if self.denied(request.url):  # a redirect into what the source denies
            self.stats.inc_value(f"{STATS}/dropped/denied")
            raise IgnoreRequest(f"denied: {request.url}")
        requested = self.requested()
        fp = self.crawler.request_fingerprinter.fingerprint(request)
        if fp in requested:
            self.stats.inc_value(f"{STATS}/dropped/duplicate")
            raise IgnoreRequest(f"already requested: {request.url}")
        seen = getattr(self.crawler.spider, "seen", None)
        if seen is not None and not seen.requisite_due(request.url, self.source.requisite_recheck):
            requested.add(fp, request.url)
            self.stats.inc_value(f"{STATS}/dropped/archived")
            raise IgnoreRequest(f"archived recently, not fetched again: {request.url}")
        if self.admitted >= self.budget:
            self.stats.inc_value(f"{STATS}/dropped/budget")
            raise IgnoreRequest(f"max_requisites ({self.budget}) reached: {request.url}")
        requested.add(fp, request.url)
        self.admitted += 1
        meta[ADMITTED_META] = admitted_as

    # -- responses and failures -----------------------------------------------

    def parse_requisite(self, response: Response):
        """Archived already (spiders.warccapture); a stylesheet's own @import and url() are requested."""
        if not 200 <= response.status < 300:
            self._failed(response.url, status_kind(response.status), f"HTTP {response.status}")
            return
        nesting = response.meta.get(NESTING_META, 1)
        ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        is_css = ctype.startswith("text/css") or (
            response.meta.get(REQUISITE_META) == "stylesheet" and ctype.split(";")[0].strip() in ("", "text/plain"))
        if not is_css or nesting >= MAX_NESTING:
            return
        limits = getattr(self.crawler.spider, "parse_limits", None)
        if limits is not None and len(response.body) > limits.max_bytes:
            self._failed(response.url, "too-large", f"a stylesheet of {len(response.body)} bytes: archived, not read")
            return
        charset = re.search(r"charset=([\w-]+)", ctype)
        try:
            found = css_requisites(response.body, response.url, encoding=charset[1] if charset else None)
        except (LookupError, ValueError) as exc:
            self._failed(response.url, "other", f"stylesheet not read: {exc}")
            return
        yield from self._requests(found, nesting=nesting + 1)

    def on_error(self, failure):
        request = failure.request
        if failure.check(Refused):
            return  # counted where it was refused (the address guard: blocked-address)
        if failure.check(ForbiddenByRobots):
            self.stats.inc_value(f"{STATS}/dropped/robots_txt")
            return
        if failure.check(IgnoreRequest):
            self.stats.inc_value(f"{STATS}/dropped/ignored")
            return
        self._failed(request.url, error_kind(failure), str(failure.value))

    def _failed(self, url: str, kind: str, message: str) -> None:
        """A requisite that did not arrive as a usable file: counted apart from the pages' errors,
        so a site's missing images never make its run look failed."""
        self.stats.inc_value(f"{STATS}/failed/{kind}")
        logger.debug("requisite failed (%s): %s: %s", kind, redact_url(url), " ".join(message.split())[:300])
