"""Replay and look-up routes in pywb's and the Wayback Machine's URL scheme.

    /web/timemap/link/URL      Memento TimeMap (RFC 7089, application/link-format)
    /web/timemap/json/URL      the same captures as JSON lines (pywb's CDX JSON)
    /web/URL                   TimeGate: 302 to the memento nearest Accept-Datetime
    /web/TIMESTAMP/URL         the page: rewritten by pywb when it runs (storage/server/replay.py),
                               else the archived payload as the site served it
    /web/TIMESTAMPid_/URL      the archived payload as the site served it
    /web/TIMESTAMPtext_/URL    the clean text of that capture
    /web/TIMESTAMPmp_/URL ...  pywb's other modifiers (cs_, js_, im_, ...): pywb only

A timestamp that is not exactly a capture's redirects to the nearest capture,
as the Wayback Machine does. The archived URL is read from the raw request
path (with its query string), as those clients send it unencoded.

Every memento and the TimeGate carry RFC 7089's Link set: original, timegate,
timemap, and first, prev, memento, next, last memento where they exist (one
Link entry per role, as web.archive.org writes them). The archived response's
headers are the site's, not ours: only those that say how to read the payload
(Content-Type, Content-Encoding, Content-Disposition, Content-Language) are
served as they were; Location is rewritten into the archive; all of them are
also (or only) given as X-Archive-Orig-NAME, as pywb and the Wayback Machine do,
so the site's ETag, Last-Modified, Vary, Link, Set-Cookie or Cache-Control never
act on the browser or a cache in between.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote, urljoin

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storage import urls
from storage.archive import Archive
from storage.capture import Capture
from storage.errors import BadInput, NotFound, StorageError
from storage.times import parse_time

_MEMENTO = re.compile(r"^(\d{1,14})([a-z]{2,6}_)?/(.+)$", re.S)
OWN_MODIFIERS = {"id_": "id_", "text_": "text_"}  # served here; any other modifier is pywb's

# The archived headers a browser needs to read the payload we send (its bytes as stored).
_KEEP = {"content-type", "content-encoding", "content-disposition", "content-language"}

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


def _memento_url(request: Request, capture: Capture, modifier: str = "") -> str:
    return f"{_base(request)}/web/{capture.timestamp}{modifier}/{capture.url}"


def link_header(request: Request, found: list[Capture], current: Capture | None, modifier: str = "") -> str:
    """RFC 7089 Link value for the captures ``found`` of one URL (oldest first), around
    ``current`` (the memento answered or chosen): one entry per role."""
    base = _base(request)
    original = found[-1].url
    out = [f'<{original}>; rel="original"',
           f'<{base}/web/{original}>; rel="timegate"',
           f'<{base}/web/timemap/link/{original}>; rel="timemap"; type="{LINK_FORMAT}"']
    roles = [(found[0], "first memento")]
    if current is not None:
        i = next(n for n, c in enumerate(found) if (c.warc, c.offset) == (current.warc, current.offset))
        if i > 0:
            roles.append((found[i - 1], "prev memento"))
        roles.append((current, "memento"))
        if i < len(found) - 1:
            roles.append((found[i + 1], "next memento"))
    roles.append((found[-1], "last memento"))
    out += [f'<{_memento_url(request, c, modifier)}>; rel="{rel}"; datetime="{c.http_date}"' for c, rel in roles]
    return ", ".join(out)


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

async def web(request: Request) -> Response:
    rest = _raw_rest(request, "/web/")
    match = _MEMENTO.match(rest)
    if not match:
        return await run_in_threadpool(timegate, request, _target(rest))
    ts, modifier, target = match.groups()
    replay = getattr(request.app.state, "replay", None)
    if modifier not in OWN_MODIFIERS and replay is not None and replay.running:
        return await replay.proxy(request, ts, modifier or "", _target(target))
    if modifier is not None and modifier not in OWN_MODIFIERS:
        raise NotFound(f"replay modifier {modifier!r} needs pywb, which is not running here: use id_ or text_")
    return await run_in_threadpool(memento, request, ts, modifier or "", _target(target))


def timegate(request: Request, url: str) -> Response:
    accept = request.headers.get("accept-datetime")
    try:
        at = parse_time(accept) if accept else None
    except BadInput:
        raise BadInput(f"bad Accept-Datetime: {accept!r} (use an RFC 1123 date)") from None
    found = _captures(request, url)
    capture = _archive(request).nearest(url, at)
    return Response(status_code=302, media_type="text/plain; charset=utf-8",
                    headers={"Location": _memento_url(request, capture), "Vary": "accept-datetime",
                             "Link": link_header(request, found, capture)})


def memento(request: Request, ts: str, modifier: str, url: str) -> Response:
    """A capture served by us: ``modifier`` is "" (no rewriting available), id_ or text_."""
    archive = _archive(request)
    found = _captures(request, url)
    exact = [c for c in found if c.timestamp == ts]
    if not exact:  # not a capture's timestamp: go to the nearest one (not itself a memento)
        capture = archive.nearest(url, ts)
        return Response(status_code=302, media_type="text/plain; charset=utf-8",
                        headers={"Location": _memento_url(request, capture, modifier)})
    capture = exact[-1]
    memento_headers = {"Memento-Datetime": capture.http_date,
                       "Link": link_header(request, found, capture, modifier)}
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
    at = f"{_base(request)}/web/{capture.timestamp}{modifier}/"
    for name, value in archived_headers(headers, lambda target: at + urljoin(capture.url, target)):
        out.append(name, value)
    for name, value in memento_headers.items():
        out.append(name, value)
    out["content-length"] = str(len(body))
    return response


def archived_headers(headers: list[tuple[str, str]], locate) -> list[tuple[str, str]]:
    """The archived response's headers as a replay serves them (module docstring);
    ``locate(value)`` is the archive's URL for an archived Location."""
    out = []
    for name, value in headers:
        lower = name.lower()
        if lower in _KEEP:
            out.append((name, value))
            continue
        if lower == "location":  # keep redirects inside the archive, at the same time
            out.append((name, locate(value)))
        out.append((f"X-Archive-Orig-{name}", value))
    return out


routes = [
    Route("/web/timemap/{kind}/{rest:path}", timemap, methods=["GET"]),
    Route("/web/{rest:path}", web, methods=["GET"]),
]
