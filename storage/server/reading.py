"""The reading room: server-rendered HTML pages over the archive (a little JavaScript).

    /                             search box, filters, paged results with snippets, counts over time
    /article?url=URL&at=TIME      the clean text and metadata of a capture, the captures on a timeline
    /article/diff?url=&from=&to=  what changed between two captures, paragraph by paragraph
    /article/replay?url=&at=      the archived page, replayed in a sandboxed frame
    /sandbox/TIMESTAMP/URL        that frame's document: the archived payload, sandboxed by CSP
    /sources, /sources/NAME       sources; articles archived per day, last runs, errors by kind
    /api/                         the JSON API, documented from its OpenAPI document
    /static/...                   the room's own CSS and JavaScript (nothing from the internet)

Everything from an archived page is escaped (Jinja2 autoescaping; snippets are
built from escaped text). Archived scripts never run in the room's origin: the
replay is an iframe with an empty `sandbox` attribute (no scripts, no same
origin), and its document is served with `Content-Security-Policy: sandbox`
plus a policy that lets it load nothing but archived resources, so opened on
its own it is sandboxed too and cannot reach the live web.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote

import jinja2
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from storage import urls
from storage.errors import BadInput, NewsarchiveError, NotFound
from storage.server import api, room

HERE = Path(__file__).resolve().parent

# The room's own pages: only its own scripts, styles and frames.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
# An archived document: a sandbox (an opaque origin, no scripts, no forms, no popups)
# that may load archived resources from this server and nothing else.
SANDBOX_CSP = ("sandbox; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "font-src 'self' data:; media-src 'self'; base-uri 'self'; form-action 'none'; "
               "frame-ancestors 'self'")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "no-store"}
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


# -- templates and their helpers --------------------------------------------------------

def when(ts: str | None) -> str:
    """20240513100005 -> '2024-05-13 10:00:05 UTC'."""
    if not ts or len(ts) < 14:
        return ts or ""
    return f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]} {ts[8:10]}:{ts[10:12]}:{ts[12:14]} UTC"


def when_iso(value: str | None) -> str:
    """An ISO 8601 time (a run manifest's) -> '2024-05-13 10:00:05 UTC'."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def marked(text: str | None, spans) -> Markup:
    """`text` escaped, with the highlighted spans in <mark>."""
    text = text or ""
    out, pos = [], 0
    for start, end in spans or []:
        out.append(escape(text[pos:start]))
        out.append(Markup("<mark>") + escape(text[start:end]) + Markup("</mark>"))
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def lang_attr(value: str | None) -> str | None:
    """A page's language as an HTML lang value, or None when it is not one."""
    return value if value and _LANG.match(value) else None


def bars(series: list[dict], width: int = 720, height: int = 120, widest: int = 36) -> dict:
    """Geometry of a bar chart over [{period, count}] (drawn by the chart macro): bars at
    most `widest` units wide, so a few periods do not fill the page with one block."""
    n = len(series)
    top = max((p["count"] for p in series), default=0)
    if not n:
        return {"bars": [], "top": 0, "width": width, "height": height}
    width = max(200, min(width, n * widest))
    step = width / n
    gap = 1 if step > 3 else 0
    out = []
    for i, p in enumerate(series):
        h = 0 if not top else max(2 if p["count"] else 0, round((height - 4) * p["count"] / top))
        w = min(widest, max(0.5, step - gap))
        out.append({"x": round(i * step + (step - gap - w) / 2, 2), "y": height - h, "w": round(w, 2), "h": h, **p})
    return {"bars": out, "top": top, "width": width, "height": height}


def timeline_points(captures: list[dict], width: int = 720) -> list[dict]:
    """Each capture's x on a line from the first capture to the last."""
    from storage.times import timestamp_datetime

    if not captures:
        return []
    times = [timestamp_datetime(c["timestamp"]).timestamp() for c in captures]
    first, last = min(times), max(times)
    pad = 14
    span = (last - first) or 1
    return [{"x": round(pad + (width - 2 * pad) * ((t - first) / span if last > first else 0.5), 1), **c}
            for t, c in zip(times, captures)]


def _environment() -> jinja2.Environment:
    # optional fields (an article's author, a run's verdict) are simply absent: plain Undefined renders ''
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, when_iso=when_iso, marked=marked, lang_attr=lang_attr, urlquote=lambda s: quote(s or "", safe=""))
    env.globals.update(bars=bars, timeline_points=timeline_points, article_link=room.article_link,
                       diff_link=room.diff_link, replay_link=room.replay_link, sandbox_path=room.sandbox_path)
    return env


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, context: dict, status: int = 200) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status, headers=PAGE_HEADERS)


def page(view):
    """A view returning (template, context) -> an HTML page; a NewsarchiveError -> the error page."""
    @functools.wraps(view)
    async def endpoint(request: Request):
        try:
            result = await run_in_threadpool(view, request)
        except NewsarchiveError as exc:
            return render(request, "error.html", {"message": str(exc), "status": exc.http_status}, exc.http_status)
        if isinstance(result, Response):
            return result
        name, context = result
        return render(request, name, context)
    return endpoint


def _archive(request: Request):
    return request.app.state.archive


def _url(request: Request) -> str:
    value = (request.query_params.get("url") or "").strip()
    if not value:
        raise BadInput("which article? this page needs ?url=URL")
    return value


# -- pages -------------------------------------------------------------------------------

@page
def search_page(request: Request):
    archive = _archive(request)
    error = None
    try:
        params = room.SearchParams.parse(request.query_params)
        found = room.search_view(archive, params)
        counts = room.counts_view(archive, params)
    except BadInput as exc:  # shown above the form, which keeps what was typed
        error = str(exc)
        params = room.SearchParams.parse({})
        found = room.search_view(archive, params)
        found["total"], found["results"] = 0, []
        counts = None
    typed = {k: request.query_params.get(k, "") for k in ("q", "from", "to", "lang")}
    typed["source"] = request.query_params.getlist("source")
    return "search.html", {"params": params, "found": found, "counts": counts, "error": error, "typed": typed,
                           "location": archive.location}


@page
def article_page(request: Request):
    view = room.article_view(_archive(request), _url(request), request.query_params.get("at"))
    return "article.html", {"a": view}


@page
def diff_page(request: Request):
    q = request.query_params
    view = room.diff_view(_archive(request), _url(request), q.get("from"), q.get("to"))
    return "diff.html", {"d": view}


@page
def replay_page(request: Request):
    view = room.article_view(_archive(request), _url(request), request.query_params.get("at"), any_capture=True)
    return "replay.html", {"a": view}


@page
def sources_page(request: Request):
    return "sources.html", {"s": room.sources_view(_archive(request))}


@page
def source_page(request: Request):
    view = room.source_view(_archive(request), request.app.state.runs, request.path_params["name"])
    return "source.html", {"s": view}


@page
def api_page(request: Request):
    return "api.html", {"doc": api.openapi_document(request)}


# -- the sandboxed replay ------------------------------------------------------------------

_HEAD = re.compile(rb"<head\b[^>]*>", re.I)
_HTML = re.compile(rb"<html\b[^>]*>", re.I)
_DOCTYPE = re.compile(rb"^\s*<!doctype[^>]*>", re.I)


def with_base(body: bytes, base: str) -> bytes:
    """The archived HTML with a <base> first in its head, so relative links resolve
    to archived resources (/web/TSid_/URL) instead of this server's own paths."""
    tag = b'<base href="' + escape(base).encode("ascii", "xmlcharrefreplace") + b'">'
    window = body[:65536]
    for pattern in (_HEAD, _HTML, _DOCTYPE):
        m = pattern.search(window)
        if m:
            return body[:m.end()] + tag + body[m.end():]
    return tag + body


def _sandbox(request: Request) -> Response:
    archive = _archive(request)
    raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    query = (request.scope.get("query_string") or b"").decode("latin-1")
    rest = raw[len("/sandbox/"):] + (f"?{query}" if query else "")
    ts, _, target = rest.partition("/")
    if not ts.isdigit() or not target:
        raise NotFound("use /sandbox/TIMESTAMP/URL")
    if re.match(r"^https?%3a", target, re.I):
        target = unquote(target)
    url = urls.normalize_input(target)
    found = archive.captures(url)
    if not found:
        raise NotFound(f"no capture of {url} in {archive.location}")
    exact = [c for c in found if c.timestamp == ts]
    if not exact:  # as the wayback routes do: go to the nearest capture
        return RedirectResponse(room.sandbox_path(archive.nearest(url, ts).timestamp, url), status_code=302)
    capture = exact[-1]
    statusline, headers, _raw, _body = archive.http_response(capture)
    body = archive.payload(capture, decoded=True)
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "application/octet-stream")
    if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        body = with_base(body, f"/web/{capture.timestamp}id_/{capture.url}")
    return Response(body, status_code=200, headers={
        "Content-Type": content_type, "Content-Security-Policy": SANDBOX_CSP, "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
        "X-Archive-Status": statusline.partition(" ")[0] or "-"})


async def sandbox(request: Request) -> Response:
    try:
        return await run_in_threadpool(_sandbox, request)
    except NewsarchiveError as exc:
        return Response(f"{exc}\n", status_code=exc.http_status, media_type="text/plain; charset=utf-8",
                        headers={"Content-Security-Policy": SANDBOX_CSP})


routes = [
    Route("/", search_page, methods=["GET"]),
    Route("/article", article_page, methods=["GET"]),
    Route("/article/diff", diff_page, methods=["GET"]),
    Route("/article/replay", replay_page, methods=["GET"]),
    Route("/sandbox/{rest:path}", sandbox, methods=["GET"]),
    Route("/sources", sources_page, methods=["GET"]),
    Route("/sources/{name}", source_page, methods=["GET"]),
    Route("/api", api_page, methods=["GET"]),
    Route("/api/", api_page, methods=["GET"]),
    Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
]
