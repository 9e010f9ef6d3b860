"""The approvals gates this area registers: the version has been packaged, and its ONNX model
predicts as the native one (or the model has no ONNX form, and ships natively); and, on top of
that, profiled, its newest profile's validation passing the project's metric conditions."""

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


def _check_profiled(version: ModelVersion, spec: dict) -> tuple[str, str]:
    outcome, packaged = _check(version, {})
    if outcome != Outcome.PASS:
        return outcome, packaged
    profiled = (
        Job.objects.filter(version=version, kind="profile", state=Job.State.SUCCEEDED)
        .order_by("-created_at", "-id")
        .values_list("pk", "result")
        .first()
    )
    if profiled is None:
        return Outcome.MISSING, f"{packaged}; no succeeded profile job for this version yet"
    pk, result = profiled
    validation = (result or {}).get("validation") or {}
    summary = validation.get("summary", "no validation")
    if not validation.get("passed"):
        failing = [
            f"{c['condition']} ({c['stage']}): {c['reason']}"
            for c in validation.get("conditions", [])
            if c.get("outcome") != Outcome.PASS
        ]
        detail = f": {'; '.join(failing)}" if failing else ""
        return Outcome.FAIL, f"{packaged}; profile job {pk}: {summary}{detail}"
    return Outcome.PASS, f"{packaged}; profile job {pk}: {summary}"


PROFILED = GateKind(
    name="profiled",
    label="Packaged and profiled",
    help="The version is packaged (see the packaged gate) and its newest succeeded profile job "
    "validated it on labelled data: every metric condition of the project's policies passes.",
    clean=clean_no_settings,
    check=_check_profiled,
    describe=lambda spec: "packaged and profiled, validation passed",
)
