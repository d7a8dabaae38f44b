"""The pipeline benchmark's smoke run: every step runs and the report is well formed.

No timing is asserted (targets are read from the benchmark's table, never
checked by a test): only that each step measured something real, that the
crawl archived and cataloged every page the site served, and that the table
and the JSON say the same.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pipeline_benchmark_smoke_run_writes_its_table_and_json(tmp_path):
    out = tmp_path / "pipeline.json"
    # the repository's own pages (tests/data): the suite never reads ../shared/testdata
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_pipeline.py"), "--smoke", "--pages", "corpus",
                           "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())

    site, pipeline = result["site"], result["pipeline"]
    assert site["page_set"] == "corpus" and site["base_pages"] >= 8 and site["extraction_ms_median"] > 0
    # every story page of the site became an archived article; every page fetched is in the catalog
    assert pipeline["articles"] >= site["articles"]
    assert pipeline["captures_in_catalog"] == pipeline["pages"] >= site["expected_pages"]
    assert pipeline["warc_bytes"] > 0
    for role in ("cli", "scrapy", "extraction_workers"):
        assert pipeline["cpu_s"][role] > 0, role
    # the wall clock split at the first and last page served, the serial tail included
    assert list(pipeline["phases"]) == ["before_first_page", "serving_pages", "after_last_page"]
    phases = pipeline["phases"].values()
    assert pipeline["phases"]["serving_pages"]["cpu_s"] > 0 and all(p["wall_s"] >= 0 for p in phases)
    assert sum(p["wall_s"] for p in phases) <= pipeline["wall_s"] + 0.5
    assert set(pipeline["rss_peak_mb"]) == {"20", "80"} and all(v > 0 for v in pipeline["rss_peak_mb"].values())
    # the site sent gzip, and what the crawl archived was checked: valid WARCs, every article's
    # payload the bytes sent, its stored text the extractor's
    assert site["encoding"] == "gzip"
    verified = pipeline["verified"]
    assert verified["warcio_check"] == "ok" and verified["warc_files"] > 0
    assert verified["payloads_exact"] == site["articles"] and verified["payloads_differing"] == 0
    assert verified["texts_compared"] > 0 and verified["texts_equal"] == verified["texts_compared"]
    # the peers crawled the same site
    assert result["bare_scrapy"]["pages"] >= site["expected_pages"]
    # Scrapy's floor fetched what the pipeline fetched, and its ceiling is a share of the bound
    floor = result["scrapy_floor"]
    assert floor["pages"] == pipeline["pages"] and floor["cpu_ms_per_page"] > 0
    assert 0 < result["ratios"]["ceiling for any Scrapy crawl: bound / (bound + Scrapy floor), CPU"] < 1
    assert result["wget"]["pages"] >= site["expected_pages"] and result["wget"]["warc_bytes"] > 0
    assert result["bound"]["articles"] == site["articles"] and result["bound"]["articles_per_s"] > 0
    for where in ("local", "s3"):
        for how in ("in_process", "cli"):
            latency = result["retrieval"][where][how]
            assert latency["n"] > 0 and 0 < latency["p50_ms"] <= latency["p99_ms"], (where, how)

    # the printed table is the one in the JSON, with every ratio in it
    assert result["table"] in done.stdout
    for name, value in result["ratios"].items():
        assert f"| {name} | {value} |" in done.stdout
    assert "pipeline / bound (articles/s)" in result["ratios"]


def test_reader_benchmark_checks_old_and_new_readers_agree_and_prints_its_rows(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_reader.py"), "--pages", "corpus",
                           "--rounds", "1", "--check"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "0 differences" in done.stdout
    for row in ("read_page as before (the old reader)", "links, new (tree_links)", "requisites, new (html_requisites)"):
        assert row in done.stdout, row
