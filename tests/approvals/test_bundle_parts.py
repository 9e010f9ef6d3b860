"""A release's bundle carries the version's bias report and drift status, as they stand when
the bundle is made, and still verifies offline."""

import io
import json

import pyarrow as pa

from governance.fairness import services as fairness
from governance.monitoring import services as monitoring
from governance.monitoring.models import DriftCheck
from governance.registry import services as registry
from tests.approvals.test_bundle import files_of, made, verify_offline  # noqa: F401 (fixture)
from tests.fairness.conftest import applicants


def test_without_reports_or_monitors_the_parts_say_so(opened, viewer, tmp_path):
    files = files_of(made(opened, viewer, tmp_path))
    assert json.loads(files["fairness/bias_report.json"])["report"] is None
    assert json.loads(files["monitoring/drift_status.json"])["monitors"] == []


def test_the_bundle_holds_the_bias_report_and_the_drift_status(
    opened,
    version,
    scientist,
    viewer,
    tmp_path,
    verify_offline,  # noqa: F811
):
    holdout = registry.keep_table(
        actor=scientist,
        project=opened.project,
        name="holdout",
        table=pa.Table.from_pandas(applicants(1000, biased=True), preserve_index=False),
        source="holdout.csv",
    )
    asked = fairness.request_bias_report(
        actor=scientist, version=version, dataset=holdout, y_true="approved",
        y_pred="predicted", sensitive=["sex"],
    )  # fmt: skip
    fairness.generate_bias_report(report_id=asked.pk)
    reference = registry.keep_table(
        actor=scientist,
        project=opened.project,
        name="reference",
        table=pa.table({"age": [float(n % 50) for n in range(400)]}),
        source="reference.csv",
    )
    monitor = monitoring.create_monitor(
        actor=scientist, project=opened.project, name="inputs", reference=reference,
        version=version,
    )  # fmt: skip
    shifted = "age\n" + "".join(f"{60 + n % 50}\n" for n in range(400))
    batch = monitoring.add_batch(
        actor=scientist, monitor=monitor, content=io.BytesIO(shifted.encode()), filename="b.csv"
    )
    monitoring.run_drift_check(check_id=DriftCheck.objects.get(batch=batch).pk)

    path = made(opened, viewer, tmp_path)

    files = files_of(path)
    bias = json.loads(files["fairness/bias_report.json"])["report"]
    assert bias["id"] == asked.pk
    assert bias["passed"] is False
    assert bias["sensitive"] == ["sex"]
    assert bias["dataset_sha256"] == holdout.sha256
    (status,) = json.loads(files["monitoring/drift_status.json"])["monitors"]
    assert status["name"] == "inputs"
    assert status["latest_check"]["drifted"] is True
    assert [a["feature"] for a in status["unresolved_alerts"]] == ["age"]
    assert verify_offline(path)[0] == 0
