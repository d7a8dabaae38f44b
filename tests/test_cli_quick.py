"""`newsarchive get` without click (flows/cli/quick.py) answers exactly as through click.

Plain `get` arguments are read by parse_get; everything else goes to click.
Both ways run here as subprocesses on the same arguments, on the crawled test
site in a folder and in S3 (moto on 127.0.0.1): the same bytes on stdout, the
same line on stderr, the same exit code. And a plain `get` loads none of the
libraries it no longer needs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from flows.cli.quick import parse_get
from test_cli_support import ROOT

CLICK = "import sys\nfrom flows.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"
QUICK = "import sys\nfrom flows.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def both(crawled, *args, env=None):
    out = []
    for code in (QUICK, CLICK):
        done = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=crawled["tmp"],
                              env=env or crawled["env"], capture_output=True, timeout=300)
        out.append((done.returncode, done.stdout, done.stderr.decode()))
    return out


@pytest.mark.parametrize("args", [
    ["get", "{url}"],
    ["get", "{url}", "--as", "html"],
    ["get", "{url}", "--as=raw"],
    ["get", "{url}", "--as", "warc", "--at", "2020"],
    ["get", "--at={ts}", "{url}", "--as", "json"],
    ["--debug", "get", "{url}", "--as", "text"],
    ["get", "{url}", "--at", "last tuesday"],  # a bad time: one line, exit 2
    ["get", "http://127.0.0.1:1/never-crawled", "--as", "html"],  # not in the archive: exit 1
    ["get", "{url}", "--as", "pdf"],  # click's usage error either way
    ["get", "{url}", "--help"],
    ["get"],
])
def test_quick_get_answers_as_click_does(crawled, news_site, args):
    url = news_site.article("metroledger-transit")["url"]
    listed = json.loads(subprocess.run([sys.executable, "-c", QUICK, "list", url, "--json", "--archive",
                                        crawled["location"]], cwd=crawled["tmp"], env=crawled["env"],
                                       capture_output=True, timeout=300).stdout)
    argv = [a.format(url=url, ts=listed[0]["timestamp"]) for a in args]
    if "--help" not in argv and argv != ["get"]:
        argv += ["--archive", crawled["location"]]
    quick, click = both(crawled, *argv)
    assert quick == click
    code, stdout, stderr = quick
    if code:
        assert len(stderr.strip().splitlines()) == 1 or "--help" in argv, stderr


def test_quick_get_reads_the_archive_from_the_environment(crawled, news_site):
    url = news_site.article("metroledger-transit")["url"]
    env = dict(crawled["env"], NEWSARCHIVE_ARCHIVE=crawled["location"])
    quick, click = both(crawled, "get", url, "--as", "html", env=env)
    assert quick == click and quick[0] == 0
    assert quick[1] == news_site.page_bytes(news_site.article("metroledger-transit")["path"])


def test_plain_get_loads_neither_click_nor_the_heavy_libraries(crawled, news_site):
    url = news_site.article("metroledger-transit")["url"]
    code = (QUICK.replace("sys.exit(", "rc = (") + "\nheavy = sorted(m for m in ("
            "'click', 'warcio', 'surt', 'tldextract', 'requests', 'fsspec', 'cdxj_indexer', 'boto3', 'botocore',"
            " 'prefect', 'scrapy', 'storage.search', 'dataclasses', 'asyncio') if m in sys.modules)\n"
            "print('heavy=' + ','.join(heavy), file=sys.stderr)\nsys.exit(rc)\n")
    for form in ("html", "text", "raw"):
        done = subprocess.run([sys.executable, "-c", code, "get", url, "--as", form, "--archive", crawled["location"]],
                              cwd=crawled["tmp"], env=crawled["env"], capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stderr.decode().strip().splitlines()[-1] == "heavy=", (form, done.stderr)


@pytest.mark.parametrize("args, expected", [
    (["get", "U"], {"url": "U", "at": None, "form": "text", "archive": "./archive", "debug": False}),
    (["--debug", "get", "U", "-a", "A", "--as", "json"], {"url": "U", "at": None, "form": "json", "archive": "A",
                                                          "debug": True}),
    (["get", "--at=2024", "U", "--archive=s3://b/p", "--debug"], {"url": "U", "at": "2024", "form": "text",
                                                                  "archive": "s3://b/p", "debug": True}),
    (["get", "U", "--archive="], {"url": "U", "at": None, "form": "text", "archive": "", "debug": False}),
])
def test_parse_get_reads_plain_arguments(args, expected, monkeypatch):
    monkeypatch.delenv("NEWSARCHIVE_ARCHIVE", raising=False)
    assert parse_get(args) == expected


@pytest.mark.parametrize("args", [
    [], ["list", "U"], ["get"], ["get", "U", "V"], ["get", "U", "--help"], ["get", "-h"], ["get", "U", "--at"],
    ["get", "U", "--at", "--as"], ["get", "U", "--as", "pdf"], ["get", "U", "--as", "html", "--as", "raw"],
    ["get", "U", "-aX"], ["get", "U", "-a=X"], ["get", "--", "U"], ["get", "-U"], ["get", "U", "--unknown"],
    ["get", "U", "--archiv", "A"],
])
def test_parse_get_leaves_everything_else_to_click(args):
    assert parse_get(args) is None


def test_the_console_script_is_the_quick_entry_point():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'newsarchive = "flows.cli:main"' in text
