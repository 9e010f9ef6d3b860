"""Jobs run once, say where they are, stop when cancelled, keep their failures and their cost,
and survive a broker that was away."""

import pytest

from governance.access.errors import NotAllowed, ProjectNotFound
from governance.audit.models import AuditEvent
from governance.audit.services import SystemActor
from governance.delivery import kinds, runner, services
from governance.delivery.errors import (
    JobFinished,
    JobNotRetryable,
    TransientJobError,
    UnknownJobKind,
)
from governance.delivery.models import Job, JobLine
from governance.errors import InvalidInput
from governance.notify.models import Notification
from tests.factories import make_version

# Kinds of job for these tests, registered through the same door the areas use.


def _count(context):
    context.step("counting", 10)
    total = sum(range(context.params.get("to", 10) + 1))
    context.log(f"the sum is {total}")
    context.step("checking", 90)
    return {"sum": total}


def _boom(context):
    context.step("about to fail", 50)
    raise ValueError("the training data has no label column")


def _flaky(context):
    context.step("calling a service", 20)
    raise TransientJobError("the registry answered 503")


def _cancelled_meanwhile(context):
    context.step("working", 30)
    # Someone cancels while the step runs, through the same service the page calls.
    services.cancel_job(actor=context.job.triggered_by, job=context.job)
    context.step("the next step", 60)
    return {"finished": True}


def _positive(params):
    if not isinstance(params.get("to"), int) or params["to"] < 0:
        raise InvalidInput(fields={"to": ["A whole number, 0 or more."]})


for kind in (
    kinds.JobKind("count", "Count", _count, check=_positive),
    kinds.JobKind("boom", "Fail", _boom),
    kinds.JobKind("flaky", "Flaky", _flaky),
    kinds.JobKind("cancelled", "Cancelled meanwhile", _cancelled_meanwhile, needs_version=False),
):
    kinds.register(kind)


@pytest.fixture
def version(project):
    return make_version(project, "credit-scoring", 1)


def start(actor, project, kind="count", version=None, **params):
    return services.start_job(
        actor=actor, project=project, kind=kind, version=version, params=params or {"to": 4}
    )


def test_a_job_runs_to_the_end_with_its_steps_log_result_and_cost(project, engineer, version):
    job = start(engineer, project, version=version)
    assert job.state == Job.State.QUEUED

    job = runner.execute(job.pk)

    assert job.state == Job.State.SUCCEEDED
    assert (job.progress, job.step, job.result) == (100, "done", {"sum": 10})
    assert job.attempts == 1
    assert job.wall_seconds > 0
    assert job.peak_memory_bytes > 0
    lines = list(JobLine.objects.filter(job=job).values_list("text", flat=True))
    assert "== counting" in lines
    assert "the sum is 10" in lines
    numbers = list(JobLine.objects.filter(job=job).values_list("number", flat=True))
    assert numbers == list(range(1, len(lines) + 1))
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["job.queued", "job.succeeded"]
    assert Notification.objects.filter(recipient=engineer, kind="job.finished").count() == 1


def test_a_job_runs_once_however_often_it_is_delivered(project, engineer, version):
    job = start(engineer, project, version=version)
    for _ in range(3):
        runner.execute(job.pk)
    job.refresh_from_db()
    assert job.attempts == 1
    assert AuditEvent.objects.filter(action="job.succeeded").count() == 1


def test_a_job_whose_worker_died_is_taken_over_as_a_new_attempt(project, engineer, version):
    job = start(engineer, project, version=version)
    stale = runner.stale_after() * 2
    from django.utils import timezone

    Job.objects.filter(pk=job.pk).update(
        state=Job.State.RUNNING, attempts=1, heartbeat_at=timezone.now() - stale
    )
    job = runner.execute(job.pk)
    assert (job.state, job.attempts) == (Job.State.SUCCEEDED, 2)


def test_a_running_job_with_a_live_worker_is_left_alone(project, engineer, version):
    from django.utils import timezone

    job = start(engineer, project, version=version)
    Job.objects.filter(pk=job.pk).update(
        state=Job.State.RUNNING, attempts=1, heartbeat_at=timezone.now()
    )
    assert runner.execute(job.pk).state == Job.State.RUNNING


def test_a_failing_job_keeps_its_traceback_and_can_be_tried_again(project, engineer, version):
    job = runner.execute(start(engineer, project, "boom", version=version).pk)
    assert job.state == Job.State.FAILED
    assert job.error == "ValueError: the training data has no label column"
    log = "\n".join(JobLine.objects.filter(job=job).values_list("text", flat=True))
    assert "Traceback" in log
    assert "_boom" in log

    job = services.retry_job(actor=engineer, job=job)
    assert (job.state, job.error, job.progress) == (Job.State.QUEUED, "", 0)
    assert AuditEvent.objects.filter(action="job.retried").count() == 1


def test_a_transient_failure_is_retried_then_given_up(project, engineer, version):
    job = start(engineer, project, "flaky", version=version)
    for attempt in range(1, runner.MAX_ATTEMPTS):
        with pytest.raises(TransientJobError):
            runner.execute(job.pk)
        job.refresh_from_db()
        assert (job.state, job.attempts) == (Job.State.QUEUED, attempt)
    job = runner.execute(job.pk)
    assert job.state == Job.State.FAILED
    assert "503" in job.error


def test_a_queued_job_is_cancelled_at_once(project, engineer, version):
    job = services.cancel_job(actor=engineer, job=start(engineer, project, version=version))
    assert job.state == Job.State.CANCELLED
    assert runner.execute(job.pk).state == Job.State.CANCELLED
    with pytest.raises(JobFinished):
        services.cancel_job(actor=engineer, job=job)


def test_a_running_job_stops_at_its_next_step_when_cancelled(project, engineer):
    job = runner.execute(start(engineer, project, "cancelled").pk)
    assert job.state == Job.State.CANCELLED
    assert job.step == "working", "it stopped before its next step"
    assert job.result == {}
    assert AuditEvent.objects.filter(action="job.cancel_requested").count() == 1


def test_only_failed_or_cancelled_jobs_are_tried_again(project, engineer, version):
    job = runner.execute(start(engineer, project, version=version).pk)
    with pytest.raises(JobNotRetryable):
        services.retry_job(actor=engineer, job=job)


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"kind": "no-such-kind"}, UnknownJobKind, "kind"),
        ({"params": {"to": -1}}, InvalidInput, "to"),
        ({"params": {"to": "ten"}}, InvalidInput, "to"),
        ({"version": None}, InvalidInput, "version"),
    ],
)
def test_a_bad_job_is_refused_naming_the_field(project, engineer, version, changes, error, field):
    arguments = {"kind": "count", "version": version, "params": {"to": 3}, **changes}
    with pytest.raises(error) as refused:
        services.start_job(actor=engineer, project=project, **arguments)
    assert field in refused.value.fields
    assert not Job.objects.exists()


def test_a_version_of_another_project_is_refused(project, engineer, admin_user):
    from tests.factories import make_project

    other = make_project(admin=admin_user, owner=engineer, slug="other")
    with pytest.raises(InvalidInput) as refused:
        start(engineer, project, version=make_version(other, "elsewhere", 1))
    assert "version" in refused.value.fields


def test_roles_that_do_not_run_pipelines_may_not_start_or_cancel(
    project, engineer, viewer, outsider, version
):
    with pytest.raises(NotAllowed):
        start(viewer, project, version=version)
    with pytest.raises(ProjectNotFound):
        start(outsider, project, version=version)
    job = start(engineer, project, version=version)
    with pytest.raises(NotAllowed):
        services.cancel_job(actor=viewer, job=job)


def test_quorum_itself_starts_jobs_without_a_person(project, version):
    job = services.start_job(
        actor=SystemActor("drift"), project=project, kind="count", version=version,
        params={"to": 1}, trigger="drift alert",
    )  # fmt: skip
    assert job.triggered_by is None
    assert runner.execute(job.pk).state == Job.State.SUCCEEDED
    assert not Notification.objects.exists()


def test_a_job_the_broker_could_not_take_is_handed_again_by_the_sweeper(
    project, engineer, version, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        job = start(engineer, project, version=version)  # the broker never heard of it
    assert Job.objects.get(pk=job.pk).enqueued_at is None
    from dashboard.celery import app

    # Celery's own eager mode stands for a broker and worker that are back.
    app.conf.task_always_eager = True
    try:
        assert services.sweep_jobs() == 1
    finally:
        app.conf.task_always_eager = False
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED
    assert services.sweep_jobs() == 0, "a finished job is not handed again"
