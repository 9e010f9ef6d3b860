"""The approvals gate this area registers: the version's latest finished bias report passed.

Reports still queued or running, and reports that failed to be made, have no verdict: the
gate reads the latest one that has.
"""

from governance.approvals.gates import GateKind, Outcome, clean_no_settings
from governance.fairness.selectors import latest_verdict_of
from governance.registry.models import ModelVersion


def _check(version: ModelVersion, spec: dict) -> tuple[str, str]:
    latest = latest_verdict_of(version)
    if latest is None:
        return Outcome.MISSING, "no finished bias report for this version yet"
    if latest.passed:
        return Outcome.PASS, f"bias report {latest.pk} passed"
    return Outcome.FAIL, f"bias report {latest.pk} failed: {'; '.join(latest.judgement['reasons'])}"


BIAS_REPORT_PASSED = GateKind(
    name="bias_report_passed",
    label="Bias report passed",
    help="The version's latest finished bias report keeps within the project's fairness policy.",
    clean=clean_no_settings,
    check=_check,
    describe=lambda spec: "latest bias report passed",
)
