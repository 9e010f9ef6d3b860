"""Bias metrics of a binary classifier, per group of one or two sensitive features.

Pure and vectorised, with no Django: labels, predictions and sensitive features in (arrays,
pandas or Arrow columns), plain dataclasses out, whose `as_dict()` is JSON.

The whole assessment is one bincount: each row's group, true label and prediction make one code,
and the counts of those codes are every group's confusion matrix. Every figure derives from them.

Definitions are Fairlearn's (0.15), so its figures and ours agree to the last bit or two:
- selection rate = predicted positives / count; accuracy = correct / count;
- precision = TP / (TP + FP), 0 when a group has no predicted positives (scikit-learn's
  `precision_score`, which `MetricFrame` would call, answers 0 with a warning);
- true and false positive and negative rates from the confusion matrix normalised by true class,
  0 when a group has no actual positives (or negatives), as Fairlearn's `true_positive_rate` et
  al. get from scikit-learn's `confusion_matrix(normalize="true")`. Each group says which of its
  figures had an empty denominator (`empty_denominators`), so a 0 there is not mistaken for a
  finding;
- a difference is the largest group's value minus the smallest's, a ratio the smallest over the
  largest (`MetricFrame.difference()` / `.ratio()`, method "between_groups"); equalized odds
  takes the worse of the true and false positive rates: the larger difference, the smaller ratio;
  equal opportunity is the difference of true positive rates;
- with two sensitive features the groups are every combination of their values, those with no
  members included (as `MetricFrame`'s product index), and groups with no members are left out
  of the disparities (as pandas' min and max skip Fairlearn's NaN).

Where we deliberately differ:
- disparities compare only the groups with at least `min_group_size` members; smaller groups are
  listed, flagged `too_small`, and judged by nobody. With `min_group_size=1` the groups compared
  are Fairlearn's;
- with fewer than two groups to compare, a disparity has no value (Fairlearn: difference 0 and
  ratio 1, a perfect score for having nothing to compare);
- a ratio whose largest value is 0 has no value (Fairlearn: NaN, 0/0); equalized odds' ratio is
  then the other rate's ratio (Fairlearn's `min` over [TPR ratio, FPR ratio] returns NaN when the
  TPR ratio is NaN but the TPR ratio when the FPR ratio is: an artefact of Python's `min`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from governance.fairness.errors import (
    EmptyData,
    InvalidLabels,
    InvalidParameter,
    InvalidPolicy,
    InvalidSensitiveFeatures,
    LengthMismatch,
)


@dataclass(frozen=True)
class GroupMetrics:
    """One group's counts and rates. Rates are None for a group with no members."""

    group: dict[str, Any]
    label: str
    count: int
    positives: int
    predicted_positives: int
    selection_rate: float | None
    accuracy: float | None
    precision: float | None
    tpr: float | None
    fpr: float | None
    tnr: float | None
    fnr: float | None
    too_small: bool
    empty_denominators: list[str]


@dataclass(frozen=True)
class Disparity:
    """A disparity across the compared groups, and the pair that makes it.

    `value` is None when fewer than two groups could be compared, or for a ratio whose largest
    value is 0 (no group had any, so none had less). `metric` names the rate behind the value
    (for equalized odds, whichever of tpr and fpr was worse).
    """

    name: str
    metric: str | None
    value: float | None
    lowest: str | None
    highest: str | None
    groups_compared: int


@dataclass(frozen=True)
class FairnessResult:
    features: list[str]
    pos_label: Any
    min_group_size: int
    overall: GroupMetrics
    groups: list[GroupMetrics]
    disparities: dict[str, Disparity]

    @property
    def demographic_parity_difference(self) -> float | None:
        return self.disparities["demographic_parity_difference"].value

    @property
    def demographic_parity_ratio(self) -> float | None:
        return self.disparities["demographic_parity_ratio"].value

    @property
    def equalized_odds_difference(self) -> float | None:
        return self.disparities["equalized_odds_difference"].value

    @property
    def equalized_odds_ratio(self) -> float | None:
        return self.disparities["equalized_odds_ratio"].value

    @property
    def equal_opportunity_difference(self) -> float | None:
        return self.disparities["equal_opportunity_difference"].value

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pos_label"] = _plain(self.pos_label)
        return data


def group_metrics(
    y_true: Any,
    y_pred: Any,
    sensitive: Mapping[str, Any],
    *,
    pos_label: Any = 1,
    min_group_size: int = 30,
) -> FairnessResult:
    """Per-group metrics and the disparities between groups of one or two sensitive features.

    `y_true` and `y_pred` hold two labels at most, `pos_label` being the positive one (labels
    0/1 or booleans with the default). Raises EmptyData, LengthMismatch, InvalidLabels,
    InvalidSensitiveFeatures or InvalidParameter, naming the fields at fault.
    """
    if (
        isinstance(min_group_size, bool)
        or not isinstance(min_group_size, int)
        or min_group_size < 0
    ):
        raise InvalidParameter(
            "min_group_size must be a whole number, 0 or more.",
            fields={"min_group_size": ["must be a whole number, 0 or more"]},
        )
    if not isinstance(sensitive, Mapping) or not 1 <= len(sensitive) <= 2:
        raise InvalidSensitiveFeatures(
            "Give one or two sensitive features, by name.",
            fields={"sensitive": ["must map one or two feature names to their values"]},
        )
    clashing = [name for name in sensitive if name in {"y_true", "y_pred"}]
    if clashing:
        raise InvalidSensitiveFeatures(
            "A sensitive feature cannot be called y_true or y_pred.",
            fields={name: ["is the name of the labels or predictions"] for name in clashing},
        )
    columns = {"y_true": _column(y_true), "y_pred": _column(y_pred)}
    columns |= {str(name): _feature(values) for name, values in sensitive.items()}
    lengths = {name: len(values) for name, values in columns.items()}
    rows = lengths["y_true"]
    if any(n != rows for n in lengths.values()):
        raise LengthMismatch(
            "The labels, predictions and sensitive features differ in length.",
            fields={
                name: [f"has {n} rows; y_true has {rows}"]
                for name, n in lengths.items()
                if n != rows
            },
        )
    if rows == 0:
        raise EmptyData(
            "There are no rows to assess.", fields={name: ["has no rows"] for name in columns}
        )
    truth, predicted = _binary(columns["y_true"], columns["y_pred"], pos_label)

    names = [str(name) for name in sensitive]
    codes, values = _groups(names, [columns[name] for name in names])
    size = math.prod(len(v) for v in values)
    key = codes * 4
    key += truth.view(np.uint8) * 2
    key += predicted.view(np.uint8)
    counts = np.bincount(key, minlength=4 * size).reshape(size, 2, 2)  # [group, truth, pred]

    labels = _labels(names, values)
    groups = [
        _metrics(group, label, counts[g], min_group_size) for g, (group, label) in enumerate(labels)
    ]
    overall = _metrics({}, "overall", counts.sum(axis=0), 0)
    compared = [g for g in groups if g.count >= max(min_group_size, 1)]
    return FairnessResult(
        features=names,
        pos_label=pos_label,
        min_group_size=min_group_size,
        overall=overall,
        groups=groups,
        disparities=_disparities(compared),
    )


def _column(values: Any) -> np.ndarray:
    if _is_arrow(values):
        values = values.to_pandas()
    array = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    return array.ravel() if array.ndim > 1 and array.size == len(array) else array


def _feature(values: Any) -> Any:
    """A sensitive feature as pandas factorises it fastest: Series and Categoricals as they are."""
    if _is_arrow(values):
        return values.to_pandas()
    if isinstance(values, pd.Series | pd.Index | pd.Categorical):
        return values
    return _column(values)


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow")


def _binary(y_true: np.ndarray, y_pred: np.ndarray, pos_label: Any) -> tuple[np.ndarray, ...]:
    """Where each of y_true and y_pred is the positive label, having checked they are binary.

    Fairlearn's rule: at most two labels across y_true and y_pred together, and the positive
    label among them when there are two.
    """
    labels: set[Any] = set()
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if _missing(values).any():
            raise InvalidLabels(
                f"{name} has missing values.", fields={name: ["has missing values"]}
            )
        labels |= _labels_of(values)
    shown = ", ".join(sorted(map(str, labels)))
    if len(labels) > 2:
        message = f"more than two labels across y_true and y_pred: {shown}"
    elif len(labels) == 2 and pos_label not in labels:
        message = f"the positive label {pos_label!r} is not among the labels {shown}"
    else:
        message = ""
    if message:
        raise InvalidLabels(
            f"Only binary classification is assessed: {message}.",
            fields={"y_true": [message], "y_pred": [message]},
        )
    positives = []
    for values in (y_true, y_pred):
        positive = np.asarray(values == pos_label)
        if positive.dtype != bool or positive.shape != values.shape:
            positive = np.fromiter((v == pos_label for v in values), dtype=bool, count=len(values))
        positives.append(positive)
    return positives[0], positives[1]


def _labels_of(values: np.ndarray) -> set[Any]:
    """The labels in `values`; three of them (not necessarily all) when there are more than two."""
    if values.dtype.kind not in "biuf":
        return {_plain(v) for v in pd.unique(values)}
    low, high = values.min(), values.max()
    if low == high:
        return {_plain(low)}
    others = (values != low) & (values != high)
    if not others.any():
        return {_plain(low), _plain(high)}
    return {_plain(low), _plain(high), _plain(values[others][0])}


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "biu":
        return np.zeros(1, dtype=bool)
    return pd.isna(values)


def _groups(names: list[str], columns: list[Any]) -> tuple[np.ndarray, list[list[Any]]]:
    """Each row's group as one code, and each feature's values in the order of the codes."""
    codes = np.zeros(len(columns[0]), dtype=np.intp)
    values = []
    for name, column in zip(names, columns, strict=True):
        feature_codes, uniques = pd.factorize(column, sort=True)
        if (feature_codes < 0).any():
            raise InvalidSensitiveFeatures(
                f"The sensitive feature {name} has missing values.",
                fields={name: [f"has {int((feature_codes < 0).sum())} missing values"]},
            )
        codes *= len(uniques)
        codes += feature_codes
        values.append([_plain(v) for v in uniques])
    return codes, values


def _labels(names: list[str], values: list[list[Any]]) -> list[tuple[dict[str, Any], str]]:
    if len(names) == 1:
        return [({names[0]: v}, str(v)) for v in values[0]]
    return [
        ({names[0]: a, names[1]: b}, f"{names[0]}={a}, {names[1]}={b}")
        for a in values[0]
        for b in values[1]
    ]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _metrics(group: dict[str, Any], label: str, matrix: np.ndarray, min_size: int) -> GroupMetrics:
    (tn, fp), (fn, tp) = (int(v) for v in matrix[0]), (int(v) for v in matrix[1])
    count = tn + fp + fn + tp
    positives, negatives, predicted = tp + fn, tn + fp, tp + fp
    empty = [
        metric
        for metric, denominator in (
            ("precision", predicted),
            ("tpr", positives),
            ("fnr", positives),
            ("fpr", negatives),
            ("tnr", negatives),
        )
        if count and not denominator
    ]

    def rate(numerator: int, denominator: int) -> float | None:
        if not count:
            return None
        return numerator / denominator if denominator else 0.0

    return GroupMetrics(
        group=group,
        label=label,
        count=count,
        positives=positives,
        predicted_positives=predicted,
        selection_rate=rate(predicted, count),
        accuracy=rate(tp + tn, count),
        precision=rate(tp, predicted),
        tpr=rate(tp, positives),
        fpr=rate(fp, negatives),
        tnr=rate(tn, negatives),
        fnr=rate(fn, positives),
        too_small=count < min_size,
        empty_denominators=empty,
    )


def _extremes(groups: list[GroupMetrics], metric: str) -> tuple[GroupMetrics, GroupMetrics]:
    values = [getattr(g, metric) for g in groups]
    return groups[int(np.argmin(values))], groups[int(np.argmax(values))]


def _difference(name: str, groups: list[GroupMetrics], metric: str) -> Disparity:
    if len(groups) < 2:
        return Disparity(name, metric, None, None, None, len(groups))
    low, high = _extremes(groups, metric)
    value = getattr(high, metric) - getattr(low, metric)
    return Disparity(name, metric, value, low.label, high.label, len(groups))


def _ratio(name: str, groups: list[GroupMetrics], metric: str) -> Disparity:
    if len(groups) < 2:
        return Disparity(name, metric, None, None, None, len(groups))
    low, high = _extremes(groups, metric)
    largest = getattr(high, metric)
    value = getattr(low, metric) / largest if largest else None
    return Disparity(name, metric, value, low.label, high.label, len(groups))


def _disparities(groups: list[GroupMetrics]) -> dict[str, Disparity]:
    tpr_difference = _difference("equalized_odds_difference", groups, "tpr")
    fpr_difference = _difference("equalized_odds_difference", groups, "fpr")
    tpr_ratio = _ratio("equalized_odds_ratio", groups, "tpr")
    fpr_ratio = _ratio("equalized_odds_ratio", groups, "fpr")
    odds_difference = (
        fpr_difference
        if fpr_difference.value is not None and fpr_difference.value > (tpr_difference.value or 0)
        else tpr_difference
    )
    defined = [r for r in (tpr_ratio, fpr_ratio) if r.value is not None]
    odds_ratio = min(defined, key=lambda r: r.value or 0.0) if defined else tpr_ratio
    found = [
        _difference("demographic_parity_difference", groups, "selection_rate"),
        _ratio("demographic_parity_ratio", groups, "selection_rate"),
        odds_difference,
        odds_ratio,
        _difference("equal_opportunity_difference", groups, "tpr"),
    ]
    return {d.name: d for d in found}


# Judging


@dataclass(frozen=True)
class Policy:
    """The limits a model's disparities must keep; None turns a limit off.

    The default is the four-fifths rule: every group selected at no less than 80% of the rate
    of the most selected one. `fail_on_small_groups` fails a report with any group too small to
    judge, rather than only noting it.
    """

    demographic_parity_ratio_min: float | None = 0.8
    demographic_parity_difference_max: float | None = None
    equalized_odds_ratio_min: float | None = None
    equalized_odds_difference_max: float | None = None
    equal_opportunity_difference_max: float | None = None
    fail_on_small_groups: bool = False

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Policy:
        """A policy from JSON-like data; absent keys keep their defaults."""
        known = {f.name for f in fields(cls)}
        problems: dict[str, list[str]] = {}
        for key, value in data.items():
            if key not in known:
                problems[key] = [f"is not a limit; known: {', '.join(sorted(known))}"]
            elif key == "fail_on_small_groups":
                if not isinstance(value, bool):
                    problems[key] = ["must be true or false"]
            elif value is None:
                continue
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems[key] = ["must be a number or null"]
            elif not 0 <= value <= 1:
                problems[key] = ["must be between 0 and 1"]
        if problems:
            listed = "; ".join(f"{k}: {', '.join(m)}" for k, m in problems.items())
            raise InvalidPolicy(f"Invalid fairness policy: {listed}.", fields=problems)
        return cls(**data)


LIMITS = (
    ("demographic_parity_ratio", "demographic_parity_ratio_min", "min"),
    ("demographic_parity_difference", "demographic_parity_difference_max", "max"),
    ("equalized_odds_ratio", "equalized_odds_ratio_min", "min"),
    ("equalized_odds_difference", "equalized_odds_difference_max", "max"),
    ("equal_opportunity_difference", "equal_opportunity_difference_max", "max"),
)


@dataclass(frozen=True)
class Check:
    disparity: str
    value: float | None
    limit: float
    passed: bool
    reason: str


@dataclass(frozen=True)
class Judgement:
    passed: bool
    reasons: list[str]
    checks: list[Check]
    policy: Policy

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(result: FairnessResult, policy: Policy | Mapping[str, Any] | None = None) -> Judgement:
    """Whether the disparities keep within the policy's limits, and why. Raises InvalidPolicy.

    A disparity that cannot be computed for want of two groups of `min_group_size` fails: a
    gate should not pass what it could not see. A ratio with no value because no group had the
    rate at all passes: every group had the same, 0.
    """
    if policy is None:
        policy = Policy()
    elif not isinstance(policy, Policy):
        policy = Policy.from_mapping(policy)
    checks = []
    for name, limit_name, bound in LIMITS:
        limit = getattr(policy, limit_name)
        if limit is None:
            continue
        d = result.disparities[name]
        title = name.replace("_", " ")
        if d.groups_compared < 2:
            passed = False
            reason = (
                f"{title} cannot be judged: {d.groups_compared} group(s) of at least "
                f"{result.min_group_size} members"
            )
        elif d.value is None:
            passed, reason = True, f"{title}: no group had any {d.metric}, so none had less"
        else:
            passed = d.value >= limit if bound == "min" else d.value <= limit
            sign = (">=" if passed else "<") if bound == "min" else ("<=" if passed else ">")
            reason = (
                f"{title} {d.value:.3g} {sign} {limit:g} ({d.lowest} vs {d.highest}, {d.metric})"
            )
        checks.append(Check(name, d.value, limit, passed, reason))
    small = [g.label for g in result.groups if g.too_small]
    reasons = [c.reason for c in checks if not c.passed]
    if small:
        note = f"too small to judge (under {result.min_group_size} members): {', '.join(small)}"
        reasons.append(note)
    passed = all(c.passed for c in checks) and not (small and policy.fail_on_small_groups)
    if passed and not checks:
        reasons.insert(0, "the policy sets no limits")
    return Judgement(passed=passed, reasons=reasons, checks=checks, policy=policy)


def label_for(text: str, labels: Any) -> Any:
    """The positive label as `labels` hold it, from text a person or pipeline gave: "1" is 1
    in a column of numbers, "true" is True in a column of booleans. Raises InvalidParameter."""
    kind = getattr(labels, "dtype", None)
    if kind is not None and kind.kind in "iuf":
        try:
            return float(text) if kind.kind == "f" else int(text)
        except ValueError:
            raise InvalidParameter(
                f"The labels are numbers; {text!r} is not one.",
                fields={"pos_label": [f"the labels are numbers; {text!r} is not one"]},
            ) from None
    if kind is not None and kind.kind == "b":
        return text.strip().lower() in ("1", "true", "yes")
    return text
