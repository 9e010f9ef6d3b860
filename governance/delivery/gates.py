"""The approvals gate this area registers: the version has been packaged, and its ONNX model
predicts as the native one (or the model has no ONNX form, and ships natively)."""

from governance.approvals.gates import GateKind, Outcome, clean_no_settings
from governance.delivery.models import Job
from governance.registry.models import ModelVersion


def _check(version: ModelVersion, spec: dict) -> tuple[str, str]:
    packaged = list(
        Job.objects.filter(version=version, kind="package", state=Job.State.SUCCEEDED)
        .order_by("-created_at", "-id")
        .values_list("pk", "result")[:20]
    )
    if not packaged:
        return Outcome.MISSING, "no succeeded package job for this version yet"
    for pk, result in packaged:
        onnx = (result or {}).get("onnx") or {}
        if onnx.get("passed") or onnx.get("converted") is False:
            why = "ONNX parity passed" if onnx.get("passed") else onnx.get("why_not", "native")
            return Outcome.PASS, f"package job {pk} succeeded: {why}"
    pk, result = packaged[0]
    why = ((result or {}).get("onnx") or {}).get("why_not", "ONNX parity failed")
    return Outcome.FAIL, f"package job {pk}: {why}"


PACKAGED = GateKind(
    name="packaged",
    label="Packaged",
    help="A package job succeeded for the version, and its ONNX model passed the parity check "
    "(or the model has no ONNX form and was packaged natively).",
    clean=clean_no_settings,
    check=_check,
    describe=lambda spec: "packaged, ONNX parity passed or not applicable",
)
