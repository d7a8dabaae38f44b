"""Issue 3's acceptance, end to end against S3: the real `newsarchive` command,
the real news site on 127.0.0.1 and a real S3 API (moto's server on 127.0.0.1,
reached over HTTP by boto3).

One crawl into a bucket is shared by the module's read tests (list, get,
ranged reads, a fresh machine's reindex, safe keys). The outage test has its
own server, which it stops and starts again.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path

import pytest

from fixtures_s3 import MotoS3
from test_cli_support import assert_one_line_error, cli_env, run

# The commands under test run these: a broken import fails the module here, loudly.
import flows.pipeline  # noqa: E402,F401
import storage.archive  # noqa: E402,F401

DEPTH = 1  # feeds, sitemaps, start pages and one hop: every article, few dead links

CONTRACT = {"timestamp": str, "url": str, "status": int, "mime": str, "digest": str, "warc": str,
            "offset": int, "length": int, "text": bool}

# URLs that try to climb out of the archive root, plain and percent-encoded.
TRAVERSAL_PATHS = [
    "/news/../../../../etc/passwd",
    "/news/%2e%2e/%2e%2e/%2e%2e/etc/shadow",
    "/news/%2E%2E%2F%2E%2E%2Fboot.ini",
    "/news/..%2f..%2f..%2fwarc%2fevil.warc.gz",
]


def aws_env(endpoint: str, tmp: Path) -> dict[str, str]:
    """Only the test server and fake credentials: never a real account or profile."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "2",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
    }


def hermetic_env(tmp: Path, **extra: str) -> dict[str, str]:
    """cli_env plus the user folders an S3 archive uses (catalog cache, data), inside tmp."""
    env = cli_env(tmp, XDG_CACHE_HOME=str(tmp / "cache"), XDG_DATA_HOME=str(tmp / "data"), **extra)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_SECURITY_TOKEN", "NO_PROXY"):
        env.pop(name, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def s3_client(env: dict[str, str]):
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    ).client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], config=Config(s3={"addressing_style": "path"}))


def bucket_objects(client, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket (whole keys, prefix included) and its bytes."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def spool_files(spool: Path) -> dict[str, str]:
    """Every file under the spool (relative path -> sha256), but its hidden
    bookkeeping (a lock file), which is never archive content."""
    return {p.relative_to(spool).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(spool.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- the shared crawl


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server for the module, a bucket, and the AWS variables in this
    process too (the in-process checks use storage.archive directly)."""
    server = MotoS3()
    server.start()
    tmp = tmp_path_factory.mktemp("e2e-s3-env")
    env = aws_env(server.url, tmp)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_SECURITY_TOKEN",
                     "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        bucket = f"e2e-{uuid.uuid4().hex[:12]}"
        client = s3_client(env)
        client.create_bucket(Bucket=bucket)
        try:
            yield {"server": server, "bucket": bucket, "prefix": "prefix", "location": f"s3://{bucket}/prefix",
                   "client": client}
        finally:
            server.reset()
            server.stop()


@pytest.fixture(scope="module")
def crawled(news_site, s3, tmp_path_factory):
    """The test site (plus URLs that try to climb out of the archive) crawled into the bucket."""
    tmp = tmp_path_factory.mktemp("e2e-s3")
    env = hermetic_env(tmp)
    start_urls = [news_site.url("/")] + [news_site.url(p) for p in TRAVERSAL_PATHS]
    sources = news_site.write_sources(tmp, depth=DEPTH, start_urls=start_urls)
    result = run("crawl", "testnews", "--no-prefect", "--sources", sources, "--archive", s3["location"],
                 cwd=tmp, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return {"tmp": tmp, "env": env, "result": result, "sources": sources, **s3}


def cli(crawled, *args, env=None, text=True, **kw):
    return run(*args, "--archive", crawled["location"], cwd=crawled["tmp"], env=env or crawled["env"], text=text, **kw)


def captures(crawled, url: str, env=None) -> list[dict]:
    result = cli(crawled, "list", url, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def archive_keys(crawled) -> dict[str, bytes]:
    """The archive's objects by archive key (the bucket prefix removed)."""
    base = crawled["prefix"] + "/"
    objects = bucket_objects(crawled["client"], crawled["bucket"])
    assert all(k.startswith(base) for k in objects), sorted(objects)
    return {k[len(base):]: v for k, v in objects.items()}


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


def test_list_json_matches_the_contract_and_names_objects_in_the_bucket(news_site, crawled):
    article = news_site.article("harbour-ferries")
    rows = captures(crawled, article["url"])
    assert len(rows) == 1
    row = rows[0]
    for field, kind in CONTRACT.items():
        assert isinstance(row[field], kind), (field, row)
    assert re.fullmatch(r"\d{14}", row["timestamp"])
    assert row["url"] == article["url"]
    assert (row["status"], row["mime"], row["text"]) == (200, "text/html", True)
    assert row["warc"].startswith("warc/testnews/") and row["warc"].endswith(".warc.gz")
    head = crawled["client"].head_object(Bucket=crawled["bucket"], Key=f"{crawled['prefix']}/{row['warc']}")
    assert head["ContentLength"] >= row["offset"] + row["length"]


@pytest.mark.parametrize("key", ["metroledger-transit",  # gzip-encoded
                                 "northfield-storm",  # chunked
                                 "jiangnan-daily"])  # gb2312
def test_get_as_html_is_what_the_site_served(news_site, crawled, key):
    article = news_site.article(key)
    result = cli(crawled, "get", article["url"], "--as", "html", text=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == news_site.page_bytes(article["path"])


def test_get_as_raw_is_the_stored_payload(news_site, crawled):
    article = news_site.article("metroledger-transit")
    result = cli(crawled, "get", article["url"], "--as", "raw", text=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == news_site.routes[article["path"]].body  # still gzip, as sent
    assert result.stdout[:2] == b"\x1f\x8b"


def test_get_as_text_is_the_plain_text_form(news_site, crawled):
    article = news_site.article("harbour-ferries")
    result = cli(crawled, "get", article["url"], "--as", "text")
    assert result.returncode == 0, result.stderr
    header, _, body = result.stdout.partition("\n\n")
    lines = header.splitlines()
    assert 2 <= len(lines) <= 3 and lines[-1] == article["url"]
    assert "<" not in lines[0]
    assert body.strip() and "\n\n\n" not in result.stdout
    for passage in article["with"]:
        assert " ".join(passage.split()) in " ".join(body.split())
    # the same text as the articles/...txt object the crawl uploaded
    stored = [v for k, v in archive_keys(crawled).items() if k.startswith("articles/") and k.endswith(".txt")]
    assert result.stdout.encode("utf-8") in stored


def test_get_reads_only_the_records_byte_range(news_site, crawled, tmp_path):
    """Every GetObject `get` sends for a WARC is a ranged read of exactly the record."""
    from storage.archive import open_archive

    archive = open_archive(crawled["location"], catalog_path=tmp_path / "catalog.sqlite")  # syncs: reads indexes
    sent: list[tuple[str, str | None]] = []

    def record(request, **kwargs):
        rng = request.headers.get("Range")
        sent.append((request.url, rng.decode("ascii") if isinstance(rng, bytes) else rng))

    archive.backend._client.meta.events.register("before-send.s3.GetObject", record)
    url = news_site.article("metroledger-transit")["url"]
    capture = archive.nearest(url)
    size = crawled["client"].head_object(Bucket=crawled["bucket"],
                                         Key=f"{crawled['prefix']}/{capture.warc}")["ContentLength"]
    assert size > 4 * capture.length  # reading the whole WARC would be a different request

    html = archive.get(url, as_="html")
    assert html == news_site.page_bytes(news_site.article("metroledger-transit")["path"])
    want = f"bytes={capture.offset}-{capture.offset + capture.length - 1}"
    assert len(sent) == 1
    assert sent[0][0].endswith(capture.warc) and sent[0][1] == want

    sent.clear()
    text = archive.get(url, as_="text")
    assert text.decode("utf-8").splitlines()[2] == url
    assert sent and all(rng and rng.startswith("bytes=") for _, rng in sent), sent
    assert all(u.endswith(".text.warc.gz") for u, _ in sent), sent


# --------------------------------------------------------------------------- 3. a fresh machine


def test_fresh_machine_reindexes_from_the_bucket_and_answers_the_same(news_site, crawled, tmp_path):
    urls = [news_site.article(k)["url"] for k in ("harbour-ferries", "metroledger-transit")]
    urls.append(news_site.url("/"))
    before = {u: captures(crawled, u) for u in urls}
    keys_before = set(archive_keys(crawled))

    fresh = hermetic_env(tmp_path)  # new cache folder (no catalog), new spool
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
