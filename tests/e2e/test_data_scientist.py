"""The data scientist's day, in Chromium, on the demo that `make run` loads: she trains a new
credit-scoring model and registers it in MLflow, whose webhook tells Quorum; on the version's
page she writes its card, generates a bias report with the version's own model on the holdout,
exports the card with the report's verdict in it, and asks for a production release whose gates
all pass. Each step is on the audit trail under her name."""

import json
import re
import time
import uuid

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from playwright.sync_api import expect
from sklearn.ensemble import GradientBoostingClassifier

from governance.approvals.models import ApprovalRequest
from governance.audit.models import AuditEvent
from governance.fairness.models import BiasReport
from governance.registry import demo
from governance.registry.mirror import webhook_signature
from governance.registry.models import DatasetVersion, ModelVersion
from tests.e2e.test_members import log_in

pytestmark = pytest.mark.browser

SECRET = "shared-with-mlflow"
CARD = {
    "Intended use": "Scores consumer credit applications for the lending team's decision.",
    "Out-of-scope use": "Business loans, and any decision without a person reviewing it.",
    "Training data": "Applications of the last two years, sex kept out of the features.",
    "Evaluation data": "A held-out fifth of the applications, never seen in training.",
    "Ethical considerations": "Income carries a pay gap: selection rates by sex are watched.",
    "Caveats and recommendations": "Retrain when the applicants' incomes drift.",
}


def train_and_register(mlflow_uri: str) -> int:
    """Her notebook: a gradient boosting model with more trees, logged and registered."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_uri)
    try:
        experiment = MlflowClient(mlflow_uri).get_experiment_by_name(demo.SCORING)
        model = GradientBoostingClassifier(
            n_estimators=150, max_depth=3, learning_rate=0.1, random_state=2
        )
        params = {"run_name": "gbm-150-d3", "model": "gradient_boosting", "n_estimators": 150}
        _, uri = demo.train_run(
            experiment.experiment_id,
            demo.credit_applicants(),
            model,
            params,
            user="sam",
            script="train_gbm.py",
            log_model=True,
        )
        return int(mlflow.register_model(uri, "credit-scoring").version)
    finally:
        mlflow.set_tracking_uri(previous)


def mlflow_tells_quorum(page, name: str) -> None:
    """What MLflow's registry webhook sends when a version is created: signed with the secret
    both sides share."""
    body = json.dumps(
        {"entity": "model_version", "action": "created", "data": {"name": name}}
    ).encode()
    delivery, stamp = uuid.uuid4().hex, str(int(time.time()))
    answer = page.request.post(
        "/hooks/mlflow/",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-MLflow-Delivery-Id": delivery,
            "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": webhook_signature(SECRET, delivery, stamp, body),
        },
    )
    assert answer.status == 202, answer.text()


def test_a_data_scientist_publishes_a_version_with_its_card_and_a_bias_report(
    page, demo_site, mlflow_uri, settings
):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    number = train_and_register(mlflow_uri)
    mlflow_tells_quorum(page, "credit-scoring")
    versions = ModelVersion.objects.filter(model__name="credit-scoring", version=number)
    demo_site["worker"].wait_for(versions.exists, timeout=120)

    log_in(page, "sam")
    mine = page.locator("article", has=page.get_by_role("heading", name="Your versions"))
    row = mine.get_by_role("listitem").filter(has_text=f"credit-scoring v{number}")
    expect(row).to_contain_text("not requested")
    expect(row).to_contain_text("no bias report")
    row.get_by_role("link").click()
    expect(
        page.get_by_role("heading", name=re.compile(f"credit-scoring v{number}"))
    ).to_be_visible()
    expect(page.locator("main")).to_contain_text("card incomplete")

    page.get_by_role("link", name="Edit the card").click()
    for title, text in CARD.items():
        page.get_by_label(title).fill(text)
    page.get_by_label("What changed").fill("First card.")
    page.get_by_role("button", name="Save a new revision").click()
    expect(page.locator(".messages")).to_contain_text("Card saved.")
    expect(page.locator("main")).to_contain_text("card complete")

    form = page.get_by_role("form", name="Generate a bias report")
    holdout = DatasetVersion.objects.get(name="credit-applicants holdout")
    # Choosing the table brings its columns (htmx): wait until they replaced the old ones.
    page.locator("#bias-columns").evaluate("columns => columns.dataset.stale = 'yes'")
    form.get_by_label("Evaluation table").select_option(str(holdout.pk))
    expect(page.locator("#bias-columns[data-stale]")).to_have_count(0)
    form.get_by_label("Label column").select_option("default")
    expect(form.get_by_label("Predictions")).to_have_value("")  # this version's own model
    form.get_by_label("First sensitive column").select_option("sex")
    form.get_by_role("button", name="Generate the report").click()
    reports = BiasReport.objects.filter(version__in=versions, state="done")
    demo_site["worker"].wait_for(reports.exists, timeout=180)
    expect(page.locator("#report-body")).to_contain_text("passes", timeout=30_000)
    expect(page.locator("#report-body .main-svg").first).to_be_visible()

    page.goto(f"/projects/credit-risk/models/credit-scoring/versions/{number}/")
    card = page.request.get(
        f"/projects/credit-risk/models/credit-scoring/versions/{number}/card.md"
    ).text()
    assert CARD["Intended use"] in card
    assert f"[report {reports.get().pk}]" in card
    assert "passes" in card

    release = page.get_by_role("form", name="Ask for a release")
    release.get_by_label("Stage").select_option("production")
    release.get_by_label("Note").fill("More trees: a better AUC, and the bias report passes.")
    release.get_by_role("button", name="Ask for a release").click()
    expect(page.locator(".messages")).to_contain_text("the approvers are told")
    gates = page.get_by_role("region", name="Gates")
    expect(gates.locator(".badge.ok")).to_have_count(2)
    expect(gates.locator(".badge.bad, .badge.warn")).to_have_count(0)
    evidence = page.get_by_role("region", name="Evidence")
    expect(evidence).to_contain_text("revision 1, complete")
    expect(evidence).to_contain_text("gbm-150-d3")

    approval = ApprovalRequest.objects.get(version__in=versions)
    assert approval.requested_by.username == "sam"
    assert approval.state == "open"
    page.goto("/")
    expect(row).to_contain_text("production: open")
    expect(row).to_contain_text("bias passed")
    done = set(AuditEvent.objects.filter(actor__username="sam").values_list("action", flat=True))
    assert {"model_card.edited", "bias_report.requested", "approval.opened"} <= done
