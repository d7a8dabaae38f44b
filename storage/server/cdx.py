"""The CDX server API in the Wayback Machine's dialect (internetarchive/wayback's
wayback-cdx-server), at /cdx and at /cdx/search/cdx as web.archive.org names it.

    /cdx?url=URL                one capture a line, space-separated:
                                urlkey timestamp original mimetype statuscode digest length
    &output=json                an array of arrays, the field names first
    &output=cdxj                pywb's CDXJ (SURTKEY TIMESTAMP {json}) for pywb's clients
    &output=ndjson              pywb's JSON lines (one object a capture)
    &fl=timestamp,original      these fields (also offset, filename; pywb's url/mime/status too)
    &matchType=exact|prefix|host|domain   (or url=example.com/* and url=*.example.com)
    &from=2024&to=202405        1-14 digits, both inclusive (to= covers its whole period)
    &limit=N | limit=-N         the first N | the last N
    &offset=M                   skip M (after filters)
    &filter=[!][~]field:regex   keep rows whose field matches the regex in full (! negates,
                                ~ means contains); without field: the whole line; repeatable
    &collapse=field[:N]         drop a row whose field (first N chars) equals the row before
    &showResumeKey=true         when rows are left: a blank line and a key (json: [] then [key]);
    &resumeKey=KEY              the same query again continues after that key
    &page=I&pageSize=P          page I (from 0) of P captures a page (filters apply within it);
    &showNumPages=true          the number of pages
    &resolveRevisits=true       a revisit shows its original's mimetype
    &sort=reverse | sort=closest&closest=TS   pywb's orders

Digests are base32 without the ``sha1:`` prefix in the text and JSON forms (as
the Wayback Machine shows them) and as stored in the CDXJ forms. Conversion
records (clean text) are never listed: they are not captures.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote_plus, unquote_plus

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storage.archive import Archive
from storage.capture import Capture
from storage.errors import BadInput
from storage.times import parse_time, period_end, timestamp_datetime

FIELDS = ("urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length", "offset", "filename")
DEFAULT_FIELDS = FIELDS[:7]  # what the Wayback Machine shows
ALIASES = {"url": "original", "mime": "mimetype", "status": "statuscode"}  # pywb's names
OUTPUTS = ("text", "json", "cdxj", "ndjson")
MAX_ROWS = 25000  # per answer; more come through the resume key (the Wayback Machine's limit is 150000)
PAGE_SIZE = 5000  # captures a page, the default and the largest pageSize
NDJSON = "text/x-ndjson"


def _field(name: str) -> str:
    canonical = ALIASES.get(name, name)
    if canonical not in FIELDS:
        raise BadInput(f"unknown CDX field {name!r}: use {', '.join(FIELDS)}")
    return canonical


def _int(params: dict, name: str, default: int | None = None) -> int | None:
    value = (params.get(name) or [""])[-1]
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadInput(f"{name} must be a number: {value!r}") from None


def _flag(params: dict, name: str) -> bool:
    return (params.get(name) or [""])[-1].lower() == "true"


def values(capture: Capture) -> dict[str, str]:
    """The capture's fields as the Wayback Machine writes them ('-' when unknown)."""
    f = capture.cdx_fields()
    digest = f["digest"]
    return {"urlkey": f["urlkey"], "timestamp": f["timestamp"], "original": f["url"], "mimetype": f["mime"],
            "statuscode": f["status"], "digest": digest[5:] if digest.startswith("sha1:") else digest,
            "length": f["length"], "offset": f["offset"], "filename": f["filename"]}


@dataclass
class RowFilter:
    """One ``filter=[!][~]field:regex`` (the Wayback CDX server's FieldRegexFilter rules)."""

    field: str | None  # None: the whole line of default fields
    pattern: re.Pattern | None
    contains: str | None
    inverted: bool

    @classmethod
    def parse(cls, text: str) -> "RowFilter":
        contains = text.startswith("~")
        text = text[1:] if contains else text
        inverted = text.startswith("!")
        text = text[1:] if inverted else text
        name, sep, expr = text.partition(":")
        if not sep:
            name, expr = None, text
        elif name.isdigit():
            if int(name) >= len(FIELDS):
                raise BadInput(f"filter field number {name} is past the last field ({len(FIELDS) - 1})")
            name = FIELDS[int(name)]
        else:
            name = _field(name)
        if contains:
            return cls(name, None, expr, inverted)
        try:
            return cls(name, re.compile(expr), None, inverted)
        except re.error as exc:
            raise BadInput(f"bad regex in filter {text!r}: {exc}") from None

    def keeps(self, row: dict[str, str]) -> bool:
        value = row[self.field] if self.field else " ".join(row[f] for f in DEFAULT_FIELDS)
        hit = (self.contains in value) if self.contains is not None else bool(self.pattern.fullmatch(value))
        return hit != self.inverted


@dataclass
class CdxQuery:
    url: str
    match_type: str = "exact"
    since: str | None = None
    until: str | None = None
    fields: tuple[str, ...] = DEFAULT_FIELDS
    names: tuple[str, ...] = DEFAULT_FIELDS  # as the client wrote them (the JSON header row)
    output: str = "text"
    limit: int | None = None
    offset: int = 0
    filters: list[RowFilter] = field(default_factory=list)
    collapse: list[tuple[str, int | None]] = field(default_factory=list)
    resume: tuple[str, str, str, int] | None = None
    show_resume_key: bool = False
    page: int | None = None
    page_size: int = PAGE_SIZE
    show_num_pages: bool = False
    resolve_revisits: bool = False
    sort: str = ""
    closest: str | None = None

    @classmethod
    def parse(cls, query_string: str) -> "CdxQuery":
        params = parse_qs(query_string, keep_blank_values=True)
        url = (params.get("url") or [""])[-1]
        if not url:
            raise BadInput("the url parameter is required: /cdx?url=URL")
        q = cls(url=url)
        q.match_type = ((params.get("matchType") or params.get("matchtype") or ["exact"])[-1]) or "exact"
        q.since = parse_time((params.get("from") or [""])[-1] or None)
        q.until = period_end((params.get("to") or [""])[-1] or None)
        names = [n for n in (params.get("fl") or [""])[-1].split(",") if n]
        if names:
            q.fields, q.names = tuple(_field(n) for n in names), tuple(names)
        q.output = (params.get("output") or ["text"])[-1] or "text"
        if q.output not in OUTPUTS:
            raise BadInput(f"output must be one of {', '.join(OUTPUTS)}: {q.output!r}")
        q.limit = _int(params, "limit")
        q.offset = max(0, _int(params, "offset", 0))
        q.filters = [RowFilter.parse(f) for f in params.get("filter", []) if f]
        for spec in params.get("collapse", []):
            if not spec:
                continue
            name, _, chars = spec.partition(":")
            try:
                q.collapse.append((_field(name), int(chars) if chars else None))
            except ValueError:
                raise BadInput(f"collapse must be field or field:N: {spec!r}") from None
        if (params.get("resumeKey") or [""])[-1]:
            q.resume = parse_resume_key(params["resumeKey"][-1])
        q.show_resume_key = _flag(params, "showResumeKey")
        q.page = _int(params, "page")
        size = _int(params, "pageSize", PAGE_SIZE)
        if not 1 <= size <= PAGE_SIZE:
            raise BadInput(f"pageSize must be 1 to {PAGE_SIZE}: {size}")
        q.page_size = size
        q.show_num_pages = _flag(params, "showNumPages")
        q.resolve_revisits = _flag(params, "resolveRevisits")
        q.sort = (params.get("sort") or [""])[-1]
        q.closest = parse_time((params.get("closest") or [""])[-1] or None)
        return q


def resume_key(c: Capture) -> str:
    """An opaque key naming the row `c` (the Wayback Machine's look: 'URLKEY+TIMESTAMP!...')."""
    return quote_plus(f"{c.urlkey} {c.timestamp}!{c.warc}!{c.offset}")


def parse_resume_key(key: str) -> tuple[str, str, str, int]:
    try:
        head, warc, offset = unquote_plus(key).rsplit("!", 2)
        urlkey, timestamp = head.rsplit(" ", 1)
        return urlkey, timestamp, warc, int(offset)
    except ValueError:
        raise BadInput(f"not a resume key of this server: {key[:80]!r}") from None


@dataclass
class CdxAnswer:
    rows: list[dict[str, str]]
    captures: list[Capture]
    resume: str | None = None


def search(archive: Archive, q: CdxQuery) -> CdxAnswer:
    catalog = archive.catalog
    found = catalog.iter_captures(q.url, q.match_type, since=q.since, until=q.until,
                                  reverse=q.sort == "reverse", after=q.resume)
    if q.page is not None and q.page >= 0:
        found = itertools.islice(found, q.page * q.page_size, (q.page + 1) * q.page_size)
    pairs = ((c, values(c)) for c in found)
    if q.filters:
        pairs = ((c, row) for c, row in pairs if all(f.keeps(row) for f in q.filters))
    for name, chars in q.collapse:
        pairs = _collapsed(pairs, name, chars)
    pairs = itertools.islice(pairs, q.offset, None)

    resume = None
    if q.sort == "closest" and q.closest:
        target = timestamp_datetime(q.closest)
        chosen = sorted(itertools.islice(pairs, MAX_ROWS),
                        key=lambda p: abs((p[0].datetime - target).total_seconds()))
        chosen = chosen[:q.limit] if q.limit and q.limit > 0 else chosen
    elif q.limit is not None and q.limit < 0:
        chosen = list(deque(pairs, maxlen=min(-q.limit, MAX_ROWS)))
    else:
        wanted = MAX_ROWS if q.limit is None or q.limit <= 0 else min(q.limit, MAX_ROWS)
        chosen = list(itertools.islice(pairs, wanted + 1))
        if len(chosen) > wanted:
            chosen = chosen[:wanted]
            if q.show_resume_key:
                resume = resume_key(chosen[-1][0])
    if q.resolve_revisits:
        chosen = [(c, _resolved(catalog, c, row)) for c, row in chosen]
    return CdxAnswer([row for _, row in chosen], [c for c, _ in chosen], resume)


def _collapsed(pairs, name: str, chars: int | None):
    last = object()
    for c, row in pairs:
        value = row[name][:chars] if chars else row[name]
        if value != last:
            yield c, row
        last = value


def _resolved(catalog, c: Capture, row: dict[str, str]) -> dict[str, str]:
    """A revisit row with its original's mimetype (its status is its own already)."""
    if not c.is_revisit:
        return row
    original = catalog.original_of(c.url, c.digest, None, c.timestamp)
    return {**row, "mimetype": original.mime or "-"} if original else row


def _text(body: str, media_type: str) -> Response:
    return Response(body.encode("utf-8"), headers={"content-type": media_type})


def render(q: CdxQuery, answer: CdxAnswer) -> Response:
    if q.output == "json":
        table = [list(q.names)] + [[row[f] for f in q.fields] for row in answer.rows] if answer.rows else []
        if answer.resume:
            table += [[], [answer.resume]]
        return _text(json.dumps(table), "application/json")
    tail = f"\n{answer.resume}\n" if answer.resume else ""
    if q.output == "text":
        return _text("".join(" ".join(row[f] for f in q.fields) + "\n" for row in answer.rows) + tail,
                     "text/plain; charset=utf-8")
    # pywb's forms: its field names, digests as stored
    pywb_names = {"original": "url", "mimetype": "mime", "statuscode": "status"}
    lines = []
    for c, row in zip(answer.captures, answer.rows):
        stored = c.cdx_fields()
        picked = {pywb_names.get(f, f): (stored["digest"] if f == "digest" else row[f]) for f in q.fields}
        if q.output == "cdxj":
            extra = {k: v for k, v in picked.items() if k not in ("urlkey", "timestamp")}
            lines.append(f"{c.urlkey} {c.timestamp} {json.dumps(extra)}\n")
        else:
            lines.append(json.dumps(picked) + "\n")
    media = "text/plain; charset=utf-8" if q.output == "cdxj" else NDJSON
    return _text("".join(lines) + tail, media)


def cdx(request: Request) -> Response:
    q = CdxQuery.parse(request.url.query)
    if q.output in ("cdxj", "ndjson") and q.names == DEFAULT_FIELDS:
        q.fields = q.names = FIELDS  # pywb's forms carry the record's place by default
    archive: Archive = request.app.state.archive
    if q.show_num_pages:
        n = archive.catalog.count_captures(q.url, q.match_type, since=q.since, until=q.until)
        pages = -(-n // q.page_size)
        return _text(json.dumps(pages) + "\n" if q.output == "json" else f"{pages}\n", "text/plain; charset=utf-8")
    return render(q, search(archive, q))


routes = [
    Route("/cdx", cdx, methods=["GET"]),
    Route("/cdx/search/cdx", cdx, methods=["GET"]),
]
