"""Quorum meets its services going away and coming back: Redis while jobs and emails wait for
it, MLflow during a sync and an alias write-back, a disk path for exports that cannot be
written. Each ends with nothing lost, nothing done twice, the state said plainly on the pages,
and the audit chain intact."""

from datetime import timedelta

import pytest
from mlflow.entities import Metric

from governance.access.roles import Role
from governance.approvals import services as approvals
from governance.approvals.models import ApprovalRequest
from governance.audit import services as audit
from governance.audit.models import AuditEvent
from governance.delivery import services as delivery
from governance.delivery.models import Job
from governance.notify.models import EmailState, Notification
from governance.registry import services as registry
from governance.registry.errors import MlflowUnavailable
from governance.registry.models import ModelVersion, SyncRun
from tests.faults.conftest import _wait
from tests.faults.kinds import MARKED

pytestmark = [pytest.mark.faults]


def chain_is_intact(admin) -> None:
    from governance.audit.models import VerificationRun

    run = audit.verify_now(actor=admin, trigger=VerificationRun.Trigger.COMMAND)
    assert run.state == VerificationRun.State.PASSED, run.__dict__


def mails_about(subject: str) -> int:
    """How many emails the workers wrote (files under var/mail) with this subject."""
    from pathlib import Path

    from django.conf import settings

    folder = Path(settings.EMAIL_FILE_PATH)
    return sum(
        line.startswith("Subject: ") and line.endswith(f" {subject}")
        for path in (folder.glob("*.log") if folder.exists() else [])
        for line in path.read_text(errors="replace").splitlines()
    )


@pytest.mark.services
def test_jobs_and_emails_waiting_while_redis_is_down_go_out_once_when_it_is_back(
    project, workers, broker, engineer, owner, admin_user, login, tmp_path
):
    from governance.notify.kinds import Kind
    from governance.notify.services import notify, sweep_pending_emails

    broker.stop()
    job = delivery.start_job(
        actor=engineer, project=project, kind=MARKED.name, params={"folder": str(tmp_path)}
    )
    subject = f"Fault drill {tmp_path.name}"
    [waiting] = notify(
        recipients=[owner], kind=Kind.MENTION, subject=subject, url="/", key=f"drill-{job.pk}",
        project=project,
    )  # fmt: skip
    job.refresh_from_db()
    waiting.refresh_from_db()
    assert (job.state, job.enqueued_at) == (Job.State.QUEUED, None)
    assert waiting.email_state == EmailState.PENDING
    page = login(engineer).get(f"/projects/{project.slug}/jobs/{job.pk}/").content.decode()
    assert "Waiting for the task queue" in page
    assert delivery.sweep_jobs() == 0, "still no broker: nothing handed over"

    broker.start()
    workers.start("after")
    assert delivery.sweep_jobs() == 1  # the beat schedule's work, every minute
    assert sweep_pending_emails(older_than=timedelta(0)) >= 1
    _wait(lambda: Job.objects.get(pk=job.pk).finished, 60, "the waiting job did not run")
    finished = Notification.objects.filter(kind=Kind.JOB_FINISHED, recipient=engineer)
    _wait(
        lambda: not Notification.objects.filter(email_state=EmailState.PENDING).exists()
        and finished.exists(),
        60, "the emails did not go out",
    )  # fmt: skip
    job.refresh_from_db()
    waiting.refresh_from_db()
    assert (job.state, job.attempts) == (Job.State.SUCCEEDED, 1)
    assert (tmp_path / "finished").read_text().count("\n") == 1
    assert (waiting.email_state, waiting.email_attempts) == (EmailState.SENT, 1)
    assert finished.get().email_state == EmailState.SENT
    assert mails_about(subject) == 1
    # Handing everything over again sends and runs nothing twice.
    assert delivery.sweep_jobs() == 0
    assert sweep_pending_emails(older_than=timedelta(0)) == 0
    page = login(engineer).get(f"/projects/{project.slug}/jobs/{job.pk}/").content.decode()
    assert "succeeded" in page
    chain_is_intact(admin_user)


def scored_run(tracking, experiment: str, accuracy: float) -> str:
    run = tracking.client.create_run(experiment, tags={"mlflow.user": "sam"}).info.run_id
    tracking.client.log_batch(run, metrics=[Metric("accuracy", accuracy, 1_700_000_000_000, 0)])
    tracking.client.set_terminated(run)
    return run


def test_a_sync_while_mlflow_is_down_fails_plainly_and_the_next_one_catches_up_once(
    db, project, tracking, mlflow_server, admin_user
):
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", scored_run(tracking, experiment, 0.91))
    registry.sync_mlflow(trigger="test")
    assert ModelVersion.objects.count() == 1

    mlflow_server.stop()
    # Meanwhile the data scientists go on writing to MLflow's store.
    tracking.version("credit-scoring", scored_run(tracking, experiment, 0.93))
    with pytest.raises(MlflowUnavailable, match="unreachable"):
        registry.sync_mlflow(trigger="test")
    failed = SyncRun.objects.latest("pk")
    assert failed.state == SyncRun.State.FAILED
    assert "unreachable" in failed.error
    assert ModelVersion.objects.count() == 1, "nothing half-mirrored"

    mlflow_server.start()
    registry.sync_mlflow(trigger="test")
    registry.sync_mlflow(trigger="test")
    assert sorted(ModelVersion.objects.values_list("version", flat=True)) == [1, 2]
    registered = AuditEvent.objects.filter(action="model_version.registered")
    assert sorted(e.data["after"]["version"] for e in registered) == [1, 2], "each once"
    chain_is_intact(admin_user)


def test_an_alias_write_back_while_mlflow_is_down_waits_then_lands_once(
    project, tracking, mlflow_server, celery_worker, owner, engineer, scientist, admin_user,
    login,
):  # fmt: skip
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", scored_run(tracking, experiment, 0.91))
    registry.sync_mlflow(trigger="test")
    version = ModelVersion.objects.get()
    approvals.save_policy(
        actor=owner, project=project, stage="production",
        required={Role.PRODUCT_OWNER: 1, Role.ML_ENGINEER: 1}, gates_=[],
    )  # fmt: skip
    release = approvals.open_request(actor=scientist, version=version, stage="production")

    mlflow_server.stop()
    approvals.decide(actor=owner, approval=release, verdict="approve")
    approvals.decide(actor=engineer, approval=release, verdict="approve")
    attempted = ApprovalRequest.objects.filter(pk=release.pk, alias_attempts__gte=1)
    celery_worker.wait_for(attempted.exists, timeout=60)
    release.refresh_from_db()
    assert (release.state, release.alias_state) == (
        ApprovalRequest.State.APPROVED, ApprovalRequest.AliasState.PENDING,
    )  # fmt: skip
    assert "unreachable" in release.alias_error.lower()
    page = login(owner).get(f"/projects/{project.slug}/approvals/{release.pk}/")
    assert "alias pending" in page.content.decode()

    mlflow_server.start()  # the task's next retry finds it
    moved = ApprovalRequest.objects.filter(
        pk=release.pk, alias_state=ApprovalRequest.AliasState.MOVED
    )
    celery_worker.wait_for(moved.exists, timeout=120)
    assert tracking.client.get_registered_model("credit-scoring").aliases == {"production": 1}
    assert AuditEvent.objects.filter(action="approval.alias_moved").count() == 1
    release.refresh_from_db()
    assert release.alias_attempts >= 1, "the failed tries are counted"
    chain_is_intact(admin_user)


@pytest.mark.parametrize("client_kind", ["page", "api"])
def test_an_export_to_a_path_that_cannot_be_written_says_so_and_records_nothing(
    project, settings, tmp_path, auditor, login, admin_user, client_kind
):
    blocked = tmp_path / "exports-disk"
    blocked.write_text("a file where the export directory should be")
    settings.EXPORT_DIR = blocked / "exports"
    url = (
        "/audit/export/?format=csv" if client_kind == "page" else "/api/v1/audit/export?format=csv"
    )
    client = login(auditor)
    before = AuditEvent.objects.count()
    answer = client.get(url)
    assert answer.status_code == 503
    body = answer.content.decode()
    assert "Exports cannot be written" in body
    assert str(settings.EXPORT_DIR) not in body, "the path is for admins, in the log"
    if client_kind == "api":
        assert answer.json()["error"]["code"] == "export_unavailable"
    assert AuditEvent.objects.count() == before, "no export recorded that did not happen"

    settings.EXPORT_DIR = tmp_path / "exports"  # the admin frees the path
    assert client.get(url).status_code == 200
    assert AuditEvent.objects.filter(action="audit.exported").count() == 1
    chain_is_intact(admin_user)
