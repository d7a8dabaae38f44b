"""Issue 3's acceptance, end to end against S3: the real `newsarchive` command,
the real news site on 127.0.0.1 and a real S3 API (moto's server on 127.0.0.1,
reached over HTTP by boto3).

One crawl into a bucket (fixtures_crawled.crawled_s3) is shared by the module's
tests (uploads, ranged reads, a fresh machine's reindex, safe keys) and by
test_read_back.py, which reads it as it reads a folder archive. The outage test
has its own server, which it stops and starts again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fixtures_crawled import (DEPTH, TRAVERSAL_PATHS, archive_keys, aws_env, bucket_objects, captures, cli,
                              hermetic_env, s3_client, sha)
from test_cli_support import assert_one_line_error, run

# The commands under test run these: a broken import fails the module here, loudly.
import flows.pipeline  # noqa: E402,F401
import storage.archive  # noqa: E402,F401


def spool_files(spool: Path) -> dict[str, str]:
    """Every file under the spool (relative path -> sha256), but its hidden
    bookkeeping (a lock file), which is never archive content."""
    return {p.relative_to(spool).as_posix(): sha(p.read_bytes())
            for p in sorted(spool.rglob("*")) if p.is_file() and not p.name.startswith(".")}


@pytest.fixture
def crawled(crawled_s3):
    """This module reads the S3 archive only (fixtures_crawled.crawled would be both)."""
    return crawled_s3


@pytest.fixture
def aws_in_process(crawled, monkeypatch):
    """The AWS variables of the CLI's environment in this process too, for in-process checks."""
    for name, value in aws_env(crawled["server"].url, crawled["tmp"]).items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_SECURITY_TOKEN",
                 "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# --------------------------------------------------------------------------- 1. crawl, list, get


def test_crawl_uploads_everything_and_empties_the_spool(crawled):
    out = crawled["result"].stdout
    assert f"in {crawled['location']}" in out and "warc/testnews/" in out  # the summary names where files went
    spool = Path(crawled["env"]["NEWSARCHIVE_SPOOL"])
    assert spool_files(spool) == {}  # uploaded, verified, removed
    objects = archive_keys(crawled)
    kinds = {k.split("/")[0] for k in objects}
    assert kinds == {"warc", "indexes", "articles", "runs"}
    # the run manifest describes objects that are in the bucket, byte for byte
    manifests = [k for k in objects if k.startswith("runs/testnews/")]
    assert len(manifests) == 1
    manifest = json.loads(objects[manifests[0]])
    listed = manifest["files"]
    assert any(f["key"].endswith(".text.warc.gz") for f in listed)
    assert any(f["key"].endswith(".cdxj") for f in listed)
    assert any(f["key"].endswith(".txt") for f in listed)
    for entry in listed:
        assert entry["key"] in objects, entry["key"]
        assert len(objects[entry["key"]]) == entry["size"]
        assert sha(objects[entry["key"]]) == entry["sha256"]


def test_get_reads_only_the_records_byte_range(news_site, crawled, aws_in_process, tmp_path):
    """Every GetObject `get` sends for a WARC is a ranged read of exactly the record."""
    from storage.archive import open_archive

    archive = open_archive(crawled["location"], catalog_path=tmp_path / "catalog.sqlite")  # syncs: reads indexes
    from fixtures_s3 import record_gets

    gets = record_gets(archive.backend)  # signed GETs of its own or boto3's: (path, range) of each
    url = news_site.article("metroledger-transit")["url"]
    capture = archive.nearest(url)
    size = crawled["client"].head_object(Bucket=crawled["bucket"],
                                         Key=f"{crawled['prefix']}/{capture.warc}")["ContentLength"]
    assert size > 4 * capture.length  # reading the whole WARC would be a different request

    html = archive.get(url, as_="html")
    assert html == news_site.page_bytes(news_site.article("metroledger-transit")["path"])
    want = f"bytes={capture.offset}-{capture.offset + capture.length - 1}"
    assert len(gets) == 1
    assert gets[0]["path"].endswith(capture.warc) and gets[0]["range"] == want

    gets.clear()
    text = archive.get(url, as_="text")
    assert text.decode("utf-8").splitlines()[2] == url
    assert gets and all(g["range"] and g["range"].startswith("bytes=") for g in gets), gets
    assert all(g["path"].endswith(".text.warc.gz") for g in gets), gets


# --------------------------------------------------------------------------- 3. a fresh machine


def test_fresh_machine_reindexes_from_the_bucket_and_answers_the_same(news_site, crawled, tmp_path):
    urls = [news_site.article(k)["url"] for k in ("harbour-ferries", "metroledger-transit")]
    urls.append(news_site.url("/"))
    before = {u: captures(crawled, u) for u in urls}
    keys_before = set(archive_keys(crawled))

    fresh = hermetic_env(tmp_path, **aws_env(crawled["server"].url, tmp_path))  # no catalog yet, new spool
    catalogs = Path(fresh["XDG_CACHE_HOME"])
    assert not catalogs.exists()
    result = cli(crawled, "reindex", env=fresh)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert list(catalogs.rglob("*.sqlite"))  # the catalog was built here, from the bucket
    for u in urls:
        assert captures(crawled, u, env=fresh) == before[u]
    article = news_site.article("harbour-ferries")
    assert cli(crawled, "get", article["url"], "--as", "text", env=fresh).stdout == \
        cli(crawled, "get", article["url"], "--as", "text").stdout
    assert set(archive_keys(crawled)) == keys_before  # reindex found every WARC indexed; nothing written


# --------------------------------------------------------------------------- 4. path traversal


def test_no_url_makes_a_key_outside_the_archive_root(news_site, crawled):
    from storage import layout

    markers = ("passwd", "shadow", "boot.ini", "evil.warc.gz")  # one in each of TRAVERSAL_PATHS
    fetched = news_site.server.fetched_paths()
    for marker in markers:  # every hostile URL was requested (in whatever form the crawler normalised it to)
        assert any(marker in p.lower().replace("%2e", ".") for p in fetched), (marker, fetched)
    objects = archive_keys(crawled)  # every object is under the archive prefix
    for key in objects:
        layout.check_key(key)
        assert not re.search(r"passwd|shadow|boot\.ini|evil|%2e", key, re.I), key
    # their captures are in the archive, found by URL and stored under safe keys
    indexed = b"".join(v for k, v in objects.items() if k.startswith("indexes/")).lower().replace(b"%2e", b".")
    for marker in markers:
        assert marker.encode() in indexed, marker


@pytest.mark.parametrize("path", TRAVERSAL_PATHS)
def test_requesting_a_traversal_url_stays_inside_the_archive(news_site, crawled, path):
    keys_before = set(archive_keys(crawled))
    files_before = {p for p in crawled["tmp"].rglob("*")}
    for form in ("html", "text", "warc"):
        result = cli(crawled, "get", news_site.url(path), "--as", form, text=False)
        assert "Traceback" not in result.stderr.decode("utf-8", "replace")
        if result.returncode != 0:
            assert_one_line_error(result)
    assert set(archive_keys(crawled)) == keys_before
    new_files = {p for p in crawled["tmp"].rglob("*")} - files_before
    assert all(Path(crawled["env"]["XDG_CACHE_HOME"]) in p.parents for p in new_files), new_files


# --------------------------------------------------------------------------- 2. an outage


def test_outage_keeps_the_spool_and_upload_sends_it_later(news_site, s3_archive, s3_server_control, tmp_path):
    env = hermetic_env(tmp_path)
    sources = news_site.write_sources(tmp_path, depth=DEPTH)
    bucket, _, prefix = s3_archive[len("s3://"):].partition("/")
    client = s3_client(env)
    url = news_site.article("harbour-ferries")["url"]

    s3_server_control.stop()
    result = run("crawl", "testnews", "--no-prefect", "--sources", sources, "--archive", s3_archive,
                 cwd=tmp_path, env=env, timeout=600)
    line = assert_one_line_error(result, whole=False)
    errors = [l for l in result.stderr.splitlines() if "error" in l and l.startswith("newsarchive")]
    assert errors == [line]
    assert "S3" in line and "spool" in line, line  # what failed, and where the files wait

    spool = Path(env["NEWSARCHIVE_SPOOL"])
    left = spool_files(spool)
    tops = {k.split("/")[1] for k in left}
    assert tops == {"warc", "indexes", "articles", "runs"}, sorted(left)
    assert not any(k.endswith(".open") for k in left)
    manifest_path = next(p for p in spool.rglob("*.json") if "/runs/" in p.as_posix())
    for entry in json.loads(manifest_path.read_text(encoding="utf-8"))["files"]:
        assert any(k.endswith("/" + entry["key"]) for k in left), entry["key"]  # nothing of the run is lost

    s3_server_control.start()
    sent = run("upload", "--archive", s3_archive, cwd=tmp_path, env=env, timeout=300)
    assert sent.returncode == 0, sent.stderr
    assert f"uploaded {len(left)} files" in sent.stdout
    assert spool_files(spool) == {}
    objects = bucket_objects(client, bucket)
    for rel, digest in left.items():
        key = rel.split("/", 1)[1]  # spool/SOURCE/KEY
        assert sha(objects[f"{prefix}/{key}"]) == digest, key
    rows = json.loads(run("list", url, "--json", "--archive", s3_archive, cwd=tmp_path, env=env, check=True).stdout)
    assert len(rows) == 1 and rows[0]["url"] == url and rows[0]["text"] is True
