"""The approvals gate this area registers: the version's latest bias report passed."""

from governance.approvals.gates import GateKind, Outcome, clean_no_settings
from governance.fairness.models import BiasReport
from governance.registry.models import ModelVersion


def _check(version: ModelVersion, spec: dict) -> tuple[str, str]:
    latest = BiasReport.objects.filter(version=version).order_by("-created_at", "-id").first()
    if latest is None:
        return Outcome.MISSING, "no bias report for this version yet"
    if latest.passed:
        return Outcome.PASS, f"bias report {latest.pk} passed"
    return Outcome.FAIL, f"bias report {latest.pk} failed: {'; '.join(latest.judgement['reasons'])}"


BIAS_REPORT_PASSED = GateKind(
    name="bias_report_passed",
    label="Bias report passed",
    help="The version's latest bias report keeps within the project's fairness policy.",
    clean=clean_no_settings,
    check=_check,
    describe=lambda spec: "latest bias report passed",
)
