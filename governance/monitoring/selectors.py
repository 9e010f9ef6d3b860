"""Reads of monitors, checks and alerts that pages and the API share."""

import pandas as pd
from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.db.models.fields.json import KeyTransform

from governance.access.models import Project
from governance.monitoring import quality
from governance.monitoring.errors import BatchNotFound, MonitorNotFound
from governance.monitoring.models import Batch, DriftAlert, DriftCheck, FeatureDrift, Monitor
from governance.registry import tables
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


def feature_history(monitor: Monitor, feature: str, limit: int = 60) -> list[FeatureDrift]:
    """The feature's figures in the monitor's last `limit` finished checks, oldest first."""
    recent = FeatureDrift.objects.filter(monitor=monitor, feature=feature).order_by("-at", "-id")
    return list(reversed(recent[:limit]))


def feature_result(check: DriftCheck, feature: str) -> dict | None:
    """Every figure of one feature in a check, bins and categories included, read from the
    check's JSON without loading the other features' into Python."""
    figures = KeyTransform(feature, KeyTransform("features", "result"))
    return DriftCheck.objects.filter(pk=check.pk).values_list(figures, flat=True).first()


def batches_of(monitor: Monitor, limit: int = 50) -> list[Batch]:
    """The monitor's latest batches, newest first, with their quality but not the full
    data-quality report (read one batch for that)."""
    return list(
        Batch.objects.filter(monitor=monitor)
        .select_related("received_by")
        .defer("quality")
        .order_by("-received_at", "-id")[:limit]
    )


def batch_of(monitor: Monitor, batch_id: int) -> Batch:
    """One batch of the monitor, with its data and labels. Raises BatchNotFound, also for a
    batch of another monitor."""
    batch = (
        Batch.objects.filter(monitor=monitor, pk=batch_id)
        .select_related("dataset", "labels", "received_by")
        .first()
    )
    if batch is None:
        raise BatchNotFound
    batch.monitor = monitor
    return batch


def batch_in(projects: QuerySet[Project], batch_id: int) -> Batch:
    """A batch of a monitor in one of `projects`, with its monitor and project. Raises
    BatchNotFound otherwise."""
    batch = (
        Batch.objects.filter(pk=batch_id, monitor__project__in=projects)
        .select_related("monitor__project", "monitor__reference", "dataset", "labels")
        .first()
    )
    if batch is None:
        raise BatchNotFound("No such batch.")
    return batch


def batches_with_checks(monitor: Monitor) -> QuerySet[Batch]:
    """The monitor's batches, each with `check_id`, the check its arrival queued."""
    return (
        Batch.objects.filter(monitor=monitor)
        .select_related("dataset", "received_by", "monitor__project")
        .annotate(check_id=Min("checks__id", filter=Q(checks__trigger="batch")))
    )


def check_history_of(monitor: Monitor) -> QuerySet[DriftCheck]:
    """Every check of the monitor, without the figures (`result`): summaries for lists."""
    return DriftCheck.objects.filter(monitor=monitor).defer("result")


def labels_in_batch_order(
    monitor: Monitor, rows: pd.DataFrame, labels: DatasetVersion
) -> pd.Series:
    """A batch's kept labels as a column of its `rows`: joined by the monitor's id column when
    it has one (rows without a label are missing), else in order. Reads the labels' Parquet."""
    table = tables.load(settings.DATA_DIR, labels.sha256).to_pandas()
    if not monitor.id_column:
        return table[monitor.label_column]
    truth = table[monitor.label_column].set_axis(quality.as_classes(table[monitor.id_column]))
    return truth.reindex(quality.as_classes(rows[monitor.id_column])).reset_index(drop=True)


def open_alerts_in(project_ids: list[int], limit: int = 5) -> tuple[int, list[DriftAlert]]:
    """How many drift alerts are unresolved in the projects, and the newest of them."""
    alerts = DriftAlert.objects.filter(UNRESOLVED, monitor__project_id__in=project_ids)
    newest = list(alerts.select_related("monitor__project").order_by("-opened_at", "-pk")[:limit])
    return alerts.count(), newest


def open_alerts_by_model(model_ids: list[int]) -> dict[int, int]:
    """Unresolved drift alerts per registered model, over the monitors of its versions."""
    return dict(
        DriftAlert.objects.filter(UNRESOLVED, monitor__version__model_id__in=model_ids)
        .values("monitor__version__model_id")
        .annotate(count=Count("pk"))
        .values_list("monitor__version__model_id", "count")
    )


def models_with_open_alerts() -> QuerySet[DriftAlert]:
    """The ids of registered models with an unresolved drift alert on a monitor of one of
    their versions: a query to filter or sort by, not run on its own."""
    return DriftAlert.objects.filter(UNRESOLVED).values("monitor__version__model_id")
