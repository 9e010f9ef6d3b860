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
from governance.monitoring import stats
from governance.monitoring.errors import (
    AlertNotOpen,
    CommentRequired,
    EmptyData,
    InvalidSource,
    MonitorNameTaken,
    NoBatchesInWindow,
    NotATable,
)
from governance.monitoring.models import Batch, DriftAlert, DriftCheck, FeatureDrift, Monitor
from governance.notify.kinds import Kind
from governance.notify.services import notify
from governance.plain import json_safe
from governance.registry import services as registry
from governance.registry import tables
from governance.registry.errors import DatasetTooLarge, DatasetUnreachable, SchemaMismatch
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
    tables.check_against(table, monitor.reference.schema)
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
        current = _current_of(check)
        result = stats.drift(
            reference, current, categorical=monitor.categorical or None, bins=monitor.bins
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
