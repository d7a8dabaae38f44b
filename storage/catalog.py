"""SQLite catalog of an archive's captures and texts, built from its CDXJ indexes.

The indexes in the archive (``indexes/...cdxj``) are the truth; the catalog is
a local, rebuildable cache of them for fast lookups. It remembers which index
keys it has ingested, so ``sync(backend)`` only reads new ones and every
machine with access to the archive converges on the same answers.

Two tables: ``captures`` (every indexed record except conversion records) and
``texts`` (conversion records, joined to captures by ``refers_to`` =
``record_id``). The full-text search tables beside them belong to
storage/search.py (``catalog.search``); each sync folds new texts into them. A folder archive keeps its catalog at ``ARCHIVE/catalog.sqlite``;
an S3 archive in the user cache folder, one file per location.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from storage import urls
from storage.capture import REVISIT_MIME, Capture, TextRecord
from storage.errors import StorageError
from storage.schemas import CATALOG_SCHEMA, SEARCH_SCHEMA

CATALOG_NAME = "catalog.sqlite"
SCHEMA_VERSION = CATALOG_SCHEMA

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ingested (
    index_key TEXT PRIMARY KEY,
    lines INTEGER NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS captures (
    urlkey TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    url TEXT NOT NULL,
    status INTEGER,
    mime TEXT,
    digest TEXT,
    warc TEXT NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    record_id TEXT,
    source TEXT,
    index_key TEXT NOT NULL,
    warc_date TEXT,
    PRIMARY KEY (warc, offset)
);
CREATE INDEX IF NOT EXISTS captures_by_url ON captures (urlkey, timestamp);
CREATE INDEX IF NOT EXISTS captures_by_record ON captures (record_id);
CREATE INDEX IF NOT EXISTS captures_by_source ON captures (source, timestamp);
CREATE TABLE IF NOT EXISTS texts (
    refers_to TEXT NOT NULL,
    record_id TEXT,
    urlkey TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    url TEXT NOT NULL,
    digest TEXT,
    warc TEXT NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    index_key TEXT NOT NULL,
    PRIMARY KEY (warc, offset)
);
CREATE INDEX IF NOT EXISTS texts_by_refers ON texts (refers_to);
"""

_CAPTURE_COLUMNS = "urlkey, timestamp, url, status, mime, digest, warc, offset, length, record_id, source, warc_date"
_HAS_TEXT = "EXISTS (SELECT 1 FROM texts t WHERE t.refers_to = c.record_id) AS has_text"


def _captures_where(condition: str, args: list, since: str | None, until: str | None) -> tuple[list[str], list]:
    """The start of a captures query (with `has_text`), filtered by `condition` and time bounds."""
    sql = [f"SELECT {_CAPTURE_COLUMNS}, {_HAS_TEXT} FROM captures c WHERE {condition}"]
    if since:
        sql.append("AND timestamp >= ?")
        args.append(since)
    if until:
        sql.append("AND timestamp <= ?")
        args.append(until)
    return sql, args


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """A catalog made before a column existed gets it (NULL in the rows ingested then)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(captures)")}
    if "warc_date" not in have:
        try:
            db.execute("ALTER TABLE captures ADD COLUMN warc_date TEXT")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):  # another process added it first
                raise


class CatalogError(StorageError):
    """The catalog cannot be opened or an index cannot be read (one-line message)."""


class SyncReport:
    """What a sync did (a plain class: dataclasses costs a look-up ~7 ms to import)."""

    def __init__(self, indexes: int = 0, captures: int = 0, texts: int = 0, skipped: list[str] | None = None,
                 indexes_written: int = 0, articles: int = 0):
        self.indexes = indexes  # index files ingested by this sync
        self.captures = captures
        self.texts = texts
        self.skipped = [] if skipped is None else skipped  # unreadable index keys (with reason)
        self.indexes_written = indexes_written  # indexes made for WARCs that had none (reindex)
        self.articles = articles  # texts folded into the search index

    def __eq__(self, other):
        return vars(self) == vars(other) if type(other) is SyncReport else NotImplemented

    def __repr__(self) -> str:
        return f"SyncReport({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def describe(self) -> str:
        text = f"{self.indexes} indexes, {self.captures} captures, {self.texts} texts"
        if self.indexes_written:
            text += f", {self.indexes_written} indexes written"
        if self.articles:
            text += f", {self.articles} texts searchable"
        if self.skipped:
            text += f", {len(self.skipped)} skipped (first: {self.skipped[0]})"
        return text


def default_path(location: str) -> Path:
    """Where the catalog of ``location`` lives (``NEWSARCHIVE_CATALOG`` overrides):
    ``ARCHIVE/catalog.sqlite`` for a folder, the user cache folder for S3."""
    override = os.environ.get("NEWSARCHIVE_CATALOG")
    if override:
        return Path(override)
    if location.startswith("s3://"):
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", location[5:]).strip("-.")[:60] or "bucket"
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        import hashlib

        digest = hashlib.sha1(f"{endpoint}|{location}".encode()).hexdigest()[:12]
        return Path(user_cache_dir()) / "catalogs" / f"{label}-{digest}.sqlite"
    return Path(location) / CATALOG_NAME


def user_cache_dir() -> str:
    """platformdirs.user_cache_dir("newsarchive"). On Linux with an absolute $XDG_CACHE_HOME or
    $HOME it is computed here (platformdirs and what it imports cost a look-up ~4 ms), by
    platformdirs' XDG rule; anywhere else platformdirs answers. tests/test_values.py compares."""
    if sys.platform == "linux" and not hasattr(sys, "getandroidapilevel") and not os.environ.get("ANDROID_DATA"):
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        if xdg.startswith("/"):
            return os.path.join(xdg, "newsarchive")
        home = os.environ.get("HOME", "")
        if home.startswith("/"):
            return os.path.join(os.path.expanduser("~/.cache"), "newsarchive")
    import platformdirs

    return platformdirs.user_cache_dir("newsarchive")


def source_of(warc_key: str) -> str | None:
    """``warc/SOURCE/Y/M/D/NAME`` -> SOURCE."""
    parts = warc_key.split("/")
    return parts[1] if len(parts) == 6 and parts[0] == "warc" else None


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Catalog:
    """The catalog file at ``path``; safe to share between threads."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._local = threading.local()
        self._search = None
        self._search_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._db()
            db.executescript(_SCHEMA)  # idempotent; executescript manages its own commit
            _add_missing_columns(db)
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
        except (OSError, sqlite3.Error) as exc:
            raise CatalogError(f"cannot open catalog {self.path}: {exc}") from None

    # -- connections ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return _Transaction(db)

    def _db(self) -> sqlite3.Connection:
        return self._connect().db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- ingest --------------------------------------------------------------

    def ingested(self) -> set[str]:
        return {row[0] for row in self._db().execute("SELECT index_key FROM ingested")}

    def ingest_index(self, index_key: str, content: str | bytes) -> tuple[int, int]:
        """Add one index file's lines (once per key). Returns (captures, texts) added."""
        from storage import cdxj  # only ingesting reads index lines

        rows_c, rows_t = [], []
        for urlkey, ts, f in cdxj.iter_lines(content):
            warc = f.get("filename")
            offset, length = _int_or_none(f.get("offset")), _int_or_none(f.get("length"))
            if not warc or offset is None or length is None:
                continue
            url = f.get("url") or ""
            if cdxj.is_text(f):
                rows_t.append((f["refers_to"], f.get("record_id"), urlkey, ts, url,
                               f.get("digest"), warc, offset, length, index_key))
            else:
                rows_c.append((urlkey, ts, url, _int_or_none(f.get("status")), f.get("mime"),
                               f.get("digest"), warc, offset, length, f.get("record_id"),
                               source_of(warc), f.get("warc_date"), index_key))
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._connect() as db:
            if db.execute("SELECT 1 FROM ingested WHERE index_key = ?", (index_key,)).fetchone():
                return 0, 0
            db.executemany(
                f"INSERT OR IGNORE INTO captures ({_CAPTURE_COLUMNS}, index_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows_c)
            db.executemany(
                "INSERT OR IGNORE INTO texts (refers_to, record_id, urlkey, timestamp, url, digest, "
                "warc, offset, length, index_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows_t)
            db.execute("INSERT INTO ingested (index_key, lines, ingested_at) VALUES (?, ?, ?)",
                       (index_key, len(rows_c) + len(rows_t), now))
        return len(rows_c), len(rows_t)

    def sync(self, backend) -> SyncReport:
        """Ingest every index in ``backend`` not ingested yet."""
        report = SyncReport()
        done = self.ingested()
        for key in sorted(backend.list("indexes/")):
            if not key.endswith(".cdxj") or key in done:
                continue
            from storage import cdxj  # a new index: only then are index lines read

            try:
                content = backend.get_bytes(key)
                added_c, added_t = self.ingest_index(key, content)
            except (cdxj.CDXJError, UnicodeDecodeError) as exc:
                report.skipped.append(f"{key}: {exc}")
                continue
            report.indexes += 1
            report.captures += added_c
            report.texts += added_t
        if report.indexes or self._search_behind():
            searched = self.search.update(backend)  # the new texts become searchable
            report.articles = searched.articles
            report.skipped += searched.skipped
        return report

    @property
    def search(self):
        """The full-text index in this catalog (storage/search.py), opened on first use:
        a look-up that syncs nothing new never loads it."""
        if self._search is None:
            with self._search_lock:
                if self._search is None:
                    from storage.search import SearchIndex

                    try:
                        self._search = SearchIndex(self)
                    except (OSError, sqlite3.Error) as exc:
                        raise CatalogError(f"cannot open catalog {self.path}: {exc}") from None
        return self._search

    def _search_behind(self) -> bool:
        """Whether the search tables miss texts the catalog has (or have an older layout)."""
        db = self._db()
        try:
            version = db.execute("SELECT value FROM meta WHERE key = 'search_schema'").fetchone()
            if version is None or version[0] != SEARCH_SCHEMA:
                return True
            return db.execute("SELECT 1 FROM ingested WHERE index_key NOT IN "
                              "(SELECT index_key FROM search_indexes) LIMIT 1").fetchone() is not None
        except sqlite3.OperationalError:  # no search tables yet
            return True

    def clear(self) -> None:
        search = self.search  # opened before the transaction: opening it writes its tables
        with self._connect() as db:
            db.execute("DELETE FROM captures")
            db.execute("DELETE FROM texts")
            db.execute("DELETE FROM ingested")
            search.clear(db)

    def rebuild(self, backend) -> SyncReport:
        """Forget everything and ingest all indexes again."""
        self.clear()
        report = self.sync(backend)
        self.search.optimize()
        return report

    # -- queries -------------------------------------------------------------

    def _captures(self, sql: list[str], args: list) -> list[Capture]:
        return [_capture(row) for row in self._db().execute(" ".join(sql), args)]

    def captures(self, url: str, match_type: str = "exact", *, since: str | None = None,
                 until: str | None = None, limit: int | None = None, reverse: bool = False,
                 with_status_only: bool = False) -> list[Capture]:
        """Captures whose key matches ``url`` (``urls.search_range`` rules), oldest
        first (newest first with ``reverse``); ``since``/``until`` are timestamp
        bounds (inclusive, compared as padded 14-digit strings)."""
        start, end = urls.search_range(url, match_type)
        sql, args = _captures_where("urlkey >= ? AND urlkey < ?", [start, end], since, until)
        if with_status_only:
            sql.append("AND status IS NOT NULL")
        order = "DESC" if reverse else "ASC"
        if match_type == "exact":
            sql.append(f"ORDER BY timestamp {order}, warc {order}, offset {order}")
        else:
            sql.append(f"ORDER BY urlkey {order}, timestamp {order}, warc {order}, offset {order}")
        if limit is not None:
            sql.append("LIMIT ?")
            args.append(int(limit))
        return self._captures(sql, args)

    def iter_captures(self, url: str, match_type: str = "exact", *, since: str | None = None,
                      until: str | None = None, reverse: bool = False,
                      after: tuple[str, str, str, int] | None = None) -> Iterator[Capture]:
        """Captures matching ``url`` as the CDX server pages through them: lazily, in
        (URL key, timestamp, WARC, offset) order (reversed with ``reverse``); ``after``
        is that tuple of a row already sent, and only rows past it come."""
        start, end = urls.search_range(url, match_type)
        sql, args = _captures_where("urlkey >= ? AND urlkey < ?", [start, end], since, until)
        if after is not None:
            sql.append(f"AND (urlkey, timestamp, warc, offset) {'<' if reverse else '>'} (?, ?, ?, ?)")
            args.extend(after)
        order = "DESC" if reverse else "ASC"
        sql.append(f"ORDER BY urlkey {order}, timestamp {order}, warc {order}, offset {order}")
        for row in self._db().execute(" ".join(sql), args):
            yield _capture(row)

    def iter_all(self) -> Iterator[Capture]:
        """Every capture (not conversion records: texts), lazily, by URL key and time."""
        sql = [f"SELECT {_CAPTURE_COLUMNS}, 0 AS has_text FROM captures c "
               "ORDER BY urlkey, timestamp, warc, offset"]
        for row in self._db().execute(" ".join(sql)):
            yield _capture(row)

    def count_captures(self, url: str, match_type: str = "exact", *, since: str | None = None,
                       until: str | None = None) -> int:
        start, end = urls.search_range(url, match_type)
        sql, args = _captures_where("urlkey >= ? AND urlkey < ?", [start, end], since, until)
        return self._db().execute(f"SELECT COUNT(*) FROM ({' '.join(sql)})", args).fetchone()[0]

    def source_captures(self, source: str, *, since: str | None = None,
                        until: str | None = None) -> list[Capture]:
        sql, args = _captures_where("source = ?", [source], since, until)
        sql.append("ORDER BY timestamp, urlkey, warc, offset")
        return self._captures(sql, args)

    def latest_per_url(self, source: str) -> Iterator[dict]:
        """For each URL captured for ``source``: its newest capture (``timestamp``,
        ``status``, ``mime``) and the newest capture holding a payload (not a
        revisit: ``digest``, ``record_id``, ``warc``, ``date`` its exact WARC-Date, or
        its 14-digit timestamp when its index predates the ``warc_date`` field), the
        record a revisit of unchanged content would refer to. Ordered by URL key.
        (The shape of spiders/seen.py's lines.)"""
        rows = self._db().execute(
            f"SELECT {_CAPTURE_COLUMNS}, 0 AS has_text FROM captures c WHERE source = ? AND status IS NOT NULL "
            "ORDER BY urlkey, url, timestamp, warc, offset", (source,))
        current: dict | None = None
        for row in rows:
            c = _capture(row)
            if current is None or current["url"] != c.url:
                if current is not None:
                    yield current
                current = {"url": c.url, "timestamp": None, "status": None, "mime": None,
                           "digest": None, "record_id": None, "warc": None, "date": None}
            current.update(timestamp=c.timestamp, status=c.status, mime=c.mime)
            if not c.is_revisit:
                current.update(digest=c.digest, record_id=c.record_id, warc=c.warc,
                               date=c.warc_date or c.timestamp)
        if current is not None:
            yield current

    def original_of(self, url: str, digest: str | None, refers_to: str | None = None,
                    before: str | None = None) -> Capture | None:
        """The capture a revisit record stands for: the one its WARC-Refers-To names,
        else the newest non-revisit capture of ``url`` with the same payload digest
        at or before ``before``."""
        if refers_to:
            found = self._captures([f"SELECT {_CAPTURE_COLUMNS}, {_HAS_TEXT} FROM captures c "
                                    "WHERE record_id = ? AND mime IS NOT ? LIMIT 1"], [refers_to, REVISIT_MIME])
            if found:
                return found[0]
        if not digest:
            return None
        start, end = urls.search_range(url, "exact")
        sql = [f"SELECT {_CAPTURE_COLUMNS}, {_HAS_TEXT} FROM captures c WHERE urlkey >= ? AND urlkey < ? "
               "AND digest = ? AND mime IS NOT ?"]
        args: list = [start, end, digest, REVISIT_MIME]
        if before:
            sql.append("AND timestamp <= ?")
            args.append(before)
        sql.append("ORDER BY timestamp DESC LIMIT 1")
        found = self._captures(sql, args)
        return found[0] if found else None

    def text_of(self, record_id: str | None) -> TextRecord | None:
        """The newest conversion record that refers to ``record_id``."""
        if not record_id:
            return None
        row = self._db().execute(
            "SELECT refers_to, record_id, url, timestamp, digest, warc, offset, length FROM texts "
            "WHERE refers_to = ? ORDER BY index_key DESC, offset DESC LIMIT 1", (record_id,)
        ).fetchone()
        return TextRecord(**dict(row)) if row else None

    def counts(self) -> dict:
        db = self._db()
        return {
            "indexes": db.execute("SELECT COUNT(*) FROM ingested").fetchone()[0],
            "captures": db.execute("SELECT COUNT(*) FROM captures").fetchone()[0],
            "texts": db.execute("SELECT COUNT(*) FROM texts").fetchone()[0],
        }


def _capture(row: sqlite3.Row) -> Capture:
    return Capture(urlkey=row["urlkey"], timestamp=row["timestamp"], url=row["url"], status=row["status"],
                   mime=row["mime"], digest=row["digest"], warc=row["warc"], offset=row["offset"],
                   length=row["length"], record_id=row["record_id"], source=row["source"],
                   text=bool(row["has_text"]), warc_date=row["warc_date"])


class _Transaction:
    """``with catalog._connect() as db``: one IMMEDIATE transaction on the thread's connection."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
