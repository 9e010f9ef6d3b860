"""Drift and bias in the browser: a product owner watching a monitor sees a drift alert arrive
after a drifted batch is sent, sees the chart that explains it and acknowledges it; a data
scientist generates a bias report that fails the policy and sees the release's gate turn red."""

import pyarrow as pa
import pytest
from playwright.sync_api import expect

from governance.access.roles import Role
from governance.approvals import services as approvals
from governance.approvals.models import ApprovalRequest
from governance.audit.models import AuditEvent
from governance.fairness.models import BiasReport
from governance.monitoring import services as monitoring
from governance.monitoring.models import DriftAlert, DriftCheck
from governance.registry import services as registry
from governance.registry.models import ModelVersion
from tests.e2e.test_members import log_in
from tests.factories import AdminFactory, UserFactory, make_project
from tests.fairness.conftest import applicants
from tests.monitoring.test_monitors import frame

pytestmark = pytest.mark.browser


@pytest.fixture
def watched(transactional_db, live_server, celery_worker):
    admin = AdminFactory(username="ada")
    olivia, sam = UserFactory(username="olivia"), UserFactory(username="sam")
    project = make_project(
        admin=admin,
        owner=olivia,
        slug="credit-risk",
        name="Credit risk scoring",
        members={sam: Role.DATA_SCIENTIST},
    )
    reference = registry.keep_table(
        actor=sam,
        project=project,
        name="applicants",
        table=pa.Table.from_pandas(frame(3000), preserve_index=False),
        source="reference.csv",
    )
    monitor = monitoring.create_monitor(
        actor=sam, project=project, name="credit inputs", reference=reference
    )
    return {"monitor": monitor, "worker": celery_worker}


def test_a_product_owner_sees_a_drift_alert_arrive_and_acknowledges_it(page, watched, tmp_path):
    url = f"/projects/credit-risk/monitors/{watched['monitor'].pk}/"
    log_in(page, "olivia")
    page.goto(url)
    page.get_by_role("button", name="Watch alerts").click()
    expect(page.locator(".messages")).to_contain_text("You will be told")
    expect(page.get_by_label("Notifications, 0 unread")).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    drifted = tmp_path / "today.csv"
    frame(3000, shift=1.5, seed=7).to_csv(drifted, index=False)
    log_in(page, "sam")
    page.goto(url)
    page.locator("#batch-file").set_input_files(drifted)
    page.get_by_role("button", name="Send and check").click()
    expect(page.locator(".messages")).to_contain_text("Batch of 3000 rows received")
    watched["worker"].wait_for(lambda: DriftCheck.objects.filter(state="done").exists())
    page.get_by_role("button", name="Log out").click()

    log_in(page, "olivia")
    expect(page.get_by_label("Notifications, 1 unread")).to_be_visible()
    page.get_by_label("Notifications, 1 unread").click()
    page.get_by_role("button", name="Drift in credit inputs: age", exact=True).click()
    why = page.get_by_role("region", name="Why: age")
    expect(why).to_contain_text("drifted")
    expect(why).to_contain_text("PSI")
    # Plotly drew both figures: the bins side by side and the statistics with their limits.
    expect(why.locator("#distribution .main-svg").first).to_be_visible()
    expect(why.locator("#history .main-svg").first).to_be_visible()

    page.get_by_label("Comment").first.fill("Marketing campaign brought younger applicants.")
    page.get_by_role("button", name="Acknowledge").first.click()
    expect(page.locator(".messages")).to_contain_text("Alert on age acknowledged.")
    alert = DriftAlert.objects.get(feature="age")
    assert alert.state == DriftAlert.State.ACKNOWLEDGED
    assert alert.acknowledged_by.username == "olivia"
    assert AuditEvent.objects.filter(action="drift_alert.acknowledged").count() == 1


@pytest.fixture
def release(transactional_db, live_server, celery_worker, tracking):
    admin = AdminFactory(username="ada")
    olivia, sam = UserFactory(username="olivia"), UserFactory(username="sam")
    project = make_project(
        admin=admin,
        owner=olivia,
        slug="credit-risk",
        name="Credit risk scoring",
        members={sam: Role.DATA_SCIENTIST},
    )
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", tracking.run(experiment))
    registry.sync_mlflow(trigger="test")
    registry.keep_table(
        actor=sam,
        project=project,
        name="holdout",
        table=pa.Table.from_pandas(applicants(3000, biased=True), preserve_index=False),
        source="holdout.csv",
    )
    approvals.save_policy(
        actor=olivia,
        project=project,
        stage="production",
        required={Role.PRODUCT_OWNER: 1},
        gates_=[{"kind": "bias_report_passed"}],
    )
    approvals.open_request(
        actor=sam, version=ModelVersion.objects.get(), stage="production", note="ready"
    )
    return {"worker": celery_worker}


def test_a_failing_bias_report_turns_the_release_gate_red(page, release):
    log_in(page, "sam")
    page.goto("/projects/credit-risk/models/credit-scoring/versions/1/")
    form = page.get_by_role("form", name="Generate a bias report")
    form.get_by_label("Label column").select_option("approved")
    form.get_by_label("Predictions").select_option("predicted")
    form.get_by_label("First sensitive column").select_option("sex")
    form.get_by_role("button", name="Generate the report").click()

    release["worker"].wait_for(lambda: BiasReport.objects.filter(state="done").exists())
    expect(page.locator("#report-body")).to_contain_text("fails", timeout=20_000)
    # The chart of selection rates per group, with the policy's line, is drawn.
    expect(page.locator("#report-body .main-svg").first).to_be_visible()

    approval = ApprovalRequest.objects.get()
    page.goto(f"/projects/credit-risk/approvals/{approval.pk}/")
    gates = page.get_by_role("region", name="Gates")
    expect(gates).to_contain_text("missing")
    page.get_by_role("button", name="Check the gates again").click()
    row = gates.get_by_role("row").filter(has_text="bias report")
    expect(row.locator(".badge.bad")).to_have_text("fails")
    assert AuditEvent.objects.filter(action="bias_report.generated").count() == 1
