"""Reads of jobs that pages and the API share."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, Count, Prefetch, QuerySet, Sum, When

from governance.access.errors import ProjectNotFound
from governance.access.models import Project
from governance.access.permissions import require
from governance.access.roles import Capability
from governance.delivery.errors import (
    DeploymentNotFound,
    JobNotFound,
    RetrainingRunNotFound,
    TargetNotFound,
)
from governance.delivery.models import (
    Deployment,
    Job,
    JobLine,
    RetrainingPolicy,
    RetrainingRun,
    Secret,
    Target,
)
from governance.monitoring.models import Batch, Monitor
from governance.registry.errors import ModelNotFound
from governance.registry.models import ModelVersion, RegisteredModel

TAIL = 200


def jobs_of(project: Project) -> QuerySet[Job]:
    return Job.objects.filter(project=project).select_related("version__model", "triggered_by")


def job_of(project: Project, pk: int) -> Job:
    """Raises JobNotFound, also for a job of another project."""
    job = jobs_of(project).filter(pk=pk).first()
    if job is None:
        raise JobNotFound
    return job


def tail_of(job: Job, lines: int = TAIL) -> list[JobLine]:
    """The last lines of the job's log, oldest first."""
    return list(reversed(JobLine.objects.filter(job=job).order_by("-number")[:lines]))


COST = {
    "jobs": Count("id"),
    "cpu_seconds": Sum("cpu_seconds"),
    "wall_seconds": Sum("wall_seconds"),
    "peak_memory_bytes": Sum("peak_memory_bytes"),
}


def costs_of(project: Project) -> dict:
    """What the project's jobs cost: in all, and per registered model (largest first)."""
    jobs = Job.objects.filter(project=project)
    per_model = list(
        jobs.filter(version__isnull=False)
        .values("version__model__name")
        .annotate(**COST)
        .order_by("-cpu_seconds", "version__model__name")
    )
    return {"total": jobs.aggregate(**COST), "models": per_model}


def secrets_of(project: Project) -> QuerySet[Secret]:
    """The project's secrets without their values (not even encrypted)."""
    return Secret.objects.filter(project=project).select_related("set_by").defer("sealed")


def latest_package_job_of(version: ModelVersion) -> Job | None:
    """The version's newest package job, whatever its state."""
    return (
        Job.objects.filter(version=version, kind="package").order_by("-created_at", "-id").first()
    )


def latest_profile_of(version: ModelVersion) -> Job | None:
    """The version's newest profile job that succeeded: its result holds the measurements and
    the recommended resources."""
    return (
        Job.objects.filter(version=version, kind="profile", state=Job.State.SUCCEEDED)
        .order_by("-created_at", "-id")
        .first()
    )


def latest_profile_job_of(version: ModelVersion) -> Job | None:
    """The version's newest profile job, whatever its state."""
    return (
        Job.objects.filter(version=version, kind="profile").order_by("-created_at", "-id").first()
    )


def profile_data_choices(version: ModelVersion, batches: int = 20) -> list[tuple[str, str]]:
    """What a profile of the version may validate on, as (value, label) for a form: the
    reference of each monitor on its registered model that measures model quality, and the
    newest labelled batches of those monitors (`batch:<id>`, `monitor:<id>`). Two queries."""
    monitors = list(
        Monitor.objects.filter(
            project_id=version.model.project_id, version__model_id=version.model_id
        )
        .exclude(task="")
        .exclude(label_column="")
        .select_related("reference")
        .order_by("name")
    )
    labelled = (
        Batch.objects.filter(monitor__in=[m.pk for m in monitors], labels__isnull=False)
        .select_related("monitor")
        .order_by("-received_at", "-id")[:batches]
    )
    choices = [(f"batch:{b.pk}", f"batch {b.pk} of {b.monitor.name}, {b.rows:,} rows, "
                f"received {b.received_at:%d %b %Y}") for b in labelled]  # fmt: skip
    choices += [(f"monitor:{m.pk}", f"the reference of {m.name} ({m.reference.name})")
                for m in monitors]  # fmt: skip
    return choices


def recommendation_of(version: ModelVersion) -> dict | None:
    """The CPU and memory the version's newest profile recommends, in Kubernetes quantities:
    {"cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi",
    "memory_limit": "512Mi", ...}; None until a profile job succeeded."""
    job = latest_profile_of(version)
    return (job.result or {}).get("recommendation") if job else None


def jobs_in(project_ids: list[int], states: tuple[str, ...], limit: int = 5) -> list[Job]:
    """The newest jobs of the projects in `states`."""
    return list(
        Job.objects.filter(project_id__in=project_ids, state__in=states)
        .select_related("project", "version__model")
        .order_by("-created_at", "-id")[:limit]
    )


# Deployment targets and their deployments.

HISTORY = 50


def _deployments() -> QuerySet[Deployment]:
    return Deployment.objects.select_related("version__model", "deployed_by", "job")


def targets_of(project: Project) -> list[Target]:
    """The project's targets, each with `current` (its live or ready deployment, or None) and
    `deploying` (one under way, or None). Three queries whatever the count."""
    targets = list(
        Target.objects.filter(project=project).prefetch_related(
            Prefetch(
                "deployments",
                queryset=_deployments().filter(
                    state__in=(*Deployment.CURRENT, Deployment.State.DEPLOYING)
                ),
                to_attr="active",
            )
        )
    )
    for target in targets:
        target.current = next((d for d in target.active if d.state in Deployment.CURRENT), None)
        target.deploying = next(
            (d for d in target.active if d.state == Deployment.State.DEPLOYING), None
        )
    return targets


def target_of(project: Project, pk: int) -> Target:
    """Raises TargetNotFound, also for a target of another project."""
    target = Target.objects.filter(project=project, pk=pk).select_related("project").first()
    if target is None:
        raise TargetNotFound
    return target


def history_of(target: Target, limit: int = HISTORY) -> list[Deployment]:
    """The target's deployments, newest first."""
    return list(_deployments().filter(target=target)[:limit])


def current_of(target: Target) -> Deployment | None:
    """The deployment that serves on the target (or whose manifests are ready)."""
    return _deployments().filter(target=target, state__in=Deployment.CURRENT).first()


def previous_of(deployment: Deployment) -> list[Deployment]:
    """The target's other deployments in service: the ones `deployment` replaces."""
    return list(
        Deployment.objects.filter(target_id=deployment.target_id, state__in=Deployment.CURRENT)
        .exclude(pk=deployment.pk)
        .order_by("-created_at", "-id")
    )


def deployment_of(target: Target, pk: int) -> Deployment:
    """Raises DeploymentNotFound, also for a deployment of another target."""
    found = _deployments().filter(target=target, pk=pk).select_related("target__project").first()
    if found is None:
        raise DeploymentNotFound
    return found


def deployable_versions(target: Target) -> list[ModelVersion]:
    """Versions of the target's project with an approved request for its stage."""
    from governance.approvals.models import ApprovalRequest

    return list(
        ModelVersion.objects.filter(
            model__project_id=target.project_id,
            approvals__stage=target.stage,
            approvals__state=ApprovalRequest.State.APPROVED,
        )
        .select_related("model")
        .distinct()
        .order_by("model__name", "-version")
    )


def deploy_targets_for(version: ModelVersion) -> list[Target]:
    """The targets of the version's project whose stage the version is approved for."""
    from governance.approvals.models import ApprovalRequest

    stages = ApprovalRequest.objects.filter(
        version=version, state=ApprovalRequest.State.APPROVED
    ).values("stage")
    return list(Target.objects.filter(project_id=version.model.project_id, stage__in=stages))


RUNS_SHOWN = 20


# What the homes' lists show of a deployment and of a retraining run.
DEPLOYMENT_SHOWN = (
    "state", "health", "probed_at", "target__name", "target__project__slug",
    "target__project__name", "version__version", "version__model__name",
)  # fmt: skip
RETRAINING_SHOWN = (
    "trigger", "created_at", "job__state", "job__cancel_requested", "policy__model__name",
    "policy__project__slug", "registered_version__version",
)  # fmt: skip


def deployments_in(project_ids: list[int], limit: int = 8) -> tuple[int, list[Deployment]]:
    """The deployments serving or under way in the projects, and how many there are: the
    unhealthy first, then the ones deploying, then by target. Two queries."""
    serving = Deployment.objects.filter(
        target__project_id__in=project_ids,
        state__in=(*Deployment.CURRENT, Deployment.State.DEPLOYING),
    )
    first = Case(
        When(health=Deployment.Health.UNHEALTHY, then=0),
        When(state=Deployment.State.DEPLOYING, then=1),
        default=2,
    )
    shown = (
        serving.select_related("target__project", "version__model")
        .only(*DEPLOYMENT_SHOWN)
        .annotate(first=first)
        .order_by("first", "target__project__name", "target__name", "-created_at")[:limit]
    )
    return serving.count(), list(shown)


def retraining_runs_in(project_ids: list[int], limit: int = 5) -> list[RetrainingRun]:
    """The projects' newest retraining runs with their jobs' states, their models' names and
    the versions they registered: only what a list of them shows."""
    return list(
        RetrainingRun.objects.filter(policy__project_id__in=project_ids)
        .select_related("job", "policy__model", "policy__project", "registered_version")
        .only(*RETRAINING_SHOWN)
        .order_by("-created_at", "-id")[:limit]
    )


def retraining_of(model: RegisteredModel) -> RetrainingPolicy | None:
    """The model's retraining policy with its schedule, or None."""
    return (
        RetrainingPolicy.objects.select_related("schedule__crontab", "updated_by")
        .filter(model=model)
        .first()
    )


def retraining_runs_query(model: RegisteredModel) -> QuerySet[RetrainingRun]:
    """The model's retraining runs, newest first, with their jobs, versions and approvals."""
    return (
        RetrainingRun.objects.filter(policy__model=model)
        .select_related("job", "registered_version", "approval", "requested_by")
        .order_by("-created_at", "-id")
    )


def retraining_runs_of(model: RegisteredModel, limit: int = RUNS_SHOWN) -> list[RetrainingRun]:
    """The model's newest retraining runs, for its page."""
    return list(retraining_runs_query(model)[:limit])


def retraining_run_of(model: RegisteredModel, pk: int) -> RetrainingRun:
    """Raises RetrainingRunNotFound, also for a run of another model."""
    run = (
        RetrainingRun.objects.filter(policy__model=model, pk=pk)
        .select_related("policy__project", "job")
        .first()
    )
    if run is None:
        raise RetrainingRunNotFound
    return run


def model_for(user: AbstractBaseUser, key: str) -> tuple[RegisteredModel, frozenset[str]]:
    """A registered model by id or by name, and what `user` may do in its project.
    Raises ModelNotFound, also for a model of a project the user may not see."""
    models = RegisteredModel.objects.select_related("project").filter(project__isnull=False)
    model = models.filter(pk=int(key)).first() if key.isdigit() else None
    model = model or models.filter(name=key).first()
    if model is None:
        raise ModelNotFound
    try:
        return model, require(user, Capability.VIEW_PROJECT, model.project)
    except ProjectNotFound:
        raise ModelNotFound from None
