"""Full-text search over the archive's clean text: an SQLite FTS5 index inside the catalog.

    index = catalog.search                      # made by the catalog, kept up to date by its sync
    found = index.search("climate NOT flood", SearchFilters(sources=("harbour",)), limit=20)
    found.total, found.hits[0].title, found.hits[0].snippet
    index.counts("climat*", SearchFilters(), by="day")   # [("2024-05-13", 3), ...]

One result per article (its URL key), however often it was captured. The
tables live in the catalog's database, beside `captures` and `texts`:

    articles          one row per article: what a result shows and what filters use
    article_text      FTS5 over title, body (the newest text's paragraphs), earlier
                      (paragraphs earlier captures had and the newest lacks, and
                      earlier titles) and cjk (character pairs of the Han, kana and
                      Hangul runs of all three: storage/searchquery.py)
    article_versions  each conversion record folded in: its article, time and sha1
    search_indexes    the catalog's index files whose texts are all folded in

`Catalog.sync` calls `update(backend)` after ingesting indexes: each new
conversion record's text (a ranged read of its record) and the article's
metadata (`articles/...json`) are folded into its article, so a run (whose last
step syncs the catalog) and `reindex` (which rebuilds the catalog) keep the
index current. Everything here is derived from the archive and rebuilt from it.

Tokens: unicode61 with diacritics removed (Zürich = Zurich, Cyrillic and Greek
case-folded) for title/body/earlier; the cjk column for scripts written
without spaces (benchmarks/README.md compares this with a trigram index).

Dates: an article's date (filters, counts) is the date and time it was published,
as the page wrote it (its own time zone), else its first capture (UTC).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from storage import layout
from storage.capture import REVISIT_MIME
from storage.errors import BadInput, NotFound, StorageError
from storage.schemas import SEARCH_SCHEMA
# storage.searchquery (its CJK tables) and storage.plaintext are imported where a query
# or a text is read: every catalog opens this module, and a look-up reads neither.
from storage.times import parse_time, period_end, timestamp_datetime

# `Query` in annotations is storage.searchquery.Query (not imported here: see above; typing's
# TYPE_CHECKING would cost a look-up the typing import).


PERIODS = ("day", "week", "month")
SORTS = ("relevance", "newest", "oldest")
MAX_LIMIT = 1000

# bm25 weights of title, body, earlier, cjk: a word in the title counts most,
# one only an earlier version had counts least.
RANK = "bm25(8.0, 1.0, 0.4, 1.0)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY,
    urlkey TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    source TEXT,
    title TEXT,
    author TEXT,
    published TEXT,             -- the date as published, as the page wrote it
    date_ts TEXT NOT NULL,      -- 14 digits: publication (its own zone), else first capture (UTC)
    dated_by TEXT NOT NULL,     -- 'published' or 'captured'
    language TEXT,
    lang TEXT,                  -- primary language subtag, lower case (filters)
    sitename TEXT,
    description TEXT,
    canonical_url TEXT,
    body_sha1 TEXT NOT NULL,    -- of the text whose paragraphs are the body
    text_ts TEXT NOT NULL,      -- newest capture with that text
    first_ts TEXT NOT NULL,     -- first capture with any text
    versions INTEGER NOT NULL   -- distinct texts
);
CREATE INDEX IF NOT EXISTS articles_by_date ON articles (date_ts);
CREATE INDEX IF NOT EXISTS articles_by_source ON articles (source, date_ts);
CREATE INDEX IF NOT EXISTS articles_by_lang ON articles (lang, date_ts);
CREATE VIRTUAL TABLE IF NOT EXISTS article_text USING fts5(
    title, body, earlier, cjk, tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS article_versions (
    warc TEXT NOT NULL,
    offset INTEGER NOT NULL,
    article INTEGER,            -- NULL: the text could not be read (problem)
    source TEXT,
    timestamp TEXT NOT NULL,
    sha1 TEXT,
    problem TEXT,
    PRIMARY KEY (warc, offset)
);
CREATE INDEX IF NOT EXISTS article_versions_by_article ON article_versions (article, timestamp);
CREATE INDEX IF NOT EXISTS article_versions_by_source ON article_versions (source, timestamp);
CREATE TABLE IF NOT EXISTS search_indexes (index_key TEXT PRIMARY KEY);
-- the texts of one index file, found without scanning every text
CREATE INDEX IF NOT EXISTS texts_by_index ON texts (index_key);
"""
_TABLES = ("articles", "article_text", "article_versions", "search_indexes")

_START, _END = "\x02", "\x03"  # highlight marks inside FTS5 snippets (never in indexed text)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PUBLISHED = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?")
_SPACE = re.compile(r"\s+")
SNIPPET_TOKENS = 36
SNIPPET_CHARS = 220


# -- what a search is asked and answers ---------------------------------------------

@dataclass(frozen=True)
class SearchFilters:
    sources: tuple[str, ...] = ()
    since: str | None = None  # 14 digits, inclusive
    until: str | None = None
    lang: str | None = None

    @classmethod
    def from_input(cls, sources=(), start: str | None = None, end: str | None = None,
                   lang: str | None = None) -> "SearchFilters":
        """From what a person typed: --from/--to as storage/times.py reads them (a
        partial date covers its period: --to 2024-05 is the end of May)."""
        since, until = parse_time(start or None), period_end(end or None)
        if since and until and since > until:
            raise BadInput(f"--from {start} is after --to {end}")
        lang = (lang or "").strip().lower() or None
        if lang and not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{1,8})*", lang):
            raise BadInput(f"not a language code: {lang!r} (use one like en, de, ru, zh or pt-br)")
        names = tuple(s.strip() for s in (sources or ()) if s and s.strip())
        return cls(names, since, until, lang)

    def as_json(self) -> dict:
        return {"sources": list(self.sources), "from": self.since, "to": self.until, "lang": self.lang}


@dataclass
class SearchHit:
    url: str
    source: str | None
    title: str | None
    author: str | None
    published: str | None  # as the page wrote it
    date: str  # YYYY-MM-DD: what filters and counts use
    dated_by: str  # published | captured
    language: str | None
    sitename: str | None
    description: str | None
    timestamp: str  # the capture whose text is shown (the newest)
    first_timestamp: str
    versions: int
    captures: list[dict]
    snippet: str
    highlights: list[tuple[int, int]]  # [start, end) in snippet
    title_highlights: list[tuple[int, int]]
    matched: str | None  # text | earlier text | title (None: a listing without a query)
    score: float | None  # bm25: lower is better

    @property
    def captured(self) -> str:
        return timestamp_datetime(self.timestamp).isoformat().replace("+00:00", "Z")

    def as_json(self) -> dict:
        return {"url": self.url, "source": self.source, "title": self.title, "author": self.author,
                "published": self.published, "date": self.date, "dated_by": self.dated_by,
                "language": self.language, "sitename": self.sitename, "description": self.description,
                "captured": self.captured, "timestamp": self.timestamp, "first_timestamp": self.first_timestamp,
                "versions": self.versions, "captures": self.captures, "snippet": self.snippet,
                "highlights": [list(h) for h in self.highlights],
                "title_highlights": [list(h) for h in self.title_highlights],
                "matched": self.matched, "score": round(self.score, 4) if self.score is not None else None}


@dataclass
class SearchResults:
    query: str
    filters: SearchFilters
    total: int
    offset: int
    limit: int
    sort: str
    hits: list[SearchHit]

    def as_json(self) -> dict:
        return {"query": self.query, "filters": self.filters.as_json(), "total": self.total,
                "offset": self.offset, "limit": self.limit, "sort": self.sort,
                "results": [h.as_json() for h in self.hits]}


@dataclass
class IndexReport:
    articles: int = 0  # texts folded in
    skipped: list[str] = field(default_factory=list)  # "WARC@OFFSET: reason", not retried
    pending: int = 0  # left for the next sync (the backend failed)


# -- helpers ---------------------------------------------------------------------

def _compile_query(text: str):
    from storage.searchquery import compile_query

    return compile_query(text)


def _cjk_index_text(*texts: str) -> str:
    from storage.searchquery import cjk_index_text

    return cjk_index_text(*texts)


def published_timestamp(value: str | None) -> str | None:
    """'2024-05-13T09:30:00+02:00' -> '20240513093000': the time as the page wrote it."""
    if not value or not isinstance(value, str):
        return None
    m = _PUBLISHED.match(value)
    try:
        if m:
            y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
            return datetime(y, mo, d, h, mi, s).strftime("%Y%m%d%H%M%S")
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(value).strftime("%Y%m%d%H%M%S")
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _clean(text: str | None) -> str:
    return _CONTROL.sub(" ", text or "")


def _lang(language: str | None) -> str | None:
    if not language:
        return None
    primary = re.split(r"[-_]", language.strip().lower())[0]
    return primary or None


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _marked(text: str) -> tuple[str, list[tuple[int, int]]]:
    """An FTS5 snippet with our marks -> (one-line text, highlighted spans)."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    start = None
    size = 0
    for ch in text or "":
        if ch == _START:
            start = size
        elif ch == _END:
            if start is not None:
                spans.append((start, size))
            start = None
        elif ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                size += 1
        else:
            out.append(ch)
            size += 1
    return "".join(out).strip(), spans


def _mark_cjk(text: str, terms: tuple[str, ...], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    found = list(spans)
    for term in terms:
        found += [(m.start(), m.end()) for m in re.finditer(re.escape(term), text)]
    return _merge(found)


def _cjk_window(text: str, terms: tuple[str, ...]) -> tuple[str, list[tuple[int, int]]] | None:
    """A snippet around the first of `terms` in `text` (FTS5 snippets count CJK runs as one token)."""
    flat = _SPACE.sub(" ", text or "").strip()
    positions = [p for p in (flat.find(t) for t in terms) if p >= 0]
    if not positions:
        return None
    first = min(positions)
    start = max(0, first - SNIPPET_CHARS // 3)
    end = min(len(flat), start + SNIPPET_CHARS)
    piece = ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
    return piece, _mark_cjk(piece, terms, [])


def _head(text: str) -> str:
    flat = _SPACE.sub(" ", text or "").strip()
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"


def _day(ts: str) -> str:
    return f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]}"


def period_of(day: str, by: str) -> str:
    """'2024-05-15' -> its day, the Monday of its ISO week, or its month ('2024-05')."""
    if by == "day":
        return day
    if by == "month":
        return day[:7]
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def _next_period(period: str, by: str) -> str:
    if by == "month":
        y, m = int(period[:4]), int(period[5:7])
        return f"{y + m // 12:04d}-{m % 12 + 1:02d}"
    return (date.fromisoformat(period) + timedelta(days=7 if by == "week" else 1)).isoformat()


def fill_periods(counts: dict[str, int], by: str) -> list[tuple[str, int]]:
    """Every period from the first to the last with a count, zeros included (a series to plot)."""
    if not counts:
        return []
    out, period, last = [], min(counts), max(counts)
    while period <= last:
        out.append((period, counts.get(period, 0)))
        period = _next_period(period, by)
    return out


def check_period(by: str) -> str:
    if by not in PERIODS:
        raise BadInput(f"count by day, week or month, not {by!r}")
    return by


# -- the index ---------------------------------------------------------------------

class SearchIndex:
    """The search tables of one catalog (storage.catalog.Catalog.search)."""

    def __init__(self, catalog):
        self.catalog = catalog
        self._facets: tuple[tuple, dict] | None = None  # (what the tables held, facets)
        with catalog._connect() as db:
            version = db.execute("SELECT value FROM meta WHERE key = 'search_schema'").fetchone()
            if version is not None and version[0] != SEARCH_SCHEMA:
                for table in _TABLES:  # an older layout: rebuilt from the texts on the next sync
                    db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('search_schema', ?)", (SEARCH_SCHEMA,))
            rank = db.execute("SELECT v FROM article_text_config WHERE k = 'rank'").fetchone()
            if rank is None or rank[0] != RANK:
                db.execute("INSERT INTO article_text (article_text, rank) VALUES ('rank', ?)", (RANK,))

    def _db(self) -> sqlite3.Connection:
        return self.catalog._db()

    def clear(self, db: sqlite3.Connection) -> None:
        """Forget everything (inside the catalog's transaction `db`)."""
        for table in _TABLES:
            db.execute(f"DELETE FROM {table}")

    # -- ingest ----------------------------------------------------------------

    def pending_indexes(self) -> list[str]:
        return [row[0] for row in self._db().execute(
            "SELECT index_key FROM ingested WHERE index_key NOT IN (SELECT index_key FROM search_indexes) "
            "ORDER BY index_key")]

    def update(self, backend, *, batch: int = 256, threads: int = 8) -> IndexReport:
        """Fold every conversion record the catalog has and the index lacks into its article."""
        report = IndexReport()
        keys = self.pending_indexes()
        if not keys:
            return report
        # imported here, not at the top: every catalog opens this module, and a look-up
        # (`newsarchive get`) should not pay for warcio or a thread pool it never uses
        from concurrent.futures import ThreadPoolExecutor

        pool: ThreadPoolExecutor | None = None
        try:
            for key in keys:
                rows = self._db().execute(
                    "SELECT t.warc, t.offset, t.length, t.url, t.urlkey, t.timestamp FROM texts t "
                    "WHERE t.index_key = ? AND NOT EXISTS (SELECT 1 FROM article_versions v "
                    "WHERE v.warc = t.warc AND v.offset = t.offset) ORDER BY t.timestamp, t.offset",
                    (key,)).fetchall()
                complete = True
                for start in range(0, len(rows), batch):
                    chunk = rows[start:start + batch]
                    if pool is None and len(chunk) > 1:
                        pool = ThreadPoolExecutor(threads, thread_name_prefix="search-read")
                    read = list(pool.map(lambda r: _read_text(backend, r), chunk)) if pool else [
                        _read_text(backend, r) for r in chunk]
                    with self.catalog._connect() as db:
                        for row, (text, meta, problem, transient) in zip(chunk, read):
                            if transient:
                                complete = False
                                report.pending += 1
                            elif problem:
                                self._skip(db, row, problem)
                                report.skipped.append(f"{row['warc']}@{row['offset']}: {problem}")
                            else:
                                self._fold(db, row, text, meta)
                                report.articles += 1
                if complete:
                    with self.catalog._connect() as db:
                        db.execute("INSERT OR IGNORE INTO search_indexes (index_key) VALUES (?)", (key,))
        finally:
            if pool is not None:
                pool.shutdown()
        if report.pending:
            import logging

            logging.getLogger("newsarchive.search").warning(
                "search: %d texts could not be read now; the next sync tries again", report.pending)
        return report

    def optimize(self) -> None:
        """Merge the index's segments into one (after a rebuild: faster queries)."""
        with self.catalog._connect() as db:
            db.execute("INSERT INTO article_text (article_text) VALUES ('optimize')")

    def _skip(self, db, row, problem: str) -> None:
        db.execute("INSERT OR IGNORE INTO article_versions (warc, offset, article, source, timestamp, sha1, problem) "
                   "VALUES (?, ?, NULL, ?, ?, NULL, ?)",
                   (row["warc"], row["offset"], _source_of(row["warc"]), row["timestamp"], problem))

    def _fold(self, db, row, text: str, meta: dict) -> None:
        """Add one text of an article: a new article, a newer version, or an older one arriving late."""
        ts, source = row["timestamp"], _source_of(row["warc"])
        sha = hashlib.sha1(text.encode("utf-8")).hexdigest()
        from storage.plaintext import split_plain_text

        plain = split_plain_text(_clean(text))
        title = _clean(meta.get("title")) or plain.title or None
        art = db.execute("SELECT * FROM articles WHERE urlkey = ?", (row["urlkey"],)).fetchone()
        published = meta.get("date_published") or meta.get("date")
        published_ts = published_timestamp(meta.get("date_published")) or published_timestamp(meta.get("date"))
        fields = {"url": row["url"], "source": source, "title": title, "author": meta.get("author"),
                  "published": published, "language": meta.get("language"), "lang": _lang(meta.get("language")),
                  "sitename": meta.get("sitename"), "description": meta.get("description"),
                  "canonical_url": meta.get("canonical_url")}
        if art is None:
            db.execute(
                "INSERT INTO articles (urlkey, url, source, title, author, published, date_ts, dated_by, language, "
                "lang, sitename, description, canonical_url, body_sha1, text_ts, first_ts, versions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                (row["urlkey"], fields["url"], source, title, fields["author"], published,
                 published_ts or ts, "published" if published_ts else "captured", fields["language"],
                 fields["lang"], fields["sitename"], fields["description"], fields["canonical_url"], sha, ts, ts))
            article = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            self._write_text(db, article, title or "", list(plain.paragraphs), [])
        else:
            article = art["id"]
            old = db.execute("SELECT title, body, earlier FROM article_text WHERE rowid = ?", (article,)).fetchone()
            body = [p for p in (old["body"] or "").split("\n\n") if p] if old else []
            earlier = [p for p in (old["earlier"] or "").split("\n\n") if p] if old else []
            old_title = old["title"] if old else (art["title"] or "")
            updates: dict = {}
            if ts >= art["text_ts"]:  # the newest text: it becomes the body
                if sha != art["body_sha1"]:
                    new_body = list(plain.paragraphs)
                    keep = set(new_body)
                    gone = ([old_title] if old_title and old_title != title else []) + body + earlier
                    earlier = [p for p in dict.fromkeys(gone) if p not in keep]
                    self._write_text(db, article, title or old_title, new_body, earlier, replace=True)
                    updates["body_sha1"] = sha
                updates["text_ts"] = ts
                updates.update({k: v for k, v in fields.items() if v is not None})
            else:  # an older text arriving late: what it had and the body lacks is earlier text
                extra = [p for p in plain.paragraphs if p not in set(body) and p not in set(earlier)]
                if title and title != old_title and title not in earlier:
                    extra.insert(0, title)
                if extra:
                    self._write_text(db, article, old_title, body, earlier + extra, replace=True)
                updates.update({k: v for k, v in fields.items() if v is not None and art[k] is None})
            first = min(art["first_ts"], ts)
            updates["first_ts"] = first
            if published_ts and (art["dated_by"] == "captured" or ts >= art["text_ts"]):
                updates.update(date_ts=published_ts, dated_by="published")
            elif art["dated_by"] == "captured":
                updates["date_ts"] = first
            shas = {r[0] for r in db.execute("SELECT sha1 FROM article_versions WHERE article = ?", (article,))}
            updates["versions"] = len(shas | {sha})
            db.execute(f"UPDATE articles SET {', '.join(f'{k} = ?' for k in updates)} WHERE id = ?",
                       (*updates.values(), article))
        db.execute("INSERT OR IGNORE INTO article_versions (warc, offset, article, source, timestamp, sha1, problem) "
                   "VALUES (?, ?, ?, ?, ?, ?, NULL)", (row["warc"], row["offset"], article, source, ts, sha))

    def _write_text(self, db, article: int, title: str, body: list[str], earlier: list[str],
                    replace: bool = False) -> None:
        if replace:
            db.execute("DELETE FROM article_text WHERE rowid = ?", (article,))
        body_text, earlier_text = "\n\n".join(body), "\n\n".join(earlier)
        db.execute("INSERT INTO article_text (rowid, title, body, earlier, cjk) VALUES (?, ?, ?, ?, ?)",
                   (article, title, body_text, earlier_text, _cjk_index_text(title, body_text, earlier_text)))

    # -- queries ---------------------------------------------------------------

    def _from(self, query: Query | None, filters: SearchFilters) -> tuple[str, list]:
        if query is not None:
            sql, args = ["FROM article_text f JOIN articles a ON a.id = f.rowid WHERE article_text MATCH ?"], [query.fts]
        else:
            sql, args = ["FROM articles a WHERE 1"], []
        if filters.sources:
            sql.append(f"AND a.source IN ({', '.join('?' for _ in filters.sources)})")
            args += list(filters.sources)
        if filters.since:
            sql.append("AND a.date_ts >= ?")
            args.append(filters.since)
        if filters.until:
            sql.append("AND a.date_ts <= ?")
            args.append(filters.until)
        if filters.lang:
            if "-" in filters.lang:
                sql.append("AND lower(a.language) = ?")
            else:
                sql.append("AND a.lang = ?")
            args.append(filters.lang)
        return " ".join(sql), args

    def _run(self, sql: str, args: list, query: Query | None):
        try:
            return self._db().execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if query is not None and ("fts5" in str(exc) or "MATCH" in str(exc)):
                from storage.searchquery import QueryError

                raise QueryError(f"cannot be searched ({exc})", query.text) from None
            raise StorageError(f"search failed in {self.catalog.path}: {exc}") from None

    def search(self, text: str | None, filters: SearchFilters = SearchFilters(), *, limit: int = 20,
               offset: int = 0, sort: str = "relevance") -> SearchResults:
        """Articles matching `text` (all articles when it is empty), best first
        (or newest/oldest first), one per article, with a highlighted snippet."""
        if sort not in SORTS:
            raise BadInput(f"sort by relevance, newest or oldest, not {sort!r}")
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise BadInput(f"limit must be between 1 and {MAX_LIMIT}: {limit}")
        if int(offset) < 0:
            raise BadInput(f"offset must be 0 or more: {offset}")
        query = _compile_query(text) if (text or "").strip() else None
        base, args = self._from(query, filters)
        if query is not None and filters == SearchFilters():  # one text row per article: no join to count
            total = self._run("SELECT count(*) FROM article_text WHERE article_text MATCH ?", [query.fts], query)[0][0]
        else:
            total = self._run(f"SELECT count(*) {base}", args, query)[0][0]
        if query is not None and sort == "relevance":
            order = "f.rank, a.date_ts DESC"
        else:
            order = "a.date_ts ASC, a.id ASC" if sort == "oldest" else "a.date_ts DESC, a.id DESC"
        score = "f.rank" if query is not None else "NULL"
        rows = self._run(f"SELECT a.*, {score} AS score {base} ORDER BY {order} LIMIT ? OFFSET ?",
                         args + [int(limit), int(offset)], query)
        snippets = self._snippets(query, [r["id"] for r in rows])
        hits = [self._hit(r, snippets.get(r["id"])) for r in rows]
        return SearchResults(text or "", filters, total, int(offset), int(limit),
                             sort if query is not None else ("oldest" if sort == "oldest" else "newest"), hits)

    def _snippets(self, query: Query | None, ids: list[int]) -> dict[int, tuple]:
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        if query is None:
            rows = self._db().execute(f"SELECT rowid, title, body FROM article_text WHERE rowid IN ({marks})", ids)
            return {r["rowid"]: ((_head(r["body"]), []), [], None) for r in rows}
        m = [_START, _END]
        rows = self._run(
            f"SELECT rowid, highlight(article_text, 0, ?, ?) AS title, "
            f"snippet(article_text, 1, ?, ?, '…', {SNIPPET_TOKENS}) AS body_snippet, "
            f"snippet(article_text, 2, ?, ?, '…', {SNIPPET_TOKENS}) AS earlier_snippet, body, earlier "
            f"FROM article_text WHERE article_text MATCH ? AND rowid IN ({marks})",
            m + m + m + [query.fts] + ids, query)
        out = {}
        for r in rows:
            title, title_spans = _marked(r["title"])
            title_spans = _mark_cjk(title, query.cjk_terms, title_spans)
            body, body_spans = _marked(r["body_snippet"])
            earlier, earlier_spans = _marked(r["earlier_snippet"])
            cjk_body = _cjk_window(r["body"], query.cjk_terms) if query.cjk_terms else None
            cjk_earlier = _cjk_window(r["earlier"], query.cjk_terms) if query.cjk_terms else None
            if body_spans:
                chosen, matched = (body, _mark_cjk(body, query.cjk_terms, body_spans)), "text"
            elif cjk_body:
                chosen, matched = cjk_body, "text"
            elif earlier_spans:
                chosen, matched = (earlier, _mark_cjk(earlier, query.cjk_terms, earlier_spans)), "earlier text"
            elif cjk_earlier:
                chosen, matched = cjk_earlier, "earlier text"
            else:
                chosen, matched = (_head(r["body"]), []), "title" if title_spans else None
            out[r["rowid"]] = (chosen, title_spans, matched)
        return out

    def _hit(self, row, snippet) -> SearchHit:
        (text, spans), title_spans, matched = snippet or (("", []), [], None)
        captures = [{"timestamp": c["timestamp"], "status": c["status"], "revisit": c["mime"] == REVISIT_MIME}
                    for c in self._db().execute(
                        "SELECT timestamp, status, mime FROM captures WHERE urlkey = ? AND status IS NOT NULL "
                        "ORDER BY timestamp", (row["urlkey"],))]
        return SearchHit(url=row["url"], source=row["source"], title=row["title"], author=row["author"],
                         published=row["published"], date=_day(row["date_ts"]), dated_by=row["dated_by"],
                         language=row["language"], sitename=row["sitename"], description=row["description"],
                         timestamp=row["text_ts"], first_timestamp=row["first_ts"], versions=row["versions"],
                         captures=captures, snippet=text, highlights=spans, title_highlights=title_spans,
                         matched=matched, score=row["score"])

    def counts(self, text: str | None, filters: SearchFilters = SearchFilters(), *,
               by: str = "day") -> list[tuple[str, int]]:
        """Matching articles per day, ISO week (its Monday) or month, by each article's
        date; every period from the first to the last, zeros included."""
        check_period(by)
        query = _compile_query(text) if (text or "").strip() else None
        base, args = self._from(query, filters)
        per_day = self._run(f"SELECT substr(a.date_ts, 1, 8) AS day, count(*) AS n {base} GROUP BY day", args, query)
        totals: dict[str, int] = {}
        for day, n in per_day:
            period = period_of(_day(day), by)
            totals[period] = totals.get(period, 0) + n
        return fill_periods(totals, by)

    # -- what the reading room shows beside results ----------------------------

    def article(self, urlkey: str):
        """The article row of a URL key (sqlite3.Row), or None."""
        return self._db().execute("SELECT * FROM articles WHERE urlkey = ?", (urlkey,)).fetchone()

    def facets(self) -> dict:
        """Sources and languages with their article counts (the search form's choices),
        counted again only when texts were folded in since (by any process)."""
        db = self._db()
        state = db.execute("SELECT (SELECT max(id) FROM articles), (SELECT max(rowid) FROM article_versions)").fetchone()
        cached = self._facets
        if cached is not None and cached[0] == tuple(state):
            return cached[1]
        facets = {"sources": [(r[0], r[1]) for r in db.execute(
                      "SELECT source, count(*) FROM articles WHERE source IS NOT NULL GROUP BY source ORDER BY source")],
                  "languages": [(r[0], r[1]) for r in db.execute(
                      "SELECT lang, count(*) FROM articles WHERE lang IS NOT NULL GROUP BY lang ORDER BY count(*) DESC")]}
        self._facets = (tuple(state), facets)
        return facets

    def archived_per_day(self, source: str) -> list[tuple[str, int]]:
        """Articles archived (a new or changed text captured) per UTC day, zeros included."""
        rows = self._db().execute(
            "SELECT substr(timestamp, 1, 8) AS day, count(DISTINCT article) FROM article_versions "
            "WHERE source = ? AND article IS NOT NULL GROUP BY day", (source,))
        return fill_periods({_day(day): n for day, n in rows}, "day")

    def source_totals(self) -> dict[str, dict]:
        """Per source: articles (first and newest text), captures (first and last), unreadable texts."""
        db = self._db()
        out: dict[str, dict] = {}

        def row(name: str) -> dict:
            return out.setdefault(name, {"articles": 0, "first_text": None, "last_text": None, "captures": 0,
                                         "first_capture": None, "last_capture": None, "unreadable_texts": 0})

        for name, n, first, last in db.execute(
                "SELECT source, count(*), min(first_ts), max(text_ts) FROM articles WHERE source IS NOT NULL "
                "GROUP BY source"):
            row(name).update(articles=n, first_text=first, last_text=last)
        for name, n, first, last in db.execute(
                "SELECT source, count(*), min(timestamp), max(timestamp) FROM captures WHERE source IS NOT NULL "
                "GROUP BY source"):
            row(name).update(captures=n, first_capture=first, last_capture=last)
        for name, n in db.execute(
                "SELECT source, count(*) FROM article_versions WHERE problem IS NOT NULL GROUP BY source"):
            row(name)["unreadable_texts"] = n
        return out

    def versions_of(self, urlkey: str) -> dict[str, str]:
        """Capture timestamp -> sha1 of its text, for each text of the article folded in."""
        return dict(self._db().execute(
            "SELECT v.timestamp, v.sha1 FROM article_versions v JOIN articles a ON a.id = v.article "
            "WHERE a.urlkey = ? AND v.sha1 IS NOT NULL", (urlkey,)).fetchall())


def _source_of(warc_key: str) -> str | None:
    parts = warc_key.split("/")
    return parts[1] if len(parts) == 6 and parts[0] == "warc" else None


def _read_text(backend, row) -> tuple[str | None, dict, str | None, bool]:
    """(text, metadata, problem, transient) of one conversion record: a ranged read of
    the record, and the article's .json beside it (metadata {} if it is missing)."""
    what = f"{row['warc']}@{row['offset']}"
    try:
        data = backend.get_range(row["warc"], int(row["offset"]), int(row["length"]))
    except NotFound:
        return None, {}, "the text WARC is missing", False
    except StorageError as exc:
        return None, {}, str(exc), True
    from storage.warcrecord import parse_record  # read directly; warcio for any unusual record

    try:
        record = parse_record(data)
        text = record.content().decode("utf-8") if record is not None else None
    except Exception as exc:  # zlib and warcio raise assorted errors on damage
        return None, {}, f"damaged record {what}: {exc}", False
    if text is None:
        return None, {}, f"no record at {what}", False
    meta: dict = {}
    source = _source_of(row["warc"])
    try:
        key = layout.article_key(source, timestamp_datetime(row["timestamp"]), row["url"], "json")
        loaded = json.loads(backend.get_bytes(key))
        meta = loaded if isinstance(loaded, dict) else {}
    except (layout.UnsafeKeyError, NotFound, ValueError):
        pass  # the text alone still makes a result (its title line)
    except StorageError as exc:
        return None, {}, str(exc), True
    return text, meta, None, False
