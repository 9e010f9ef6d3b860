"""The auditor's review, in Chromium, on the demo that `make run` loads: from her home she opens
the trail, narrows it to the ML engineer's release decisions in the credit-risk project,
verifies the whole chain with a progress bar, downloads the filtered events as CSV and XLSX,
and checks each file against its manifest: digest, filters, row count, first and last hash, and
every row's hash recomputed from the file alone. Her home then shows the verification, its
checkpoint and her exports."""

import csv
import hashlib
import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from governance.approvals.models import ApprovalRequest
from governance.audit.chain import event_hash
from governance.audit.models import AuditEvent
from tests.e2e.test_members import log_in

pytestmark = pytest.mark.browser

FILTERS = {"actor": "mei", "action": "approval.*", "project": "credit-risk"}


def recomputed(row: dict) -> str:
    """A row's hash as the manifest's recipe says, from the exported values alone."""
    fields = {key: value for key, value in row.items() if key != "hash"}
    for number in ("seq", "actor_id", "project_id"):
        fields[number] = int(fields[number]) if fields[number] not in ("", None) else None
    return event_hash(fields)


def test_an_auditor_filters_verifies_and_exports_the_trail(page, demo_site):
    # The worker moves the alias of the release the demo approved: a trail that stands still.
    moving = ApprovalRequest.objects.filter(alias_state="pending")
    demo_site["worker"].wait_for(lambda: not moving.exists())
    expected = AuditEvent.objects.filter(
        actor_name="mei", action__startswith="approval.", project__slug="credit-risk"
    ).order_by("seq")
    assert expected.count() >= 2  # her decision on v1 for staging, and what it led to

    log_in(page, "alex")
    home = page.locator("main")
    expect(home).to_contain_text("The chain was never verified.")
    expect(home).to_contain_text("You have not exported the trail yet.")
    page.get_by_role("link", name="Trail activity").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()

    filters = page.get_by_role("form", name="Filters")
    filters.get_by_label("Action").fill(FILTERS["action"])
    filters.get_by_label("Project").select_option(FILTERS["project"])
    filters.get_by_role("button", name="Filter").click()
    rows = page.locator("table.events tbody tr")
    family = AuditEvent.objects.filter(action__startswith="approval.", project__slug="credit-risk")
    expect(rows).to_have_count(min(family.count(), 50))
    filters.get_by_label("Actor").fill(FILTERS["actor"])
    filters.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(expected.count())
    for event in expected:
        expect(rows.filter(has_text=event.action).first).to_be_visible()
    expect(rows.first).to_contain_text("mei")

    page.get_by_role("button", name="Verify the trail").click()
    run = page.locator("#verify .run")
    expect(run).to_contain_text("Intact", timeout=60_000)
    checkpoint = run.locator("code").inner_text()
    seq, head = re.fullmatch(r"(\d+):([0-9a-f]{64})", checkpoint).groups()
    assert AuditEvent.objects.get(seq=int(seq)).hash == head

    for fmt in ("CSV", "XLSX"):
        with page.expect_download() as download_info:
            page.get_by_role("link", name=fmt, exact=True).click()
        download = download_info.value
        assert download.suggested_filename.endswith(f".{fmt.lower()}")
        body = Path(download.path()).read_bytes()
        if fmt == "CSV":
            exported = list(csv.DictReader(io.StringIO(body.decode())))
        else:
            sheet = load_workbook(io.BytesIO(body), read_only=True).active
            header, *values = sheet.iter_rows(values_only=True)
            exported = [dict(zip(header, (v if v is not None else "" for v in row), strict=True))
                        for row in values]  # fmt: skip

        page.reload()
        manifest_link = page.get_by_role("link", name="manifest").first
        manifest = page.request.get(manifest_link.get_attribute("href")).json()
        assert manifest["format"] == fmt.lower()
        assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
        assert manifest["filters"] == FILTERS
        assert manifest["rows"] == len(exported) == expected.count()
        assert [int(row["seq"]) for row in exported] == [event.seq for event in expected]
        assert manifest["first"] == {"seq": expected.first().seq, "hash": exported[0]["hash"]}
        assert manifest["last"] == {"seq": expected.last().seq, "hash": exported[-1]["hash"]}
        for row in exported:
            assert recomputed(row) == row["hash"], row["seq"]

    page.goto("/")
    verification = page.locator("article", has=page.get_by_role("heading", name="Verification"))
    expect(verification.locator(".badge.ok")).to_have_text("intact")
    expect(verification).to_contain_text(f"event #{seq}")
    exports = page.locator("article", has=page.get_by_role("heading", name="Your recent exports"))
    expect(exports.get_by_role("listitem")).to_have_count(2)
    expect(exports).to_contain_text(f"{expected.count()} rows")
    assert AuditEvent.objects.filter(action="audit.exported", actor_name="alex").count() == 2
