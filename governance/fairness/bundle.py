"""The bias report of a release's version, as a part of its evidence bundle."""

import json

from governance.fairness.selectors import latest_verdict_of
from governance.plain import json_safe


def bias_part(approval: object) -> dict[str, bytes]:
    """`fairness/bias_report.json`: the version's latest finished report (the one its gate
    reads), every figure and the verdict with the limits it was judged by; or that there is
    none."""
    report = latest_verdict_of(approval.version)
    body = {"version": str(approval.version), "report": None}
    if report is not None:
        body["report"] = {
            "id": report.pk,
            "passed": report.passed,
            "dataset": str(report.dataset),
            "dataset_sha256": report.dataset.sha256,
            "y_true": report.y_true,
            "y_pred": report.y_pred or "predicted by the version's model",
            "sensitive": report.sensitive,
            "pos_label": report.pos_label,
            "min_group_size": report.min_group_size,
            "policy": report.policy,
            "judgement": report.judgement,
            "result": report.result,
            "created_at": report.created_at.isoformat(),
        }
    text = json.dumps(json_safe(body), indent=2, sort_keys=True, ensure_ascii=False)
    return {"fairness/bias_report.json": text.encode()}
