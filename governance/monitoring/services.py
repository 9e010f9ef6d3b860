"""Every change to monitors: creating one, receiving batches, running drift checks, and the
life of drift alerts. The statistics are `stats.py`'s; this module keeps and acts on them."""

import math
from typing import BinaryIO

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
from governance.monitoring import stats
from governance.monitoring.errors import (
    AlertNotOpen,
    CommentRequired,
    MonitorNameTaken,
    NotATable,
)
from governance.monitoring.models import Batch, DriftAlert, DriftCheck, FeatureDrift, Monitor
from governance.notify.kinds import Kind
from governance.notify.services import notify
from governance.plain import json_safe
from governance.registry import services as registry
from governance.registry import tables
from governance.registry.models import DatasetVersion, ModelVersion

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
    data twice is the same batch, checked once.

    Raises NotAllowed, DatasetTooLarge (413), UnreadableTable and SchemaMismatch naming the
    line or column; nothing is kept when one is raised.
    """
    project = monitor.project
    require(actor, Capability.MANAGE_MONITORING, project)
    if source not in Batch.Source.values:
        raise InvalidInput(fields={"source": [f"One of {', '.join(Batch.Source.values)}."]})
    table = tables.read(content, filename, limit=settings.QUORUM_MAX_DATASET_BYTES)
    tables.check_against(table, monitor.reference.schema)
    with transaction.atomic():
        dataset = registry.keep_table(
            actor=actor,
            project=project,
            name=f"{monitor.name} batch",
            table=table,
            source=filename,
        )
        batch, created = Batch.objects.get_or_create(
            monitor=monitor,
            dataset=dataset,
            defaults={"source": source, "rows": table.num_rows, "received_by": actor},
        )
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
            check_id = check.pk
            transaction.on_commit(lambda: _enqueue_check(check_id))
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
        reference = tables.load(settings.DATA_DIR, monitor.reference.sha256)
        current = tables.load(settings.DATA_DIR, check.batch.dataset.sha256)
        result = stats.drift(
            reference, current, categorical=monitor.categorical or None, bins=monitor.bins
        )
        decision = stats.decide(result, monitor.thresholds)
    except (DomainError, FileNotFoundError) as error:
        return _fail(check, monitor, getattr(error, "message", None) or str(error))
    return _keep(check, monitor, result, decision)


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
    drifted = {name: f for name, f in decision.features.items() if f.drifted}
    if not drifted:
        return []
    standing = {
        a.feature: a
        for a in DriftAlert.objects.select_for_update()
        .filter(monitor=monitor, feature__in=list(drifted))
        .exclude(state=DriftAlert.State.RESOLVED)
    }
    opened = []
    for name, feature in drifted.items():
        if name in standing:
            alert = standing[name]
            alert.last_seen, alert.reasons = check, feature.reasons
            alert.save(update_fields=["last_seen", "reasons"])
            continue
        alert = DriftAlert.objects.create(
            monitor=monitor, feature=name, opened_by=check, last_seen=check,
            reasons=feature.reasons,
        )  # fmt: skip
        record(
            actor=MONITORING,
            action="drift_alert.opened",
            target=alert,
            project=monitor.project,
            payload={"monitor": monitor.name, "feature": name, "reasons": feature.reasons},
        )
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
