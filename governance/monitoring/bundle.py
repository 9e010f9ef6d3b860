"""The drift status of a release's version, as a part of its evidence bundle."""

import json

from governance.monitoring.models import DriftAlert, DriftCheck, Monitor
from governance.plain import json_safe


def drift_part(approval: object) -> dict[str, bytes]:
    """`monitoring/drift_status.json`: each monitor of the version, its latest finished check
    and its alerts not yet resolved, at the time the bundle is made."""
    monitors = list(
        Monitor.objects.filter(version=approval.version).select_related("reference").order_by("pk")
    )
    latest = {}
    for check in (
        DriftCheck.objects.filter(monitor__in=monitors, state=DriftCheck.State.DONE)
        .defer("result")
        .order_by("monitor", "-finished_at", "-id")
    ):
        latest.setdefault(check.monitor_id, check)
    alerts: dict[int, list[dict]] = {}
    for alert in (
        DriftAlert.objects.filter(monitor__in=monitors)
        .exclude(state=DriftAlert.State.RESOLVED)
        .order_by("feature")
    ):
        alerts.setdefault(alert.monitor_id, []).append(
            {
                "feature": alert.feature,
                "state": alert.state,
                "opened_at": alert.opened_at.isoformat(),
                "reasons": alert.reasons,
            }
        )
    body = {
        "version": str(approval.version),
        "monitors": [
            {
                "name": monitor.name,
                "reference": str(monitor.reference),
                "reference_sha256": monitor.reference.sha256,
                "latest_check": _check(latest.get(monitor.pk)),
                "unresolved_alerts": alerts.get(monitor.pk, []),
            }
            for monitor in monitors
        ],
    }
    text = json.dumps(json_safe(body), indent=2, sort_keys=True, ensure_ascii=False)
    return {"monitoring/drift_status.json": text.encode()}


def _check(check: DriftCheck | None) -> dict | None:
    if check is None:
        return None
    return {
        "id": check.pk,
        "finished_at": check.finished_at.isoformat(),
        "drifted": check.drifted,
        "drifted_share": check.drifted_share,
        "decision": check.decision,
    }
