"""The approvals gate this area registers: no drift alert standing on the model."""

from governance.approvals.gates import GateKind, Outcome, clean_no_settings
from governance.monitoring.models import DriftAlert
from governance.registry.models import ModelVersion


def _check(version: ModelVersion, spec: dict) -> tuple[str, str]:
    standing = list(
        DriftAlert.objects.filter(monitor__version__model_id=version.model_id)
        .exclude(state=DriftAlert.State.RESOLVED)
        .select_related("monitor")
        .order_by("monitor__name", "feature")[:6]
    )
    if not standing:
        return Outcome.PASS, "no drift alert stands on this model"
    shown = ", ".join(f"{a.feature} ({a.monitor.name}, {a.state})" for a in standing[:5])
    more = " and more" if len(standing) > 5 else ""
    return Outcome.FAIL, f"drift alerts stand: {shown}{more}"


NO_DRIFT_ALERT = GateKind(
    name="no_drift_alert",
    label="No drift alert",
    help="No drift alert is open or acknowledged on any monitor of the model.",
    clean=clean_no_settings,
    check=_check,
    describe=lambda spec: "no drift alert on the model",
)
