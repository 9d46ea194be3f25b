"""Browser fixtures: headless Debian Chromium driven through Playwright's sync API.

One browser per test module (starting Chromium costs about a second); each test gets fresh contexts,
so cookies, locale and viewport never leak from one test into the next.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from conftest import need
from tests.business_site import business_site  # noqa: F401 - fixture for the embeds tests
from tests.workers import real_services, worker  # noqa: F401 - fixtures for every test here

CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps trying to reach hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_SCRIPT = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    need(
        Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is not None,
        f"headless browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        need(False, "the playwright package is not installed (pip install -e '.[test]')")
        raise
    # Playwright's sync API keeps an asyncio loop running in this thread, which Django takes for an
    # async context and then refuses ORM calls from the test body. Every call here is synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_context(browser) -> Iterator:  # noqa: ANN001
    """Open browser contexts (any Playwright new_context options); all are closed after the test."""
    contexts = []

    def make(**options):  # noqa: ANN003, ANN202
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):  # noqa: ANN001, ANN201
    return new_context().new_page()


@pytest.fixture
def axe_violations() -> object:
    """Run axe-core in a page and return its serious and critical violations (empty when accessible)."""
    need(
        AXE_SCRIPT.exists(), f"{AXE_SCRIPT.relative_to(settings.BASE_DIR)} is missing: run `npm ci` (make test does it)"
    )

    def run(page) -> list[dict]:  # noqa: ANN001
        page.add_script_tag(path=str(AXE_SCRIPT))
        result = page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           targets: v.nodes.map(n => n.target.join(" "))}));
        }""")
        return [v for v in result if v["impact"] in ("serious", "critical")]

    return run


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
