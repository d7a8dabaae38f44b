"""The news sites to crawl: `sources.toml`, read strictly.

A typo in a sources file should stop a run before anything is fetched, with one
line naming the file and the source, not surface later as a crawl that quietly
fetched nothing (or too much).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from spiders.addresses import ip_literal, metadata_refusal
from storage.errors import BadInput

__all__ = ["Source", "SourcesError", "load_sources", "default_sources_path", "host_key", "ip_literal", "pick_sources"]

NAME_RE = re.compile(r"[a-z0-9-]+")
# The default requisite budget per page of max_pages: a news site's stylesheets, fonts
# and scripts are shared by its pages and fetched once, so most of it goes to images.
REQUISITES_PER_PAGE = 4
# A requisite archived (with any status) less than this long ago is not fetched again: replay
# takes the nearest capture of it, and a run spends its budget on what it does not hold yet.
REQUISITE_RECHECK_HOURS = 24.0


class SourcesError(BadInput):
    """An invalid sources file; the message is one line naming file and source."""


def host_key(host: str | None) -> str:
    """A host name as a source scope compares it: lower case, a leading "www." dropped.

    IP literals are compared as they are: "www.127.0.0.1" is a name (it would
    go to DNS), not the address 127.0.0.1.
    """
    host = (host or "").lower().rstrip(".")
    if host.startswith("www.") and ip_literal(host[4:]) is None:
        return host[4:]
    return host


@dataclass(frozen=True)
class Source:
    name: str
    start_urls: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    depth: int = 2
    max_pages: int = 1000
    delay: float = 1.0
    concurrency: int = 4
    recheck: float = 24.0  # hours before an archived article is fetched again (0: every run)
    schedule: str | None = None
    tags: tuple[str, ...] = field(default=())
    # hosts that serve this source's stylesheets, images, fonts and scripts, never its pages
    requisite_hosts: tuple[str, ...] = ()
    max_requisites: int | None = None  # per run; None: REQUISITES_PER_PAGE x max_pages; 0: none

    @property
    def hosts(self) -> frozenset[str]:
        """The hosts this source may reach: those its own URLs name (www. or not)."""
        urls = (*self.start_urls, *self.feeds, *self.sitemaps)
        return frozenset(host_key(urlsplit(u).hostname) for u in urls)

    @property
    def requisite_scope(self) -> frozenset[str]:
        """The hosts a page's requisites may come from: the source's own and its requisite_hosts."""
        return self.hosts | {host_key(urlsplit(f"http://{h}/").hostname) for h in self.requisite_hosts}

    @property
    def requisite_budget(self) -> int:
        """How many requisites one run fetches at most."""
        if self.max_requisites is not None:
            return self.max_requisites
        return REQUISITES_PER_PAGE * self.max_pages

    @property
    def requisite_recheck(self) -> float:
        """Hours before an archived requisite is fetched again: the source's recheck, at least
        REQUISITE_RECHECK_HOURS (stylesheets and images change far less often than articles)."""
        return max(self.recheck, REQUISITE_RECHECK_HOURS)


def default_sources_path() -> Path:
    """NEWSARCHIVE_SOURCES when set, else ./sources.toml."""
    return Path(os.environ.get("NEWSARCHIVE_SOURCES") or "sources.toml")


# key -> (check, what the error says is expected); lists become tuples.
def _is_int(v, lo):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _is_str_list(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


_KEYS = {
    "name": (lambda v: isinstance(v, str), "a string"),
    "start_urls": (_is_str_list, "a list of URLs"),
    "feeds": (_is_str_list, "a list of URLs"),
    "sitemaps": (_is_str_list, "a list of URLs"),
    "allow": (_is_str_list, "a list of regexes"),
    "deny": (_is_str_list, "a list of regexes"),
    "depth": (lambda v: _is_int(v, 0), "an integer >= 0"),
    "max_pages": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "delay": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0, "a number of seconds >= 0"),
    "concurrency": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "recheck": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0,
                "a number of hours >= 0"),
    "schedule": (lambda v: isinstance(v, str), "a cron string"),
    "tags": (_is_str_list, "a list of strings"),
    "requisite_hosts": (_is_str_list, "a list of host names"),
    "max_requisites": (lambda v: _is_int(v, 0), "an integer >= 0"),
}


def load_sources(path: str | os.PathLike) -> dict[str, Source]:
    """Read and validate a sources file; raise SourcesError (one line) on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SourcesError(f"{path}: no such sources file") from None
    except OSError as e:
        raise SourcesError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SourcesError(f"{path}: invalid TOML: {e}") from None

    extra = sorted(set(data) - {"source"})
    if extra:
        raise SourcesError(f"{path}: unknown top-level key {extra[0]!r} (sources are [[source]] tables)")
    tables = data.get("source", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SourcesError(f"{path}: 'source' must be [[source]] tables")

    sources: dict[str, Source] = {}
    for i, table in enumerate(tables, 1):
        name = table.get("name")
        label = f"source {name!r}" if isinstance(name, str) else f"source #{i}"
        try:
            src = _source_from_table(table)
        except ValueError as e:
            raise SourcesError(f"{path}: {label}: {e}") from None
        if src.name in sources:
            raise SourcesError(f"{path}: {label}: duplicate name")
        sources[src.name] = src
    return sources


def pick_sources(sources: dict[str, Source], names, *, all_: bool = False, where: str | os.PathLike = "") -> list[str]:
    """The names to run: `names` (each known, in order, once) or, with `all_`, every source."""
    names = list(dict.fromkeys(names))
    if all_ and names:
        raise BadInput("give source names or --all, not both")
    if all_:
        if not sources:
            raise BadInput(f"{where}: no sources to crawl")
        return list(sources)
    if not names:
        raise BadInput("name at least one source to crawl, or use --all (see 'newsarchive sources')")
    unknown = [n for n in names if n not in sources]
    if unknown:
        what = "unknown source" if len(unknown) == 1 else "unknown sources"
        raise BadInput(f"{what} {', '.join(repr(u) for u in unknown)} in {where} "
                       f"(known: {', '.join(sorted(sources)) or 'none'})")
    return names


def _source_from_table(table: dict) -> Source:
    for key, value in table.items():
        if key not in _KEYS:
            raise ValueError(f"unknown key {key!r} (known: {', '.join(_KEYS)})")
        check, expected = _KEYS[key]
        if not check(value):
            shown = _shown(value) if isinstance(value, str) else value
            raise ValueError(f"{key} must be {expected}, got {shown!r}")
    if "name" not in table:
        raise ValueError("missing name")
    if not NAME_RE.fullmatch(table["name"]):
        raise ValueError(f"name {table['name']!r} must match [a-z0-9-]+")
    for key in ("start_urls", "feeds", "sitemaps"):
        for url in table.get(key, []):
            _check_url(key, url)
    if not any(table.get(k) for k in ("start_urls", "feeds", "sitemaps")):
        raise ValueError("needs at least one of start_urls, feeds, sitemaps")
    for host in table.get("requisite_hosts", []):
        _check_host("requisite_hosts", host)
    for key in ("allow", "deny"):
        for pattern in table.get(key, []):
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"{key} regex {pattern!r} is invalid: {e}") from None
    if "schedule" in table:
        _check_cron(table["schedule"])
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    for key in ("delay", "recheck"):
        if key in kwargs:
            kwargs[key] = float(kwargs[key])
    return Source(**kwargs)


def _check_url(key: str, url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(f"{key}: {_shown(url)!r} is not a URL") from None
    if "@" in parts.netloc:
        # never echoed: the point is to keep the password out of logs and summaries
        raise ValueError(f"{key}: {_shown(url)!r} carries a user name or password; "
                         "sources.toml holds no credentials") from None
    try:
        parts.port  # raises on a non-numeric port
    except ValueError:
        raise ValueError(f"{key}: {url!r} has a bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError(f"{key}: {url!r} is not an http(s) URL (only http and https are fetched)")
    refusal = metadata_refusal(parts.hostname)
    if refusal:
        raise ValueError(f"{key}: {url!r}: {refusal}")


def _check_host(key: str, host: str) -> None:
    """A bare host name or IP address, as a URL would name it (no scheme, port, path or wildcard)."""
    if "://" in host or "/" in host:
        name = urlsplit(host).hostname if "://" in host else None
        hint = f" (the host alone: {name!r})" if name else ""
        raise ValueError(f"{key}: {_shown(host)!r} is not a host name{hint}")
    if "*" in host:
        raise ValueError(f"{key}: {host!r}: no wildcards, name each host")
    try:
        parts = urlsplit(f"http://{host}/")
        port = parts.port
    except ValueError:
        raise ValueError(f"{key}: {host!r} is not a host name") from None
    if (not host or "@" in host or port is not None or not parts.hostname or any(c.isspace() for c in host)
            or host.endswith(":") or parts.hostname != host.lower().strip("[]")):
        raise ValueError(f"{key}: {host!r} is not a host name (no port, user or path: the host alone)")
    refusal = metadata_refusal(parts.hostname)
    if refusal:
        raise ValueError(f"{key}: {host!r}: {refusal}")


def _shown(url: str) -> str:
    """A URL as an error message may show it: any user name and password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return f"{scheme}{sep}{netloc}{slash}{tail}"


_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_CRON_FIELDS = (  # (name, low, high, names)
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def _check_cron(expr: str) -> None:
    """Five-field cron (numbers, names, *, ranges, steps, lists) or an @macro."""
    if expr.strip().lower() in _CRON_MACROS:
        return
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"schedule {expr!r} is not a cron expression (need 5 fields)")
    for text, (what, lo, hi, names) in zip(fields, _CRON_FIELDS):
        for part in text.split(","):
            if not _cron_part_ok(part.lower(), lo, hi, names):
                raise ValueError(f"schedule {expr!r}: bad {what} field {text!r}")


def _cron_part_ok(part: str, lo: int, hi: int, names: tuple[str, ...]) -> bool:
    base, _, step = part.partition("/")
    if step and not (step.isdigit() and int(step) >= 1):
        return False

    def value(s: str) -> int | None:
        if s.isdigit():
            return int(s) if lo <= int(s) <= hi else None
        if s in names:
            return names.index(s) + (1 if lo == 1 else 0)
        return None

    if base == "*":
        return True
    start, dash, end = base.partition("-")
    a = value(start)
    if not dash:
        return a is not None
    b = value(end)
    return a is not None and b is not None and a <= b
