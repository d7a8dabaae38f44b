"""Browser fixtures (a pytest plugin, loaded by conftest.py): Debian's chromium driven by Playwright.

browser        session: headless /usr/bin/chromium (Playwright's own browser download fails here)
page           a fresh context and page that can reach only loopback: every request to another host is
               aborted and recorded in `page.refused` (a test asserts it stayed empty)
node_modules   the npm packages `make test` installed (NEWSARCHIVE_NODE_MODULES): axe-core, ReplayWeb.page
artifacts_dir  where screenshots go: test-artifacts/ at the top of the checkout (kept after the run)
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-quic",
                 # anything not on loopback goes to a closed loopback port, service workers' requests included
                 # (Chromium always sends loopback direct): no request can leave the machine
                 "--proxy-server=http://127.0.0.1:9"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome-extension", "chrome"):
        return True
    host = (parts.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session")
def node_modules() -> Path:
    path = Path(os.environ.get("NEWSARCHIVE_NODE_MODULES") or Path(__file__).resolve().parent.parent / "node_modules")
    if not (path / ".installed").exists():
        raise RuntimeError(f"npm packages missing at {path}: run the tests with `make test` (it runs npm ci)")
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} missing: run the tests with `make test` (it installs Debian's chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="allow")
    refused: list[str] = []

    def guard(route):
        if is_loopback_url(route.request.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    page = context.new_page()
    page.refused = refused
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
