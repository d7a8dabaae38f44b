"""Run every benchmark, print one table, write benchmarks/results/bench-<UTC timestamp>.json.

    .venv/bin/python benchmarks/run.py            # about 5-8 minutes on 2 idle cores
    .venv/bin/python benchmarks/run.py --quick    # about 2 minutes: fewer rounds and articles

Each benchmark also writes its own results file (eval-*.json, extraction-*.json,
pipeline-*.json, search-*.json); the summary file carries the machine and the headline rows of
each. Everything runs on 127.0.0.1 and stops by itself (each benchmark has a
time bound). What the numbers mean: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_pipeline import machine  # noqa: E402

RESULTS = HERE / "results"


def _run(name: str, cmd: list[str], out: Path | None, timeout: float) -> dict:
    print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
    before = set(RESULTS.glob(f"{name}-*.json"))
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=HERE.parent, timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    seconds = round(time.perf_counter() - start, 1)
    written = out if out and out.exists() else max(set(RESULTS.glob(f"{name}-*.json")) - before, default=None,
                                                  key=lambda p: p.stat().st_mtime)
    result = json.loads(written.read_text(encoding="utf-8")) if written and code == 0 else None
    return {"name": name, "exit": code, "seconds": seconds, "file": written.name if written else None,
            "result": result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: 1 extraction round, a site of 1000 articles, 20,000 captures, search at 20,000")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    info = machine()
    print(f"machine: {info.get('cpu', '?')}, {info['cores']} cores, {info.get('memory_gb', '?')} GB, "
          f"load average {info['load_average']}", flush=True)

    py = sys.executable
    pipeline_out = RESULTS / f"pipeline-{stamp}.json"
    runs = [
        _run("eval", [py, str(HERE / "eval_extraction.py")], None, 600),
        _run("extraction", [py, str(HERE / "bench_extraction.py"), "--rounds", "1" if args.quick else "3"], None, 600),
        _run("pipeline", [py, str(HERE / "bench_pipeline.py"), "--out", str(pipeline_out)]
             + (["--articles", "1000", "--rss-at", "500,2000", "--captures", "20000"] if args.quick else []),
             pipeline_out, 3600),
        _run("search", [py, str(HERE / "bench_search.py")] + (["--quick"] if args.quick else []), None, 3600),
    ]

    rows = []
    for r in runs:
        res = r["result"]
        if res is None:
            rows.append((r["name"], "FAILED", f"exit {r['exit']}", ""))
            continue
        if r["name"] == "search":
            q, h, i = res["queries"]["all"], res["http"]["all"], res["index"]
            rows.append(("search", f"query p50 / p95 at {res['articles']} articles", f"{q['p50_ms']} / {q['p95_ms']} ms",
                         f"GET /api/search p50 {h['p50_ms']} ms (target 200)"))
            rows.append(("search", "indexing, CPU per text", f"{i['search_cpu_ms_per_text']} ms",
                         f"{i['at_scale_cpu_ms_per_text']} ms into the full index"))
            if res.get("crawl"):
                c = res["crawl"]
                rows.append(("search", f"indexing vs crawl CPU ({c['articles']})", f"{c['share_of_crawl_cpu_pct']} %",
                             f"{c['index_cpu_ms_per_article']} of {c['crawl_cpu_ms_per_article']} ms (target 5 %)"))
            continue
        if r["name"] == "eval":
            for name, modes in res["sets"].items():
                s = modes["header"]
                rows.append(("eval", f"{name}: pages passing everything ({s['pages']})",
                             f"{s['passing']}/{s['pages']}", f"with {s['with_found']}/{s['with']}, "
                             f"without {s['without_absent']}/{s['without']}"))
                rows.append(("eval", f"{name}: non-UTF-8 pages decoded cleanly", f"{s['legacy_clean']}/{s['legacy']}",
                             f"non-ASCII passages {s['legacy_non_ascii_found']}/{s['legacy_non_ascii']}"))
        elif r["name"] == "extraction":
            for row in res["rows"]:
                rows.append(("extraction", f"{row['what']}, {row['workers']} worker(s)", f"{row['pages_per_s']} pages/s",
                             f"{row['vs_trafilatura_alone']}x alone"))
        else:
            p, b = res["pipeline"], res["bound"]
            rows.append(("pipeline", f"trafilatura alone, {b['workers']} processes ({b['articles']})",
                         f"{b['articles_per_s']} articles/s", f"{b['cpu_ms_per_article']} CPU ms/article"))
            rows.append(("pipeline", f"newsarchive crawl ({p['pages']} pages, {p['articles']} articles)",
                         f"{p['articles_per_s']} articles/s", "end to end"))
            for name, value in res["ratios"].items():
                rows.append(("pipeline", name, f"{value}", ""))
            for mark, mb in p["rss_peak_mb"].items():
                rows.append(("memory", f"crawl tree peak RSS until {mark} pages", f"{mb} MB", ""))
            for where, r in (res.get("retrieval") or {}).items():
                if isinstance(r, dict) and "cli" in r:
                    rows.append(("get", f"{where} ({res['retrieval']['captures']} captures)",
                                 f"p50 {r['in_process']['p50_ms']} / p99 {r['in_process']['p99_ms']} ms in process",
                                 f"CLI p50 {r['cli']['p50_ms']} / p99 {r['cli']['p99_ms']} ms"))

    print()
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    info["load_average_after"] = [round(x, 2) for x in __import__("os").getloadavg()]
    out = RESULTS / f"bench-{stamp}.json"
    out.write_text(json.dumps({"benchmark": "all", "when": stamp, "quick": args.quick, "machine": info,
                               "runs": [{k: v for k, v in r.items() if k != "result"} for r in runs],
                               "table": [dict(zip(("benchmark", "what", "value", "note"), row)) for row in rows]},
                              indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0 if all(r["exit"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
