"""Replay and look-up routes in pywb's and the Wayback Machine's URL scheme.

    /web/timemap/link/URL      Memento TimeMap (RFC 7089, application/link-format)
    /web/timemap/json/URL      the same captures as JSON lines (pywb's CDX JSON)
    /web/URL                   TimeGate: 302 to the memento nearest Accept-Datetime
    /web/TIMESTAMPid_/URL      the archived payload as the site served it
    /web/TIMESTAMPtext_/URL    the clean text of that capture
    /web/TIMESTAMP/URL         the same as id_ (no rewriting here)
    /cdx?url=URL&matchType=&from=&to=&limit=&output=json   pywb's CDX server API

A timestamp that is not exactly a capture's redirects to the nearest capture,
as the Wayback Machine does. The archived URL is read from the raw request
path (with its query string), as those clients send it unencoded.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote, urljoin

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storage import urls
from storage.archive import Archive
from storage.capture import CDX_FIELDS, Capture
from storage.errors import BadInput, NotFound, StorageError
from storage.times import parse_time, period_end, timestamp_datetime

_MEMENTO = re.compile(r"^(\d{1,14})([a-z]{2,6}_)?/(.+)$", re.S)
_MODIFIERS = {None: "id_", "id_": "id_", "text_": "text_"}

# Hop-by-hop and framing headers are the connection's, not the site's.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "trailers", "transfer-encoding", "upgrade", "content-length"}
# Served as they were; everything else is kept as X-Archive-Orig-NAME (as pywb does).
_PASS_THROUGH = {"content-type", "content-encoding", "content-language", "content-disposition",
                 "last-modified", "etag", "location", "link", "vary"}

LINK_FORMAT = "application/link-format"
NDJSON = "text/x-ndjson"


def _archive(request: Request) -> Archive:
    return request.app.state.archive


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _raw_rest(request: Request, prefix: str) -> str:
    """What follows `prefix` in the request target as sent (query string included)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1")
    query = request.scope.get("query_string") or b""
    if query:
        path += "?" + query.decode("latin-1")
    return path[len(prefix):] if path.startswith(prefix) else ""


def _target(rest: str) -> str:
    """The archived URL at the end of a /web/ path."""
    if re.match(r"^https?%3a", rest, re.I):
        rest = unquote(rest)
    if not rest:
        raise BadInput("no URL given: use /web/URL")
    return urls.normalize_input(rest)


def _captures(request: Request, url: str) -> list[Capture]:
    archive = _archive(request)
    found = archive.captures(url)
    if not found:
        raise NotFound(f"no capture of {url} in {archive.location}")
    return found


def _memento_url(request: Request, capture: Capture, modifier: str = "id_") -> str:
    return f"{_base(request)}/web/{capture.timestamp}{modifier}/{capture.url}"


def _links(request: Request, url: str, original: str) -> list[str]:
    base = _base(request)
    return [f'<{original}>; rel="original"',
            f'<{base}/web/{url}>; rel="timegate"',
            f'<{base}/web/timemap/link/{url}>; rel="timemap"; type="{LINK_FORMAT}"']


def _text(status: int, text: str, headers: dict | None = None, media_type: str = "text/plain; charset=utf-8"):
    # the Content-Type exactly as given (Starlette would add a charset to text/*)
    return Response(text.encode("utf-8"), status_code=status, headers={**(headers or {}), "content-type": media_type})


# -- /web/timemap/ -------------------------------------------------------------

def timemap(request: Request) -> Response:
    kind = request.path_params["kind"]
    url = _target(_raw_rest(request, f"/web/timemap/{kind}/"))
    found = _captures(request, url)
    if kind == "json":
        return _text(200, "".join(json.dumps(c.cdx_fields()) + "\n" for c in found), media_type=NDJSON)
    if kind != "link":
        raise NotFound(f"unknown timemap format {kind!r}: use link or json")
    base = _base(request)
    original = found[-1].url
    lines = [f'<{original}>; rel="original"',
             f'<{base}/web/timemap/link/{url}>; rel="self"; type="{LINK_FORMAT}"; '
             f'from="{found[0].http_date}"; until="{found[-1].http_date}"',
             f'<{base}/web/{url}>; rel="timegate"']
    for i, capture in enumerate(found):
        rel = "memento"
        if i == len(found) - 1:
            rel = "last " + rel
        if i == 0:
            rel = "first " + rel
        lines.append(f'<{_memento_url(request, capture)}>; rel="{rel}"; datetime="{capture.http_date}"')
    return _text(200, ",\n".join(lines) + "\n", media_type=LINK_FORMAT)


# -- /web/ -----------------------------------------------------------------------

def web(request: Request) -> Response:
    rest = _raw_rest(request, "/web/")
    match = _MEMENTO.match(rest)
    if match:
        ts, modifier, target = match.groups()
        if modifier not in _MODIFIERS:
            raise NotFound(f"unknown replay modifier {modifier!r}: use id_ or text_")
        return memento(request, ts, _MODIFIERS[modifier], _target(target))
    return timegate(request, _target(rest))


def timegate(request: Request, url: str) -> Response:
    accept = request.headers.get("accept-datetime")
    try:
        at = parse_time(accept) if accept else None
    except BadInput:
        raise BadInput(f"bad Accept-Datetime: {accept!r} (use an RFC 1123 date)") from None
    found = _captures(request, url)
    capture = _archive(request).nearest(url, at)
    links = _links(request, url, found[-1].url)
    links.append(f'<{_memento_url(request, capture)}>; rel="memento"; datetime="{capture.http_date}"')
    return Response(status_code=302, media_type="text/plain; charset=utf-8",
                    headers={"Location": _memento_url(request, capture), "Vary": "accept-datetime",
                             "Link": ", ".join(links)})


def memento(request: Request, ts: str, modifier: str, url: str) -> Response:
    archive = _archive(request)
    found = _captures(request, url)
    exact = [c for c in found if c.timestamp == ts]
    if not exact:  # not a capture's timestamp: go to the nearest one
        capture = archive.nearest(url, ts)
        return Response(status_code=302, media_type="text/plain; charset=utf-8",
                        headers={"Location": _memento_url(request, capture, modifier)})
    capture = exact[-1]
    memento_headers = {"Memento-Datetime": capture.http_date,
                       "Link": ", ".join(_links(request, url, capture.url))}
    if modifier == "text_":
        return _text(200, archive.text(capture), memento_headers)
    statusline, headers, _raw, body = archive.http_response(capture)
    code = statusline.partition(" ")[0]
    try:
        status = int(code)
    except ValueError:
        raise StorageError(f"capture of {url} at {ts} has no HTTP status") from None
    response = Response(body, status_code=status)
    out = response.headers
    del out["content-length"]  # set again below from the body
    for name, value in headers:
        lower = name.lower()
        if lower in _HOP_BY_HOP:
            continue
        if lower == "location":  # keep redirects inside the archive, at the same time
            value = f"{_base(request)}/web/{capture.timestamp}id_/{urljoin(capture.url, value)}"
        out.append(name if lower in _PASS_THROUGH else f"X-Archive-Orig-{name}", value)
    for name, value in memento_headers.items():
        out.append(name, value)
    out["content-length"] = str(len(body))
    return response


# -- /cdx ------------------------------------------------------------------------

def cdx(request: Request) -> Response:
    params = {k: v[-1] for k, v in parse_qs(request.url.query, keep_blank_values=True).items()}
    url = params.get("url")
    if not url:
        raise BadInput("the url parameter is required: /cdx?url=URL")
    match_type = params.get("matchType") or params.get("matchtype") or "exact"
    try:
        limit = int(params["limit"]) if params.get("limit") else None
    except ValueError:
        raise BadInput(f"limit must be a number: {params['limit']!r}") from None
    sort = params.get("sort", "")
    rows = _archive(request).catalog.captures(
        url, match_type, since=parse_time(params.get("from") or None),
        until=period_end(params.get("to") or None), reverse=(sort == "reverse"),
        limit=None if sort == "closest" else limit)
    if sort == "closest" and params.get("closest"):
        target = timestamp_datetime(parse_time(params["closest"]))
        rows.sort(key=lambda c: abs((c.datetime - target).total_seconds()))
        rows = rows[:limit] if limit is not None else rows
    records = [c.cdx_fields() for c in rows]
    fields = [f for f in params.get("fl", "").split(",") if f] or None
    output = params.get("output", "cdxj")
    if fields:
        unknown = [f for f in fields if f not in CDX_FIELDS]
        if unknown:
            raise BadInput(f"unknown field(s) in fl: {', '.join(unknown)}")
    if output == "json":
        body = "".join(json.dumps({k: r[k] for k in (fields or CDX_FIELDS)}) + "\n" for r in records)
        return _text(200, body, media_type=NDJSON)
    if output == "text" or fields:
        return _text(200, "".join(" ".join(r[k] for k in (fields or CDX_FIELDS)) + "\n" for r in records))
    return _text(200, "".join(
        f"{r['urlkey']} {r['timestamp']} " + json.dumps({k: r[k] for k in CDX_FIELDS[2:]}) + "\n"
        for r in records))


routes = [
    Route("/cdx", cdx, methods=["GET"]),
    Route("/web/timemap/{kind}/{rest:path}", timemap, methods=["GET"]),
    Route("/web/{rest:path}", web, methods=["GET"]),
]
