"""Reads of jobs that pages and the API share."""

from django.db.models import Count, QuerySet, Sum

from governance.access.models import Project
from governance.delivery.errors import JobNotFound
from governance.delivery.models import Job, JobLine, Secret
from governance.monitoring.models import Batch, Monitor
from governance.registry.models import ModelVersion

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
