"""Monitoring's gate: a release waits while a drift alert stands on the model."""

import io

import pyarrow as pa

from governance.approvals import services
from governance.monitoring import services as monitoring
from governance.monitoring.models import DriftAlert
from governance.registry import services as registry


def drifted_monitor(project, scientist, version):
    reference = registry.keep_table(
        actor=scientist, project=project, name="inputs",
        table=pa.table({"age": [float(n % 50) for n in range(400)]}), source="r.parquet",
    )  # fmt: skip
    monitor = monitoring.create_monitor(
        actor=scientist, project=project, name="inputs", reference=reference, version=version
    )
    shifted = "age\n" + "".join(f"{60 + n % 50}\n" for n in range(400))
    batch = monitoring.add_batch(
        actor=scientist, monitor=monitor, content=io.BytesIO(shifted.encode()), filename="b.csv"
    )
    monitoring.run_drift_check(check_id=batch.checks.get().pk)
    return DriftAlert.objects.get(monitor=monitor)


def test_a_standing_drift_alert_fails_the_gate_until_resolved(project, owner, scientist, version):
    services.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1},
        gates_=[{"kind": "no_drift_alert"}],
    )  # fmt: skip
    alert = drifted_monitor(project, scientist, version)
    approval = services.open_request(actor=scientist, version=version, stage="production")
    (gate,) = approval.gate_results
    assert gate["outcome"] == "fail"
    assert "age (inputs, open)" in gate["reason"]

    monitoring.resolve_alert(actor=owner, alert=alert, comment="Explained: a new branch.")
    (result,) = services.recheck_gates(actor=owner, approval=approval)
    assert result.passed
