"""A release from request to MLflow alias: the data scientist asks, the product owner follows
the email's link and approves, the ML engineer approves, the alias moves, CI's gate opens."""

import json
import re
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance.access import services as access
from governance.access.roles import Role
from governance.approvals import services as approvals
from governance.approvals.models import ApprovalRequest
from governance.audit.models import AuditEvent
from governance.registry import services
from tests.e2e.test_members import log_in
from tests.factories import AdminFactory, UserFactory, make_project

pytestmark = pytest.mark.browser


@pytest.fixture
def release(transactional_db, tracking, settings, live_server, celery_worker):
    settings.QUORUM_BASE_URL = live_server.url
    admin = AdminFactory(username="ada")
    olivia, sam, mei = (UserFactory(username=n) for n in ("olivia", "sam", "mei"))
    project = make_project(
        admin=admin,
        owner=olivia,
        slug="credit-risk",
        name="Credit risk scoring",
        members={sam: Role.DATA_SCIENTIST, mei: Role.ML_ENGINEER},
    )
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    run = tracking.run(experiment, "gbm", metrics={"accuracy": 0.94})
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", run)
    services.sync_mlflow(trigger="test")
    approvals.save_policy(
        actor=olivia,
        project=project,
        stage="production",
        required={Role.PRODUCT_OWNER: 1, Role.ML_ENGINEER: 1},
        gates_=[{"kind": "metric", "condition": "accuracy >= 0.9"}],
    )
    _, secret = access.create_api_token(
        actor=sam, name="ci", expires_at=timezone.now() + timedelta(days=1), project=project
    )
    return {"token": secret, "server": live_server.url, "worker": celery_worker}


def ask_gate(server: str, token: str, version: int) -> dict:
    """What CI's deployment step asks: may credit-scoring `version` go to production?"""
    ask = urllib.request.Request(
        f"{server}/api/v1/gate?model=credit-scoring&version={version}&stage=production",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(ask, timeout=20) as answer:
        return json.load(answer)


def gate(release: dict) -> dict:
    return ask_gate(release["server"], release["token"], 1)


def test_a_release_goes_from_request_to_alias_with_two_approvals(
    page, release, mailoutbox, tracking
):
    assert gate(release)["allowed"] is False

    log_in(page, "sam")
    page.goto("/projects/credit-risk/models/credit-scoring/versions/1/")
    page.get_by_label("Note").fill("Beats the champion on every segment.")
    page.get_by_role("button", name="Ask for a release").click()
    expect(page.locator(".messages")).to_contain_text("the approvers are told")
    expect(
        page.get_by_text("You cannot decide on this request: you requested this release.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)

    release["worker"].wait_for(lambda: any("olivia" in m.to[0] for m in mailoutbox))
    email = next(m for m in mailoutbox if "olivia" in m.to[0])
    link = re.search(r"https?://\S+/approvals/\d+/", email.body).group(0)
    assert link.startswith(release["server"])

    page.get_by_role("button", name="Log out").click()
    log_in(page, "olivia")
    page.goto(link)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("Approved.")
    expect(page.get_by_role("region", name="Approvals")).to_contain_text(
        "Waiting for 1 ML engineer"
    )
    assert gate(release)["allowed"] is False

    page.get_by_role("button", name="Log out").click()
    log_in(page, "mei")
    page.get_by_role("link", name="Waiting for me").click()
    page.get_by_role("link", name=re.compile("credit-scoring v1")).click()
    page.locator("#decision-comment").fill("Latency checked on staging.")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("Approved.")

    # The worker moves MLflow's alias, then commits the request's new state: wait for both.
    release["worker"].wait_for(lambda: ApprovalRequest.objects.get().alias_state == "moved")
    assert tracking.client.get_registered_model("credit-scoring").aliases == {"production": 1}
    page.reload()
    expect(page.locator(".callout.ok")).to_contain_text("points at v1")
    answer = gate(release)
    assert answer["allowed"] is True

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"approval.opened", "approval.decided", "approval.approved",
            "approval.alias_moved"} <= actions  # fmt: skip
