"""The crawl's stats under newsarchive/*: counting errors by kind, the files written,
and the stats JSON a crawl leaves (docs/ARCHITECTURE.md, "Crawl subprocess").

Every component of the crawl counts through here, so the stats keys are named
in one place.
"""

from __future__ import annotations

from datetime import datetime, timezone

MAX_ERROR_SAMPLES = 20


def record_error(stats, kind: str, url: str, message: str) -> None:
    """Count an error by kind in the crawl stats, keeping the first few as samples.

    Every kind keeps a sample: the list holds the first sample of each kind,
    then second ones..., so a flood of one kind never hides another, and a
    summary that shows only the first N samples shows N kinds.
    """
    stats.inc_value(f"newsarchive/errors/{kind}")
    samples = stats.get_value("newsarchive/error_samples") or []
    rank = sum(1 for s in samples if s["kind"] == kind)  # samples of this kind already kept
    if len(samples) >= MAX_ERROR_SAMPLES and rank > 0:
        return
    sample = {"url": url, "kind": kind, "message": message[:300]}

    def rank_of(i: int) -> int:
        return sum(1 for s in samples[:i] if s["kind"] == samples[i]["kind"])

    ranks = [rank_of(i) for i in range(len(samples))]
    place = next((i for i, r in enumerate(ranks) if r > rank), len(samples))
    samples = samples[:place] + [sample] + samples[place:]
    if len(samples) > MAX_ERROR_SAMPLES:
        samples.pop()  # the last is the most repeated kind's latest sample
    stats.set_value("newsarchive/error_samples", samples)


def add_files(stats, *keys: str) -> None:
    """Note files written; the list grows in place (a long crawl writes tens of thousands)."""
    files = stats.get_value("newsarchive/files")
    if files is None:
        files = []
        stats.set_value("newsarchive/files", files)
    files.extend(keys)


def _iso(value) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return value


def summary(source: str, stats: dict, spider_samples: list[dict] = ()) -> dict:
    """The stats JSON of ARCHITECTURE.md, from the crawler's stats.

    pages: exchanges archived (robots.txt, redirects and error pages included);
    articles: articles whose text was written.
    """
    prefix = "newsarchive/errors/"
    status_prefix = "newsarchive/status/"
    return {
        "source": source,
        "started": _iso(stats.get("start_time")),
        "finished": _iso(stats.get("finish_time")) or datetime.now(timezone.utc).isoformat(),
        "pages": stats.get("newsarchive/captures", 0),
        "articles": stats.get("newsarchive/extracted", 0),
        "bytes": stats.get("newsarchive/bytes", 0),
        "errors": {k[len(prefix):]: v for k, v in sorted(stats.items()) if k.startswith(prefix)},
        "error_samples": (list(spider_samples) + stats.get("newsarchive/error_samples", []))[:MAX_ERROR_SAMPLES],
        "files": sorted(stats.get("newsarchive/files", [])),
        "status_counts": {k[len(status_prefix):]: v for k, v in sorted(stats.items())
                          if k.startswith(status_prefix)},
        # incremental crawls (--seen): archived articles not fetched again, unchanged
        # pages written as revisit records, unchanged articles not extracted again
        "skipped_seen": stats.get("newsarchive/skipped_seen", 0),
        "revisits": stats.get("newsarchive/revisits", 0),
        "unchanged": stats.get("newsarchive/unchanged", 0),
        # page requisites (spiders/requisites.py): archived, unchanged ones as revisits, failed by
        # kind, and not fetched by reason (off-scope, duplicate, archived recently, budget...)
        "requisites": {
            "archived": stats.get("newsarchive/requisites/archived", 0),
            "revisits": stats.get("newsarchive/requisites/revisits", 0),
            "failed": _under(stats, "newsarchive/requisites/failed/"),
            "not_fetched": _under(stats, "newsarchive/requisites/dropped/"),
        },
    }


def _under(stats: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in sorted(stats.items()) if k.startswith(prefix)}
