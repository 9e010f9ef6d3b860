"""The `profile` job: how a model version does on validation data, how fast and how large it
runs, natively and as ONNX, and the CPU and memory to give it.

Steps: load the validation data (a labelled batch of a monitor on the model, or a monitor's
reference table) and the version's MLflow model, with its ONNX form (the newest succeeded
package job's, else converted here); measure the model on the data with the task's metrics and
judge them by the metric conditions of the project's approval policies; measure each runtime
in a fresh process of its own (`probe.py`): latency percentiles and throughput at batch sizes
1, 32 and 256, peak memory and CPU time; recommend Kubernetes requests and limits from the
faster runtime's figures; log the profile to the version's MLflow run and tag the version.
"""

import json
import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings

from governance.approvals import expressions
from governance.approvals.gates import Outcome
from governance.approvals.models import ApprovalPolicy
from governance.delivery import conversion, probe
from governance.delivery.conversion import DEFAULT_TOLERANCE
from governance.delivery.errors import TransientJobError
from governance.delivery.kinds import JobKind
from governance.delivery.models import Job
from governance.delivery.packaging import package_folder
from governance.delivery.runner import JobContext
from governance.errors import DomainError, InvalidInput
from governance.monitoring import quality
from governance.monitoring.models import Batch, Monitor
from governance.monitoring.selectors import labels_in_batch_order
from governance.plain import json_safe
from governance.registry import tables
from governance.registry.errors import MlflowUnavailable
from governance.registry.mlflow_client import Mlflow
from governance.registry.models import DatasetVersion, ModelVersion
from governance.registry.scoring import MissingInputs, Scorer, Unusable

BATCH_SIZES = (1, 32, 256)
RUNTIMES = ("native", "onnx")
DEFAULT_TARGET = 100.0  # rows per second the service must score, unless the job says
DEFAULT_HEADROOM = 0.5
MAX_TARGET = 10_000_000.0
MAX_HEADROOM = 10.0
# Each runtime, each batch size: a few calls to warm up, then at least MIN_CALLS and at most
# MAX_CALLS calls or SECONDS_PER_SIZE seconds, whichever comes first: a profile takes seconds.
WARMUP, MIN_CALLS, MAX_CALLS, SECONDS_PER_SIZE = 3, 5, 200, 1.0
PROBE_ROWS = 2048
PARITY_ROWS = 200
PROBE_TIMEOUT = 300
MI = 2**20
MEMORY_STEP, MEMORY_FLOOR = 16 * MI, 64 * MI  # requests in whole 16 Mi, at least 64 Mi
CPU_STEP, CPU_FLOOR, CPU_LIMIT_FLOOR = 50, 100, 1000  # millicores
PARAMS = ("batch", "monitor", "target_rows_per_second", "headroom", "batch_size")


class ProfileFailed(Exception):
    """The version cannot be profiled on this data: the job fails with this reason."""


# The parameters, checked before anything is queued


def check_params(params: dict) -> None:
    """Raises InvalidInput naming the field: unknown parameters, both or neither of `batch` and
    `monitor`, ids that are not whole numbers, a target or headroom out of range."""
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise InvalidInput(
            f"Unknown parameters: {', '.join(unknown)} (known: {', '.join(PARAMS)}).",
            fields={name: ["Unknown parameter."] for name in unknown},
        )
    chosen = [name for name in ("batch", "monitor") if params.get(name) is not None]
    if len(chosen) != 1:
        why = "not both" if chosen else "one is needed"
        raise InvalidInput(
            f"Choose the validation data: a labelled batch of a monitor on this model, or a "
            f"monitor's reference table ({why}).",
            fields={"batch": [f"A batch or a monitor, {why}."]},
        )
    key = chosen[0]
    if not _whole(params[key]) or params[key] < 1:
        raise InvalidInput(
            f"The {key} is an id, a whole number.", fields={key: ["A whole number, an id."]}
        )
    for name, example, low_ok, high in (
        ("target_rows_per_second", "100", False, MAX_TARGET),
        ("headroom", "0.5 for 50%", True, MAX_HEADROOM),
    ):
        value = params.get(name)
        if value is None:
            continue
        words = name.replace("_", " ")
        if not _number(value) or not math.isfinite(value):
            raise InvalidInput(
                f"The {words} is a number, such as {example}.",
                fields={name: [f"A number, such as {example}."]},
            )
        if value > high or value < 0 or (value == 0 and not low_ok):
            bounds = f"{'from 0' if low_ok else 'above 0'} and at most {high:g}"
            raise InvalidInput(
                f"The {words} must be {bounds}.", fields={name: [f"{bounds.capitalize()}."]}
            )
    size = params.get("batch_size")
    if size is not None and (not _whole(size) or size not in BATCH_SIZES):
        sizes = ", ".join(map(str, BATCH_SIZES))
        raise InvalidInput(
            f"The batch size to size resources for is one of {sizes}.",
            fields={"batch_size": [f"One of {sizes}."]},
        )


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Validation:
    """Where the validation rows come from, and how to read their labels."""

    monitor: Monitor
    dataset: DatasetVersion
    batch: Batch | None

    def describe(self) -> str:
        if self.batch is not None:
            return f"batch {self.batch.pk} of the monitor {self.monitor.name}"
        return f"the reference of the monitor {self.monitor.name}"

    def about(self) -> dict:
        return {
            "source": "batch" if self.batch is not None else "reference",
            "batch": self.batch.pk if self.batch is not None else None,
            "monitor": self.monitor.pk,
            "monitor_name": self.monitor.name,
            "dataset": self.dataset.name,
            "sha256": self.dataset.sha256,
            "label_column": self.monitor.label_column,
            "described": self.describe(),
        }


def validation_of(params: dict, version: ModelVersion) -> Validation:
    """The validation data the parameters name, checked against the version: in its project,
    from a monitor on the same registered model that measures model quality, labelled, with
    the columns the version's signature names (as the mirror knows it). Raises InvalidInput
    naming `batch` or `monitor`; an id of another project reads as unknown."""
    project_id = version.model.project_id
    if params.get("batch") is not None:
        field = "batch"
        batch = (
            Batch.objects.select_related("monitor__version", "dataset", "labels")
            .filter(pk=params["batch"], monitor__project_id=project_id)
            .first()
        )
        if batch is None:
            raise InvalidInput(
                f"This project has no batch {params['batch']}.",
                fields={field: ["No such batch in this project."]},
            )
        monitor = batch.monitor
        found = Validation(monitor=monitor, dataset=batch.dataset, batch=batch)
    else:
        field = "monitor"
        monitor = (
            Monitor.objects.select_related("version", "reference")
            .filter(pk=params["monitor"], project_id=project_id)
            .first()
        )
        if monitor is None:
            raise InvalidInput(
                f"This project has no monitor {params['monitor']}.",
                fields={field: ["No such monitor in this project."]},
            )
        found = Validation(monitor=monitor, dataset=monitor.reference, batch=None)
    if monitor.version is None or monitor.version.model_id != version.model_id:
        raise InvalidInput(
            f"The monitor {monitor.name} does not watch {version.model.name}: its data is not "
            "this model's.",
            fields={field: [f"Data of a monitor on another model ({monitor.name})."]},
        )
    if not monitor.task or not monitor.label_column:
        raise InvalidInput(
            f"The monitor {monitor.name} measures no model quality (no task and label column): "
            "its data has no labels to validate on.",
            fields={field: ["No labels: the monitor has no task and label column."]},
        )
    if found.batch is not None and found.batch.labels_id is None:
        raise InvalidInput(
            f"Batch {found.batch.pk} has no labels yet: send its outcomes on its page first.",
            fields={field: ["The batch has no labels yet."]},
        )
    needed = [
        column["name"]
        for column in (version.signature or {}).get("inputs") or []
        if column.get("name") and column.get("required", True)
    ]
    have = {column["name"] for column in (found.dataset.schema or {}).get("columns", [])}
    missing = [name for name in needed if have and name not in have]
    if missing:
        raise InvalidInput(
            f"{found.describe().capitalize()} lacks the model's columns: {', '.join(missing)}.",
            fields={field: [f"Lacks the model's columns: {', '.join(missing)}."]},
        )
    return found


def check_data(params: dict, version: ModelVersion) -> None:
    """Refuses, before queueing, validation data the version cannot be profiled on."""
    validation_of(params, version)


def _rows_and_labels(found: Validation) -> tuple[pd.DataFrame, pd.Series]:
    rows = tables.load(settings.DATA_DIR, found.dataset.sha256).to_pandas()
    monitor = found.monitor
    if found.batch is None:
        return rows, rows[monitor.label_column]
    return rows, labels_in_batch_order(monitor, rows, found.batch.labels)


# The job


def profile_model(context: JobContext) -> dict:
    job, version = context.job, context.job.version
    name, number = version.model.name, version.version
    target = float(context.params.get("target_rows_per_second") or DEFAULT_TARGET)
    headroom = float(context.params.get("headroom", DEFAULT_HEADROOM))
    batch_size = int(context.params.get("batch_size") or 1)
    context.step("loading the validation data and the models", 5)
    try:
        found = validation_of(context.params, version)  # it may have changed since queued
    except InvalidInput as error:
        raise ProfileFailed(error.message) from error
    rows, labels = _rows_and_labels(found)
    context.log(f"validation data: {found.describe()}, {len(rows):,} rows")
    with tempfile.TemporaryDirectory(prefix="quorum-profile-") as scratch:
        folder = Path(scratch)
        root = conversion.download(version, str(folder / "model"))
        import mlflow.pyfunc
        from mlflow.models import Model

        described = Model.load(str(root / "MLmodel"))
        flavors = sorted(described.flavors or {})
        columns = conversion.input_columns(described.get_input_schema())
        try:
            scorer = Scorer(version, mlflow.pyfunc.load_model(str(root)))
        except Exception as error:  # a flavour's loader may raise anything
            raise ProfileFailed(
                f"the model could not be loaded: {type(error).__name__}: {error}"
            ) from error
        monitor = found.monitor
        skip = {monitor.label_column, monitor.id_column, monitor.prediction_column} - {""}
        try:
            inputs = scorer.inputs(rows, exclude=skip)
        except MissingInputs as error:
            raise ProfileFailed(f"{found.describe()}: {error.message}") from error
        except Unusable as error:
            raise ProfileFailed(error.message) from error
        onnx, onnx_bytes = _onnx_for(context, root, flavors, columns, inputs)

        context.step(f"validating on {found.describe()}", 20)
        validation = _validate(context, scorer, inputs, labels, monitor)

        rows_for = {"native": folder / "inputs.parquet"}
        inputs.head(PROBE_ROWS).to_parquet(rows_for["native"], index=False)
        models = {"native": root}
        if onnx_bytes is not None:
            models["onnx"] = folder / "model.onnx"
            models["onnx"].write_bytes(onnx_bytes)
            rows_for["onnx"] = folder / "inputs.npy"
            names = [c["name"] for c in columns]
            np.save(rows_for["onnx"], inputs.head(PROBE_ROWS)[names].to_numpy(dtype=np.float32))
        measured = {}
        for at, (runtime, path) in zip((35, 60), models.items(), strict=False):
            context.step(f"measuring the {runtime} model in a process of its own", at)
            measured[runtime] = _probe(context, runtime, path, rows_for[runtime], folder)
        if onnx_bytes is None:
            context.log(f"ONNX not measured: {onnx.get('why_not', 'no ONNX model')}")

        context.step("recommending resources", 80)
        usable = [r for r in measured if r == "native" or onnx.get("passed")]
        recommendation, sizing = recommend(
            {r: measured[r] for r in usable}, target=target, headroom=headroom,
            batch_size=batch_size,
        )  # fmt: skip
        context.log(f"recommendation: {json.dumps(recommendation)}")
        result = json_safe(
            {
                "model": name,
                "version": number,
                "data": found.about() | {"rows": len(rows)},
                "onnx": onnx,
                "validation": validation,
                "runtimes": measured,
                "ratios": ratios(measured),
                "settings": {
                    "target_rows_per_second": target,
                    "headroom": headroom,
                    "batch_size": batch_size,
                    "batch_sizes": list(BATCH_SIZES),
                    "max_calls": MAX_CALLS,
                    "seconds_per_size": SECONDS_PER_SIZE,
                },
                "recommendation": recommendation,
                "sizing": sizing,
            }
        )
        context.step("logging the profile to MLflow", 90)
        result["mlflow"] = _log_to_mlflow(context, job, result, folder)
    return result


def _onnx_for(
    context: JobContext, root: Path, flavors: list[str], columns: list[dict], inputs: pd.DataFrame
) -> tuple[dict, bytes | None]:
    """The newest succeeded package job's ONNX model when its parity passed and its file is
    still here, or its reason when the model has no ONNX form; else a conversion here,
    checked on the validation rows."""
    package = (
        Job.objects.filter(version=context.job.version, kind="package", state=Job.State.SUCCEEDED)
        .order_by("-created_at", "-id")
        .first()
    )
    if package is not None:
        onnx = (package.result or {}).get("onnx") or {}
        source = {"source": f"package job {package.pk}", "package_job": package.pk}
        if onnx.get("converted") is False:
            context.log(f"package job {package.pk}: {onnx.get('why_not', 'no ONNX form')}")
            return onnx | source, None
        path = package_folder(package) / "context" / "model.onnx"
        if onnx.get("passed") and path.is_file():
            context.log(f"the ONNX model of package job {package.pk}, parity passed there")
            return onnx | source, path.read_bytes()
        context.log(f"package job {package.pk} left no usable ONNX model: converting here")
    onnx, onnx_bytes = conversion.convert_to_onnx(
        context, root, flavors, columns, inputs.head(PARITY_ROWS), DEFAULT_TOLERANCE
    )
    return onnx | {"source": "converted by this job"}, onnx_bytes


def _validate(
    context: JobContext,
    scorer: Scorer,
    inputs: pd.DataFrame,
    labels: pd.Series,
    monitor: Monitor,
) -> dict:
    """The task's metrics on the validation rows, and each metric condition of the project's
    policies judged on them."""
    try:
        predicted = scorer.predict(inputs)
        scores = None
        if monitor.task == Monitor.Task.CLASSIFICATION:
            try:
                raw = scorer.model.get_raw_model()
            except (AttributeError, NotImplementedError, ValueError):
                raw = None
            scores = quality.positive_scores(raw, inputs, monitor.positive_label)
        measured = quality.model_quality(
            monitor.task, labels, predicted, scores=scores, positive_label=monitor.positive_label
        )
    except DomainError as error:
        raise ProfileFailed(f"the model could not be measured: {error.message}") from error
    shown = ", ".join(f"{k} {v:.4g}" for k, v in measured.metrics.items() if v is not None)
    context.log(f"{measured.rows:,} rows ({measured.left_out} left out): {shown}")
    conditions = conditions_on(context.job.project_id, measured.metrics)
    for condition in conditions:
        context.log(f"{condition['stage']}: {condition['condition']}: {condition['outcome']} "
                    f"({condition['reason']})")  # fmt: skip
    failing = [c for c in conditions if c["outcome"] != Outcome.PASS]
    if not conditions:
        summary = "no metric condition in the project's policies"
    elif failing:
        summary = f"{len(failing)} of {len(conditions)} metric conditions do not pass"
    elif len(conditions) == 1:
        summary = "the one metric condition passes"
    else:
        summary = f"all {len(conditions)} metric conditions pass"
    return measured.as_dict() | {
        "conditions": conditions,
        "passed": not failing,
        "summary": summary,
    }


def conditions_on(project_id: int, metrics: dict) -> list[dict]:
    """Every metric condition of the project's policies in force, judged on `metrics`: pass,
    fail, or missing (a metric the validation does not measure), with the reason."""
    policies = ApprovalPolicy.objects.filter(
        project_id=project_id, current__isnull=False
    ).select_related("current")
    judged = []
    for policy in policies.order_by("stage"):
        for gate in policy.current.gates or []:
            if gate.get("kind") != "metric" or not isinstance(gate.get("condition"), str):
                continue
            try:
                verdict = expressions.evaluate(expressions.parse(gate["condition"]), metrics)
            except expressions.ExpressionError as error:
                outcome, reason = Outcome.MISSING, error.message
            else:
                outcome = {True: Outcome.PASS, False: Outcome.FAIL}.get(
                    verdict.passed, Outcome.MISSING
                )
                reason = verdict.reason
            judged.append({"stage": policy.stage, "condition": gate["condition"],
                           "outcome": str(outcome), "reason": reason})  # fmt: skip
    return judged


def _probe(context: JobContext, runtime: str, model: Path, data: Path, folder: Path) -> dict:
    """One runtime measured by probe.py in a new process. Raises ProfileFailed with its
    error output when it fails or takes longer than PROBE_TIMEOUT."""
    spec = {
        "runtime": runtime,
        "model": str(model),
        "data": str(data),
        "batch_sizes": list(BATCH_SIZES),
        "warmup": WARMUP,
        "min_calls": MIN_CALLS,
        "max_calls": MAX_CALLS,
        "seconds": SECONDS_PER_SIZE,
    }
    spec_path = folder / f"probe-{runtime}.json"
    spec_path.write_text(json.dumps(spec))
    try:
        done = subprocess.run(  # noqa: S603 - our own script, our own interpreter
            # -P: the script's folder (this package, with its selectors.py) stays off the path
            [sys.executable, "-P", probe.__file__, str(spec_path)],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT, cwd=folder, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise ProfileFailed(
            f"measuring the {runtime} model took longer than {PROBE_TIMEOUT} s"
        ) from error
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-30:]
        context.log(f"{runtime} probe output:\n" + "\n".join(tail))
        last = tail[-1] if tail else "no output"
        raise ProfileFailed(
            f"measuring the {runtime} model failed (exit code {done.returncode}): {last}"
        )
    measured = json.loads(lines[-1])
    memory = measured["memory"]
    context.log(
        f"{runtime}: loaded in {measured['load']['wall_seconds']:.2f} s, peak RSS "
        f"{memory['peak_bytes'] / MI:.0f} MiB ({memory['model_bytes'] / MI:.0f} MiB for the "
        f"runtime and the model), {measured['scoring_cpu_seconds']:.2f} CPU-s scoring"
    )
    for size, figures in measured["batches"].items():
        context.log(
            f"  batch {size}: p50 {figures['p50_ms']:.3f} ms, p95 {figures['p95_ms']:.3f} ms, "
            f"p99 {figures['p99_ms']:.3f} ms, {figures['rows_per_second']:,.0f} rows/s "
            f"({figures['calls']} calls)"
        )
    return measured


# Figures from the measurements (pure)


def ratios(measured: dict[str, dict]) -> dict[str, dict]:
    """ONNX over native per batch size: latency percentiles (below 1: ONNX is quicker) and
    throughput (above 1: ONNX scores more rows a second); {} unless both were measured."""
    if not {"native", "onnx"} <= set(measured):
        return {}
    found = {}
    for size, native in measured["native"]["batches"].items():
        onnx = measured["onnx"]["batches"].get(size)
        if not onnx:
            continue
        found[size] = {
            key: (onnx[key] / native[key]) if native[key] else None
            for key in ("p50_ms", "p95_ms", "p99_ms", "rows_per_second")
        }
    return found


def cpu_quantity(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _up(value: float, step: int) -> int:
    return math.ceil(value / step - 1e-9) * step


def recommend(
    measured: dict[str, dict], *, target: float, headroom: float, batch_size: int
) -> tuple[dict, dict]:
    """Kubernetes requests and limits for the runtime that scores the most rows a CPU-second at
    `batch_size`: CPU for `target` rows a second plus `headroom` (a share: 0.5 is 50%) in steps
    of 50m, at least 100m, limited at twice that and at least one core (one request is never
    throttled); memory the scoring process's peak plus `headroom`, in whole 16 Mi, at least
    64 Mi, limited at twice the request. Returns the recommendation and the figures behind it."""
    key = str(batch_size)

    def per_core(runtime: str) -> float:
        figures = measured[runtime]["batches"][key]
        return float(figures.get("rows_per_cpu_second") or figures["rows_per_second"])

    runtime = max(measured, key=per_core)
    speed = per_core(runtime)
    cores = target * (1 + headroom) / speed
    cpu_request = max(CPU_FLOOR, _up(cores * 1000, CPU_STEP))
    cpu_limit = max(CPU_LIMIT_FLOOR, _up(2 * cpu_request, 500))
    peak = int(measured[runtime]["memory"]["peak_bytes"])
    memory_request = max(MEMORY_FLOOR, _up(peak * (1 + headroom), MEMORY_STEP))
    memory_limit = 2 * memory_request
    others = [f"{r} {per_core(r):,.0f}" for r in sorted(measured) if r != runtime]
    compared = f" ({', '.join(others)})" if others else " (no ONNX model to compare)"
    floor = " (the 100m floor)" if cpu_request == CPU_FLOOR and cores * 1000 < CPU_FLOOR else ""
    basis = (
        f"{runtime} scores {speed:,.0f} rows per CPU-second in batches of {batch_size}{compared}, "
        f"so {target:,.0f} rows/s with {headroom:.0%} headroom needs {cores * 1000:,.0f}m of "
        f"CPU, requested as {cpu_quantity(cpu_request)}{floor}; its scoring process peaked at "
        f"{peak / MI:,.0f} MiB, requested with {headroom:.0%} headroom."
    )
    recommendation = {
        "cpu_request": cpu_quantity(cpu_request),
        "cpu_limit": cpu_quantity(cpu_limit),
        "memory_request": f"{memory_request // MI}Mi",
        "memory_limit": f"{memory_limit // MI}Mi",
        "runtime": runtime,
        "basis": basis,
    }
    sizing = {
        "rows_per_cpu_second": {r: per_core(r) for r in measured},
        "cores_needed": cores,
        "peak_bytes": peak,
        "target_rows_per_second": target,
        "headroom": headroom,
        "batch_size": batch_size,
    }
    return recommendation, sizing


def table_of(result: dict) -> list[dict]:
    """The profile's latency and throughput as rows for a page: one per batch size and
    runtime, the ONNX row with its ratios to native."""
    runtimes = result.get("runtimes") or {}
    found_ratios = result.get("ratios") or {}
    rows = []
    for size in result.get("settings", {}).get("batch_sizes", BATCH_SIZES):
        for runtime in RUNTIMES:
            figures = (runtimes.get(runtime) or {}).get("batches", {}).get(str(size))
            if not figures:
                continue
            ratio = found_ratios.get(str(size)) if runtime == "onnx" else None
            rows.append({"batch_size": size, "runtime": runtime, **figures,
                         "ratio": ratio})  # fmt: skip
    return rows


def _log_to_mlflow(context: JobContext, job: Job, result: dict, folder: Path) -> dict:
    mlflow = Mlflow()
    name, number = job.version.model.name, job.version.version
    path = folder / "profile.json"
    path.write_text(json.dumps(result, indent=2))
    recommendation = result["recommendation"]
    tags = {
        "quorum.profile_job": str(job.pk),
        "quorum.validation": "passed" if result["validation"]["passed"] else "failed",
        "quorum.resources": (
            f"cpu {recommendation['cpu_request']}/{recommendation['cpu_limit']}, memory "
            f"{recommendation['memory_request']}/{recommendation['memory_limit']}, "
            f"{recommendation['runtime']}"
        ),
    }
    artifact_folder = f"quorum-profile-{job.pk}"
    try:
        run_id = mlflow.source_run_of(name, number)
        logged = []
        if run_id:
            mlflow.log_artifact(run_id, str(path), artifact_folder)
            logged.append(f"{artifact_folder}/profile.json")
        for key, value in tags.items():
            mlflow.set_version_tag(name, number, key, value)
    except MlflowUnavailable as error:
        raise TransientJobError(error.message) from error
    context.log(f"logged to run {run_id or '(none)'}: {', '.join(logged) or 'nothing'}")
    return {"run_id": run_id, "artifacts": logged, "tags": tags}


PROFILE = JobKind(
    "profile",
    "Validate and profile the model",
    profile_model,
    check=check_params,
    check_against=check_data,
)
