"""What the package and profile jobs share: fetching a version's MLflow model, reading its
signature, rows to try it on, and its ONNX form (scikit-learn, through skl2onnx) checked
against the native model."""

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from governance.delivery.errors import TransientJobError
from governance.delivery.runner import JobContext
from governance.registry.errors import MlflowUnavailable
from governance.registry.mlflow_client import Mlflow
from governance.registry.models import ModelVersion

DEFAULT_TOLERANCE = 1e-4
SAMPLE_ROWS = 20
SEED = 0
NUMERIC = ("double", "float", "long", "integer", "boolean")


def download(version: ModelVersion, folder: str) -> Path:
    """The version's MLflow model files in `folder`. Raises TransientJobError when MLflow
    cannot be reached, MlflowNotFound when the files are not there."""
    try:
        return Path(Mlflow().download_model(version.model.name, version.version, folder))
    except MlflowUnavailable as error:
        raise TransientJobError(error.message) from error


def input_columns(schema: object) -> list[dict]:
    """The model's input columns as [{"name", "type"}]; [] when its signature names none."""
    if schema is None or not schema.has_input_names():
        return []
    return [{"name": spec.name, "type": str(getattr(spec.type, "name", spec.type))}
            for spec in schema.inputs]  # fmt: skip


def sample_rows(described: object, root: Path, columns: list[dict]) -> pd.DataFrame:
    """The model's logged input example, or rows drawn (seeded) to fit its signature."""
    with contextlib.suppress(Exception):  # an example MLflow cannot read: draw rows instead
        example = described.load_input_example(str(root))
        if isinstance(example, pd.DataFrame) and len(example):
            return example.head(SAMPLE_ROWS)
    rng = np.random.default_rng(SEED)
    drawn = {}
    for column in columns:
        kind = column["type"]
        if kind in ("double", "float"):
            drawn[column["name"]] = rng.normal(0, 1, SAMPLE_ROWS) * 10 + 40
        elif kind in ("long", "integer"):
            drawn[column["name"]] = rng.integers(0, 100, SAMPLE_ROWS)
        elif kind == "boolean":
            drawn[column["name"]] = rng.integers(0, 2, SAMPLE_ROWS).astype(bool)
        else:
            drawn[column["name"]] = [f"value-{i % 3}" for i in range(SAMPLE_ROWS)]
    return pd.DataFrame(drawn)


def convert_to_onnx(
    context: JobContext,
    root: Path,
    flavors: list[str],
    columns: list[dict],
    sample: pd.DataFrame,
    tolerance: float,
) -> tuple[dict, bytes | None]:
    """ONNX where it can be had, checked against the native model on `sample`. Never fails the
    job: a model that cannot become ONNX gets the reason (`converted` False, `why_not`)."""

    def no(why: str) -> tuple[dict, None]:
        context.log(f"not convertible: {why}")
        return {"converted": False, "why_not": f"not convertible: {why}"}, None

    if "sklearn" not in flavors:
        return no(f"no ONNX converter for the flavors {', '.join(flavors)} (only sklearn)")
    if not columns:
        return no("the model has no input signature naming its columns")
    if any(c["type"] not in NUMERIC for c in columns):
        return no("only numeric input columns are converted")
    import mlflow.sklearn
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.base import is_classifier

    try:
        model = mlflow.sklearn.load_model(str(root))
    except Exception as error:  # the pickle's own failure
        return no(f"the scikit-learn model could not be loaded: {type(error).__name__}: {error}")
    classifier = is_classifier(model)
    try:
        converted = convert_sklearn(
            model,
            initial_types=[("input", FloatTensorType([None, len(columns)]))],
            options={id(model): {"zipmap": False}} if classifier else None,
        )
    except Exception as error:  # skl2onnx names what it lacks
        return no(f"skl2onnx: {type(error).__name__}: {str(error).splitlines()[0]}")
    onnx_bytes = converted.SerializeToString()
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    names = [c["name"] for c in columns]
    table = sample[names].to_numpy(dtype=np.float32)
    outputs = session.run(None, {session.get_inputs()[0].name: table})
    native = np.asarray(model.predict(sample[names]), dtype=np.float64).ravel()
    difference = float(np.max(np.abs(native - np.asarray(outputs[0], dtype=np.float64).ravel())))
    result = {"converted": True, "predictions_max_abs_diff": difference, "tolerance": tolerance}
    worst = difference
    if classifier and hasattr(model, "predict_proba") and len(outputs) > 1:
        native_p = np.asarray(model.predict_proba(sample[names]), dtype=np.float64)
        onnx_p = np.asarray(outputs[1], dtype=np.float64)
        result["probabilities_max_abs_diff"] = float(np.max(np.abs(native_p - onnx_p)))
        worst = max(worst, result["probabilities_max_abs_diff"])
    result["max_abs_diff"], result["rows"] = worst, len(sample)
    result["passed"] = worst <= tolerance
    context.log(
        f"ONNX parity on {len(sample)} rows: max abs difference {worst:.3g} "
        f"({'within' if result['passed'] else 'above'} the tolerance {tolerance:g})"
    )
    if not result["passed"]:
        result["why_not"] = (
            f"parity failed: max abs difference {worst:.3g} is above the tolerance {tolerance:g}"
        )
    return result, onnx_bytes
