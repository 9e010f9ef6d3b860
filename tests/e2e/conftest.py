"""Chromium driven by Playwright against the live test server.

Debian's chromium is used (Playwright's own download does not work everywhere). Tests skip when
it is missing, and fail instead when QUORUM_REQUIRE_BROWSER=1.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from governance.delivery import deploying
from governance.delivery.models import Deployment
from tests.conftest import PASSWORD, needs

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "e2e"

try:
    from playwright.sync_api import expect

    # Assertions wait as long as actions do: a loaded CI machine renders slower than a laptop.
    expect.set_options(timeout=15_000)
except ImportError:  # the browser tests skip, or fail when required, in `browser` below
    pass


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    needs(
        "Chromium with Playwright",
        sync_playwright is not None and shutil.which(CHROMIUM) is not None,
        "QUORUM_REQUIRE_BROWSER",
    )
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls that
    # tests and fixtures make meanwhile are plain synchronous code all the same.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request, browser, live_server) -> Iterator[object]:
    """A fresh browser page on the live server; a screenshot is kept when the test fails, and
    anything the Content Security Policy refused fails the test."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()
    if refused and not (report is not None and report.failed):
        pytest.fail("the Content Security Policy refused:\n" + "\n".join(refused))


@pytest.fixture
def demo_site(request, transactional_db, live_server, mlflow_uri, settings, django_user_model):
    """The demo as `make run` loads it, served, with a worker, and emails linking to this
    server; every scoring server a test started is stopped at its end.

    The worker starts once the demo is loaded, and takes what the demo queued: Python 3.11
    before 3.11.8 can fail to parse code in one thread while another parses too
    (CPython gh-106905), and loading the demo's models and the worker's first tasks both do.
    """
    needs("PostgreSQL", connection.vendor == "postgresql", "QUORUM_REQUIRE_SERVICES")
    settings.QUORUM_BASE_URL = live_server.url
    call_command("load_demo", password=PASSWORD)
    worker = request.getfixturevalue("celery_worker")
    people = {user.username: user for user in django_user_model.objects.all()}
    yield {"people": people, "worker": worker, "server": live_server.url}
    for deployment in Deployment.objects.all():
        deploying.terminate(deployment.runtime, deployment.pk)
