"""What a crawl may fetch: the scope gate's decisions and the address guard's.

Pure decisions, no I/O, so they can be tested on any input (and on the
forbidden address ranges) without connecting anywhere:

    Scope(source).refusal(url)            -> Refusal | None   scheme, credentials, host
    AddressGuard(source).refusal(host, ip) -> Refusal | None   the address connected to
    address_category(ip)                   -> "loopback", "private", ... | None (public)
    metadata_refusal(host)                 -> message | None   cloud metadata, never fetched

`Refused` is the exception a component raises for a request it will not make
(or a response it will not read). Whoever raises it has counted it already with
`record_refusal`, so the spider's errback only has to let it pass.

Only http and https are fetched. A source's scope is the hosts its own URLs
name (`www.` or not, see spiders.sources.host_key); its pages' requisites
(stylesheets, images, fonts, scripts: spiders.requisites) may also come from
the hosts it lists in `requisite_hosts` (`Scope(source, requisites=True)`). Addresses outside the
public internet are refused unless the source names them itself: an IP literal
in its URLs, or `localhost` for loopback. A host name, even one the source
names, never earns a private address through DNS: a site's DNS can point
anywhere at any moment (DNS rebinding), so the decision is made on each address
actually connected to (spiders.connection).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest

from spiders.addresses import IPAddress, address_category, is_metadata_address, unmapped
from spiders.sources import Source, host_key, ip_literal

# request.meta of a page requisite (spiders.requisites): its kind ("stylesheet", "image", ...)
REQUISITE_META = "newsarchive_requisite"

logger = logging.getLogger(__name__)

ALLOWED_SCHEMES = frozenset({"http", "https"})

@dataclass(frozen=True)
class Refusal:
    kind: str  # the error kind it is counted under (newsarchive/errors/<kind>)
    message: str  # one line a person can read


class Refused(IgnoreRequest):
    """A request not made, or a response not read: counted under `kind` by whoever raised it.

    `fetched`: the response was downloaded (and archived) before the refusal,
    so it used up its page of max_pages.
    """

    def __init__(self, kind: str, message: str, *, fetched: bool = False):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.fetched = fetched


def _with_userinfo(url: str, userinfo: str) -> str:
    """`url` with the user name and password in its netloc replaced by `userinfo` (may be "")."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=userinfo + parts.netloc.rpartition("@")[2]).geturl()


def redact_url(url: str) -> str:
    """`url` without a user name or password (never logged, sampled or archived)."""
    return _with_userinfo(url, "***@")


def strip_userinfo(url: str) -> str:
    """`url` with any user name and password dropped (links are followed without them)."""
    return _with_userinfo(url, "")


def record_refusal(crawler, url: str, refused: Refused | Refusal) -> None:
    """Count a refusal under its kind in the crawl stats, with a sample (spiders.stats.record_error)."""
    from spiders.stats import record_error

    url = redact_url(url)
    stats = crawler.stats
    kind = refused.kind
    record_error(stats, kind, url, refused.message)
    # A hostile page can hold thousands of refused links: log the first few of each kind.
    logged = stats.get_value(f"newsarchive/refusals_logged/{kind}", 0)
    if logged < 5:
        stats.set_value(f"newsarchive/refusals_logged/{kind}", logged + 1)
        logger.warning("refused (%s): %s: %s", kind, url, refused.message)
    else:
        logger.debug("refused (%s): %s: %s", kind, url, refused.message)


# http(s)://host[:port] then the path, query, fragment or the end: the host as urlsplit reads it
# (Scope.link_value judges such a URL by its host alone; spiders.pagereader relies on that)
PLAIN_HTTP_URL = re.compile(r"(?i)https?://([a-z0-9.-]+)(?::(\d{1,5}))?(?=[/?#]|$)")


class Scope:
    """The scheme, credential and host part of the scope gate for one source.

    `deny`, duplicates and max_pages are the spider's (spiders.news._gate):
    they are not failures, just pages the crawl does not want.
    """

    def __init__(self, source: Source | None = None, *, requisites: bool = False, hosts=None):
        # requisites: the scope of a page's stylesheets, images, fonts and scripts, which
        # may also come from the hosts the source lists in requisite_hosts (never its pages).
        # hosts: the page scope of those hosts without a Source (a link extractor in a worker)
        if source is not None:
            hosts = source.requisite_scope if requisites else source.hosts
        self.hosts = frozenset(hosts) if hosts is not None else None  # None: a spider with no source, any host

    def link_value(self, url: str) -> str | None:
        """LinkExtractor's `process_value`: None for a link to another site, the URL for anything else.

        Most links of a news page lead elsewhere, and the spider drops those
        silently (off-scope); saying so here spares building each into a Link
        (escaping, extension and deny checks). Only plain ASCII URLs are judged:
        what escaping could change (an IDN host) goes on to the spider's own check.
        """
        if self.hosts is None or not url.isascii():
            return url
        plain = PLAIN_HTTP_URL.match(url)
        if plain is not None and int(plain.group(2) or 0) <= 65535:
            # the common case, without urlsplit: http(s), a plain host name, maybe a port
            host = plain.group(1).lower().rstrip(".")
            if host in self.hosts or (host.startswith("www.") and host[4:] in self.hosts):
                return url  # (host_key(host) is one of these two)
            return None if host else url
        refusal = self.refusal(url)
        return None if refusal is not None and refusal.kind == "off-scope" else url

    def refusal(self, url: str) -> Refusal | None:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 (raises on a port that is not a number)
        except ValueError as exc:
            return Refusal("bad-url", f"not a URL ({exc})")
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            what = f"{scheme}: URLs" if scheme else "URLs without a scheme"
            return Refusal("bad-scheme", f"{what} are never fetched (only http and https)")
        if "@" in parts.netloc:
            return Refusal("bad-url", "the URL carries a user name or password: never sent")
        if not host:
            return Refusal("bad-url", "the URL has no host")
        if self.hosts is not None and host_key(host) not in self.hosts:
            return Refusal("off-scope", f"{host} is not one of the source's hosts ({', '.join(sorted(self.hosts))})")
        return None


class AddressGuard:
    """Which addresses a source's requests may connect to.

    Public addresses: any (the scope gate has already limited the hosts).
    Cloud metadata and the unspecified address: never. Every other address
    outside the public internet: only one the source names itself, as an IP
    literal in its URLs or its requisite_hosts, or a loopback address when it
    names `localhost` there.
    """

    def __init__(self, source: Source | None = None):
        named: set[IPAddress] = set()
        self.localhost = False
        # the scope gate decides which of these a request may reach (requisite hosts serve requisites only)
        for host in (source.requisite_scope if source is not None else ()):
            ip = ip_literal(host)
            if ip is not None:
                named.add(unmapped(ip))
            elif host == "localhost":
                self.localhost = True
        self.named = frozenset(named)

    def refusal(self, host: str, ip: IPAddress | str) -> Refusal | None:
        ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
        host = host.lower()
        category = address_category(ip)
        if category is None:
            return None
        shown = host if str(ip) == host else f"{host} resolves to {ip}, which"
        if is_metadata_address(ip) or category == "unspecified":
            return Refusal("blocked-address", f"{shown} is a {category} address: never connected to")
        if unmapped(ip) in self.named:
            return None
        if self.localhost and host == "localhost" and category == "loopback":
            return None
        return Refusal("blocked-address", f"{shown} is a {category} address the source does not name: "
                                          f"not connected to")


class ScopeGuardMiddleware:
    """Downloader middleware at 40, first in the chain: the gate's scheme, credential and
    host checks again, on every request about to be downloaded.

    Most requests passed the scope gate already (spiders.news); these have not:
    robots.txt and where it redirects (RobotsTxtMiddleware downloads them
    itself, past the scheduler), and whatever another component might send.
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self._scopes: dict[bool, Scope] = {}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def scope(self, requisites: bool = False) -> Scope:
        if requisites not in self._scopes:  # a spider without a source: the scheme line only
            self._scopes[requisites] = Scope(getattr(self.crawler.spider, "source", None), requisites=requisites)
        return self._scopes[requisites]

    def process_request(self, request, spider=None):
        # A requisite, and the robots.txt of a host it may come from, have the wider scope.
        requisites = bool(request.meta.get(REQUISITE_META)) or _is_robots_txt(request.url)
        refusal = self.scope(requisites).refusal(request.url)
        if refusal is not None:
            record_refusal(self.crawler, request.url, refusal)
            raise Refused(refusal.kind, refusal.message)
        return None


def _is_robots_txt(url: str) -> bool:
    try:
        return urlsplit(url).path == "/robots.txt"
    except ValueError:
        return False
