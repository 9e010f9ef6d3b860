"""Reads of monitors, checks and alerts that pages and the API share."""

from django.db.models import Count, Min, Q, QuerySet

from governance.access.models import Project
from governance.monitoring.errors import MonitorNotFound
from governance.monitoring.models import Batch, DriftAlert, DriftCheck, FeatureDrift, Monitor
from governance.registry.models import DatasetVersion

UNRESOLVED = ~Q(state=DriftAlert.State.RESOLVED)


def monitors_of(project: Project) -> QuerySet[Monitor]:
    """The project's monitors, each with `open_alerts` and `batch_count`."""
    return (
        Monitor.objects.filter(project=project)
        .select_related("reference", "version__model")
        .annotate(
            open_alerts=Count("alerts", filter=~Q(alerts__state="resolved"), distinct=True),
            batch_count=Count("batches", distinct=True),
        )
        .order_by("name")
    )


def monitor_of(project: Project, pk: int) -> Monitor:
    """Raises MonitorNotFound, also for a monitor of another project."""
    monitor = monitors_of(project).filter(pk=pk).first()
    if monitor is None:
        raise MonitorNotFound
    return monitor


def checks_of(monitor: Monitor, limit: int = 20) -> list[DriftCheck]:
    return list(
        DriftCheck.objects.filter(monitor=monitor)
        .select_related("batch")
        .defer("result")
        .order_by("-created_at", "-id")[:limit]
    )


def alerts_of(monitor: Monitor, *, unresolved_only: bool = False) -> QuerySet[DriftAlert]:
    alerts = DriftAlert.objects.filter(monitor=monitor).select_related(
        "acknowledged_by", "resolved_by"
    )
    return alerts.filter(UNRESOLVED) if unresolved_only else alerts


def features_of(check: DriftCheck | None) -> list[FeatureDrift]:
    if check is None:
        return []
    return list(FeatureDrift.objects.filter(drift_check=check).order_by("-drifted", "feature"))


def kept_tables(project: Project) -> QuerySet[DatasetVersion]:
    """Tables of the project Quorum keeps: what a monitor may take as its reference."""
    return DatasetVersion.objects.filter(project=project, stored=True).order_by("-created_at")


def batches_of(monitor: Monitor) -> QuerySet[Batch]:
    """The monitor's batches, each with `check_id`, the check its arrival queued."""
    return (
        Batch.objects.filter(monitor=monitor)
        .select_related("dataset", "received_by", "monitor__project")
        .annotate(check_id=Min("checks__id", filter=Q(checks__trigger="batch")))
    )


def check_history_of(monitor: Monitor) -> QuerySet[DriftCheck]:
    """Every check of the monitor, without the figures (`result`): summaries for lists."""
    return DriftCheck.objects.filter(monitor=monitor).defer("result")
