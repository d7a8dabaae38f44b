"""The test news site archived by the real `newsarchive crawl`, once in a folder and once in S3.

crawled_folder   session: crawled twice into a folder (--no-prefect, recheck 0: the second run
                 fetches every article again and stores unchanged pages as revisits)
crawled_s3       session: crawled once into a bucket of moto's S3 server on 127.0.0.1, with
                 start URLs that try to climb out of the archive root (TRAVERSAL_PATHS)
crawled          either of them (parametrized "folder", "s3"): for the read-back tests whose
                 assertions must hold whatever the backend

Each is a dict: tmp, env (the CLI's environment), location (what --archive takes), sources,
crawls (how many runs made it), and what is particular to it (archive, first, second,
first_requests; result, server, bucket, prefix, client). Session-scoped: every module that
reads one of them shares one crawl.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path

import pytest

from test_cli_support import cli_env, run

# Start pages, feeds and sitemaps, and one hop of links: every article of the
# site, without the hundreds of dead links inside the real-world test pages.
DEPTH = 1

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


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cli(crawled: dict, *args, env: dict | None = None, text: bool = True, **kw):
    """`newsarchive ARGS --archive LOCATION` as a user of that archive runs it."""
    return run(*args, "--archive", crawled["location"], cwd=crawled["tmp"], env=env or crawled["env"], text=text,
               **kw)


def captures(crawled: dict, url: str, env: dict | None = None) -> list[dict]:
    """`list URL --json`, parsed."""
    result = cli(crawled, "list", url, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def archive_keys(crawled: dict) -> dict[str, bytes]:
    """The S3 archive's objects by archive key (the bucket prefix removed)."""
    base = crawled["prefix"] + "/"
    objects = bucket_objects(crawled["client"], crawled["bucket"])
    assert all(k.startswith(base) for k in objects), sorted(objects)
    return {k[len(base):]: v for k, v in objects.items()}


@pytest.fixture(scope="session")
def crawled_folder(news_site, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crawled-folder")
    env = cli_env(tmp)
    sources = news_site.write_sources(tmp, depth=DEPTH, recheck=0)
    archive = tmp / "archive"
    before = len(news_site.server.fetched_paths())
    first = run("crawl", "testnews", "--sources", sources, "--archive", archive, "--no-prefect",
                cwd=tmp, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    first_requests = len(news_site.server.fetched_paths()) - before
    time.sleep(1.1)  # WARC timestamps have whole seconds: the second capture is later
    second = run("crawl", "--all", "--sources", sources, "--archive", archive, "--no-prefect",
                 cwd=tmp, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    return {"tmp": tmp, "env": env, "location": str(archive), "archive": archive, "sources": sources,
            "crawls": 2, "first": first, "second": second, "first_requests": first_requests}


@pytest.fixture(scope="session")
def crawled_s3(news_site, tmp_path_factory):
    from fixtures_s3 import MotoS3  # a plugin itself: imported here, after pytest has registered it

    server = MotoS3()
    server.start()
    try:
        tmp = tmp_path_factory.mktemp("crawled-s3")
        env = hermetic_env(tmp, **aws_env(server.url, tmp))
        bucket = f"e2e-{uuid.uuid4().hex[:12]}"
        client = s3_client(env)
        client.create_bucket(Bucket=bucket)
        location = f"s3://{bucket}/prefix"
        start_urls = [news_site.url("/")] + [news_site.url(p) for p in TRAVERSAL_PATHS]
        sources = news_site.write_sources(tmp, depth=DEPTH, start_urls=start_urls)
        result = run("crawl", "testnews", "--no-prefect", "--sources", sources, "--archive", location,
                     cwd=tmp, env=env, timeout=600)
        assert result.returncode == 0, result.stderr
        yield {"tmp": tmp, "env": env, "location": location, "sources": sources, "crawls": 1, "result": result,
               "server": server, "bucket": bucket, "prefix": "prefix", "client": client}
    finally:
        server.stop()  # no moto reset: its store is the whole process's (see fixtures_s3)


@pytest.fixture(params=["folder", "s3"])
def crawled(request):
    return request.getfixturevalue(f"crawled_{request.param}")
