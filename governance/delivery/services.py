"""Every change to jobs: starting one, cancelling it, trying it again, and the sweeper that
hands the broker what it could not take before."""

import json
import logging
import math
import re
import time
import urllib.parse
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from governance.access.models import Project
from governance.access.permissions import require
from governance.access.roles import Capability
from governance.audit.services import SystemActor, record
from governance.delivery import cron as cron_syntax
from governance.delivery import deploying, kinds, pipelines, selectors, vault
from governance.delivery.errors import (
    BadCallbackSignature,
    DeploymentBusy,
    DeploymentFinished,
    DeploymentNotFound,
    InvalidSecret,
    InvalidTarget,
    JobFinished,
    JobNotRetryable,
    MalformedCallback,
    NotApproved,
    NothingToRollBackTo,
    NotPackaged,
    RetrainingBusy,
    RetrainingDataGone,
    SecretNotFound,
    StaleCallback,
)
from governance.delivery.models import (
    Deployment,
    Job,
    RetrainingPolicy,
    RetrainingRun,
    Secret,
    Target,
)
from governance.delivery.runner import RUNNER as RUNNER_ACTOR
from governance.delivery.runner import stale_after
from governance.errors import Conflict, DomainError, InvalidInput
from governance.registry import tables
from governance.registry.models import ModelVersion, RegisteredModel

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


# Deployment targets (the endpoint registry), deployments, their health and rollbacks.

TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$")
STAGE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
PROBER = SystemActor("health probe")


def _clean_target(project: Project, name: object, stage: object, secrets: object) -> tuple:
    fields: dict[str, list[str]] = {}
    name = name.strip() if isinstance(name, str) else ""
    if not TARGET_NAME.match(name):
        fields["name"] = ["Up to 60 letters, digits, spaces, dots, _ and -."]
    stage = stage.strip() if isinstance(stage, str) else ""
    if not STAGE.match(stage):
        fields["stage"] = ["An approval stage, such as production or staging."]
    if secrets is None:
        secrets = []
    if isinstance(secrets, str):
        secrets = [part.strip() for part in secrets.replace(",", " ").split() if part.strip()]
    if not isinstance(secrets, list) or not all(
        isinstance(s, str) and SECRET_NAME.match(s) for s in secrets
    ):
        fields["secrets"] = ["Names of project secrets, like DB_PASSWORD."]
    if fields:
        raise InvalidTarget(fields=fields)
    return name, stage, list(dict.fromkeys(secrets))


def _check_secrets_exist(project: Project, target_settings: dict, secrets: list[str]) -> None:
    named = {"secrets": secrets}
    for field in ("hmac_secret", "kubeconfig_secret"):
        if target_settings.get(field):
            named[field] = [target_settings[field]]
    known = set(
        Secret.objects.filter(
            project=project, name__in=[n for names in named.values() for n in names]
        ).values_list("name", flat=True)
    )
    fields = {
        field: [f"The project has no secret {name}." for name in names if name not in known]
        for field, names in named.items()
    }
    fields = {field: messages for field, messages in fields.items() if messages}
    if fields:
        raise InvalidTarget("Set these secrets on the project's secrets page first.", fields=fields)


def _target_state(target: Target) -> dict:
    return {
        "name": target.name,
        "kind": target.kind,
        "stage": target.stage,
        "settings": target.settings,
        "secrets": target.secrets,
    }


def create_target(
    *,
    actor: AbstractBaseUser,
    project: Project,
    name: str,
    kind: str,
    stage: str,
    settings: dict | None = None,
    secrets: list[str] | None = None,
) -> Target:
    """Add a deployment target. Raises NotAllowed, InvalidTarget naming the field (a name the
    project uses already, settings its kind refuses, a secret the project lacks)."""
    require(actor, Capability.RUN_PIPELINES, project)
    name, stage, secrets = _clean_target(project, name, stage, secrets)
    target_settings = deploying.clean_settings(kind, settings)
    _check_secrets_exist(project, target_settings, secrets)
    try:
        with transaction.atomic():
            target = Target.objects.create(
                project=project,
                name=name,
                kind=kind,
                stage=stage,
                settings=target_settings,
                secrets=secrets,
                created_by=actor,
            )
            record(
                actor=actor,
                action="target.created",
                target=target,
                project=project,
                payload={"after": _target_state(target)},
            )
    except IntegrityError:
        raise InvalidTarget(fields={"name": ["The project has a target of that name."]}) from None
    return target


def update_target(*, actor: AbstractBaseUser, target: Target, changes: dict) -> Target:
    """Change a target's name, stage, settings or secrets (its kind stays). Raises NotAllowed,
    InvalidTarget naming the field."""
    project = target.project
    require(actor, Capability.RUN_PIPELINES, project)
    unknown = set(changes) - {"name", "stage", "settings", "secrets"}
    if unknown:
        raise InvalidTarget(fields={field: ["Cannot be changed."] for field in sorted(unknown)})
    try:
        with transaction.atomic():
            target = Target.objects.select_for_update().get(pk=target.pk)
            before = _target_state(target)
            name, stage, secrets = _clean_target(
                project,
                changes.get("name", target.name),
                changes.get("stage", target.stage),
                changes.get("secrets", target.secrets),
            )
            target_settings = deploying.clean_settings(
                target.kind, changes.get("settings", target.settings)
            )
            _check_secrets_exist(project, target_settings, secrets)
            target.name, target.stage, target.secrets = name, stage, secrets
            target.settings = target_settings
            target.save()
            record(
                actor=actor,
                action="target.updated",
                target=target,
                project=project,
                payload={"before": before, "after": _target_state(target)},
            )
    except IntegrityError:
        raise InvalidTarget(fields={"name": ["The project has a target of that name."]}) from None
    return target


def delete_target(*, actor: AbstractBaseUser, target: Target) -> None:
    """Remove a target and its history. Raises NotAllowed, Conflict while a deployment on it
    serves or is under way (stop it first)."""
    require(actor, Capability.RUN_PIPELINES, target.project)
    with transaction.atomic():
        target = Target.objects.select_for_update().select_related("project").get(pk=target.pk)
        active = (*Deployment.CURRENT, Deployment.State.DEPLOYING)
        if Deployment.objects.filter(target=target, state__in=active).exists():
            raise Conflict("A deployment on this target serves or is under way: stop it first.")
        record(
            actor=actor,
            action="target.deleted",
            target=target,
            project=target.project,
            payload={"before": _target_state(target)},
        )
        target.delete()


def _require_approval(version: ModelVersion, stage: str, states: tuple[str, ...]) -> None:
    from governance.approvals.models import ApprovalRequest

    requests = ApprovalRequest.objects.filter(version=version, stage=stage)
    if requests.filter(state__in=states).exists():
        return
    latest = requests.order_by("-opened_at", "-id").values_list("pk", "state").first()
    if latest is None:
        why = f"no approval request was opened for {stage}: request a release first"
    else:
        why = f"its latest request for {stage} (#{latest[0]}) is {latest[1]}"
    raise NotApproved(
        f"{version} cannot be deployed to a {stage} target: {why}.", fields={"version": [why]}
    )


def deploy(
    *, actor: AbstractBaseUser | SystemActor, target: Target, version: ModelVersion
) -> Deployment:
    """Put `version` on `target` through a deploy job. The version needs an approved request
    for the target's stage and, for kinds that run the package, a succeeded package job.

    Raises NotAllowed, InvalidInput, NotApproved, NotPackaged, DeploymentBusy.
    """
    return _deploy(actor, target, version, rollback_of=None)


def _deploy(
    actor: AbstractBaseUser | SystemActor,
    target: Target,
    version: ModelVersion,
    rollback_of: Deployment | None,
) -> Deployment:
    """`deploy`; a rollback (`rollback_of` set) accepts a release superseded since, not only
    the approved one: it was approved, and only a newer release replaced it."""
    from governance.approvals.models import ApprovalRequest

    project = target.project
    if not isinstance(actor, SystemActor):
        require(actor, Capability.RUN_PIPELINES, project)
    if version.model.project_id != project.pk:
        raise InvalidInput(fields={"version": ["The model version is not in this project."]})
    standing = (ApprovalRequest.State.APPROVED,)
    if rollback_of is not None:
        standing = (*standing, ApprovalRequest.State.SUPERSEDED)
    _require_approval(version, target.stage, standing)
    package = deploying.newest_package_of(version.pk)
    if package is None and deploying.needs_package(target):
        raise NotPackaged(f"{version} has no succeeded package job: package it first.")
    with transaction.atomic():
        target = Target.objects.select_for_update().select_related("project").get(pk=target.pk)
        under_way = Deployment.objects.filter(
            target=target,
            state=Deployment.State.DEPLOYING,
            job__state__in=(Job.State.QUEUED, Job.State.RUNNING),
        )
        if under_way.exists():
            raise DeploymentBusy
        current = Deployment.objects.filter(target=target, state__in=Deployment.CURRENT).first()
        deployment = Deployment.objects.create(
            target=target,
            version=version,
            package_job=package,
            replaced=current,
            rollback_of=rollback_of,
            deployed_by=None if isinstance(actor, SystemActor) else actor,
        )
        job = start_job(
            actor=actor,
            project=project,
            kind="deploy",
            version=version,
            params={"deployment": deployment.pk},
            trigger="rollback" if rollback_of else "manual",
        )
        deployment.job = job
        deployment.save(update_fields=["job"])
        record(
            actor=actor,
            action="deployment.rollback_started" if rollback_of else "deployment.started",
            target=deployment,
            project=project,
            payload={
                "target": target.name,
                "kind": target.kind,
                "stage": target.stage,
                "model": version.model.name,
                "version": version.version,
                "job": job.pk,
                "package_job": package.pk if package else None,
                "replaces": current.pk if current else None,
                "rollback_of": rollback_of.pk if rollback_of else None,
            },
        )
    return deployment


def rollback(*, actor: AbstractBaseUser, target: Target) -> Deployment:
    """Deploy again the newest earlier deployment of the target that a probe found healthy,
    other than the one serving. Raises NotAllowed, NothingToRollBackTo, NotApproved,
    NotPackaged, DeploymentBusy."""
    require(actor, Capability.RUN_PIPELINES, target.project)
    current = Deployment.objects.filter(target=target, state__in=Deployment.CURRENT).first()
    earlier = Deployment.objects.filter(target=target, healthy_at__isnull=False).select_related(
        "version__model"
    )
    if current is not None:
        earlier = earlier.exclude(pk=current.pk).exclude(version_id=current.version_id)
    previous = earlier.order_by("-created_at", "-id").first()
    if previous is None:
        raise NothingToRollBackTo(
            f"{target.name} has no earlier deployment of another version that was healthy."
        )
    # What is undone: the deployment serving, or else the newest one (stopped or failed).
    undone = current or Deployment.objects.filter(target=target).first()
    return _deploy(actor, target, previous.version, rollback_of=undone)


def stop_deployment(*, actor: AbstractBaseUser, deployment: Deployment) -> Deployment:
    """Take a deployment out of service: a local server is stopped, a job under way cancelled.
    Raises NotAllowed, DeploymentFinished."""
    require(actor, Capability.RUN_PIPELINES, deployment.target.project)
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("target__project")
            .get(pk=deployment.pk)
        )
        active = (*Deployment.CURRENT, Deployment.State.DEPLOYING)
        if deployment.state not in active:
            raise DeploymentFinished(
                f"The deployment is {deployment.get_state_display().lower()} already."
            )
        before = deployment.state
        deployment.state, deployment.finished_at = Deployment.State.STOPPED, timezone.now()
        deployment.save(update_fields=["state", "finished_at"])
        if deployment.job_id:
            Job.objects.filter(
                pk=deployment.job_id, state__in=(Job.State.QUEUED, Job.State.RUNNING)
            ).update(cancel_requested=True)
        record(
            actor=actor,
            action="deployment.stopped",
            target=deployment,
            project=deployment.target.project,
            payload={"before": {"state": before}, "after": {"state": deployment.state}},
        )
        _stop_later(deployment)
    return deployment


def _stop_later(deployment: Deployment) -> None:
    if deployment.target.kind == Target.Kind.LOCAL and deployment.runtime.get("pid"):
        runtime, pk = dict(deployment.runtime), deployment.pk
        transaction.on_commit(lambda: deploying.terminate(runtime, pk))


def finish_deployment(
    *,
    deployment_id: int,
    state: str,
    endpoint: str = "",
    detail: str = "",
    runtime: dict | None = None,
    health: str | None = None,
    actor: SystemActor = RUNNER_ACTOR,
) -> Deployment:
    """Record how a deployment under way ended (by its job, or a CD system's callback). A live
    one replaces the target's previous one, whose server is then stopped. A deployment no
    longer under way (stopped meanwhile) is left as it is, its new server stopped."""
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("target__project", "version__model")
            .get(pk=deployment_id)
        )
        if deployment.state != Deployment.State.DEPLOYING:
            if runtime and runtime.get("pid"):
                deployment.runtime = {**deployment.runtime, **runtime}
                _stop_later(deployment)
            return deployment
        now = timezone.now()
        deployment.state, deployment.endpoint = state, endpoint[:500]
        deployment.detail = detail[:10_000]
        deployment.runtime = runtime or deployment.runtime
        if health:
            deployment.health, deployment.probed_at = health, now
            deployment.probe_detail = detail[:500]
            if health == Deployment.Health.HEALTHY:
                deployment.healthy_at = now
        if state == Deployment.State.FAILED:
            deployment.finished_at = now
        replaced = []
        if state in Deployment.CURRENT:
            for previous in Deployment.objects.select_for_update().filter(
                pk__in=[d.pk for d in selectors.previous_of(deployment)]
            ):
                rolled = previous.pk == deployment.rollback_of_id
                previous.state = (
                    Deployment.State.ROLLED_BACK if rolled else Deployment.State.SUPERSEDED
                )
                previous.finished_at = now
                previous.save(update_fields=["state", "finished_at"])
                previous.target = deployment.target
                record(
                    actor=actor,
                    action=f"deployment.{previous.state}",
                    target=previous,
                    project=deployment.target.project,
                    payload={
                        "by": deployment.pk,
                        "before": {"state": "live"},
                        "after": {"state": previous.state},
                    },
                )
                _stop_later(previous)
                replaced.append(previous.pk)
            if replaced:
                deployment.replaced_id = replaced[0]
        deployment.save()
        record(
            actor=actor,
            action=f"deployment.{state}",
            target=deployment,
            project=deployment.target.project,
            payload={
                "before": {"state": "deploying"},
                "after": {"state": state},
                "endpoint": deployment.endpoint,
                "detail": detail[:500],
                "replaced": replaced,
            },
        )
    return deployment


def accept_deployment_callback(
    *, deployment_id: int, timestamp: str, signature: str, body: bytes
) -> Deployment:
    """A CD system says how a deployment it was asked for went. The HMAC-SHA256 of
    "timestamp.body" with the target's key is the authentication.

    Raises DeploymentNotFound, BadCallbackSignature, StaleCallback, MalformedCallback,
    DeploymentFinished; a refused callback changes nothing (not even the key's use).
    """
    deployment = (
        Deployment.objects.select_related("target__project").filter(pk=deployment_id).first()
    )
    if deployment is None or deployment.target.kind != Target.Kind.WEBHOOK:
        raise DeploymentNotFound
    target = deployment.target
    with transaction.atomic():
        key = use_secret(
            project=target.project,
            name=target.settings["hmac_secret"],
            user=f"deployment {deployment.pk} callback",
        )
        if not deploying.signature_matches(key, timestamp, body, signature):
            raise BadCallbackSignature
        if not deploying.fresh(timestamp):
            raise StaleCallback
        try:
            message = json.loads(body)
        except ValueError:
            raise MalformedCallback from None
        state = message.get("state") if isinstance(message, dict) else None
        endpoint = message.get("endpoint") or "" if isinstance(message, dict) else ""
        detail = message.get("detail") or "" if isinstance(message, dict) else ""
        if state not in ("live", "failed") or not isinstance(detail, str):
            raise MalformedCallback
        if state == "live" and (
            not isinstance(endpoint, str)
            or urllib.parse.urlparse(endpoint).scheme not in ("http", "https")
        ):
            raise MalformedCallback(fields={"endpoint": ["An http or https address."]})
        current = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if current.state != Deployment.State.DEPLOYING:
            raise DeploymentFinished(
                f"The deployment is {current.get_state_display().lower()} already."
            )
        return finish_deployment(
            deployment_id=deployment.pk,
            state=state,
            endpoint=endpoint if state == "live" else "",
            detail=detail,
            actor=SystemActor(f"webhook {target.name}"),
        )


def _probe(deployment_id: int, actor: SystemActor | AbstractBaseUser) -> Deployment | None:
    deployment = Deployment.objects.filter(pk=deployment_id).only("endpoint").first()
    if deployment is None or not deployment.endpoint:
        return deployment
    healthy, detail = deploying.get_health(deployment.endpoint)
    health = Deployment.Health.HEALTHY if healthy else Deployment.Health.UNHEALTHY
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("target__project", "version__model")
            .get(pk=deployment_id)
        )
        if deployment.state != Deployment.State.LIVE:
            return deployment
        before, now = deployment.health, timezone.now()
        deployment.health, deployment.probed_at, deployment.probe_detail = health, now, detail
        if healthy:
            deployment.healthy_at = now
        deployment.save(update_fields=["health", "probed_at", "probe_detail", "healthy_at"])
        changed = before != health
        if changed or not isinstance(actor, SystemActor):
            record(
                actor=actor,
                action="deployment.health_changed" if changed else "deployment.probed",
                target=deployment,
                project=deployment.target.project,
                payload={
                    "before": {"health": before},
                    "after": {"health": health},
                    "detail": detail,
                },
            )
        # A first healthy answer is what everyone expects: only news is told.
        first_good = before == Deployment.Health.UNKNOWN and healthy
        if changed and not first_good:
            _tell_about_health(deployment, now)
    return deployment


def _tell_about_health(deployment: Deployment, at: object) -> None:
    from django.urls import reverse

    from governance.access.models import Membership
    from governance.access.roles import Role
    from governance.notify.kinds import Kind
    from governance.notify.services import notify

    target = deployment.target
    people = [
        m.user
        for m in Membership.objects.filter(
            project=target.project, role__in=(Role.ML_ENGINEER, Role.PRODUCT_OWNER)
        ).select_related("user")
    ]
    notify(
        recipients=people,
        kind=Kind.DEPLOYMENT_HEALTH,
        subject=f"{deployment.version} on {target.name}: {deployment.health}",
        body=deployment.probe_detail,
        url=reverse("target", args=[target.project.slug, target.pk]),
        key=f"health-{deployment.pk}-{int(at.timestamp())}",
        project=target.project,
    )


def probe_deployments() -> int:
    """Ask every live deployment with an endpoint for its health; a change is audited and told
    to the project's ML engineers and product owners. Returns how many were asked. Reads the
    network: one request per deployment, a few seconds at most each."""
    ids = list(
        Deployment.objects.filter(state=Deployment.State.LIVE)
        .exclude(endpoint="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for pk in ids:
        _probe(pk, PROBER)
    return len(ids)


def check_target_health(*, actor: AbstractBaseUser, target: Target) -> Deployment | None:
    """Probe the target's live deployment now ("Check now"). Returns it, or None when nothing
    serves there. Raises NotAllowed."""
    require(actor, Capability.RUN_PIPELINES, target.project)
    live = Deployment.objects.filter(target=target, state=Deployment.State.LIVE).first()
    if live is None:
        return None
    return _probe(live.pk, actor)


# Retraining: a policy per registered model, and the runs it starts.

RETRAIN = "retrain"
MAX_BATCHES = 50  # the newest batches a run trains on, over the monitors of the model
SCHEDULE_TASK = "delivery.retrain_on_schedule"
POLICY_FIELDS = (
    "entry_point",
    "params",
    "seed",
    "cron",
    "on_new_data",
    "on_drift",
    "cooldown_minutes",
    "enabled",
    "open_approval_for_stage",
    "auto_deploy",
)


def save_retraining_policy(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel,
    entry_point: str,
    params: dict | None = None,
    seed: int = 0,
    cron: str = "",
    on_new_data: bool = False,
    on_drift: bool = False,
    cooldown_minutes: int = 60,
    enabled: bool = True,
    open_approval_for_stage: str = "",
    auto_deploy: bool = False,
) -> RetrainingPolicy:
    """Create or change the model's retraining policy, and its beat schedule with it.

    Raises NotAllowed (ML engineers and admins may), InvalidInput naming the field:
    InvalidPipeline for an entry point that is not a pipeline, InvalidCron for the schedule.
    """
    project = model.project
    if project is None:
        raise InvalidInput("The model belongs to no project: link it to one first.")
    require(actor, Capability.RUN_PIPELINES, project)
    entry_point = (entry_point or "").strip()
    pipelines.load(entry_point)
    cron = " ".join((cron or "").split())
    crontab = cron_syntax.parse(cron) if cron else None
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise InvalidInput(fields={"params": ["An object of parameters, such as {}."]})
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise InvalidInput(fields={"seed": ["A whole number from 0 to 4294967295."]})
    if isinstance(cooldown_minutes, bool) or not isinstance(cooldown_minutes, int):
        raise InvalidInput(fields={"cooldown_minutes": ["A whole number of minutes."]})
    if not 0 <= cooldown_minutes <= 60 * 24 * 365:
        raise InvalidInput(fields={"cooldown_minutes": ["From 0 to 525600 minutes."]})
    stage = (open_approval_for_stage or "").strip()
    if stage and not STAGE.match(stage):
        raise InvalidInput(
            fields={"open_approval_for_stage": ["A stage name such as staging, or blank."]}
        )
    after = {
        "entry_point": entry_point,
        "params": params,
        "seed": seed,
        "cron": cron,
        "on_new_data": bool(on_new_data),
        "on_drift": bool(on_drift),
        "cooldown_minutes": cooldown_minutes,
        "enabled": bool(enabled),
        "open_approval_for_stage": stage,
        "auto_deploy": bool(auto_deploy),
    }
    with transaction.atomic():
        policy = (
            RetrainingPolicy.objects.select_for_update(of=("self",))
            .select_related("schedule")
            .filter(model=model)
            .first()
        )
        before = {name: getattr(policy, name) for name in POLICY_FIELDS} if policy else None
        if policy is None:
            policy = RetrainingPolicy(model=model, project=project)
        for name, value in after.items():
            setattr(policy, name, value)
        policy.updated_by, policy.updated_at = actor, timezone.now()
        policy.save()
        _plan_schedule(policy, crontab)
        record(
            actor=actor,
            action="retraining.policy_saved",
            target=policy,
            project=project,
            payload={"model": model.name, "before": before, "after": after},
        )
    return policy


STAGE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def _plan_schedule(policy: RetrainingPolicy, crontab: dict | None) -> None:
    """Keep the policy's beat entry in step: created or updated while it has a schedule and is
    enabled, disabled otherwise (kept, so that its last run time stays visible)."""
    task = policy.schedule
    if crontab is None:
        if task is not None and task.enabled:
            task.enabled = False
            task.save(update_fields=["enabled"])
        return
    schedule, _ = CrontabSchedule.objects.get_or_create(**crontab, timezone="UTC")
    if task is None:
        task = PeriodicTask(name=f"Retrain {policy.model.name} (policy {policy.pk})"[:200])
    task.task, task.crontab, task.interval = SCHEDULE_TASK, schedule, None
    task.kwargs = json.dumps({"policy_id": policy.pk})
    task.enabled = policy.enabled
    task.save()
    if policy.schedule_id != task.pk:
        policy.schedule = task
        policy.save(update_fields=["schedule"])


def trigger_retraining(
    *,
    policy: RetrainingPolicy,
    trigger: str,
    cause: dict | None = None,
    actor: AbstractBaseUser | SystemActor | None = None,
) -> RetrainingRun | None:
    """Start a retraining run of the policy's model, on its newest data.

    Automatic triggers (schedule, new data, drift) run as Quorum and are skipped, with the
    reason on the audit trail, while the policy is disabled, a run is queued or running, or
    the cooldown since the last run has not passed; they return None then. A person's "run
    now" ignores the cooldown and raises RetrainingBusy instead of skipping.

    Raises NotAllowed, RetrainingBusy (people only), InvalidInput for an unknown trigger.
    """
    if trigger not in RetrainingRun.Trigger.values or trigger == RetrainingRun.Trigger.RERUN:
        raise InvalidInput(fields={"trigger": ["schedule, new_data, drift or manual."]})
    person = actor is not None and not isinstance(actor, SystemActor)
    if person:
        require(actor, Capability.RUN_PIPELINES, policy.project)
    actor = actor or SystemActor(f"retraining ({trigger})")
    cause = cause or {}
    with transaction.atomic():
        policy = (
            RetrainingPolicy.objects.select_for_update(of=("self",))
            .select_related("model", "project", "updated_by")
            .get(pk=policy.pk)
        )
        why = _why_not_now(policy, cooldown=not person)
        if why and person:
            raise RetrainingBusy(why)
        if why:
            record(
                actor=actor,
                action="retraining.skipped",
                target=policy,
                project=policy.project,
                payload={"model": policy.model.name, "trigger": trigger, "cause": cause,
                         "why": why},
            )  # fmt: skip
            return None
        return _start_run(
            actor=actor,
            policy=policy,
            trigger=trigger,
            cause=cause,
            entry_point=policy.entry_point,
            params=policy.params,
            seed=policy.seed,
            inputs=_inputs_of(policy),
        )


def rerun(*, actor: AbstractBaseUser, run: RetrainingRun) -> RetrainingRun:
    """Run a recorded run again with its entry point, parameters, seed and the same data files
    (by SHA-256), to see whether its metrics come out the same. A rerun registers nothing.

    Raises NotAllowed, RetrainingDataGone naming the missing tables, RetrainingBusy.
    """
    require(actor, Capability.RUN_PIPELINES, run.policy.project)
    gone = [
        f"{given['name']} ({digest[:12]})"
        for given in run.inputs
        for digest in (given["sha256"], given.get("labels_sha256") or "")
        if digest and not tables.path_of(Path(settings.DATA_DIR), digest).is_file()
    ]
    if gone:
        raise RetrainingDataGone(
            f"Quorum no longer keeps the data of run {run.pk}: {', '.join(gone)}. "
            "It cannot be rerun with the same inputs."
        )
    with transaction.atomic():
        policy = (
            RetrainingPolicy.objects.select_for_update(of=("self",))
            .select_related("model", "project")
            .get(pk=run.policy_id)
        )
        why = _why_not_now(policy, cooldown=False)
        if why:
            raise RetrainingBusy(why)
        return _start_run(
            actor=actor,
            policy=policy,
            trigger=RetrainingRun.Trigger.RERUN,
            cause={"rerun_of": run.pk},
            entry_point=run.entry_point,
            params=run.params,
            seed=run.seed,
            inputs=run.inputs,
            rerun_of=run,
        )


def _why_not_now(policy: RetrainingPolicy, *, cooldown: bool) -> str:
    """Why no run may start now ("" when one may); the caller holds the policy's lock."""
    if cooldown and not policy.enabled:
        return "the retraining policy is disabled"
    latest = (
        RetrainingRun.objects.filter(policy=policy)
        .select_related("job")
        .order_by("-created_at", "-id")
        .first()
    )
    if latest is None:
        return ""
    if latest.job.state in (Job.State.QUEUED, Job.State.RUNNING):
        return f"run {latest.pk} is {latest.job.state} (one run at a time per model)"
    if cooldown and policy.cooldown_minutes:
        ready = latest.created_at + timedelta(minutes=policy.cooldown_minutes)
        left = ready - timezone.now()
        if left > timedelta(0):
            minutes = max(1, math.ceil(left.total_seconds() / 60))
            return f"cooling down: {minutes} min left of {policy.cooldown_minutes} min"
    return ""


def _inputs_of(policy: RetrainingPolicy) -> list[dict]:
    """The kept batches of the monitors watching any version of the model (the newest
    MAX_BATCHES, given oldest first), with their labels where they arrived."""
    from governance.monitoring.models import Batch  # monitoring imports delivery's hooks

    batches = (
        Batch.objects.filter(monitor__version__model=policy.model, dataset__stored=True)
        .select_related("dataset", "labels", "monitor")
        .order_by("-received_at", "-id")[:MAX_BATCHES]
    )
    inputs = []
    for batch in reversed(list(batches)):
        labels = batch.labels if batch.labels_id and batch.labels.stored else None
        inputs.append(
            {
                "name": f"{batch.monitor.name} batch {batch.pk}",
                "batch": batch.pk,
                "sha256": batch.dataset.sha256,
                "labels_sha256": labels.sha256 if labels else "",
            }
        )
    return inputs


def _start_run(
    *,
    actor: AbstractBaseUser | SystemActor,
    policy: RetrainingPolicy,
    trigger: str,
    cause: dict,
    entry_point: str,
    params: dict,
    seed: int,
    inputs: list[dict],
    rerun_of: RetrainingRun | None = None,
) -> RetrainingRun:
    job = start_job(
        actor=actor,
        project=policy.project,
        kind=RETRAIN,
        params={"model": policy.model.name, "trigger": trigger},
        trigger=trigger,
    )
    run = RetrainingRun.objects.create(
        policy=policy,
        job=job,
        trigger=trigger,
        cause=cause,
        requested_by=None if isinstance(actor, SystemActor) else actor,
        entry_point=entry_point,
        params=params,
        seed=seed,
        inputs=inputs,
        rerun_of=rerun_of,
    )
    record(
        actor=actor,
        action="retraining.started",
        target=run,
        project=policy.project,
        payload={
            "model": policy.model.name,
            "trigger": trigger,
            "cause": cause,
            "job": job.pk,
            "entry_point": entry_point,
            "params": params,
            "seed": seed,
            "inputs": {given["name"]: given["sha256"] for given in inputs},
            "rerun_of": rerun_of.pk if rerun_of else None,
        },
    )
    return run


def _note_retraining(run_id: int, **fields: object) -> None:
    """What a running retraining learnt about itself (digests, versions, MLflow run): the
    job's own record, written by its worker only."""
    RetrainingRun.objects.filter(pk=run_id).update(**fields)


def _finish_retraining(run_id: int, *, metrics: dict, number: int | None) -> RetrainingRun:
    """After a run's steps succeeded: mirror the new version, open its approval request as
    the policy's author, or compare a rerun's metrics with its original's; all audited."""
    from governance.approvals import services as approvals  # approvals import delivery gates

    run = RetrainingRun.objects.select_related(
        "policy__model", "policy__project", "policy__updated_by", "rerun_of", "job"
    ).get(pk=run_id)
    policy, project = run.policy, run.policy.project
    actor = SystemActor("retraining")
    if run.rerun_of is not None:
        match, differences = _compare_runs(run.rerun_of, metrics, run.data_digests)
        with transaction.atomic():
            _note_retraining(run.pk, metrics=metrics, metrics_match=match, differences=differences)
            record(
                actor=actor,
                action="retraining.rerun_compared",
                target=run,
                project=project,
                payload={"rerun_of": run.rerun_of.pk, "metrics_match": match,
                         "differences": differences},
            )  # fmt: skip
        run.refresh_from_db()
        return run
    version = _mirrored(policy.model.name, number)
    with transaction.atomic():
        _note_retraining(
            run.pk, metrics=metrics, registered_number=number, registered_version=version
        )
        record(
            actor=actor,
            action="retraining.registered",
            target=run,
            project=project,
            payload={
                "model": policy.model.name,
                "version": number,
                "mlflow_run": run.mlflow_run_id,
                "metrics": metrics,
                "data_digests": run.data_digests,
                "code_version": run.code_version,
                "env_hash": run.env_hash,
                "auto_deploy": policy.auto_deploy,
            },
        )
    stage = policy.open_approval_for_stage
    if not stage:
        return RetrainingRun.objects.get(pk=run.pk)
    note, approval = "", None
    person = policy.updated_by
    if version is None:
        note = "The new version is not mirrored yet: no approval request was opened."
    elif person is None or not person.is_active:
        note = "The policy's author is gone: nobody to open the approval request in their name."
    else:
        try:
            approval = approvals.open_request(
                actor=person,
                version=version,
                stage=stage,
                note=f"Retrained by Quorum ({run.get_trigger_display().lower()}, run {run.pk}) "
                f"under the retraining policy {person.get_username()} set.",
            )
        except DomainError as error:
            note = f"No approval request opened: {error.message}"
    with transaction.atomic():
        _note_retraining(run.pk, approval=approval, approval_note=note)
        record(
            actor=actor,
            action="retraining.approval_opened" if approval else "retraining.approval_skipped",
            target=run,
            project=project,
            payload={"stage": stage, "approval": approval.pk if approval else None,
                     "in_the_name_of": person.get_username() if person else None, "why": note},
        )  # fmt: skip
    return RetrainingRun.objects.get(pk=run.pk)


SYNC_TRIES = 5


def _mirrored(name: str, number: int | None) -> ModelVersion | None:
    """The new version in Quorum's mirror, synced now; None when MLflow stays busy."""
    from governance.registry import services as registry  # registry is below delivery
    from governance.registry.errors import MlflowUnavailable, SyncBusy

    if number is None:
        return None
    for attempt in range(SYNC_TRIES):
        try:
            registry.sync_model(name=name, trigger="retraining")
            break
        except (SyncBusy, MlflowUnavailable) as error:
            log.warning("mirroring %s v%s: %s (try %s)", name, number, error, attempt + 1)
            time.sleep(2 * (attempt + 1))
    return ModelVersion.objects.filter(model__name=name, version=number).first()


TOLERANCE = 1e-9


def _compare_runs(original: RetrainingRun, metrics: dict, digests: dict) -> tuple[bool, dict]:
    """Whether a rerun's metrics equal its original's (to 1e-9), and what differed: metrics
    {name: [was, now]} and data {name: [was, now]}."""
    changed = {}
    for name in sorted(set(original.metrics) | set(metrics)):
        was, now = original.metrics.get(name), metrics.get(name)
        if (
            was is None
            or now is None
            or not math.isclose(was, now, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
        ):
            changed[name] = [was, now]
    data = {
        name: [original.data_digests.get(name), digests.get(name)]
        for name in sorted(set(original.data_digests) | set(digests))
        if original.data_digests.get(name) != digests.get(name)
    }
    differences = {}
    if changed:
        differences["metrics"] = changed
    if data:
        differences["data"] = data
    return not changed, differences
