"""The product owner's morning, in Chromium, on the demo that `make run` loads: the email about
the release waiting for her links to it; she follows it, signs in on the way, reads the gates
and the evidence, and approves. The ML engineer approves too, MLflow's alias moves, and her home
shows the model live in production with its health, while CI's gate now lets it ship."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from mlflow.tracking import MlflowClient
from playwright.sync_api import expect

from governance.access import services as access
from governance.approvals import services as approvals
from governance.approvals.models import ApprovalRequest
from governance.audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.e2e.test_release import ask_gate

pytestmark = pytest.mark.browser


def test_a_product_owner_approves_a_release_from_the_emails_link(
    page, demo_site, mailoutbox, mlflow_uri
):
    priya, mei = demo_site["people"]["priya"], demo_site["people"]["mei"]
    waiting = ApprovalRequest.objects.get(
        version__model__name="credit-scoring", version__version=2, stage="production"
    )
    _, token = access.create_api_token(
        actor=mei,
        name="ci",
        expires_at=timezone.now() + timedelta(days=1),
        project=waiting.project,
    )
    assert ask_gate(demo_site["server"], token, 2)["allowed"] is False

    demo_site["worker"].wait_for(lambda: any(m.to == [priya.email] for m in mailoutbox))
    email = next(m for m in mailoutbox if m.to == [priya.email] and "credit-scoring" in m.subject)
    link = re.search(r"https?://\S+/approvals/\d+/", email.body).group(0)
    assert link == f"{demo_site['server']}/projects/credit-risk/approvals/{waiting.pk}/"

    page.goto(link)  # not signed in yet: the sign-in page brings her back to the link
    page.get_by_label("Username").fill("priya")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(link)
    expect(
        page.get_by_role("heading", name=re.compile(r"credit-scoring v2 → production"))
    ).to_be_visible()

    gates = page.get_by_role("region", name="Gates")
    expect(gates.locator(".badge.ok")).to_have_count(2)
    expect(gates.locator(".badge.bad, .badge.warn")).to_have_count(0)
    expect(gates).to_contain_text("bias report")
    evidence = page.get_by_role("region", name="Evidence")
    expect(evidence).to_contain_text("roc_auc")
    decide = page.get_by_role("region", name="Approvals")
    expect(decide).to_contain_text("Waiting for 1 product owner, 1 ML engineer")

    page.locator("#decision-comment").fill("The holdout AUC and the bias report convince me.")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("Approved.")
    expect(decide).to_contain_text("Waiting for 1 ML engineer")
    expect(decide).to_contain_text("The holdout AUC and the bias report convince me.")
    assert ask_gate(demo_site["server"], token, 2)["allowed"] is False

    approvals.decide(actor=mei, approval=waiting, verdict="approve", comment="Load tested.")
    demo_site["worker"].wait_for(
        lambda: ApprovalRequest.objects.get(pk=waiting.pk).alias_state == "moved"
    )
    page.reload()
    expect(page.locator(".callout.ok")).to_contain_text("points at v2")
    assert ask_gate(demo_site["server"], token, 2)["allowed"] is True

    page.goto("/")
    live = page.locator("article", has=page.get_by_role("heading", name="Live models"))
    production = live.get_by_role("listitem").filter(
        has_text=re.compile(r"credit-scoring v2\s+production")
    )
    expect(production).to_contain_text("drift alert")
    expect(production).to_contain_text("bias passed")
    waiting_tile = page.locator(
        "article", has=page.get_by_role("heading", name=re.compile("Releases waiting"))
    )
    expect(waiting_tile).to_contain_text("Nothing waits for your decision.")
    failing = page.locator(
        "article", has=page.get_by_role("heading", name=re.compile("Failing bias"))
    )
    failing.get_by_role("link", name="credit-scoring v1").click()
    expect(page.locator("#report-body")).to_contain_text("fails")

    decided = AuditEvent.objects.filter(action="approval.decided", actor=priya).get()
    assert decided.target_id == str(waiting.pk)
    after = AuditEvent.objects.filter(
        seq__gt=decided.seq, target_kind=decided.target_kind, target_id=decided.target_id
    )  # this request's events only: the worker also moves the demo's staging alias
    actions = list(after.order_by("seq").values_list("action", flat=True))
    assert actions == ["approval.decided", "approval.approved", "approval.alias_moved"]
    registered = MlflowClient(mlflow_uri).get_registered_model("credit-scoring")
    assert registered.aliases["production"] == 2
