"""Every change to jobs: starting one, cancelling it, trying it again, and the sweeper that
hands the broker what it could not take before."""

import logging
import re
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance.access.models import Project
from governance.access.permissions import require
from governance.access.roles import Capability
from governance.audit.services import SystemActor, record
from governance.delivery import kinds, vault
from governance.delivery.errors import InvalidSecret, JobFinished, JobNotRetryable, SecretNotFound
from governance.delivery.models import Job, Secret
from governance.delivery.runner import stale_after
from governance.errors import InvalidInput
from governance.registry.models import ModelVersion

log = logging.getLogger(__name__)

# A queued job the broker took longer ago than this, and no worker started, is handed again.
LOST_AFTER = timedelta(minutes=10)
SWEEP_BATCH = 200


def start_job(
    *,
    actor: AbstractBaseUser | SystemActor,
    project: Project,
    kind: str,
    version: ModelVersion | None = None,
    params: dict | None = None,
    trigger: str = "manual",
) -> Job:
    """Queue a job of `kind` (on `version` where the kind works on one). People need the kind's
    capability; Quorum itself (a schedule, an alert) starts jobs as a system actor.

    Raises NotAllowed, UnknownJobKind, InvalidInput naming the field.
    """
    job_kind = kinds.get(kind)
    if not isinstance(actor, SystemActor):
        require(actor, job_kind.capability, project)
    if job_kind.needs_version and version is None:
        raise InvalidInput(fields={"version": ["This job works on a model version: choose one."]})
    if version is not None and version.model.project_id != project.pk:
        raise InvalidInput(fields={"version": ["The model version is not in this project."]})
    params = params or {}
    if not isinstance(params, dict):
        raise InvalidInput(fields={"params": ["An object of parameters."]})
    if job_kind.check is not None:
        job_kind.check(params)
    if job_kind.check_against is not None and version is not None:
        job_kind.check_against(params, version)
    with transaction.atomic():
        job = Job.objects.create(
            project=project,
            kind=kind,
            version=version,
            params=params,
            triggered_by=None if isinstance(actor, SystemActor) else actor,
            trigger=trigger[:40],
        )
        record(
            actor=actor,
            action="job.queued",
            target=job,
            project=project,
            payload={
                "kind": kind,
                "version": str(version) if version else None,
                "params": params,
                "trigger": trigger,
            },
        )
        transaction.on_commit(lambda: enqueue(job.pk))
    return job


def cancel_job(*, actor: AbstractBaseUser, job: Job) -> Job:
    """Stop a job: a queued one at once, a running one at its next step.
    Raises NotAllowed, JobFinished."""
    require(actor, kinds.get(job.kind).capability, job.project)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.finished:
            raise JobFinished(f"The job has {job.get_state_display().lower()} already.")
        before = job.state
        job.cancel_requested = True
        if job.state == Job.State.QUEUED:
            job.state, job.finished_at = Job.State.CANCELLED, timezone.now()
        job.save(update_fields=["cancel_requested", "state", "finished_at"])
        record(
            actor=actor,
            action="job.cancel_requested",
            target=job,
            project=job.project,
            payload={"before": {"state": before}, "after": {"state": job.state}},
        )
    return job


def retry_job(*, actor: AbstractBaseUser, job: Job) -> Job:
    """Queue a failed or cancelled job again, with the same parameters.
    Raises NotAllowed, JobNotRetryable."""
    require(actor, kinds.get(job.kind).capability, job.project)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.state not in (Job.State.FAILED, Job.State.CANCELLED):
            raise JobNotRetryable(f"The job is {job.get_state_display().lower()}.")
        before = job.state
        job.state, job.error, job.cancel_requested = Job.State.QUEUED, "", False
        job.progress, job.step, job.finished_at, job.enqueued_at = 0, "", None, None
        job.save()
        record(
            actor=actor,
            action="job.retried",
            target=job,
            project=job.project,
            payload={"before": {"state": before}, "after": {"state": job.state}},
        )
        transaction.on_commit(lambda: enqueue(job.pk))
    return job


def enqueue(job_id: int) -> bool:
    """Hand the job to the broker and note when. When the broker cannot take it, the job stays
    queued with no such time, and `sweep_jobs` hands it again later: nothing is lost."""
    from governance.delivery.tasks import run_job  # the task imports this module

    try:
        run_job.delay(job_id=job_id)
    except Exception as error:  # any broker failure: the sweeper hands it again
        log.warning("job %s stays queued: the broker did not take it (%s)", job_id, error)
        return False
    Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(enqueued_at=timezone.now())
    return True


def sweep_jobs() -> int:
    """Hand the broker again the jobs it never took or lost, and those whose worker died
    without the broker giving them back. Returns how many. A duplicate delivery is harmless:
    a job runs once."""
    current = timezone.now()
    waiting = Q(state=Job.State.QUEUED) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=current - LOST_AFTER)
    )
    orphaned = Q(state=Job.State.RUNNING, heartbeat_at__lte=current - stale_after())
    ids = list(
        Job.objects.filter(waiting | orphaned)
        .order_by("id")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    return sum(enqueue(pk) for pk in ids)


# Secrets: written by people, read only by jobs and deployments, never shown.

SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")
MAX_SECRET = 64 * 1024


def set_secret(*, actor: AbstractBaseUser, project: Project, name: str, value: str) -> Secret:
    """Keep `value` encrypted under `name` (like DB_PASSWORD), replacing a previous value.
    The audit trail says who set which name, never the value.

    Raises NotAllowed, InvalidSecret naming the field.
    """
    require(actor, Capability.RUN_PIPELINES, project)
    name = (name or "").strip()
    if not SECRET_NAME.match(name):
        raise InvalidSecret(
            fields={"name": ["Capitals, digits and _, starting with a letter (DB_PASSWORD)."]}
        )
    if not isinstance(value, str) or not value:
        raise InvalidSecret(fields={"value": ["Give the secret's value."]})
    if len(value.encode()) > MAX_SECRET:
        raise InvalidSecret(fields={"value": [f"At most {MAX_SECRET // 1024} KiB."]})
    with transaction.atomic():
        secret = Secret.objects.select_for_update().filter(project=project, name=name).first()
        replaced = secret is not None
        if secret is None:
            secret = Secret(project=project, name=name)
        secret.sealed, secret.set_by, secret.set_at = vault.seal(value), actor, timezone.now()
        secret.save()
        record(
            actor=actor,
            action="secret.set",
            target=secret,
            project=project,
            payload={"name": name, "replaced": replaced},
        )
    return secret


def delete_secret(*, actor: AbstractBaseUser, project: Project, name: str) -> None:
    """Forget a secret. Raises NotAllowed, SecretNotFound."""
    require(actor, Capability.RUN_PIPELINES, project)
    with transaction.atomic():
        secret = Secret.objects.select_for_update().filter(project=project, name=name).first()
        if secret is None:
            raise SecretNotFound
        record(
            actor=actor, action="secret.deleted", target=secret, project=project,
            payload={"name": name},
        )  # fmt: skip
        secret.delete()


def use_secret(*, project: Project, name: str, user: str) -> str:
    """A secret's value for a job or deployment of the project (`user` says which), the use on
    the audit trail by name. Raises SecretNotFound, SecretUnreadable."""
    with transaction.atomic():
        secret = Secret.objects.select_for_update().filter(project=project, name=name).first()
        if secret is None:
            raise SecretNotFound(f"The project has no secret {name!r}.")
        value = vault.unseal(secret.sealed)
        secret.last_used_at = timezone.now()
        secret.save(update_fields=["last_used_at"])
        record(
            actor=SystemActor(user), action="secret.used", target=secret, project=project,
            payload={"name": name, "by": user},
        )  # fmt: skip
    return value


def rotate_secrets() -> int:
    """Encrypt every secret again with the first of QUORUM_SECRET_KEYS; run after putting a new
    key first. Returns how many. Raises SecretUnreadable naming none of the values."""
    count = 0
    with transaction.atomic():
        for secret in Secret.objects.select_for_update().order_by("pk"):
            secret.sealed = vault.reseal(secret.sealed)
            secret.save(update_fields=["sealed"])
            count += 1
        record(
            actor=SystemActor("rotate_secrets"), action="secret.rotated", target=None,
            payload={"secrets": count},
        )  # fmt: skip
    return count
