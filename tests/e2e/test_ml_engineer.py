"""The ML engineer's morning, in Chromium, on the demo that `make run` loads: package the
version approved for staging (the progress bar runs to the end), profile it and read the
resources it needs, deploy it to the local target, see it healthy, ask it for predictions, roll
back to the version that served before; then a drifted batch retrains the model, which registers
a new version and asks for its release. All of it is on the audit trail."""

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from governance.approvals import services as approvals
from governance.audit.models import AuditEvent
from governance.delivery import services
from governance.delivery.models import Deployment, Job, RetrainingRun, Target
from governance.monitoring import services as monitoring
from governance.monitoring.models import DriftAlert, Monitor
from governance.registry import demo
from governance.registry.models import ModelVersion
from tests.e2e.test_members import log_in

pytestmark = pytest.mark.browser


def credit(number: int) -> ModelVersion:
    return ModelVersion.objects.get(model__name="credit-scoring", version=number)


def wait_for_job(site, kind: str, version: ModelVersion, count: int = 1) -> Job:
    jobs = Job.objects.filter(kind=kind, version=version, state=Job.State.SUCCEEDED)
    site["worker"].wait_for(lambda: jobs.count() >= count, timeout=300)
    return jobs.latest("pk")


def served_before(site) -> Target:
    """Earlier in the week: v1, approved for staging by the demo, was packaged and served on
    the local target and found healthy; then v2 was approved for staging."""
    mei, sam = site["people"]["mei"], site["people"]["sam"]
    target = Target.objects.get(name="local staging")
    services.start_job(actor=mei, project=target.project, kind="package", version=credit(1))
    wait_for_job(site, "package", credit(1))
    first = services.deploy(actor=mei, target=target, version=credit(1))
    site["worker"].wait_for(
        lambda: Deployment.objects.get(pk=first.pk).state == Deployment.State.LIVE, timeout=120
    )
    services.check_target_health(actor=mei, target=target)
    release = approvals.open_request(actor=sam, version=credit(2), stage="staging")
    approvals.decide(actor=mei, approval=release, verdict="approve")
    return target


def test_an_ml_engineer_packages_profiles_deploys_and_rolls_back(page, demo_site):
    target = served_before(demo_site)
    version_url = "/projects/credit-risk/models/credit-scoring/versions/2/"
    log_in(page, "mei")

    page.goto(version_url)
    page.get_by_role("button", name="Package", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Package .*#\d+"))).to_be_visible()
    progress = page.locator("progress")
    expect(progress).to_have_attribute("value", "100", timeout=300_000)
    expect(page.locator("#progress-title")).to_contain_text("succeeded")
    expect(page.get_by_role("link", name=re.compile("Download the package"))).to_be_visible()

    page.goto(version_url)
    monitor = Monitor.objects.get(name="credit-scoring inputs")
    page.get_by_label("Validation data").select_option(f"monitor:{monitor.pk}")  # the holdout
    page.get_by_role("button", name="Profile", exact=True).click()
    expect(progress).to_have_attribute("value", "100", timeout=300_000)
    expect(page.locator("#progress-title")).to_contain_text("succeeded")
    page.goto(version_url)
    profile = page.locator(
        "section", has=page.get_by_role("heading", name="Validation and profile")
    )
    expect(profile.get_by_role("heading", name=re.compile(r"^Validation pass"))).to_be_visible()
    expect(profile.get_by_role("heading", name="Recommended resources")).to_be_visible()
    recommendation = wait_for_job(demo_site, "profile", credit(2)).result["recommendation"]
    expect(profile).to_contain_text(recommendation["memory_request"])
    expect(profile).to_contain_text(recommendation["cpu_request"])

    page.get_by_role("button", name="Deploy to local staging").click()
    deployed = Deployment.objects.filter(target=target, version=credit(2))
    demo_site["worker"].wait_for(
        lambda: deployed.filter(state=Deployment.State.LIVE).exists(), timeout=120
    )
    page.goto(f"/projects/credit-risk/targets/{target.pk}/")
    live = page.locator("#live-title").locator("..")
    expect(live).to_contain_text("credit-scoring v2")
    page.get_by_role("button", name="Check now").click()
    expect(live).to_contain_text("healthy")
    endpoint = live.locator("code").first.inner_text()
    rows = demo.credit_applicants().test[demo.credit_applicants().features].head(3).astype(float)
    asked = urllib.request.Request(
        endpoint + "/predict", data=json.dumps({"rows": rows.to_dict("records")}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(asked, timeout=20) as answer:
        assert len(json.loads(answer.read())["predictions"]) == 3

    page.get_by_role("button", name="Roll back").click()
    back = Deployment.objects.filter(target=target, version=credit(1), rollback_of__isnull=False)
    demo_site["worker"].wait_for(
        lambda: back.filter(state=Deployment.State.LIVE).exists(), timeout=120
    )
    page.goto(f"/projects/credit-risk/targets/{target.pk}/")
    page.get_by_role("button", name="Check now").click()
    expect(live).to_contain_text("credit-scoring v1")
    expect(live).to_contain_text("healthy")
    page.goto("/")  # her home shows the target serving v1 again, healthy
    deployments = page.locator("article", has=page.get_by_role("heading", name="Deployments"))
    expect(deployments.get_by_role("listitem")).to_have_count(1)
    expect(deployments).to_contain_text("local staging credit-scoring v1 live healthy")

    trail = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    for action in ("job.queued", "job.succeeded", "deployment.started", "deployment.live",
                   "deployment.rollback_started"):  # fmt: skip
        assert action in trail, action
    assert trail.index("deployment.started") < trail.index("deployment.rollback_started")
    kinds = set(Job.objects.filter(state=Job.State.SUCCEEDED).values_list("kind", flat=True))
    assert {"package", "profile", "deploy"} <= kinds


def test_a_drifted_batch_retrains_the_model_into_a_version_waiting_for_release(
    page, demo_site, tmp_path
):
    sam = demo_site["people"]["sam"]
    monitor = Monitor.objects.get(name="credit-scoring inputs")
    for alert in DriftAlert.objects.filter(monitor=monitor).exclude(state="resolved"):
        monitoring.resolve_alert(actor=sam, alert=alert, comment="Handled in last week's review.")
    drifted = tmp_path / "applications-today.csv"
    demo.drifting_batches(seed=40)[2][0].to_csv(drifted, index=False)

    log_in(page, "sam")
    page.goto(f"/projects/credit-risk/monitors/{monitor.pk}/")
    page.locator("#batch-file").set_input_files(drifted)
    page.get_by_role("button", name="Send and check").click()

    runs = RetrainingRun.objects.filter(registered_version__isnull=False, approval__isnull=False)
    demo_site["worker"].wait_for(runs.exists, timeout=300)
    run = runs.get()
    assert run.trigger == RetrainingRun.Trigger.DRIFT
    newest = ModelVersion.objects.filter(model__name="credit-scoring").latest("version")
    assert run.registered_version == newest

    page.goto("/projects/credit-risk/models/credit-scoring/")
    retraining = page.locator("section", has=page.get_by_role("heading", name="Retraining"))
    expect(retraining).to_contain_text("drift")
    retraining.get_by_role("link", name=re.compile(f"#{run.approval.pk}")).click()
    expect(
        page.get_by_role("heading", name=re.compile(f"credit-scoring v{newest.version}"))
    ).to_be_visible()
    expect(page.locator("main")).to_contain_text("staging")
    page.get_by_role("button", name="Log out").click()
    log_in(page, "mei")  # the ML engineer's home lists the run and what it registered
    runs = page.locator("article", has=page.get_by_role("heading", name="Retraining runs"))
    expect(runs).to_contain_text(f"credit-scoring #{run.pk} succeeded drift alert")
    expect(runs.get_by_role("link", name=f"v{newest.version}")).to_be_visible()

    trail = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    for action in ("drift_alert.opened", "retraining.started", "retraining.registered",
                   "retraining.approval_opened", "approval.opened"):  # fmt: skip
        assert action in trail, action
    assert trail.index("drift_alert.opened") < trail.index("retraining.started")
