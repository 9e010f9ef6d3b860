"""Jobs survive the faults a deployment meets: a worker killed in the middle of a job, and a
broker that is down when the job is created. Each ends with the work done exactly once."""

import pytest

from governance.audit.models import AuditEvent
from governance.audit.services import SystemActor
from governance.delivery import services
from governance.delivery.models import Job
from tests.faults.conftest import _wait
from tests.faults.kinds import MARKED

pytestmark = [pytest.mark.services, pytest.mark.faults]


def start_marked(project, folder, hold_first: float = 0) -> Job:
    return services.start_job(
        actor=SystemActor("fault test"), project=project, kind=MARKED.name,
        params={"folder": str(folder), "hold_first": hold_first},
    )  # fmt: skip


def finished_lines(folder) -> list[str]:
    path = folder / "finished"
    return path.read_text().splitlines() if path.exists() else []


def test_a_job_whose_worker_is_killed_is_redelivered_and_finishes_exactly_once(
    project, workers, tmp_path
):
    first = workers.start("first")
    job = start_marked(project, tmp_path, hold_first=120)
    _wait((tmp_path / "attempt-1").exists, 60, "the first worker did not start the job")
    workers.kill(first)
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING, "the killed worker never got to say anything"

    workers.start("second")
    _wait(
        lambda: Job.objects.get(pk=job.pk).finished, 90,
        "the killed worker's job was not redelivered and finished",
    )  # fmt: skip
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED
    assert job.attempts == 2
    assert job.result == {"attempt": 2}
    assert finished_lines(tmp_path) == [f"job {job.pk} attempt 2"]
    events = AuditEvent.objects.filter(target_id=str(job.pk), action__startswith="job.")
    assert list(events.order_by("seq").values_list("action", flat=True)) == [
        "job.queued",
        "job.succeeded",
    ]
    # The broker gives the message back once more after its visibility timeout, and the
    # sweeper finds nothing to do: the finished job is not run again.
    assert services.sweep_jobs() == 0
    assert "attempt 2 started" in "\n".join(job.lines.values_list("text", flat=True))
    assert finished_lines(tmp_path) == [f"job {job.pk} attempt 2"]


def test_a_job_created_while_redis_is_down_waits_and_runs_once_when_it_is_back(
    project, workers, broker, tmp_path
):
    broker.stop()
    job = start_marked(project, tmp_path)
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED
    assert job.enqueued_at is None, "the broker never took it"
    assert services.sweep_jobs() == 0, "still no broker: the sweeper hands nothing"
    assert Job.objects.get(pk=job.pk).enqueued_at is None

    broker.start()
    workers.start("after")
    assert services.sweep_jobs() == 1  # what the beat schedule does every minute
    _wait(lambda: Job.objects.get(pk=job.pk).finished, 60, "the waiting job did not run")
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED
    assert job.enqueued_at is not None
    assert job.attempts == 1
    assert finished_lines(tmp_path) == [f"job {job.pk} attempt 1"]
    assert services.sweep_jobs() == 0
