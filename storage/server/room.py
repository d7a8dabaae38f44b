"""What the reading room shows, as data: the HTML pages (reading.py) render these
dicts and /api/ (api.py) answers them as JSON, so both always show the same thing.

    search_view(archive, params)         results, facets and counts over time
    article_view(archive, url, at)       metadata, clean text, captures on a timeline
    diff_view(archive, url, a, b)        paragraphs added, removed, changed between two captures
    sources_view(archive)                every source with its counts
    source_view(archive, history, name)  articles archived per day, last runs, errors by kind

`params` are the query parameters both share (the command line's options):
q, source (repeatable), from, to, lang, limit, offset (or page), sort, by.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import quote, urlencode

from storage import urls
from storage.archive import Archive
from storage.capture import Capture
from storage.errors import BadInput, NotFound
from storage.plaintext import split_plain_text
from storage.runs import RunHistory, errors_by_kind
from storage.search import MAX_LIMIT, PERIODS, SORTS, SearchFilters, fill_periods, period_of
from storage.textdiff import diff_texts, summary
from storage.times import parse_time, timestamp_datetime

PAGE_SIZE = 20


def iso(ts: str | None) -> str | None:
    return timestamp_datetime(ts).isoformat().replace("+00:00", "Z") if ts else None


def _int(value, name: str, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a whole number: {value!r}") from None
    if not low <= n <= high:
        raise BadInput(f"{name} must be between {low} and {high}: {n}")
    return n


@dataclass(frozen=True)
class SearchParams:
    q: str
    filters: SearchFilters
    limit: int
    offset: int
    sort: str
    by: str | None  # day | week | month; None: chosen from the span
    raw: dict  # as given (to rebuild links)

    @classmethod
    def parse(cls, query_params) -> "SearchParams":
        """From a request's query parameters (a starlette QueryParams or a dict of lists)."""
        def one(name):
            value = query_params.get(name)
            return value.strip() if isinstance(value, str) else value

        sources = [s for s in (query_params.getlist("source") if hasattr(query_params, "getlist")
                               else query_params.get("source") or []) if s]
        limit = _int(one("limit"), "limit", PAGE_SIZE, 1, MAX_LIMIT)
        page = _int(one("page"), "page", 1, 1, 1_000_000)
        offset = _int(one("offset"), "offset", (page - 1) * limit, 0, 100_000_000)
        sort = one("sort") or "relevance"
        if sort not in SORTS:
            raise BadInput(f"sort must be one of {', '.join(SORTS)}: {sort!r}")
        by = one("by") or None
        if by is not None and by not in PERIODS:
            raise BadInput(f"by must be one of {', '.join(PERIODS)}: {by!r}")
        filters = SearchFilters.from_input(sources, one("from"), one("to"), one("lang"))
        raw = {"q": one("q") or "", "source": sources, "from": one("from") or "", "to": one("to") or "",
               "lang": one("lang") or "", "sort": sort if sort != "relevance" else ""}
        return cls(one("q") or "", filters, limit, offset, sort, by, raw)

    def link(self, **changes) -> str:
        """The search page's query string with some parameters changed (empty ones left out)."""
        values = {**self.raw, **changes}
        pairs = []
        for key, value in values.items():
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                if v not in (None, ""):
                    pairs.append((key, v))
        return "?" + urlencode(pairs) if pairs else ""


def auto_period(days: list[tuple[str, int]]) -> str:
    """Days for up to two months, weeks for up to two years, else months."""
    if not days:
        return "day"
    span = (date.fromisoformat(days[-1][0]) - date.fromisoformat(days[0][0])).days
    return "day" if span <= 62 else "week" if span <= 730 else "month"


def counts_view(archive: Archive, params: SearchParams) -> dict:
    days = archive.catalog.search.counts(params.q, params.filters, by="day")
    by = params.by or auto_period(days)
    totals: dict[str, int] = {}
    for day, n in days:
        totals[period_of(day, by)] = totals.get(period_of(day, by), 0) + n
    series = fill_periods(totals, by)
    return {"query": params.q, "filters": params.filters.as_json(), "by": by,
            "total": sum(n for _, n in series), "counts": [{"period": p, "count": n} for p, n in series]}


def article_link(url: str, at: str | None = None) -> str:
    return "/article?" + urlencode([("url", url)] + ([("at", at)] if at else []))


def search_view(archive: Archive, params: SearchParams) -> dict:
    index = archive.catalog.search
    found = index.search(params.q, params.filters, limit=params.limit, offset=params.offset, sort=params.sort)
    out = found.as_json()
    for hit in out["results"]:
        hit["links"] = {"article": article_link(hit["url"]), "api": "/api/article?" + urlencode({"url": hit["url"]})}
    out["facets"] = index.facets()
    return out


# -- one article ----------------------------------------------------------------------

def _capture_row(c: Capture, version: int | None, changed: bool) -> dict:
    row = c.as_json()
    row.update(iso=iso(c.timestamp), revisit=c.is_revisit, version=version, changed=changed,
               source=c.source)
    return row


def timeline(archive: Archive, url: str) -> tuple[list[Capture], list[dict]]:
    """The captures of `url` (oldest first) and, for each, which text version it holds
    (1, 2, ...: a new number each time the text changed) and whether it changed."""
    captures = archive.captures(url)
    if not captures:
        raise NotFound(f"no capture of {url} in {archive.location}")
    key = captures[0].urlkey
    versions = archive.catalog.search.versions_of(key)
    rows, seen, current, last_sha = [], {}, None, None
    for c in captures:
        sha = versions.get(c.timestamp) if not c.is_revisit else None
        changed = False
        if sha is not None:
            if sha not in seen:
                seen[sha] = len(seen) + 1
            changed = sha != last_sha
            current, last_sha = seen[sha], sha
        rows.append(_capture_row(c, current if c.text else None, changed))
    return captures, rows


def _pick(captures: list[Capture], at: str | None, *, with_text: bool = True) -> Capture:
    pool = [c for c in captures if c.text] if with_text else list(captures)
    if not pool:
        pool = list(captures)
    if not at:
        return pool[-1]
    ts = parse_time(at)
    exact = [c for c in pool if c.timestamp == ts]
    if exact:
        return exact[-1]
    when = timestamp_datetime(ts)
    return min(pool, key=lambda c: abs((c.datetime - when).total_seconds()))


def article_view(archive: Archive, url: str, at: str | None = None, *, any_capture: bool = False) -> dict:
    """The capture of `url` nearest `at` that has text (any capture, for the replay)."""
    url = urls.normalize_input(url)
    captures, rows = timeline(archive, url)
    chosen = _pick(captures, at, with_text=not any_capture)
    meta, text, plain = None, None, None
    if chosen.text:
        meta = archive.metadata(chosen)
        text = meta.pop("text")
        parts = split_plain_text(text)
        plain = {"title": parts.title, "byline": parts.byline, "paragraphs": list(parts.paragraphs)}
    article = archive.catalog.search.article(chosen.urlkey)
    return {
        "url": captures[-1].url,
        "source": chosen.source,
        "title": (meta or {}).get("title") or (article["title"] if article else None),
        "capture": next(r for r in rows if r["timestamp"] == chosen.timestamp and r["offset"] == chosen.offset),
        "metadata": meta,
        "text": text,
        "plain": plain,
        "captures": rows,
        "versions": max((r["version"] or 0 for r in rows), default=0),
        "article": _article_row(article),
        "links": {"replay": replay_link(chosen.url, chosen.timestamp), "diff": diff_link(chosen.url),
                  "sandbox": sandbox_path(chosen.timestamp, chosen.url)},
    }


def _article_row(row) -> dict | None:
    if row is None:
        return None
    return {"published": row["published"], "date": f"{row['date_ts'][:4]}-{row['date_ts'][4:6]}-{row['date_ts'][6:8]}",
            "dated_by": row["dated_by"], "language": row["language"], "first_captured": iso(row["first_ts"]),
            "text_captured": iso(row["text_ts"]), "versions": row["versions"]}


def replay_link(url: str, at: str | None = None) -> str:
    return "/article/replay?" + urlencode([("url", url)] + ([("at", at)] if at else []))


def diff_link(url: str, a: str | None = None, b: str | None = None) -> str:
    pairs = [("url", url)] + ([("from", a)] if a else []) + ([("to", b)] if b else [])
    return "/article/diff?" + urlencode(pairs)


def sandbox_path(ts: str, url: str) -> str:
    """Where the sandboxed replay of a capture is served (reading.sandbox)."""
    return f"/sandbox/{ts}/{quote(url, safe=':/?&=%#+,;@!$~*()[]')}"


def diff_view(archive: Archive, url: str, a: str | None = None, b: str | None = None) -> dict:
    """The text of capture `a` against capture `b` (default: the newest capture with
    text against the newest one whose text differs from it)."""
    url = urls.normalize_input(url)
    captures, rows = timeline(archive, url)
    with_text = [(c, r) for c, r in zip(captures, rows) if c.text]
    if not with_text:
        raise NotFound(f"no capture of {url} has clean text to compare")
    new = _pick(captures, b)
    if a:
        old = _pick(captures, a)
    else:
        new_version = next(r["version"] for c, r in with_text if c is new)
        older = [c for c, r in with_text if r["version"] != new_version and c.timestamp <= new.timestamp]
        old = older[-1] if older else with_text[0][0]
    changes = diff_texts(archive.text(old), archive.text(new))
    row = {id(c): r for c, r in zip(captures, rows)}
    article = archive.catalog.search.article(new.urlkey)
    return {"url": captures[-1].url, "title": article["title"] if article else None,
            "from": row[id(old)], "to": row[id(new)],
            "summary": summary(changes), "changes": [c.as_json() for c in changes],
            "captures": [r for _, r in with_text],
            "links": {"article": article_link(url), "api": "/api/diff?" + urlencode(
                [("url", url), ("from", old.timestamp), ("to", new.timestamp)])}}


# -- sources ----------------------------------------------------------------------------

def sources_view(archive: Archive) -> dict:
    rows = []
    for name, t in sorted(archive.catalog.search.source_totals().items()):
        rows.append({"name": name, "articles": t["articles"], "captures": t["captures"],
                     "first_capture": iso(t["first_capture"]), "last_capture": iso(t["last_capture"]),
                     "unreadable_texts": t["unreadable_texts"],
                     "links": {"page": f"/sources/{quote(name)}", "api": f"/api/sources/{quote(name)}"}})
    return {"sources": rows}


def source_view(archive: Archive, history: RunHistory, name: str, runs: int = 20) -> dict:
    known = {row["name"]: row for row in sources_view(archive)["sources"]}
    try:
        recent = history.runs(name, limit=runs)
    except BadInput:
        raise NotFound(f"no source named {name!r} in {archive.location}") from None
    if name not in known and not recent:
        raise NotFound(f"no source named {name!r} in {archive.location}")
    per_day = archive.catalog.search.archived_per_day(name)
    row = known.get(name, {"name": name, "articles": 0, "captures": 0, "first_capture": None,
                           "last_capture": None, "unreadable_texts": 0,
                           "links": {"page": f"/sources/{quote(name)}", "api": f"/api/sources/{quote(name)}"}})
    return {**row, "archived_per_day": [{"period": d, "count": n} for d, n in per_day],
            "runs": recent, "errors_by_kind": errors_by_kind(recent)}
