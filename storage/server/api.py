"""/api/: everything the reading room shows, as JSON (read-only, GET only).

    /api/search?q=&source=&from=&to=&lang=&limit=&offset=&sort=   matching articles, best first
    /api/search/counts?q=...&by=day|week|month                     matching articles per period
    /api/article?url=URL[&at=TIME]                                 metadata, clean text, captures
    /api/captures?url=URL                                          the captures of a URL, with text versions
    /api/diff?url=URL[&from=TIME][&to=TIME]                        paragraphs added, removed, changed
    /api/sources, /api/sources/NAME                                sources; per day, runs, errors by kind
    /api/openapi.json                                              this API as an OpenAPI 3 document

Each endpoint's docstring after `---` is its OpenAPI operation (Starlette's
SchemaGenerator reads it). Errors are `{"error": "one line"}` with the status
of the NewsarchiveError (400 for a bad query or time, 404 for nothing found).
"""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from storage.errors import BadInput, NewsarchiveError
from storage.server import room

schemas = SchemaGenerator({
    "openapi": "3.0.3",
    "info": {"title": "newsarchive reading room API", "version": "1",
             "description": "Read-only JSON over the archive: full-text search, articles, captures, diffs "
                            "and sources. Times (from, to, at) take ISO 8601 (2024-05-02T12:00Z), a partial date "
                            "(2024-05: to covers the whole month) or a 4 to 14 digit timestamp."},
})


def _json(data, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store",
                                                           "X-Content-Type-Options": "nosniff"})


def json_endpoint(view):
    """A view returning data -> a JSON response; a NewsarchiveError -> {"error"} with its status."""
    @functools.wraps(view)
    async def endpoint(request: Request):
        try:
            return _json(await run_in_threadpool(view, request))
        except NewsarchiveError as exc:
            return _json({"error": str(exc)}, exc.http_status)
    return endpoint


def _archive(request: Request):
    return request.app.state.archive


def _required(request: Request, name: str) -> str:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        raise BadInput(f"the {name} parameter is required")
    return value


_FILTERS = """
      - {name: source, in: query, schema: {type: array, items: {type: string}}, style: form, explode: true,
         description: "only these sources (repeat the parameter for several)"}
      - {name: from, in: query, schema: {type: string}, description: "articles dated at or after this time"}
      - {name: to, in: query, schema: {type: string}, description: "articles dated at or before this time"}
      - {name: lang, in: query, schema: {type: string}, description: "language: en, de, ru, zh, pt-br, ..."}"""


def _doc(text: str) -> str:
    return text.replace("FILTERS", _FILTERS.strip("\n"))


@json_endpoint
def search(request: Request):
    params = room.SearchParams.parse(request.query_params)
    return room.search_view(_archive(request), params)


search.__doc__ = _doc("""Full-text search, one result per article, best first.
    ---
    summary: Search the archived clean text
    description: >-
      Words, "phrases", prefixes (climat*), AND, OR, NOT (or -word) and parentheses;
      Chinese, Japanese and Korean words are found inside sentences. Without q, the
      articles matching the filters, newest first. Each result has its captures and a
      snippet with highlights as [start, end) character offsets.
    parameters:
      - {name: q, in: query, schema: {type: string}, description: the query}
FILTERS
      - {name: limit, in: query, schema: {type: integer, default: 20, minimum: 1, maximum: 1000}}
      - {name: offset, in: query, schema: {type: integer, default: 0, minimum: 0}}
      - {name: sort, in: query, schema: {type: string, enum: [relevance, newest, oldest], default: relevance}}
    responses:
      200: {description: "query, filters, total, offset, limit, sort, results: [{url, source, title, published,
            date, language, captured, captures, snippet, highlights, matched, ...}], facets"}
      400: {description: "a bad query, time or parameter: {error}"}
    """)


@json_endpoint
def counts(request: Request):
    params = room.SearchParams.parse(request.query_params)
    return room.counts_view(_archive(request), params)


counts.__doc__ = _doc("""Matching articles per period.
    ---
    summary: Count matching articles per day, week or month
    description: >-
      By each article's date (as published, else its first capture); every period
      from the first to the last is listed, zeros included. Without by, days for up
      to two months, weeks for up to two years, else months. Without q, all articles.
    parameters:
      - {name: q, in: query, schema: {type: string}}
FILTERS
      - {name: by, in: query, schema: {type: string, enum: [day, week, month]}}
    responses:
      200: {description: "query, filters, by, total, counts: [{period, count}] (a week is named by its Monday)"}
      400: {description: "{error}"}
    """)


@json_endpoint
def article(request: Request):
    """One article at one capture.
    ---
    summary: An article's metadata, clean text and captures
    parameters:
      - {name: url, in: query, required: true, schema: {type: string}}
      - {name: at, in: query, schema: {type: string}, description: "the capture nearest this time (default: the newest with text)"}
    responses:
      200: {description: "url, title, capture, metadata, text, captures (timeline: version, changed), versions, links"}
      404: {description: "no capture of this URL: {error}"}
    """
    return room.article_view(_archive(request), _required(request, "url"), request.query_params.get("at"))


@json_endpoint
def captures(request: Request):
    """The captures of a URL.
    ---
    summary: Every capture of a URL, oldest first, with its text version
    parameters:
      - {name: url, in: query, required: true, schema: {type: string}}
    responses:
      200: {description: "url, captures: [{timestamp, iso, url, status, mime, digest, warc, offset, length, text,
            record_id, revisit, version, changed}]"}
      404: {description: "{error}"}
    """
    url = _required(request, "url")
    _captures, rows = room.timeline(_archive(request), url)
    return {"url": url, "captures": rows}


@json_endpoint
def diff(request: Request):
    """The text of two captures compared.
    ---
    summary: Paragraphs added, removed and changed between two captures of an article
    parameters:
      - {name: url, in: query, required: true, schema: {type: string}}
      - {name: from, in: query, schema: {type: string}, description: "the older capture (default: the newest with other text)"}
      - {name: to, in: query, schema: {type: string}, description: "the newer capture (default: the newest with text)"}
    responses:
      200: {description: "url, from, to, summary {same, added, removed, changed},
            changes: [{op, old?, new?, segments?: [{op, text}]}]"}
      404: {description: "{error}"}
    """
    q = request.query_params
    return room.diff_view(_archive(request), _required(request, "url"), q.get("from"), q.get("to"))


@json_endpoint
def sources(request: Request):
    """Every source.
    ---
    summary: The sources in the archive with their counts
    responses:
      200: {description: "sources: [{name, articles, captures, first_capture, last_capture, links}]"}
    """
    return room.sources_view(_archive(request))


@json_endpoint
def source(request: Request):
    """One source.
    ---
    summary: A source's articles archived per day, its last runs and errors by kind
    parameters:
      - {name: name, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: "name, articles, captures, archived_per_day: [{period, count}], runs: [{run_id, started,
            finished, status, verdict, pages, articles, bytes, errors, ...}], errors_by_kind"}
      404: {description: "{error}"}
    """
    return room.source_view(_archive(request), request.app.state.runs, request.path_params["name"])


def openapi_document(request: Request) -> dict:
    return schemas.get_schema(routes)


async def openapi(request: Request):
    """The OpenAPI document of /api/ (also rendered at /api/)."""
    return _json(openapi_document(request))


routes = [
    Route("/api/search", search, methods=["GET"]),
    Route("/api/search/counts", counts, methods=["GET"]),
    Route("/api/article", article, methods=["GET"]),
    Route("/api/captures", captures, methods=["GET"]),
    Route("/api/diff", diff, methods=["GET"]),
    Route("/api/sources", sources, methods=["GET"]),
    Route("/api/sources/{name}", source, methods=["GET"]),
    Route("/api/openapi.json", openapi, methods=["GET"], include_in_schema=False),
]
