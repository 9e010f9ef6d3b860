"""An auditor filters the trail, verifies it with a progress bar, and downloads CSV and XLSX
whose manifests check out."""

import csv
import hashlib
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from governance.access import services
from governance.access.roles import Role
from tests.e2e.test_members import log_in
from tests.factories import AdminFactory, UserFactory, make_project

pytestmark = pytest.mark.browser


@pytest.fixture
def audited(transactional_db):
    admin = AdminFactory(username="ada")
    priya = UserFactory(username="priya")
    alex = UserFactory(username="alex", first_name="Alex", last_name="Novak")
    sam = UserFactory(username="sam")
    project = make_project(
        admin=admin,
        owner=priya,
        slug="credit-risk",
        name="Credit risk scoring",
        members={alex: Role.AUDITOR, sam: Role.DATA_SCIENTIST},
    )
    services.change_role(
        actor=priya, membership=project.memberships.get(user=sam), role=Role.ML_ENGINEER
    )


def test_auditor_filters_verifies_and_exports_the_trail(page, audited, celery_worker):
    log_in(page, "alex")
    page.get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()

    page.get_by_label("Actor").fill("priya")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.events tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("changed the role of sam from data scientist to ML engineer")

    page.get_by_role("button", name="Verify the trail").click()
    run = page.locator("#verify .run")
    expect(run).to_contain_text("Intact", timeout=30_000)
    checkpoint = run.locator("code").inner_text()
    assert re.fullmatch(r"\d+:[0-9a-f]{64}", checkpoint)

    for fmt in ("CSV", "XLSX"):
        with page.expect_download() as download_info:
            page.get_by_role("link", name=fmt, exact=True).click()
        download = download_info.value
        body = Path(download.path()).read_bytes()
        assert download.suggested_filename.endswith(f".{fmt.lower()}")
        page.reload()
        manifest_link = page.get_by_role("link", name="manifest").first
        manifest = page.request.get(manifest_link.get_attribute("href")).json()
        assert manifest["format"] == fmt.lower()
        assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
        assert manifest["filters"] == {"actor": "priya"}
        if fmt == "CSV":
            (row,) = list(csv.DictReader(io.StringIO(body.decode())))
            assert row["action"] == "membership.role_changed"
            assert (manifest["first"]["hash"], manifest["rows"]) == (row["hash"], 1)
