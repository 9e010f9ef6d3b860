"""Every change to monitors: creating one, receiving batches, running drift checks, and the
life of drift alerts. The statistics are `stats.py`'s; this module keeps and acts on them."""

import hashlib
import http.client
import io
import math
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import pyarrow as pa
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from governance.access.models import Project
from governance.access.permissions import require
from governance.access.roles import Capability
from governance.audit.services import SystemActor, record
from governance.errors import DomainError, InvalidInput
from governance.monitoring import hooks, quality, selectors, stats
from governance.monitoring.errors import (
    AlertNotOpen,
    CommentRequired,
    EmptyData,
    InvalidSource,
    LabelsMismatch,
    MonitorNameTaken,
    NoBatchesInWindow,
    NoModelQuality,
    NotATable,
    PredictionFailed,
)
from governance.monitoring.models import (
    Batch,
    DriftAlert,
    DriftCheck,
    FeatureDrift,
    Monitor,
    QualityState,
)
from governance.notify.kinds import Kind
from governance.notify.services import notify
from governance.plain import json_safe
from governance.registry import services as registry
from governance.registry import tables
from governance.registry.errors import (
    DatasetTooLarge,
    DatasetUnreachable,
    MlflowUnavailable,
    SchemaMismatch,
)
from governance.registry.models import DatasetVersion, ModelVersion
from governance.registry.scoring import MissingInputs, Scorer, Unusable

MONITORING = SystemActor("monitoring")
MAX_BINS = 100
MAX_COMMENT = 5000


def create_monitor(
    *,
    actor: AbstractBaseUser,
    project: Project,
    name: str,
    reference: DatasetVersion,
    version: ModelVersion | None = None,
    categorical: list[str] | None = None,
    thresholds: dict | None = None,
    bins: int = 10,
    task: str = "",
    label_column: str = "",
    prediction_column: str = "",
    positive_label: str = "",
    id_column: str = "",
) -> Monitor:
    """Watch the data a model sees against a reference table of the project.

    Raises NotAllowed, NotATable, InvalidInput (naming the field), MonitorNameTaken.
    """
    require(actor, Capability.MANAGE_MONITORING, project)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput(fields={"name": ["Give the monitor a name of 1 to 200 characters."]})
    if reference.project_id != project.pk or not reference.stored:
        raise NotATable(
            "The reference must be a table kept in this project: keep one on the Data page.",
            fields={"reference": ["not a kept table of this project"]},
        )
    if version is not None and version.model.project_id != project.pk:
        raise InvalidInput(fields={"version": ["The model version is not in this project."]})
    columns = {c["name"] for c in reference.schema.get("columns", [])}
    categorical = list(dict.fromkeys(categorical or []))
    unknown = [c for c in categorical if c not in columns]
    if unknown:
        raise InvalidInput(
            f"The reference has no column {unknown[0]!r}.",
            fields={"categorical": [f"unknown column {c!r}" for c in unknown]},
        )
    stats.Thresholds.from_mapping(thresholds or {})  # raises InvalidThresholds, naming keys
    quality.thresholds_of(thresholds)  # and the `quality` key's
    settings_of_quality = _quality_settings(
        reference=reference,
        version=version,
        task=task,
        label_column=label_column,
        prediction_column=prediction_column,
        positive_label=positive_label,
        id_column=id_column,
    )
    if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= MAX_BINS:
        raise InvalidInput(fields={"bins": [f"A whole number from 2 to {MAX_BINS}."]})
    try:
        with transaction.atomic():
            monitor = Monitor.objects.create(
                project=project,
                name=name,
                version=version,
                reference=reference,
                categorical=categorical,
                thresholds=thresholds or {},
                bins=bins,
                created_by=actor,
                **settings_of_quality,
            )
            monitor.subscribers.add(actor)
            record(
                actor=actor,
                action="monitor.created",
                target=monitor,
                project=project,
                payload={
                    "after": {
                        "name": name,
                        "reference": str(reference),
                        "version": str(version) if version else None,
                        "thresholds": thresholds or {},
                        **{k: v for k, v in settings_of_quality.items() if v},
                    }
                },
            )
    except IntegrityError:
        raise MonitorNameTaken(fields={"name": [MonitorNameTaken.default_message]}) from None
    return monitor


def add_batch(
    *,
    actor: AbstractBaseUser,
    monitor: Monitor,
    content: BinaryIO,
    filename: str,
    source: str = Batch.Source.UPLOAD,
) -> Batch:
    """Receive a batch of current data (CSV or Parquet) and queue its drift check. The same
    data twice is the same batch, checked once; `batch.is_new` says which it was.

    Raises NotAllowed, DatasetTooLarge (413), UnreadableTable and SchemaMismatch naming the
    line or column; nothing is kept when one is raised.
    """
    require(actor, Capability.MANAGE_MONITORING, monitor.project)
    return _receive_batch(
        actor=actor, monitor=monitor, content=content, filename=filename, source=source
    )


def _receive_batch(
    *,
    actor: AbstractBaseUser | SystemActor,
    monitor: Monitor,
    content: BinaryIO,
    filename: str,
    source: str,
) -> Batch:
    """add_batch once the actor may: also the poller's door, as Quorum itself. Sets
    `batch.is_new`, False when the same data was received before."""
    project = monitor.project
    if source not in Batch.Source.values:
        raise InvalidInput(fields={"source": [f"One of {', '.join(Batch.Source.values)}."]})
    table = tables.read(content, filename, limit=settings.QUORUM_MAX_DATASET_BYTES)
    tables.check_against(table, _batch_schema(monitor, table))
    with transaction.atomic():
        dataset = registry._keep_table(
            actor=actor,
            project=project,
            name=f"{monitor.name} batch",
            table=table,
            source=filename,
        )
        batch, created = Batch.objects.get_or_create(
            monitor=monitor,
            dataset=dataset,
            defaults={"source": source, "rows": table.num_rows, "received_by": _person(actor)},
        )
        batch.is_new = created
        if created:
            check = DriftCheck.objects.create(monitor=monitor, batch=batch, trigger="batch")
            record(
                actor=actor,
                action="monitor.batch_received",
                target=monitor,
                project=project,
                payload={
                    "batch": batch.pk,
                    "rows": batch.rows,
                    "sha256": dataset.sha256,
                    "source": source,
                },
            )
            check_id, batch_id = check.pk, batch.pk
            transaction.on_commit(lambda: _enqueue_check(check_id))
            transaction.on_commit(lambda: _enqueue_data_quality(batch_id))
            for callback in hooks.BATCH_RECEIVED:
                callback(batch)
    return batch


def _enqueue_check(check_id: int) -> None:
    from governance.monitoring.tasks import run_drift_check  # the task imports this module

    run_drift_check.delay(check_id=check_id)


def run_drift_check(*, check_id: int) -> DriftCheck:
    """Compare the check's batch with the monitor's reference, keep every figure, and open or
    update an alert per drifted feature. Idempotent: a finished check is returned as it is.
    Bad data fails the check with the reason; the statistics themselves are stats.py's."""
    with transaction.atomic():
        check = DriftCheck.objects.select_for_update().get(pk=check_id)
        if check.state in (DriftCheck.State.DONE, DriftCheck.State.FAILED):
            return check
        check.state, check.started_at = DriftCheck.State.RUNNING, timezone.now()
        check.save(update_fields=["state", "started_at"])
    monitor = Monitor.objects.select_related("reference", "project").get(pk=check.monitor_id)
    try:
        reference, current = _compared(
            monitor, tables.load(settings.DATA_DIR, monitor.reference.sha256), _current_of(check)
        )
        result = stats.drift(
            reference, current, categorical=_categorical(monitor, reference), bins=monitor.bins
        )
        decision = stats.decide(result, monitor.thresholds)
    except (DomainError, FileNotFoundError) as error:
        return _fail(check, monitor, getattr(error, "message", None) or str(error))
    return _keep(check, monitor, result, decision)


def _current_of(check: DriftCheck) -> pa.Table:
    """The check's batch, or the batches of its window concatenated in the order received."""
    if check.batch_id is not None:
        return tables.load(settings.DATA_DIR, check.batch.dataset.sha256)
    batches = (
        Batch.objects.filter(pk__in=check.window_batches)
        .select_related("dataset")
        .order_by("received_at", "pk")
    )
    parts = [tables.load(settings.DATA_DIR, batch.dataset.sha256) for batch in batches]
    if not parts:
        raise EmptyData("The batches of this check's window are gone.")
    try:
        # Batches passed the reference's schema, but their columns may come in another order
        # or as whole numbers in one and decimals in another: unify by name.
        return pa.concat_tables(parts, promote_options="permissive")
    except pa.ArrowException as error:
        raise SchemaMismatch(f"The window's batches cannot be joined: {error}") from None


def _fail(check: DriftCheck, monitor: Monitor, reason: str) -> DriftCheck:
    with transaction.atomic():
        check.state, check.error = DriftCheck.State.FAILED, reason[:2000]
        check.finished_at = timezone.now()
        check.save(update_fields=["state", "error", "finished_at"])
        record(
            actor=MONITORING,
            action="monitor.check_failed",
            target=monitor,
            project=monitor.project,
            payload={"check": check.pk, "reason": reason[:500]},
        )
    return check


def _keep(
    check: DriftCheck, monitor: Monitor, result: stats.DriftResult, decision: stats.DriftDecision
) -> DriftCheck:
    now = timezone.now()
    with transaction.atomic():
        # Two deliveries of the same check may both compute it: the first to finish keeps it.
        finished = DriftCheck.objects.select_for_update().get(pk=check.pk)
        if finished.state in (DriftCheck.State.DONE, DriftCheck.State.FAILED):
            return finished
        check.state, check.finished_at = DriftCheck.State.DONE, now
        check.drifted, check.drifted_share = decision.drifted, decision.drifted_share
        check.result, check.decision = json_safe(result.as_dict()), json_safe(decision.as_dict())
        check.save()
        FeatureDrift.objects.bulk_create(
            [
                FeatureDrift(
                    drift_check=check,
                    monitor=monitor,
                    feature=name,
                    kind=feature.kind,
                    psi=_finite(feature.psi),
                    p_value=_finite(feature.p_value),
                    statistic=_finite(
                        feature.ks_statistic if feature.kind == stats.NUMERIC
                        else feature.cramers_v
                    ),
                    js_distance=_finite(feature.js_distance),
                    drifted=decision.features[name].drifted,
                    reasons=decision.features[name].reasons,
                    at=now,
                )
                for name, feature in result.features.items()
            ]
        )  # fmt: skip
        opened = _alert(check, monitor, decision)
        record(
            actor=MONITORING,
            action="monitor.checked",
            target=monitor,
            project=monitor.project,
            payload={
                "check": check.pk,
                "drifted": decision.drifted,
                "drifted_features": sorted(n for n, f in decision.features.items() if f.drifted),
                "alerts_opened": [a.feature for a in opened],
            },
        )
        if opened:
            notify(
                recipients=list(monitor.subscribers.filter(is_active=True)),
                kind=Kind.DRIFT_ALERT,
                subject=f"Drift in {monitor.name}: {', '.join(a.feature for a in opened)}",
                body="\n".join(f"{a.feature}: {'; '.join(a.reasons)}" for a in opened),
                url=reverse("monitor", args=[monitor.project.slug, monitor.pk]),
                key=f"drift-{check.pk}",
                project=monitor.project,
            )
    return check


def _alert(check: DriftCheck, monitor: Monitor, decision: stats.DriftDecision) -> list[DriftAlert]:
    """Open an alert per newly drifted feature; a feature already alerting is seen again."""
    return _open_alerts(
        check, monitor, {name: f.reasons for name, f in decision.features.items() if f.drifted}
    )


def _open_alerts(
    check: DriftCheck, monitor: Monitor, drifted: dict[str, list[str]]
) -> list[DriftAlert]:
    """One alert per feature (or `quality:<metric>`) until it is resolved: a new one for each
    name not alerting yet; one alerting already is seen again, with the new reasons."""
    if not drifted:
        return []
    standing = {
        a.feature: a
        for a in DriftAlert.objects.select_for_update()
        .filter(monitor=monitor, feature__in=list(drifted))
        .exclude(state=DriftAlert.State.RESOLVED)
    }
    opened = []
    for name, reasons in drifted.items():
        if name in standing:
            alert = standing[name]
            alert.last_seen, alert.reasons = check, reasons
            alert.save(update_fields=["last_seen", "reasons"])
            continue
        alert = DriftAlert.objects.create(
            monitor=monitor, feature=name, opened_by=check, last_seen=check, reasons=reasons
        )
        record(
            actor=MONITORING,
            action="drift_alert.opened",
            target=alert,
            project=monitor.project,
            payload={"monitor": monitor.name, "feature": name, "reasons": reasons},
        )
        for callback in hooks.ALERT_OPENED:
            callback(alert)
        opened.append(alert)
    return opened


def acknowledge_alert(*, actor: AbstractBaseUser, alert: DriftAlert, comment: str) -> DriftAlert:
    """Say the alert is seen and being looked at. Raises NotAllowed, CommentRequired,
    AlertNotOpen."""
    return _move(actor, alert, comment, DriftAlert.State.ACKNOWLEDGED)


def resolve_alert(*, actor: AbstractBaseUser, alert: DriftAlert, comment: str) -> DriftAlert:
    """Close the alert with what was found or done; a drift seen again opens a new one.
    Raises NotAllowed, CommentRequired, AlertNotOpen."""
    return _move(actor, alert, comment, DriftAlert.State.RESOLVED)


def _move(actor: AbstractBaseUser, alert: DriftAlert, comment: str, state: str) -> DriftAlert:
    project = alert.monitor.project
    require(actor, Capability.HANDLE_ALERTS, project)
    comment = (comment or "").strip()
    if not comment:
        raise CommentRequired(fields={"comment": [CommentRequired.default_message]})
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(fields={"comment": [f"At most {MAX_COMMENT} characters."]})
    allowed_from = {
        DriftAlert.State.ACKNOWLEDGED: {DriftAlert.State.OPEN},
        DriftAlert.State.RESOLVED: {DriftAlert.State.OPEN, DriftAlert.State.ACKNOWLEDGED},
    }[state]
    with transaction.atomic():
        alert = DriftAlert.objects.select_for_update().get(pk=alert.pk)
        if alert.state not in allowed_from:
            raise AlertNotOpen(f"This alert is {alert.get_state_display().lower()} already.")
        before = alert.state
        now = timezone.now()
        if state == DriftAlert.State.ACKNOWLEDGED:
            alert.acknowledged_by, alert.acknowledged_at = actor, now
            alert.acknowledge_comment = comment
        else:
            alert.resolved_by, alert.resolved_at, alert.resolve_comment = actor, now, comment
        alert.state = state
        alert.save()
        record(
            actor=actor,
            action=f"drift_alert.{state}",
            target=alert,
            project=project,
            payload={
                "before": {"state": before},
                "after": {"state": state},
                "comment": comment,
            },
        )
    return alert


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def watch_monitor(*, actor: AbstractBaseUser, monitor: Monitor, on: bool = True) -> bool:
    """Be told (or no longer) of the monitor's drift alerts. Returns whether watching."""
    require(actor, Capability.VIEW_PROJECT, monitor.project)
    if on:
        monitor.subscribers.add(actor)
    else:
        monitor.subscribers.remove(actor)
    return on


# Data quality, labels and model quality


def _quality_settings(
    *,
    reference: DatasetVersion,
    version: ModelVersion | None,
    task: str,
    label_column: str,
    prediction_column: str,
    positive_label: str,
    id_column: str,
) -> dict[str, str]:
    """The monitor's model-quality settings, checked against its reference. Raises
    InvalidInput naming the field."""
    task, label_column = (task or "").strip(), (label_column or "").strip()
    prediction_column, id_column = (prediction_column or "").strip(), (id_column or "").strip()
    positive_label = (positive_label or "").strip()
    chosen = {
        "task": task,
        "label_column": label_column,
        "prediction_column": prediction_column,
        "positive_label": positive_label,
        "id_column": id_column,
    }
    for field, value in chosen.items():
        if len(value) > (200 if field == "positive_label" else 250):
            raise InvalidInput(fields={field: ["Too long: at most 250 characters."]})
    if task and task not in Monitor.Task.values:
        raise InvalidInput(fields={"task": [f"One of {', '.join(Monitor.Task.values)}."]})
    if not task:
        given = [field for field, value in chosen.items() if value]
        if given:
            raise InvalidInput(
                "Say whether the model classifies or regresses to measure its quality.",
                fields={"task": [f"needed with {', '.join(given)}"]},
            )
        return chosen
    kinds = {c["name"]: c["kind"] for c in reference.schema.get("columns", [])}
    if not label_column:
        raise InvalidInput(fields={"label_column": ["Name the reference's column of labels."]})
    if label_column not in kinds:
        raise InvalidInput(
            f"The reference has no column {label_column!r}.",
            fields={"label_column": [f"not a column of the reference: {', '.join(kinds)}"]},
        )
    if task == Monitor.Task.REGRESSION and kinds[label_column] != "numeric":
        raise InvalidInput(
            fields={
                "label_column": [f"A regression needs numbers; it holds {kinds[label_column]}."]
            }
        )
    if task == Monitor.Task.REGRESSION and positive_label:
        raise InvalidInput(fields={"positive_label": ["Only a classification has one."]})
    if not prediction_column and version is None:
        raise InvalidInput(
            "Name the column of predictions, or choose the model version to compute them.",
            fields={"prediction_column": ["needed when no model version is chosen"]},
        )
    clashes = {
        "prediction_column": prediction_column == label_column,
        "id_column": id_column in {label_column, prediction_column},
    }
    for field, clash in clashes.items():
        if chosen[field] and clash:
            raise InvalidInput(fields={field: ["Must differ from the other columns."]})
    return chosen


def _batch_schema(monitor: Monitor, table: object) -> dict:
    """What a batch must hold: the reference's columns, where the labels may be missing (they
    come later), plus the monitor's id and prediction columns when the reference lacks them."""
    columns = list(monitor.reference.schema.get("columns", []))
    names = set(table.column_names)
    if monitor.label_column and monitor.label_column not in names:
        columns = [c for c in columns if c["name"] != monitor.label_column]
    present = {c["name"] for c in columns}
    for role, name in (("id", monitor.id_column), ("prediction", monitor.prediction_column)):
        if not name or name in present:
            continue
        if name not in names:
            raise SchemaMismatch(
                f"Column {name!r}: missing: the monitor reads the {role}s from it.",
                fields={name: [f"missing: the monitor reads the {role}s from this column"]},
            )
        kind = tables.kind_of(table.schema.field(name).type)
        columns.append({"name": name, "kind": kind})
    return {"columns": columns}


def _compared(monitor: Monitor, reference: object, current: object) -> tuple[object, object]:
    """The columns a batch shares with the reference, in the reference's order, without the id
    column (an id drifts by design)."""
    names = set(current.column_names)
    shared = [c for c in reference.column_names if c in names and c != monitor.id_column]
    return reference.select(shared), current.select(shared)


def _categorical(monitor: Monitor, compared: object) -> list[str] | None:
    """The monitor's categorical columns among those compared (the labels may be absent);
    None when it names none, so that the engines decide by type."""
    if not monitor.categorical:
        return None
    return [c for c in monitor.categorical if c in compared.column_names]


def _enqueue_data_quality(batch_id: int) -> None:
    from governance.monitoring.tasks import check_data_quality  # it imports this module

    check_data_quality.delay(batch_id=batch_id)


def check_data_quality(*, batch_id: int) -> Batch:
    """Report the batch's data quality against the reference and keep it on the batch; a
    failing report tells the monitor's subscribers. Idempotent: a checked batch is returned as
    it is. Data the engine cannot read fails the report with the reason."""
    batch = Batch.objects.select_related("monitor__reference", "monitor__project", "dataset").get(
        pk=batch_id
    )
    if batch.quality_passed is not None:
        return batch
    monitor = batch.monitor
    try:
        reference, current = _compared(
            monitor,
            tables.load(settings.DATA_DIR, monitor.reference.sha256),
            tables.load(settings.DATA_DIR, batch.dataset.sha256),
        )
        report = quality.data_quality(
            reference,
            current,
            categorical=_categorical(monitor, reference),
            thresholds=quality.thresholds_of(monitor.thresholds),
        )
        body, passed, problems = json_safe(report.as_dict()), report.passed, report.problems
    except (DomainError, FileNotFoundError) as error:
        reason = getattr(error, "message", None) or str(error)
        body, passed, problems = {"error": reason[:2000]}, False, [reason[:500]]
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        if batch.quality_passed is not None:
            return batch
        batch.quality, batch.quality_passed = body, passed
        batch.save(update_fields=["quality", "quality_passed"])
        record(
            actor=MONITORING,
            action="batch.quality_checked",
            target=batch,
            project=monitor.project,
            payload={"batch": batch.pk, "passed": passed, "problems": problems[:20]},
        )
        if not passed:
            notify(
                recipients=list(monitor.subscribers.filter(is_active=True)),
                kind=Kind.DRIFT_ALERT,
                subject=f"Data quality failed in {monitor.name}: batch {batch.pk}",
                body="\n".join(problems[:20]),
                url=_batch_url(monitor, batch),
                key=f"quality-{batch.pk}",
                project=monitor.project,
            )
    return batch


def _batch_url(monitor: Monitor, batch: Batch) -> str:
    return reverse("monitor_batch", args=[monitor.project.slug, monitor.pk, batch.pk])


def add_labels(*, actor: AbstractBaseUser, batch: Batch, content: BinaryIO, filename: str) -> Batch:
    """Receive the true labels of a batch's rows (CSV or Parquet with the monitor's label
    column, and its id column when it has one), keep them, and queue the model's quality on
    the batch. Labels sent again replace the earlier ones.

    Raises NotAllowed, NoModelQuality, DatasetTooLarge, UnreadableTable (empty, malformed)
    and LabelsMismatch naming the column or the counts; nothing is kept when one is raised.
    """
    monitor = batch.monitor
    project = monitor.project
    require(actor, Capability.MANAGE_MONITORING, project)
    if not monitor.task or not monitor.label_column:
        raise NoModelQuality(
            "This monitor measures no model quality: it was set up without a task and a label "
            "column.",
            fields={"task": ["not set on this monitor"]},
        )
    table = tables.read(content, filename, limit=settings.QUORUM_MAX_DATASET_BYTES)
    wanted = [monitor.id_column] if monitor.id_column else []
    wanted.append(monitor.label_column)
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise LabelsMismatch(
            f"The labels need the column {missing[0]!r}; the file has "
            f"{', '.join(table.column_names)}.",
            fields={c: ["missing from the file"] for c in missing},
        )
    table = table.select(wanted)
    if monitor.id_column:
        _check_ids(monitor, batch, table)
    elif table.num_rows != batch.rows:
        raise LabelsMismatch(
            f"The batch has {batch.rows} rows but the file has {table.num_rows} labels: without "
            "an id column, labels must come in the batch's order, one per row.",
            fields={"file": [f"{table.num_rows} labels for {batch.rows} rows"]},
        )
    with transaction.atomic():
        dataset = registry.keep_table(
            actor=actor,
            project=project,
            name=f"{monitor.name} labels",
            table=table,
            source=filename,
        )
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        before = batch.labels.sha256 if batch.labels_id else None
        batch.labels, batch.labels_received_at = dataset, timezone.now()
        batch.model_quality_state, batch.model_quality = QualityState.QUEUED, {}
        batch.model_quality_error, batch.model_quality_at = "", None
        batch.save()
        record(
            actor=actor,
            action="batch.labels_received",
            target=batch,
            project=project,
            payload={
                "batch": batch.pk,
                "labels": table.num_rows,
                "before": {"sha256": before},
                "after": {"sha256": dataset.sha256},
            },
        )
        batch_id = batch.pk
        transaction.on_commit(lambda: _enqueue_model_quality(batch_id))
    return batch


def _check_ids(monitor: Monitor, batch: Batch, labels: object) -> None:
    ids = quality.as_classes(labels.column(monitor.id_column))
    repeated = ids[ids.duplicated() & ids.notna()].unique().tolist()
    if repeated:
        raise LabelsMismatch(
            f"Ids appear more than once in the labels: {_few(repeated)}.",
            fields={monitor.id_column: [f"repeated: {_few(repeated)}"]},
        )
    if ids.isna().any():
        raise LabelsMismatch(
            f"{int(ids.isna().sum())} labels have no id.",
            fields={monitor.id_column: ["some rows have no id"]},
        )
    rows = tables.load(settings.DATA_DIR, batch.dataset.sha256)
    known = quality.as_classes(rows.column(monitor.id_column))
    unknown = ids[~ids.isin(known)].tolist()
    if unknown:
        raise LabelsMismatch(
            f"{len(unknown)} ids are not rows of batch {batch.pk}: {_few(unknown)}.",
            fields={monitor.id_column: [f"not in the batch: {_few(unknown)}"]},
        )


def _few(values: list) -> str:
    shown = ", ".join(str(v) for v in values[:5])
    return shown + (f" and {len(values) - 5} more" if len(values) > 5 else "")


def _enqueue_model_quality(batch_id: int) -> None:
    from governance.monitoring.tasks import compute_quality  # it imports this module

    compute_quality.delay(batch_id=batch_id)


def compute_model_quality(*, batch_id: int) -> Batch:
    """Measure the model on a labelled batch (predictions from the batch's column or the
    model version, loaded from MLflow), compare it with its quality on the reference (measured
    once), and open an alert on `quality:<metric>` for each metric that degraded.

    Idempotent: a batch measured for its labels is returned as it is. Bad data or a model that
    will not predict fails the measure with the reason; MlflowUnavailable is raised, to retry.
    """
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        if batch.labels_id is None or batch.model_quality_state in (
            QualityState.DONE,
            QualityState.FAILED,
        ):
            return batch
        batch.model_quality_state = QualityState.RUNNING
        batch.save(update_fields=["model_quality_state"])
    batch = Batch.objects.select_related(
        "monitor__reference", "monitor__project", "monitor__version__model", "dataset", "labels"
    ).get(pk=batch_id)
    monitor, labels_id = batch.monitor, batch.labels_id
    models = _Models(monitor)
    try:
        rows = tables.load(settings.DATA_DIR, batch.dataset.sha256).to_pandas()
        truth = selectors.labels_in_batch_order(monitor, rows, batch.labels)
        predicted, scores = _predictions(monitor, rows, models)
        result = quality.model_quality(
            monitor.task, truth, predicted, scores=scores, positive_label=monitor.positive_label
        )
    except MlflowUnavailable:
        raise
    except (DomainError, FileNotFoundError) as error:
        return _quality_failed(batch_id, labels_id, getattr(error, "message", None) or str(error))
    reference = _reference_quality(monitor, models)
    thresholds = quality.thresholds_of(monitor.thresholds)
    changes = quality.compare(result, reference, thresholds) if reference else {}
    degraded = {f"quality:{m}": [c.reason] for m, c in changes.items() if c.degraded}
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        if batch.labels_id != labels_id or batch.model_quality_state == QualityState.DONE:
            return batch
        batch.model_quality = json_safe(
            {
                **result.as_dict(),
                "reference": reference.metrics if reference else None,
                "changes": {m: c.change for m, c in changes.items()},
                "degraded": {m: c.reason for m, c in changes.items() if c.degraded},
            }
        )
        batch.model_quality_state, batch.model_quality_at = QualityState.DONE, timezone.now()
        batch.save(update_fields=["model_quality", "model_quality_state", "model_quality_at"])
        opened = _open_alerts(_check_of(batch), monitor, degraded) if degraded else []
        record(
            actor=MONITORING,
            action="batch.model_quality_measured",
            target=batch,
            project=monitor.project,
            payload={
                "batch": batch.pk,
                "metrics": json_safe(result.metrics),
                "degraded": sorted(degraded),
                "alerts_opened": [a.feature for a in opened],
            },
        )
        if opened:
            notify(
                recipients=list(monitor.subscribers.filter(is_active=True)),
                kind=Kind.DRIFT_ALERT,
                subject=f"Model quality dropped in {monitor.name}: "
                + ", ".join(a.feature.removeprefix("quality:") for a in opened),
                body="\n".join(r for a in opened for r in a.reasons),
                url=_batch_url(monitor, batch),
                key=f"quality-drop-{batch.pk}",
                project=monitor.project,
            )
    return batch


def _quality_failed(batch_id: int, labels_id: int, reason: str) -> Batch:
    with transaction.atomic():
        batch = (
            Batch.objects.select_for_update().select_related("monitor__project").get(pk=batch_id)
        )
        if batch.labels_id != labels_id or batch.model_quality_state == QualityState.DONE:
            return batch
        batch.model_quality_state, batch.model_quality_error = QualityState.FAILED, reason[:2000]
        batch.model_quality_at = timezone.now()
        batch.save(update_fields=["model_quality_state", "model_quality_error", "model_quality_at"])
        record(
            actor=MONITORING,
            action="batch.model_quality_failed",
            target=batch,
            project=batch.monitor.project,
            payload={"batch": batch.pk, "reason": reason[:500]},
        )
    return batch


def _check_of(batch: Batch) -> DriftCheck:
    """The check an alert on the batch's model quality points at: the batch's own."""
    check = DriftCheck.objects.filter(batch=batch).order_by("-id").first()
    if check is None:  # a batch kept before checks were made per batch
        now = timezone.now()
        check = DriftCheck.objects.create(
            monitor=batch.monitor, batch=batch, trigger="quality", state=DriftCheck.State.DONE,
            started_at=now, finished_at=now,
        )  # fmt: skip
    return check


class _Models:
    """The monitor's model version, loaded from MLflow once per task, when first needed."""

    def __init__(self, monitor: Monitor):
        self.version = monitor.version
        self._loaded: Scorer | None = None

    def get(self) -> Scorer:
        if self._loaded is None:
            if self.version is None:
                raise NoModelQuality(
                    "There are no predictions: the data has no prediction column and the "
                    "monitor has no model version to compute them.",
                    fields={"prediction_column": ["not in the data, and no model version"]},
                )
            try:
                self._loaded = Scorer.load(self.version)
            except Unusable as error:
                raise PredictionFailed(error.message) from error
        return self._loaded


def _predictions(monitor: Monitor, rows: object, models: _Models) -> tuple[object, object]:
    """The predictions for `rows` (a DataFrame), and for a classifier that has them, the scores
    of the positive class: from the prediction column when the data has it, else the model's."""
    if monitor.prediction_column and monitor.prediction_column in rows.columns:
        return rows[monitor.prediction_column], None
    scorer = models.get()
    skip = {monitor.label_column, monitor.id_column, monitor.prediction_column}
    try:
        inputs = scorer.inputs(rows, exclude=skip)
        return scorer.predict(inputs), _scores(monitor, scorer.model, inputs)
    except MissingInputs as error:
        raise PredictionFailed(
            error.message,
            fields={c: ["the model's input, missing from the data"] for c in error.missing},
        ) from None
    except Unusable as error:
        raise PredictionFailed(error.message[:1000]) from None


def _scores(monitor: Monitor, model: object, inputs: object) -> object:
    if monitor.task != Monitor.Task.CLASSIFICATION:
        return None
    try:
        raw = model.get_raw_model()
    except (AttributeError, NotImplementedError, ValueError):
        return None
    return quality.positive_scores(raw, inputs, monitor.positive_label)


def _reference_quality(monitor: Monitor, models: _Models) -> quality.ModelQuality | None:
    """The model's quality on the reference, measured once and kept on the monitor; None when
    it cannot be (the reason is kept instead)."""
    kept = monitor.reference_quality
    if kept:
        return quality.ModelQuality.from_dict(kept) if "error" not in kept else None
    try:
        rows = tables.load(settings.DATA_DIR, monitor.reference.sha256).to_pandas()
        predicted, scores = _predictions(monitor, rows, models)
        result = quality.model_quality(
            monitor.task,
            rows[monitor.label_column],
            predicted,
            scores=scores,
            positive_label=monitor.positive_label,
        )
        body = json_safe(result.as_dict())
    except MlflowUnavailable:
        raise
    except (DomainError, FileNotFoundError) as error:
        result = None
        body = {"error": (getattr(error, "message", None) or str(error))[:2000]}
    with transaction.atomic():
        locked = Monitor.objects.select_for_update().get(pk=monitor.pk)
        if locked.reference_quality:
            monitor.reference_quality = locked.reference_quality
            return _reference_quality(monitor, models)
        locked.reference_quality = body
        locked.save(update_fields=["reference_quality"])
        monitor.reference_quality = body
        record(
            actor=MONITORING,
            action="monitor.reference_quality_measured",
            target=monitor,
            project=monitor.project,
            payload={"metrics": body.get("metrics"), "error": body.get("error")},
        )
    return result


def _person(actor: AbstractBaseUser | SystemActor) -> AbstractBaseUser | None:
    return None if isinstance(actor, SystemActor) else actor


# Settings, polled sources and scheduled checks

EDITABLE = (
    "name", "categorical", "thresholds", "bins", "active",
    "source_uri", "poll_minutes", "check_minutes", "window_hours",
)  # fmt: skip
MAX_MINUTES = 7 * 24 * 60
MAX_WINDOW_HOURS = 90 * 24
# Beat runs every minute and may fire a little early: a monitor due within this is due now.
SLACK = timedelta(seconds=10)


def update_monitor(
    *, actor: AbstractBaseUser, monitor: Monitor, changes: Mapping[str, object]
) -> Monitor:
    """Change a monitor's settings (any of EDITABLE); the trail keeps what changed, before and
    after. Raises NotAllowed, InvalidInput and InvalidSource naming the field,
    MonitorNameTaken."""
    require(actor, Capability.MANAGE_MONITORING, monitor.project)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(fields={name: ["Not a setting of a monitor."] for name in unknown})
    clean = {name: _clean_setting(monitor, name, value) for name, value in changes.items()}
    try:
        with transaction.atomic():
            locked = Monitor.objects.select_for_update().get(pk=monitor.pk)
            before = {name: getattr(locked, name) for name in clean}
            changed = {name: value for name, value in clean.items() if before[name] != value}
            polling = {"source_uri": locked.source_uri, "poll_minutes": locked.poll_minutes}
            polling.update((k, v) for k, v in changed.items() if k in polling)
            if polling["poll_minutes"] and not polling["source_uri"]:
                raise InvalidSource(
                    "Polling needs a source URI.",
                    fields={"source_uri": ["Give a URI to poll, or turn polling off."]},
                )
            if not changed:
                return locked
            for name, value in changed.items():
                setattr(locked, name, value)
            if "source_uri" in changed:
                # Another source: what was fetched from the last one says nothing of it.
                locked.last_poll_sha256, locked.last_poll_error = "", ""
            if "check_minutes" in changed:
                # The first scheduled check comes an interval after the schedule is set.
                locked.last_scheduled_at = timezone.now()
            locked.save()
            record(
                actor=actor,
                action="monitor.updated",
                target=locked,
                project=locked.project,
                payload={"before": {k: before[k] for k in changed}, "after": changed},
            )
    except IntegrityError:
        raise MonitorNameTaken(fields={"name": [MonitorNameTaken.default_message]}) from None
    return locked


def _clean_setting(monitor: Monitor, name: str, value: object) -> object:
    """One setting checked and tidied, or InvalidInput naming it."""
    if name == "name":
        text = value.strip() if isinstance(value, str) else ""
        if not text or len(text) > 200:
            raise InvalidInput(fields={"name": ["Give the monitor a name of 1 to 200 characters."]})
        return text
    if name == "categorical":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise InvalidInput(fields={"categorical": ["A list of column names."]})
        columns = {c["name"] for c in monitor.reference.schema.get("columns", [])}
        unknown = [c for c in value if c not in columns]
        if unknown:
            raise InvalidInput(
                f"The reference has no column {unknown[0]!r}.",
                fields={"categorical": [f"unknown column {c!r}" for c in unknown]},
            )
        return list(dict.fromkeys(value))
    if name == "thresholds":
        if not isinstance(value, dict):
            raise InvalidInput(fields={"thresholds": ["An object of threshold names and values."]})
        stats.Thresholds.from_mapping(value)  # raises InvalidThresholds, naming keys
        return value
    if name == "active":
        if not isinstance(value, bool):
            raise InvalidInput(fields={"active": ["true or false."]})
        return value
    if name == "source_uri":
        uri = value.strip() if isinstance(value, str) else None
        if uri is None:
            raise InvalidSource(fields={"source_uri": ["A URI, or empty for none."]})
        if uri:
            check_source(uri)
        return uri
    low, high, optional = {
        "bins": (2, MAX_BINS, False),
        "poll_minutes": (1, MAX_MINUTES, True),
        "check_minutes": (1, MAX_MINUTES, True),
        "window_hours": (1, MAX_WINDOW_HOURS, False),
    }[name]
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        off = " or empty for off" if optional else ""
        raise InvalidInput(fields={name: [f"A whole number from {low} to {high}{off}."]})
    return value


def check_source(uri: str) -> None:
    """Refuse a source URI Quorum would not read: only http(s) URLs, and file:// paths under
    QUORUM_DATA_ROOTS. Reads nothing. Raises InvalidSource naming `source_uri`."""
    if len(uri) > 2000:
        raise InvalidSource(fields={"source_uri": ["At most 2000 characters."]})
    try:
        parsed = urllib.parse.urlparse(uri)
    except ValueError as error:
        raise InvalidSource(fields={"source_uri": [f"Not a URI: {error}."]}) from None
    if parsed.scheme in {"http", "https"}:
        if not parsed.netloc:
            raise InvalidSource(fields={"source_uri": ["The URL names no host."]})
        return
    if parsed.scheme == "file":
        path = Path(urllib.parse.unquote(parsed.path)).resolve()
        roots = [Path(root).resolve() for root in settings.QUORUM_DATA_ROOTS]
        if not any(path.is_relative_to(root) for root in roots):
            raise InvalidSource(
                "Quorum reads files only under QUORUM_DATA_ROOTS.",
                fields={"source_uri": ["This path is outside the allowed data folders."]},
            )
        return
    raise InvalidSource(fields={"source_uri": ["Give an http(s):// URL or a file:// path."]})


def poll_sources(*, now: datetime | None = None) -> list[int]:
    """Claim the monitors whose source is due and queue a poll of each; returns their ids.
    Two beats at once claim each monitor once: the claim is a conditional update."""
    now = now or timezone.now()
    candidates = (
        Monitor.objects.filter(active=True, poll_minutes__isnull=False)
        .exclude(source_uri="")
        .values_list("pk", "poll_minutes", "last_polled_at")
    )
    claimed = []
    for pk, minutes, last in candidates:
        if last is not None and last + timedelta(minutes=minutes) > now + SLACK:
            continue
        if Monitor.objects.filter(pk=pk, last_polled_at=last).update(last_polled_at=now):
            claimed.append(pk)
            transaction.on_commit(partial(_enqueue_poll, pk))
    return claimed


def _enqueue_poll(monitor_id: int) -> None:
    from governance.monitoring.tasks import poll_source  # the task imports this module

    poll_source.delay(monitor_id=monitor_id)


def poll_source(*, monitor_id: int) -> Batch | None:
    """Fetch the monitor's source and receive it as a batch, as Quorum itself, unless it is
    what the last poll fetched. A failure is kept on the monitor and put on the trail when it
    differs from the last one. Returns the batch, or None when nothing new arrived."""
    monitor = Monitor.objects.select_related("project", "reference").filter(pk=monitor_id).first()
    if monitor is None or not monitor.source_uri:
        return None
    uri, batch = monitor.source_uri, None
    try:
        check_source(uri)  # the allowed folders may have changed since it was set
        data = _fetch(uri)
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != monitor.last_poll_sha256:
            batch = _receive_batch(
                actor=MONITORING,
                monitor=monitor,
                content=io.BytesIO(data),
                filename=_filename_of(uri),
                source=Batch.Source.POLL,
            )
    except DomainError as error:
        _note_poll(monitor_id, uri, error=error.message)
        return None
    _note_poll(monitor_id, uri, sha256=sha256)
    return batch


def _fetch(uri: str) -> bytes:
    limit = settings.QUORUM_MAX_DATASET_BYTES
    try:
        with registry.open_dataset_uri(uri) as stream:  # http(s) reads time out after 30 s
            data = stream.read(limit + 1)
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise DatasetUnreachable(f"{uri} could not be read: {error}") from error
    if len(data) > limit:
        raise DatasetTooLarge(f"Tables are limited to {limit // 2**20} MB here.")
    return data


def _filename_of(uri: str) -> str:
    name = PurePosixPath(urllib.parse.urlparse(uri).path).name
    return name or "batch.csv"


def _note_poll(monitor_id: int, uri: str, *, sha256: str = "", error: str = "") -> None:
    with transaction.atomic():
        monitor = Monitor.objects.select_for_update().select_related("project").get(pk=monitor_id)
        if monitor.source_uri != uri:
            return  # the source changed while this poll ran: its news is of the old one
        before = monitor.last_poll_error
        monitor.last_polled_at, monitor.last_poll_error = timezone.now(), error[:2000]
        monitor.last_poll_sha256 = sha256 or monitor.last_poll_sha256
        monitor.save(update_fields=["last_polled_at", "last_poll_error", "last_poll_sha256"])
        # Once per change of the error, not once a minute while it lasts.
        if error and error[:2000] != before:
            action = "monitor.poll_failed"
        elif not error and before:
            action = "monitor.poll_recovered"
        else:
            return
        record(
            actor=MONITORING,
            action=action,
            target=monitor,
            project=monitor.project,
            payload={"uri": uri, "before": {"error": before}, "after": {"error": error[:500]}},
        )


def run_scheduled_checks(*, now: datetime | None = None) -> list[DriftCheck]:
    """Queue a check over its window for each monitor whose schedule is due; a window with no
    batch makes no check, but the schedule moves on. Two beats at once make one check each:
    the claim is a conditional update in the check's transaction."""
    now = now or timezone.now()
    candidates = Monitor.objects.filter(active=True, check_minutes__isnull=False).values_list(
        "pk", "check_minutes", "last_scheduled_at"
    )
    made = []
    for pk, minutes, last in candidates:
        if last is not None and last + timedelta(minutes=minutes) > now + SLACK:
            continue
        with transaction.atomic():
            if not Monitor.objects.filter(pk=pk, last_scheduled_at=last).update(
                last_scheduled_at=now
            ):
                continue  # another beat took it
            monitor = Monitor.objects.select_related("project").get(pk=pk)
            check = _window_check(monitor, trigger="schedule", actor=MONITORING, now=now)
            if check is not None:
                made.append(check)
    return made


def request_check(*, actor: AbstractBaseUser, monitor: Monitor) -> DriftCheck:
    """Check the batches of the monitor's window now. Raises NotAllowed, NoBatchesInWindow."""
    require(actor, Capability.MANAGE_MONITORING, monitor.project)
    with transaction.atomic():
        check = _window_check(monitor, trigger="manual", actor=actor, now=timezone.now())
    if check is None:
        raise NoBatchesInWindow(
            f"No batch arrived in the last {monitor.window_hours} hours: nothing to check."
        )
    return check


def _window_check(
    monitor: Monitor, *, trigger: str, actor: AbstractBaseUser | SystemActor, now: datetime
) -> DriftCheck | None:
    """A queued check over the batches received in the window ending `now`, or None when
    none arrived. Call inside a transaction."""
    start = now - timedelta(hours=monitor.window_hours)
    ids = list(
        Batch.objects.filter(monitor=monitor, received_at__gt=start, received_at__lte=now)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        return None
    check = DriftCheck.objects.create(
        monitor=monitor, trigger=trigger, window_batches=ids, window_start=start, window_end=now
    )
    record(
        actor=actor,
        action="monitor.check_queued",
        target=monitor,
        project=monitor.project,
        payload={
            "check": check.pk,
            "trigger": trigger,
            "batches": len(ids),
            "window_hours": monitor.window_hours,
        },
    )
    transaction.on_commit(partial(_enqueue_check, check.pk))
    return check
