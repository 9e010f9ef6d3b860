"""Data quality of a batch against its reference, and a model's quality on labelled data.

Pure and vectorised, with no Django: pandas DataFrames or Arrow tables in, plain dataclasses
out, whose `as_dict()` is JSON (once `governance.plain.json_safe` has named NaN).

Data quality, per column the batch shares with the reference:
- the missing rate, and how far it rose over the reference's;
- numeric columns (numbers in the reference, unless `categorical` names the column): values
  present that are not finite numbers are type errors, counted with a few examples; of the
  finite values, the share outside the reference's [min, max], and the min and max seen;
- categorical columns: the share of the values present that the reference never held;
and over the whole batch, the share of rows that repeat an earlier row. The batch fails when
any figure passes its threshold (`QualityThresholds`).

Model quality, by task, with scikit-learn's metrics: accuracy, precision, recall, F1, ROC AUC
(when scores are given and both classes occur) and the positive rate for classification;
RMSE, MAE and R² for regression. Rows missing a label or a prediction are left out and counted.
Classes are compared as text, with whole numbers written without a decimal point, so that a
label read as 1.0 (a column with gaps) is the class "1". Two classes are a binary problem whose
positive class is `positive_label`, or else the last of the two in sorted order ("1" of "0" and
"1"); more classes are averaged over classes (macro) and have no positive rate or ROC AUC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from governance.monitoring.errors import (
    EmptyData,
    InvalidParameter,
    InvalidThresholds,
    LengthMismatch,
    NoValues,
    TypeMismatch,
    UnsupportedType,
)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
EXAMPLES = 5
# Higher is better for these; lower is better for the errors.
SCORES = ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")
ERRORS = ("rmse", "mae")
METRIC_NAMES = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "positive_rate": "positive rate",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
}


# Thresholds


@dataclass(frozen=True)
class QualityThresholds:
    """When a batch fails its data-quality report, and when a model's quality has dropped.

    Shares and rates are between 0 and 1. `metric_drop` is how far accuracy, precision, recall,
    F1, ROC AUC or R² may fall below the reference's (in points of the metric); `error_rise` is
    how far RMSE or MAE may rise above the reference's, as a share of it (0.1: by 10%).
    """

    missing_rate_increase: float = 0.05
    type_error_rate: float = 0.01
    out_of_range_share: float = 0.05
    unseen_category_share: float = 0.05
    duplicate_share: float = 0.05
    metric_drop: float = 0.05
    error_rise: float = 0.10

    @classmethod
    def from_mapping(cls, data: Any) -> QualityThresholds:
        """Thresholds from a monitor's `thresholds["quality"]`; absent keys keep their
        defaults. Raises InvalidThresholds naming each bad key as `quality.<key>`."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidThresholds(
                "The quality thresholds must be an object of names and numbers.",
                fields={"quality": ['must be an object, such as {"duplicate_share": 0.1}']},
            )
        known = {f.name for f in fields(cls)}
        problems: dict[str, list[str]] = {}
        for key, value in data.items():
            if key not in known:
                problems[f"quality.{key}"] = [
                    f"is not a quality threshold; known: {', '.join(sorted(known))}"
                ]
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems[f"quality.{key}"] = ["must be a number"]
            elif math.isnan(value) or not 0 <= value <= (10 if key == "error_rise" else 1):
                top = 10 if key == "error_rise" else 1
                problems[f"quality.{key}"] = [f"must be between 0 and {top}"]
        if problems:
            listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in problems.items())
            raise InvalidThresholds(f"Invalid quality thresholds: {listed}.", fields=problems)
        return cls(**{k: float(v) for k, v in data.items()})


def thresholds_of(monitor_thresholds: Mapping[str, Any] | None) -> QualityThresholds:
    """The quality thresholds kept under the `quality` key of a monitor's thresholds."""
    return QualityThresholds.from_mapping((monitor_thresholds or {}).get("quality"))


# Data quality


@dataclass(frozen=True)
class ColumnQuality:
    """One column of a batch against the same column of the reference. Fields that do not
    apply to the column's kind are None."""

    name: str
    kind: str
    missing: int
    missing_rate: float
    missing_rate_reference: float
    type_errors: int
    type_error_rate: float
    type_error_examples: list[str]
    problems: list[str]
    # numeric
    min: float | None = None
    max: float | None = None
    reference_min: float | None = None
    reference_max: float | None = None
    out_of_range: int | None = None
    out_of_range_share: float | None = None
    # categorical
    unseen: int | None = None
    unseen_share: float | None = None
    unseen_examples: list[Any] | None = None

    @property
    def missing_rate_increase(self) -> float:
        return self.missing_rate - self.missing_rate_reference

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "missing_rate_increase": self.missing_rate_increase}


@dataclass(frozen=True)
class QualityReport:
    rows: int
    reference_rows: int
    duplicate_rows: int
    duplicate_share: float
    columns: dict[str, ColumnQuality]
    missing_columns: list[str]
    extra_columns: list[str]
    problems: list[str]
    thresholds: QualityThresholds

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "duplicate_rows": self.duplicate_rows,
            "duplicate_share": self.duplicate_share,
            "columns": {name: column.as_dict() for name, column in self.columns.items()},
            "missing_columns": self.missing_columns,
            "extra_columns": self.extra_columns,
            "problems": self.problems,
            "thresholds": asdict(self.thresholds),
        }


def data_quality(
    reference: Any,
    current: Any,
    *,
    categorical: list[str] | None = None,
    thresholds: QualityThresholds | Mapping[str, Any] | None = None,
    max_listed: int = EXAMPLES,
) -> QualityReport:
    """The data-quality report of `current` against `reference` (DataFrames or Arrow tables),
    over the columns both have. `categorical` names the categorical columns (None: those that
    are not numbers in the reference).

    Raises EmptyData (no rows, or no shared column), InvalidParameter, InvalidThresholds.
    """
    if not isinstance(thresholds, QualityThresholds):
        thresholds = QualityThresholds.from_mapping(thresholds)
    if isinstance(max_listed, bool) or not isinstance(max_listed, int) or max_listed < 0:
        raise InvalidParameter(fields={"max_listed": ["must be a whole number, 0 or more"]})
    ref, cur = _frame(reference, "reference"), _frame(current, "current")
    shared = [c for c in ref.columns if c in set(cur.columns)]
    if not shared:
        raise EmptyData(
            "The batch has none of the reference's columns.",
            fields={"columns": ["no column in common with the reference"]},
        )
    for label, frame in (("reference", ref), ("current", cur)):
        if len(frame) == 0:
            raise EmptyData(f"The {label} data has no rows.", fields={label: ["no rows"]})
    if categorical is not None:
        unknown = [c for c in categorical if c not in set(ref.columns)]
        if unknown:
            raise InvalidParameter(
                f"Categorical columns that are not in the reference: {', '.join(unknown)}.",
                fields={c: ["is named categorical but is not a column"] for c in unknown},
            )
    t = thresholds
    columns = {}
    for name in shared:
        numeric = name not in categorical if categorical is not None else _is_number(ref[name])
        check = _numeric_column if numeric else _categorical_column
        columns[name] = check(name, ref[name], cur[name], t, max_listed)
    duplicates = int(cur[shared].duplicated().sum())
    duplicate_share = duplicates / len(cur)
    problems = [f"{name}: {p}" for name, column in columns.items() for p in column.problems]
    if duplicate_share > t.duplicate_share:
        problems.append(
            f"{duplicate_share:.1%} of rows repeat an earlier row ({duplicates}), above "
            f"{t.duplicate_share:.0%}"
        )
    return QualityReport(
        rows=len(cur),
        reference_rows=len(ref),
        duplicate_rows=duplicates,
        duplicate_share=duplicate_share,
        columns=columns,
        missing_columns=[c for c in ref.columns if c not in set(cur.columns)],
        extra_columns=[c for c in cur.columns if c not in set(ref.columns)],
        problems=problems,
        thresholds=t,
    )


def _frame(data: Any, label: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        frame = data
    elif type(data).__module__.startswith("pyarrow") and hasattr(data, "schema"):
        import pyarrow as pa

        nested = [f.name for f in data.schema if pa.types.is_nested(f.type)]
        if nested:
            raise UnsupportedType(
                f"Columns of lists or records cannot be checked: {', '.join(nested)}.",
                fields={name: [f"holds lists or records in the {label} data"] for name in nested},
            )
        frame = data.to_pandas()
    else:
        raise InvalidParameter(
            f"The {label} data must be a pandas DataFrame or an Arrow table, "
            f"not {type(data).__name__}.",
            fields={label: ["expected a DataFrame or an Arrow table"]},
        )
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    if frame.columns.has_duplicates:
        repeated = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise InvalidParameter(
            f"The {label} data repeats columns: {', '.join(repeated)}.",
            fields={c: [f"appears more than once in the {label} data"] for c in repeated},
        )
    return frame


def _is_number(series: pd.Series) -> bool:
    dtype = series.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _finite(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The column as float64 (what is not a number is NaN), and where a value is present."""
    present = series.notna().to_numpy()
    if _is_number(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values, present


def _numeric_column(
    name: str, ref: pd.Series, cur: pd.Series, t: QualityThresholds, max_listed: int
) -> ColumnQuality:
    ref_values, ref_present = _finite(ref)
    values, present = _finite(cur)
    finite = np.isfinite(values)
    wrong = present & ~finite
    type_errors = int(wrong.sum())
    examples = [str(v) for v in pd.unique(cur[wrong].astype(str))[:max_listed]]
    ref_finite = ref_values[np.isfinite(ref_values)]
    seen = values[finite]
    low = float(ref_finite.min()) if ref_finite.size else None
    high = float(ref_finite.max()) if ref_finite.size else None
    out_of_range = share = None
    if low is not None:
        out_of_range = int(((seen < low) | (seen > high)).sum())
        share = out_of_range / seen.size if seen.size else 0.0
    missing = int((~present).sum())
    column = ColumnQuality(
        name=name,
        kind=NUMERIC,
        missing=missing,
        missing_rate=missing / len(cur),
        missing_rate_reference=float((~ref_present).sum() / len(ref)),
        type_errors=type_errors,
        type_error_rate=type_errors / len(cur),
        type_error_examples=examples,
        problems=[],
        min=float(seen.min()) if seen.size else None,
        max=float(seen.max()) if seen.size else None,
        reference_min=low,
        reference_max=high,
        out_of_range=out_of_range,
        out_of_range_share=share,
    )
    problems = _missing_problems(column, t)
    if column.type_error_rate > t.type_error_rate:
        shown = ", ".join(repr(e) for e in examples)
        problems.append(
            f"{column.type_error_rate:.1%} of values are not numbers ({shown}), above "
            f"{t.type_error_rate:.0%}"
        )
    if share is not None and share > t.out_of_range_share:
        problems.append(
            f"{share:.1%} of values lie outside the reference's [{low:g}, {high:g}] "
            f"(seen [{column.min:g}, {column.max:g}]), above {t.out_of_range_share:.0%}"
        )
    problems.extend(_all_missing(column))
    return _with(column, problems)


def _categorical_column(
    name: str, ref: pd.Series, cur: pd.Series, t: QualityThresholds, max_listed: int
) -> ColumnQuality:
    ref_present = ref.notna().to_numpy()
    present = cur.notna().to_numpy()
    known = pd.Index(pd.unique(ref[ref_present]))
    values = cur[present]
    new = ~values.isin(known).to_numpy()
    unseen = int(new.sum())
    counts = values[new].value_counts(sort=True)
    missing = int((~present).sum())
    column = ColumnQuality(
        name=name,
        kind=CATEGORICAL,
        missing=missing,
        missing_rate=missing / len(cur),
        missing_rate_reference=float((~ref_present).sum() / len(ref)),
        type_errors=0,
        type_error_rate=0.0,
        type_error_examples=[],
        problems=[],
        unseen=unseen,
        unseen_share=unseen / len(values) if len(values) else 0.0,
        unseen_examples=[_plain(v) for v in counts.index[:max_listed]],
    )
    problems = _missing_problems(column, t)
    if column.unseen_share > t.unseen_category_share:
        shown = ", ".join(repr(v) for v in column.unseen_examples)
        problems.append(
            f"{column.unseen_share:.1%} of values are categories the reference never held "
            f"({shown}), above {t.unseen_category_share:.0%}"
        )
    problems.extend(_all_missing(column))
    return _with(column, problems)


def _missing_problems(column: ColumnQuality, t: QualityThresholds) -> list[str]:
    if column.missing_rate_increase > t.missing_rate_increase:
        return [
            f"missing rate rose from {column.missing_rate_reference:.1%} to "
            f"{column.missing_rate:.1%}, by more than {t.missing_rate_increase:.0%}"
        ]
    return []


def _all_missing(column: ColumnQuality) -> list[str]:
    # Already said when the missing rate rose; a column the reference also lacked stays quiet.
    if column.missing_rate == 1 and column.missing_rate_reference < 1 and not column.problems:
        return ["every value is missing"]
    return []


def _with(column: ColumnQuality, problems: list[str]) -> ColumnQuality:
    return ColumnQuality(**{**{f.name: getattr(column, f.name) for f in fields(column)},
                            "problems": problems})  # fmt: skip


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# Model quality


@dataclass(frozen=True)
class ModelQuality:
    task: str
    rows: int
    left_out: int
    metrics: dict[str, float | None]
    notes: list[str]
    classes: list[str]
    positive_label: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelQuality:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def model_quality(
    task: str,
    labels: Any,
    predictions: Any,
    *,
    scores: Any = None,
    positive_label: str | None = None,
) -> ModelQuality:
    """How well `predictions` match `labels` (equal-length arrays or Series), by scikit-learn.

    `scores` (classification only) are the model's probabilities of the positive class, for
    ROC AUC. Raises InvalidParameter (task, positive label), LengthMismatch naming both
    lengths, TypeMismatch (text where a regression needs numbers), NoValues when no row has
    both a label and a prediction.
    """
    if task not in TASKS:
        raise InvalidParameter(
            f"The task must be {' or '.join(TASKS)}, not {task!r}.",
            fields={"task": [f"one of {', '.join(TASKS)}"]},
        )
    y_true, y_pred = _series(labels), _series(predictions)
    if len(y_true) != len(y_pred):
        raise LengthMismatch(
            f"There are {len(y_true)} labels but {len(y_pred)} predictions.",
            fields={"predictions": [f"{len(y_pred)} predictions for {len(y_true)} labels"]},
        )
    s = None
    if scores is not None:
        s = _series(scores)
        if len(s) != len(y_true):
            raise LengthMismatch(
                f"There are {len(y_true)} labels but {len(s)} scores.",
                fields={"scores": [f"{len(s)} scores for {len(y_true)} labels"]},
            )
    if task == REGRESSION:
        return _regression(y_true, y_pred)
    return _classification(y_true, y_pred, s, positive_label)


def _series(values: Any) -> pd.Series:
    if type(values).__module__.startswith("pyarrow") and hasattr(values, "to_pandas"):
        values = values.to_pandas()
    return pd.Series(values).reset_index(drop=True)


def _numbers(series: pd.Series, what: str) -> np.ndarray:
    present = series.notna().to_numpy()
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    wrong = present & ~np.isfinite(values)
    if wrong.any():
        shown = ", ".join(repr(str(v)) for v in pd.unique(series[wrong].astype(str))[:EXAMPLES])
        raise TypeMismatch(
            f"A regression needs numbers: {int(wrong.sum())} {what} are not ({shown}).",
            fields={what: [f"{int(wrong.sum())} values are not numbers: {shown}"]},
        )
    return values


def _regression(y_true: pd.Series, y_pred: pd.Series) -> ModelQuality:
    truth, predicted = _numbers(y_true, "labels"), _numbers(y_pred, "predictions")
    keep = ~np.isnan(truth) & ~np.isnan(predicted)
    truth, predicted = truth[keep], predicted[keep]
    if not truth.size:
        raise NoValues(
            "No row has both a label and a prediction.",
            fields={"labels": ["no row has both a label and a prediction"]},
        )
    notes = []
    r2 = None
    if truth.size >= 2 and np.ptp(truth) > 0:
        r2 = float(skm.r2_score(truth, predicted))
    else:
        notes.append("R² needs at least two different labels")
    metrics = {
        "rmse": float(skm.root_mean_squared_error(truth, predicted)),
        "mae": float(skm.mean_absolute_error(truth, predicted)),
        "r2": r2,
    }
    return ModelQuality(
        task=REGRESSION,
        rows=int(truth.size),
        left_out=int((~keep).sum()),
        metrics=metrics,
        notes=notes,
        classes=[],
        positive_label=None,
    )


def as_classes(values: Any) -> pd.Series:
    """Labels as text classes (missing stays missing): whole numbers without a decimal point,
    booleans as True and False."""
    series = _series(values)
    missing = series.isna().to_numpy()
    if _is_number(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = np.isfinite(numbers) & (numbers == np.round(numbers))
        text = np.where(
            whole,
            np.where(whole, numbers, 0).astype(np.int64).astype(str),
            numbers.astype(str),
        ).astype(object)
    else:
        text = series.astype(str).str.strip().to_numpy(dtype=object)
    text[missing] = None
    return pd.Series(text, dtype=object)


def _classification(
    y_true: pd.Series, y_pred: pd.Series, scores: pd.Series | None, positive_label: str | None
) -> ModelQuality:
    truth, predicted = as_classes(y_true), as_classes(y_pred)
    keep = truth.notna().to_numpy() & predicted.notna().to_numpy()
    s = None
    if scores is not None:
        s = _numbers(scores, "scores")
        keep &= ~np.isnan(s)
        s = s[keep]
    truth, predicted = truth[keep].to_numpy(dtype=str), predicted[keep].to_numpy(dtype=str)
    if not truth.size:
        raise NoValues(
            "No row has both a label and a prediction.",
            fields={"labels": ["no row has both a label and a prediction"]},
        )
    classes = sorted({str(c) for c in np.unique(truth)} | {str(c) for c in np.unique(predicted)})
    positive = None
    if positive_label not in (None, ""):
        positive = str(as_classes(pd.Series([number_or_text(positive_label)]))[0])
        if len(classes) == 2 and positive not in classes:
            raise InvalidParameter(
                f"The positive label {positive_label!r} is not one of the classes: "
                f"{', '.join(classes)}.",
                fields={"positive_label": [f"not one of {', '.join(classes)}"]},
            )
    notes: list[str] = []
    metrics: dict[str, float | None] = {"accuracy": float(skm.accuracy_score(truth, predicted))}
    if len(classes) <= 2:
        if positive is None:
            positive = classes[-1]
        average = {"pos_label": positive, "average": "binary", "zero_division": 0}
        if len(classes) == 1 and positive not in classes:
            # One class seen, and it is not the positive one: nothing was positive.
            metrics.update(precision=0.0, recall=0.0, f1=0.0)
        else:
            metrics["precision"] = float(skm.precision_score(truth, predicted, **average))
            metrics["recall"] = float(skm.recall_score(truth, predicted, **average))
            metrics["f1"] = float(skm.f1_score(truth, predicted, **average))
        metrics["positive_rate"] = float(np.mean(predicted == positive))
        actual = np.unique(truth)
        if s is None:
            metrics["roc_auc"] = None
            notes.append("ROC AUC needs the model's scores")
        elif actual.size < 2:
            metrics["roc_auc"] = None
            notes.append(f"ROC AUC needs both classes among the labels; only {str(actual[0])!r} is")
        else:
            metrics["roc_auc"] = float(skm.roc_auc_score(truth == positive, s))
    else:
        average = {"average": "macro", "zero_division": 0}
        metrics["precision"] = float(skm.precision_score(truth, predicted, **average))
        metrics["recall"] = float(skm.recall_score(truth, predicted, **average))
        metrics["f1"] = float(skm.f1_score(truth, predicted, **average))
        metrics["positive_rate"] = metrics["roc_auc"] = None
        notes.append(f"{len(classes)} classes: precision, recall and F1 are macro averages")
        positive = None
    return ModelQuality(
        task=CLASSIFICATION,
        rows=int(truth.size),
        left_out=int((~keep).sum()),
        metrics=metrics,
        notes=notes,
        classes=classes,
        positive_label=positive,
    )


def positive_scores(model: Any, inputs: Any, positive_label: str | None) -> np.ndarray | None:
    """A binary classifier's probabilities of the positive class (`positive_label`, else the
    last of its two classes in order, as `model_quality` chooses), for ROC AUC; None for a
    model without `predict_proba` and two `classes_`, or whose classes lack the label."""
    classes = getattr(model, "classes_", None)
    if not hasattr(model, "predict_proba") or classes is None or len(classes) != 2:
        return None
    names = [str(c) for c in as_classes(list(classes))]
    if positive_label:
        positive = str(as_classes([number_or_text(positive_label)])[0])
    else:
        positive = sorted(names)[-1]
    if positive not in names:
        return None
    return model.predict_proba(inputs)[:, names.index(positive)]


def number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


# Comparing with the reference


@dataclass(frozen=True)
class MetricChange:
    metric: str
    reference: float
    current: float
    change: float
    degraded: bool
    reason: str


def compare(
    current: ModelQuality, reference: ModelQuality, thresholds: QualityThresholds | None = None
) -> dict[str, MetricChange]:
    """Each metric both have, against the reference's: `degraded` when a score fell by more
    than `metric_drop` or an error rose by more than `error_rise` of the reference's."""
    t = thresholds or QualityThresholds()
    changes = {}
    for metric in (*SCORES, *ERRORS):
        now, then = current.metrics.get(metric), reference.metrics.get(metric)
        if now is None or then is None:
            continue
        name = METRIC_NAMES[metric]
        if metric in SCORES:
            degraded = then - now > t.metric_drop
            reason = (
                f"{name} fell from {then:.3f} to {now:.3f}, by more than {t.metric_drop:g}"
                if degraded
                else ""
            )
        else:
            degraded = now > then * (1 + t.error_rise) and now > then
            reason = (
                f"{name} rose from {then:.4g} to {now:.4g}, by more than {t.error_rise:.0%}"
                if degraded
                else ""
            )
        changes[metric] = MetricChange(
            metric=metric,
            reference=then,
            current=now,
            change=now - then,
            degraded=degraded,
            reason=reason,
        )
    return changes
