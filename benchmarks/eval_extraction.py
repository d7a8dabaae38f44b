"""Extraction quality: passages found, boilerplate left out, charsets decoded, per page set.

    .venv/bin/python benchmarks/eval_extraction.py [--pages shared|corpus|all] [--show-failures]

For each page set (benchmarks/pagesets.py; default all that are present: the 107
real evaluation pages of ../shared/testdata when they are there, and the
repository's corpus) and each way a page reaches the extractor ("header": its
true charset in the Content-Type; "no-header": a bare text/html), it reports:

- pages passing everything (every "with" passage in the clean text, no "without" one),
- "with" passages found, "without" passages absent,
- non-UTF-8 pages whose text has no U+FFFD and no mojibake, and their non-ASCII
  "with" passages found (the bytes became the right characters),
- titles, authors (the expected name within the extracted one) and dates right.

Prints a table and writes benchmarks/results/eval-<UTC timestamp>.json. This is where
the real pages are measured: the test suite uses only tests/data (tests/test_extraction_eval.py).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import trafilatura  # noqa: E402

from pagesets import available, load_pages  # noqa: E402
from spiders.extraction import ExtractionError, _normalise_space, extract_article  # noqa: E402

MODES = {"header": lambda p: p.content_type, "no-header": lambda p: "text/html"}
MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|Å[\u0080-\u00bf]|â€|Ä[\u0080-\u00bf]|Ð[\u0080-\u00bf]|Ñ[\u0080-\u00bf]")


def _extract(job: tuple[bytes, str, str]) -> tuple[str, dict]:
    body, url, content_type = job
    try:
        article = extract_article(body, url=url, content_type=content_type)
        return article.text, article.metadata
    except ExtractionError as exc:
        return f"ERROR {exc}", {}


def score(pages, results) -> dict:
    """The counts for one page set in one mode; `results` are (text, metadata) per page."""
    s = {"pages": len(pages), "passing": 0, "with": 0, "with_found": 0, "without": 0, "without_absent": 0,
         "errors": 0, "legacy": 0, "legacy_clean": 0, "legacy_non_ascii": 0, "legacy_non_ascii_found": 0,
         "titles": 0, "titles_right": 0, "authors": 0, "authors_right": 0, "dates": 0, "dates_right": 0}
    failures = []
    for page, (text, meta) in zip(pages, results):
        s["errors"] += text.startswith("ERROR")
        missing = [p for p in page.with_ if _normalise_space(p) not in text]
        leaked = [p for p in page.without if _normalise_space(p) in text]
        s["with"] += len(page.with_)
        s["with_found"] += len(page.with_) - len(missing)
        s["without"] += len(page.without)
        s["without_absent"] += len(page.without) - len(leaked)
        if missing or leaked:
            failures.append({"file": page.file, "missing": missing, "leaked": leaked})
        else:
            s["passing"] += 1
        if not page.utf8:
            s["legacy"] += 1
            s["legacy_clean"] += "\ufffd" not in text and not MOJIBAKE.search(text) and not text.startswith("ERROR")
            for passage in page.with_:
                if not passage.isascii():
                    s["legacy_non_ascii"] += 1
                    s["legacy_non_ascii_found"] += _normalise_space(passage) in text
        for key, right in (("titles", page.title and meta.get("title") == _normalise_space(page.title)),
                           ("authors", page.author and page.author in (meta.get("author") or "")),
                           ("dates", page.date and meta.get("date") == page.date)):
            if getattr(page, key[:-1]):
                s[key] += 1
                s[key + "_right"] += bool(right)
    return {**s, "failures": failures}


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.1f} %)" if b else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", choices=available() + ["all"], default="all",
                        help="page set (default: all present; shared is there only beside a checkout with ../shared/testdata)")
    parser.add_argument("--show-failures", action="store_true", help="list each page that misses or leaks a passage")
    args = parser.parse_args(argv)
    sets = available() if args.pages == "all" else [args.pages]
    if "shared" not in sets:
        print("note: no ../shared/testdata here; only the repository's corpus is measured", file=sys.stderr)

    report = {}
    with ProcessPoolExecutor() as pool:  # trafilatura in processes, never threads
        for name in sets:
            pages = load_pages(name)
            report[name] = {}
            for mode, content_type in MODES.items():
                results = list(pool.map(_extract, [(p.body, p.url, content_type(p)) for p in pages], chunksize=4))
                report[name][mode] = score(pages, results)

    rows = [("pages passing everything", "passing", "pages"), ('"with" passages found', "with_found", "with"),
            ('"without" passages absent', "without_absent", "without"),
            ("non-UTF-8 pages without U+FFFD or mojibake", "legacy_clean", "legacy"),
            ("their non-ASCII passages found", "legacy_non_ascii_found", "legacy_non_ascii"),
            ("titles right", "titles_right", "titles"), ("authors right", "authors_right", "authors"),
            ("dates right", "dates_right", "dates"), ("pages that raised ExtractionError", "errors", "pages")]
    for name, modes in report.items():
        print(f"\n{name} ({modes['header']['pages']} pages), trafilatura {trafilatura.__version__}")
        print(f"{'':<44}" + "".join(f"{m:>24}" for m in modes))
        for label, num, den in rows:
            print(f"{label:<44}" + "".join(f"{_pct(s[num], s[den]):>24}" for s in modes.values()))
        if args.show_failures:
            for f in modes["header"]["failures"]:
                print(f"  {f['file']}: missing {f['missing'][:2]} leaked {f['leaked'][:2]}")

    out_dir = HERE / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir / f"eval-{stamp}.json"
    out.write_text(json.dumps({"benchmark": "eval", "when": stamp, "python": platform.python_version(),
                               "trafilatura": trafilatura.__version__, "sets": report}, indent=2,
                              ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
