"""Reads of jobs that pages and the API share."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet, Sum

from governance.access.errors import ProjectNotFound
from governance.access.models import Project
from governance.access.permissions import require
from governance.access.roles import Capability
from governance.delivery.errors import JobNotFound, RetrainingRunNotFound
from governance.delivery.models import Job, JobLine, RetrainingPolicy, RetrainingRun, Secret
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


def recommendation_of(version: ModelVersion) -> dict | None:
    """The CPU and memory the version's newest profile recommends, in Kubernetes quantities:
    {"cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi",
    "memory_limit": "512Mi", ...}; None until a profile job succeeded."""
    job = latest_profile_of(version)
    return (job.result or {}).get("recommendation") if job else None


RUNS_SHOWN = 20


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
