"""Pages per second of extract_article on the 107 evaluation pages: one process vs all cores.

    .venv/bin/python benchmarks/bench_extraction.py [--rounds 3] [--pages shared|corpus]

--pages: the page set (benchmarks/pagesets.py); shared, the real evaluation pages of
../shared/testdata, when they are there, else the repository's corpus (tests/data).

Prints a table and writes benchmarks/results/extraction-<timestamp>.json.
Also times trafilatura alone (bare_extraction on the decoded string), the
bound the pipeline is measured against.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import trafilatura  # noqa: E402

from pagesets import available, default_set, load_pages  # noqa: E402
from spiders.extraction import ExtractionError, decode_html, extract_article  # noqa: E402


def _load(page_set: str) -> list[tuple[bytes, str]]:
    return [(p.body, p.url) for p in load_pages(page_set)]


def _ours(page: tuple[bytes, str]) -> int:
    body, url = page
    try:
        return len(extract_article(body, url=url, content_type="text/html").text)
    except ExtractionError:
        return 0


def _trafilatura_alone(page: tuple[bytes, str]) -> int:
    body, url = page
    doc = trafilatura.bare_extraction(decode_html(body, "text/html"), url=url, with_metadata=True,
                                      include_comments=False)
    return len(doc.text) if doc else 0


def _run(fn, pages, workers: int, rounds: int) -> float:
    """Best pages/s over `rounds` passes (pool started and warmed up outside the timing)."""
    best = 0.0
    if workers == 1:
        fn(pages[0])
        for _ in range(rounds):
            start = time.perf_counter()
            for page in pages:
                fn(page)
            best = max(best, len(pages) / (time.perf_counter() - start))
        return best
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, pages[:workers * 2]))  # start and import in every worker
        for _ in range(rounds):
            start = time.perf_counter()
            list(pool.map(fn, pages, chunksize=4))
            best = max(best, len(pages) / (time.perf_counter() - start))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", choices=available(), default=default_set(),
                        help="page set: shared (../shared/testdata, the default when present) or corpus (tests/data)")
    args = parser.parse_args(argv)
    pages = _load(args.pages)
    cores = os.cpu_count() or 1
    rows = []
    for name, fn in (("trafilatura alone", _trafilatura_alone), ("extract_article", _ours)):
        for workers in sorted({1, cores}):
            rate = _run(fn, pages, workers, args.rounds)
            rows.append({"what": name, "workers": workers, "pages_per_s": round(rate, 1),
                         "ms_per_page_per_core": round(1000 * workers / rate, 1)})
    alone = {r["workers"]: r["pages_per_s"] for r in rows if r["what"] == "trafilatura alone"}
    for r in rows:
        r["vs_trafilatura_alone"] = round(r["pages_per_s"] / alone[r["workers"]], 2)

    load = [round(x, 1) for x in os.getloadavg()]  # other work on the machine skews wall-clock rates
    print(f"{len(pages)} pages ({args.pages}), {cores} cores, best of {args.rounds}, load average {load}")
    print(f"{'what':<20}{'workers':>8}{'pages/s':>10}{'ms/page/core':>14}{'vs alone':>10}")
    for r in rows:
        print(f"{r['what']:<20}{r['workers']:>8}{r['pages_per_s']:>10}{r['ms_per_page_per_core']:>14}{r['vs_trafilatura_alone']:>10}")

    out_dir = Path(__file__).resolve().parent / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir / f"extraction-{stamp}.json"
    out.write_text(json.dumps({
        "benchmark": "extraction", "when": stamp, "page_set": args.pages, "pages": len(pages), "cores": cores,
        "rounds": args.rounds, "load_average": load, "python": platform.python_version(),
        "trafilatura": trafilatura.__version__, "rows": rows,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
