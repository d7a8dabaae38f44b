"""What one run of a source did: counts, errors by kind, files and where they went.

`RunSummary.build(stats, upload, ...)` turns the crawl's stats JSON
(docs/ARCHITECTURE.md) and the upload report into the summary that the
command line prints, the manifest records and the Prefect artifact shows.
`verdict` is None for a run that did its job, else the one-line reason it
failed; `notes` are what an operator should know even so (a stale lock
cleared, files recovered from a killed run).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from storage import layout
from storage.runs import assess  # the run verdict rule, shared with the reading room
from storage.spool import UploadReport


@dataclass(frozen=True)
class FileEntry:
    key: str  # archive key
    archived: bool  # uploaded and verified
    this_run: bool  # written by this run's crawl (else left by an earlier run)
    archive_ref: str | None  # where it lives now: a path, or s3://bucket/prefix/key

    @property
    def kind(self) -> str:
        try:
            return layout.kind_of(self.key)
        except layout.UnsafeKeyError:
            return self.key.split("/", 1)[0]


@dataclass
class RunSummary:
    source: str
    archive: str | None = None
    started: str | None = None
    finished: str | None = None
    pages: int = 0
    articles: int = 0
    bytes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[dict] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)
    skipped_seen: int = 0  # archived articles not due for a re-check
    revisits: int = 0  # unchanged pages archived as revisit records
    # page requisites (spiders/requisites.py): archived, revisits, failed {kind: n}, not_fetched {reason: n}
    requisites: dict[str, Any] = field(default_factory=dict)
    files: list[FileEntry] = field(default_factory=list)
    upload_failures: list[str] = field(default_factory=list)  # "KEY: reason", kept in the spool
    recovered: list[str] = field(default_factory=list)  # WARCs salvaged from a killed crawl
    notes: list[str] = field(default_factory=list)
    verdict: str | None = None  # None: the run did its job; else why it failed

    @classmethod
    def build(cls, source: str, stats: Mapping[str, Any] | None, upload: UploadReport | None = None, *,
              archive: str | None = None, failure: str | None = None, recovered: list[str] = (),
              notes: list[str] = ()) -> "RunSummary":
        stats = dict(stats or {})
        uploaded = {info.key for info in upload.uploaded} if upload else set()
        written = set(stats.get("files") or [])
        files = [FileEntry(key, key in uploaded, key in written,
                           archive_ref(archive, key) if archive and key in uploaded else None)
                 for key in sorted(written | uploaded)]
        summary = cls(
            source=source, archive=archive, started=stats.get("started"), finished=stats.get("finished"),
            pages=int(stats.get("pages") or 0), articles=int(stats.get("articles") or 0),
            bytes=int(stats.get("bytes") or 0), errors=dict(sorted((stats.get("errors") or {}).items())),
            error_samples=list(stats.get("error_samples") or [])[:10],
            status_counts=dict(stats.get("status_counts") or {}),
            skipped_seen=int(stats.get("skipped_seen") or 0), revisits=int(stats.get("revisits") or 0),
            requisites=dict(stats.get("requisites") or {}), files=files, upload_failures=[f"{k}: {why}" for k, why in (upload.failed if upload else [])],
            recovered=list(recovered), notes=list(notes))
        summary.verdict = failure or (assess(source, stats) if stats else None)
        if summary.verdict is None and summary.upload_failures:
            summary.verdict = (f"{source}: upload to {archive} failed for {len(summary.upload_failures)} file(s), "
                               f"kept in the spool: {summary.upload_failures[0]}")
        return summary

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunSummary":
        """The inverse of as_dict (a summary that travelled as a Prefect result)."""
        names = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in names}
        values["files"] = [FileEntry(**f) for f in data.get("files") or []]
        return cls(**values)

    @property
    def failed(self) -> bool:
        return self.verdict is not None

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict:
        out = asdict(self)
        out["error_total"] = self.error_total
        out["markdown"] = self.markdown()
        return out

    def file_rows(self) -> list[dict]:
        """Rows for a table artifact: one per file written or archived, with its archive key."""
        return [{"file": f.key, "kind": f.kind, "archive_key": f.archive_ref or "(not archived)"}
                for f in self.files]

    def requisites_line(self) -> str:
        """What the run did with its pages' stylesheets, images, fonts and scripts ('' when nothing)."""
        r = self.requisites or {}
        archived, failed, skipped = r.get("archived", 0), r.get("failed") or {}, r.get("not_fetched") or {}
        if not (archived or failed or skipped.get("budget") or skipped.get("archived")):
            return ""
        line = f"{archived} archived (stylesheets, images, fonts, scripts"
        line += f"; {r['revisits']} unchanged, as revisits)" if r.get("revisits") else ")"
        if failed:
            line += ", failed: " + ", ".join(f"{k} {v}" for k, v in failed.items())
        for reason in ("budget", "archived"):
            if skipped.get(reason):
                line += {"budget": f", {skipped[reason]} over max_requisites",
                         "archived": f", {skipped[reason]} archived recently, not fetched again"}[reason]
        return line

    def markdown(self) -> str:
        lines = [f"# Crawl of `{self.source}`", ""]
        if self.verdict:
            lines += [f"**Failed:** {self.verdict}", ""]
        lines += ["| pages | articles | bytes | errors |", "|---:|---:|---:|---:|",
                  f"| {self.pages} | {self.articles} | {self.bytes} | {self.error_total} |", ""]
        if self.skipped_seen or self.revisits:
            lines += [f"Incremental: {self.skipped_seen} archived articles skipped (not due for a "
                      f"re-check), {self.revisits} unchanged pages archived as revisits.", ""]
        if self.requisites_line():
            lines += [f"Requisites: {self.requisites_line()}.", ""]
        for note in self.notes:
            lines += [f"Note: {note}", ""]
        if self.errors:
            lines += ["## Errors by kind", "", "| kind | count |", "|---|---:|"]
            lines += [f"| {k} | {v} |" for k, v in self.errors.items()]
            lines.append("")
            if self.error_samples:
                lines += ["Samples:", ""]
                lines += [f"- `{s.get('kind')}` {s.get('url')}: {s.get('message')}" for s in self.error_samples[:5]]
                lines.append("")
        lines += [f"## Files ({len(self.files)})", "", "| file | kind | archive key |", "|---|---|---|"]
        lines += [f"| `{f.key}` | {f.kind} | {f.archive_ref or '(not archived)'} |" for f in self.files]
        if self.recovered:
            lines += ["", f"## Recovered from a killed crawl ({len(self.recovered)})", ""]
            lines += [f"- `{k}`" for k in self.recovered]
        if self.upload_failures:
            lines += ["", "## Upload failures", ""] + [f"- {m}" for m in self.upload_failures]
        return "\n".join(lines) + "\n"


def archive_ref(archive: str, key: str) -> str:
    """Where a key lives: the file path of a folder archive, or s3://bucket/prefix/key."""
    if archive.startswith("s3://"):
        return archive.rstrip("/") + "/" + key
    return str(Path(archive).resolve() / key)
