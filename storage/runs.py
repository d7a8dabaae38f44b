"""The runs of a source as their manifests (runs/SOURCE/Y/M/D/RUN_ID.json) tell them.

    history = RunHistory(backend)
    history.runs("example", limit=20)      # newest first: status, counts, errors by kind

A run's status follows the rule a run is judged by when it ends (`assess`,
also used by flows/summary.py): it failed when nothing was fetched, or when
failed fetches (network errors and 5xx) outnumber the pages that came back.
Manifests never change once written, so each is read once per process.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

from storage import layout
from storage.errors import StorageError
from storage.manifest import read_manifest


def pages_ok(stats: Mapping[str, Any]) -> int:
    counts = stats.get("status_counts")
    if isinstance(counts, Mapping) and counts:
        return sum(int(n) for code, n in counts.items() if str(code)[:1] in ("2", "3"))
    return int(stats.get("pages") or 0)


# Requests the crawl refused to make (spiders/kinds.py): its own line holding, not
# the site failing, so they never make a run count as failed.
REFUSALS = frozenset({"off-scope", "bad-scheme", "bad-url", "blocked-address"})


def assess(source: str, stats: Mapping[str, Any]) -> str | None:
    """None when the crawl is acceptable, else a one-line reason it mostly failed.

    Dead links (4xx) are the site's own and are archived like any page; a run
    fails when the site could not be fetched: network errors and 5xx answers
    outnumbering the pages that came back.
    """
    errors = stats.get("errors") or {}
    failures = sum(int(n) for kind, n in errors.items() if not kind.startswith("http-4") and kind not in REFUSALS)
    ok = pages_ok(stats)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
    if int(stats.get("pages") or 0) == 0 or ok == 0:
        return f"{source}: no page fetched" + (f" ({kinds})" if kinds else "")
    if failures > ok:
        return f"{source}: crawl mostly failed: {failures} failed fetches against {ok} pages fetched ({kinds})"
    return None


def run_row(manifest: Mapping[str, Any]) -> dict:
    """One run as the reading room and /api/sources/NAME show it."""
    stats = manifest.get("stats") or {}
    source = str(manifest.get("source") or "")
    verdict = assess(source, stats)
    errors = {str(k): int(v) for k, v in (stats.get("errors") or {}).items()}
    return {"run_id": manifest.get("run_id"), "key": manifest.get("key"), "source": source,
            "started": manifest.get("started"), "finished": manifest.get("finished"),
            "status": "failed" if verdict else "ok", "verdict": verdict,
            "pages": int(stats.get("pages") or 0), "articles": int(stats.get("articles") or 0),
            "bytes": int(stats.get("bytes") or 0), "errors": errors, "error_total": sum(errors.values()),
            "revisits": int(stats.get("revisits") or 0), "skipped_seen": int(stats.get("skipped_seen") or 0),
            "status_counts": {str(k): int(v) for k, v in (stats.get("status_counts") or {}).items()},
            "files": len(manifest.get("files") or [])}


class RunHistory:
    """Run manifests of an archive, read through its backend and kept once read."""

    def __init__(self, backend):
        self.backend = backend
        self._manifests: dict[str, dict | None] = {}
        self._lock = threading.Lock()

    def _manifest(self, key: str) -> dict | None:
        with self._lock:
            if key in self._manifests:
                return self._manifests[key]
        try:
            manifest = read_manifest(self.backend.get_bytes(key))
        except StorageError:
            manifest = None  # unreadable: left out, not fatal to the page
        with self._lock:
            self._manifests[key] = manifest
        return manifest

    def runs(self, source: str, limit: int = 20) -> list[dict]:
        """The newest `limit` runs of `source`, newest first."""
        prefix = f"runs/{layout.safe_source(source)}/"
        keys = sorted((k for k in self.backend.list(prefix) if k.endswith(".json")), reverse=True)
        # date folders sort by day; inside a day run ids are random, so read a little more
        rows = [run_row(m) for m in (self._manifest(k) for k in keys[:limit + 50]) if m]
        rows.sort(key=lambda r: str(r["started"] or ""), reverse=True)
        return rows[:limit]


def errors_by_kind(runs: list[dict]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for run in runs:
        for kind, n in run["errors"].items():
            totals[kind] = totals.get(kind, 0) + n
    return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))
