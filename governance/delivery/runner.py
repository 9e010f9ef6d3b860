"""Running a job in a worker: claim it once, give its function a way to report steps and log
lines, stop it when cancelled, and keep what it cost.

A job is claimed under a row lock. A second delivery of the same message finds it running with a
fresh heartbeat and leaves it alone; a delivery after its worker died finds the heartbeat stale
and takes it over, as a new attempt. A finished job is never run again.
"""

import contextlib
import json
import logging
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from governance.audit.services import SystemActor, record
from governance.delivery import kinds
from governance.delivery.errors import JobCancelled, TransientJobError
from governance.delivery.models import Job, JobLine
from governance.notify.kinds import Kind
from governance.notify.services import notify

log = logging.getLogger(__name__)
RUNNER = SystemActor("jobs")
MAX_ATTEMPTS = 3
MAX_LINE = 4000
MAX_LINES = 5000


class JobContext:
    """What a job's function is handed: the job, and how to say where it is."""

    def __init__(self, job: Job):
        self.job = job
        self._lines = JobLine.objects.filter(job=job).count()
        self._hidden: set[str] = set()

    def secret(self, name: str) -> str:
        """A secret of the job's project, its use audited; its value never reaches the log.
        Raises SecretNotFound, SecretUnreadable."""
        from governance.delivery.services import use_secret  # services imports this module

        value = use_secret(project=self.job.project, name=name, user=f"job {self.job.pk}")
        self._hidden.add(value)
        return value

    def masked(self, text: str) -> str:
        """`text` with every secret this job read blotted out."""
        for value in sorted(self._hidden, key=len, reverse=True):
            text = text.replace(value, "••••••")
        return text

    @property
    def params(self) -> dict:
        return self.job.params

    def step(self, name: str, progress: int) -> None:
        """Start a step at `progress` percent. Raises JobCancelled, before the step, if someone
        asked to cancel the job."""
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled
        self.log(f"== {name}")
        progress = max(0, min(100, int(progress)))
        now = timezone.now()
        Job.objects.filter(pk=self.job.pk).update(step=name[:200], progress=progress,
                                                  heartbeat_at=now)  # fmt: skip
        self.job.step, self.job.progress, self.job.heartbeat_at = name[:200], progress, now

    def log(self, text: str) -> None:
        """Add lines to the job's log, at once, for the page that follows it."""
        new = []
        for line in self.masked(str(text)).splitlines() or [""]:
            if self._lines >= MAX_LINES:
                break
            self._lines += 1
            new.append(JobLine(job=self.job, number=self._lines, text=line[:MAX_LINE]))
        JobLine.objects.bulk_create(new)


def stale_after() -> timedelta:
    """How old a running job's last heartbeat may be before its worker counts as gone and the
    job may be taken over (settings.QUORUM_JOB_STALE_SECONDS)."""
    return timedelta(seconds=settings.QUORUM_JOB_STALE_SECONDS)


def execute(job_id: int) -> Job:
    """Run the job if it is waiting (or its worker died). Raises TransientJobError for the task
    to retry later, while attempts remain."""
    job = _claim(job_id)
    if job is None:
        return Job.objects.get(pk=job_id)
    context = JobContext(job)
    context.log(f"attempt {job.attempts} started")
    kind = kinds.get(job.kind)
    cpu, wall = time.process_time(), time.perf_counter()
    _reset_peak_memory()
    state, result, error = Job.State.SUCCEEDED, {}, ""
    beating = _Heartbeat(job.pk)
    try:
        result = kind.run(context) or {}
    except JobCancelled:
        state = Job.State.CANCELLED
        context.log("cancelled")
    except TransientJobError as problem:
        if job.attempts < MAX_ATTEMPTS:
            context.log(f"will try again: {problem}")
            _account(job, cpu, wall, state=Job.State.QUEUED)
            raise
        state, error = Job.State.FAILED, str(problem)
        context.log(f"gave up after {job.attempts} attempts: {problem}")
    except Exception as problem:  # any failure of the work fails the job, its trace kept
        state, error = Job.State.FAILED, f"{type(problem).__name__}: {problem}"
        context.log(traceback.format_exc())
    finally:
        beating.stop()
    return _finish(job, context, state, result, error, cpu, wall)


class _Heartbeat:
    """Notes on the job, from a thread of its own, that its worker is alive, however long a
    step takes."""

    def __init__(self, job_id: int):
        self.job_id, self.stopped = job_id, threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"job-{job_id}-heartbeat")
        self.thread.daemon = True
        self.thread.start()

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(settings.QUORUM_JOB_HEARTBEAT_SECONDS):
                try:
                    Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError as error:  # a busy database: the next beat tries again
                    log.warning("job %s heartbeat skipped: %s", self.job_id, error)
        finally:
            connection.close()  # this thread's own

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


def _claim(job_id: int) -> Job | None:
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("project").get(pk=job_id)
        now = timezone.now()
        if job.finished:
            return None
        if (
            job.state == Job.State.RUNNING
            and job.heartbeat_at
            and (now - job.heartbeat_at < stale_after())
        ):
            return None  # another worker has it
        if job.cancel_requested:
            job.state, job.finished_at = Job.State.CANCELLED, now
            job.save(update_fields=["state", "finished_at"])
            return None
        job.state, job.attempts, job.heartbeat_at = Job.State.RUNNING, job.attempts + 1, now
        job.started_at = job.started_at or now
        job.save(update_fields=["state", "attempts", "heartbeat_at", "started_at"])
    return job


def _account(job: Job, cpu: float, wall: float, state: str) -> None:
    Job.objects.filter(pk=job.pk).update(
        state=state,
        cpu_seconds=F("cpu_seconds") + (time.process_time() - cpu),
        wall_seconds=F("wall_seconds") + (time.perf_counter() - wall),
    )


def _finish(
    job: Job, context: JobContext, state: str, result: dict, error: str, cpu: float, wall: float
) -> Job:
    peak = _peak_memory()
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(of=("self",))
            .select_related("project", "triggered_by")
            .get(pk=job.pk)
        )
        job.state, job.result = state, json.loads(context.masked(json.dumps(result)))
        job.error = context.masked(error)[:10_000]
        job.cpu_seconds += time.process_time() - cpu
        job.wall_seconds += time.perf_counter() - wall
        job.peak_memory_bytes = max(job.peak_memory_bytes, peak)
        job.finished_at = timezone.now()
        if state == Job.State.SUCCEEDED:
            job.progress, job.step = 100, "done"
        job.save()
        record(
            actor=RUNNER,
            action=f"job.{state}",
            target=job,
            project=job.project,
            payload={
                "kind": job.kind,
                "version": str(job.version) if job.version_id else None,
                "attempts": job.attempts,
                "error": context.masked(error)[:500],
                "cpu_seconds": round(job.cpu_seconds, 3),
                "wall_seconds": round(job.wall_seconds, 3),
                "peak_memory_bytes": job.peak_memory_bytes,
            },
        )
        if job.triggered_by is not None and job.triggered_by.is_active:
            notify(
                recipients=[job.triggered_by],
                kind=Kind.JOB_FINISHED,
                subject=f"{kinds.get(job.kind).label} {job.get_state_display().lower()}",
                body=job.error or f"{job} finished in {job.wall_seconds:.1f} s.",
                url=reverse("job", args=[job.project.slug, job.pk]),
                key=f"job-{job.pk}-{job.attempts}",
                project=job.project,
            )
    context.log(f"{state} after {job.wall_seconds:.1f} s")
    return job


# Peak memory of this process while the job runs (Linux: the kernel's high-water mark, reset
# before the job; elsewhere the process's peak since it started).

_STATUS, _CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _reset_peak_memory() -> None:
    with contextlib.suppress(OSError):
        _CLEAR.write_text("5")


def _peak_memory() -> int:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
