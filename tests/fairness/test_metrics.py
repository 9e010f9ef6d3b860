"""The bias engine against Fairlearn's MetricFrame and disparity functions, on generated data with
empty denominators, groups of one and of thousands; and every bad input it refuses."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sklearn.metrics as skm
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.errors import InvalidInput
from governance.fairness.errors import (
    EmptyData,
    InvalidLabels,
    InvalidParameter,
    InvalidPolicy,
    InvalidSensitiveFeatures,
    LengthMismatch,
)
from governance.fairness.metrics import Policy, group_metrics, judge

# sklearn warns of precision with no predicted positives, which is the case under test.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")

METRICS = {
    "count": count,
    "selection_rate": selection_rate,
    "accuracy": skm.accuracy_score,
    "precision": skm.precision_score,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "tnr": true_negative_rate,
    "fnr": false_negative_rate,
}


def close(ours: float | None, theirs: float) -> bool:
    if ours is None:
        return False
    return abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs))


def assert_matches_fairlearn(
    y_true: np.ndarray, y_pred: np.ndarray, sensitive: dict[str, np.ndarray]
) -> None:
    """Every figure with min_group_size=1, where Fairlearn compares all non-empty groups."""
    result = group_metrics(y_true, y_pred, sensitive, min_group_size=1)
    features = pd.DataFrame(sensitive)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics=METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=features
        )
    by_group = frame.by_group
    assert len(result.groups) == len(by_group)
    for row, (key, expected) in zip(result.groups, by_group.iterrows(), strict=True):
        key = key if isinstance(key, tuple) else (key,)
        assert tuple(row.group.values()) == key
        if math.isnan(expected["count"]):  # an empty combination of two features
            assert row.count == 0
            assert row.too_small
            assert all(getattr(row, m) is None for m in METRICS if m != "count")
            continue
        assert row.count == expected["count"]
        for metric in METRICS:
            if metric != "count":
                assert close(getattr(row, metric), expected[metric]), (metric, key)
    for metric in METRICS:
        if metric != "count":
            assert close(getattr(result.overall, metric), frame.overall[metric])

    groups = sum(row.count > 0 for row in result.groups)
    kwargs = {"sensitive_features": features}
    expected = {
        "demographic_parity_difference": demographic_parity_difference(y_true, y_pred, **kwargs),
        "demographic_parity_ratio": demographic_parity_ratio(y_true, y_pred, **kwargs),
        "equalized_odds_difference": equalized_odds_difference(y_true, y_pred, **kwargs),
        "equal_opportunity_difference": equal_opportunity_difference(y_true, y_pred, **kwargs),
    }
    tpr_fpr_ratios = frame.ratio()[["tpr", "fpr"]]
    for name, theirs in expected.items():
        ours = result.disparities[name].value
        if groups < 2:
            assert ours is None  # where Fairlearn answers 0 or 1 with nothing to compare
        elif math.isnan(theirs):  # a ratio of 0/0
            assert ours is None
        else:
            assert close(ours, theirs), (name, ours, theirs)
    odds_ratio = result.disparities["equalized_odds_ratio"]
    defined = tpr_fpr_ratios.dropna()
    if groups < 2 or defined.empty:
        assert odds_ratio.value is None
    else:
        assert close(odds_ratio.value, defined.min())
        if not tpr_fpr_ratios.isna().any():
            theirs = equalized_odds_ratio(y_true, y_pred, **kwargs)
            assert close(odds_ratio.value, theirs)


labels = st.integers(0, 1)


@st.composite
def assessments(draw: st.DrawFn, features: int) -> tuple:
    rows = draw(st.integers(1, 120))
    # Skewed labels now and then, so that groups lack positives or predicted positives.
    p_true = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    p_pred = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    y_true = (rng.random(rows) < p_true).astype(int)
    y_pred = (rng.random(rows) < p_pred).astype(int)
    sensitive = {}
    for name in ("sex", "region")[:features]:
        values = draw(st.integers(1, 4))
        # Uneven group sizes: some groups of one, some of most rows.
        weights = rng.dirichlet(np.full(values, 0.3))
        sensitive[name] = rng.choice([f"{name}{i}" for i in range(values)], rows, p=weights)
    return y_true, y_pred, sensitive


FAIRLEARN = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAIRLEARN
@given(data=assessments(features=1))
def test_one_feature_matches_fairlearn(data: tuple) -> None:
    assert_matches_fairlearn(*data)


@FAIRLEARN
@given(data=assessments(features=2))
def test_two_features_match_fairlearn(data: tuple) -> None:
    assert_matches_fairlearn(*data)


def test_huge_and_tiny_groups_match_fairlearn() -> None:
    rng = np.random.default_rng(11)
    rows = 30_003  # Fairlearn takes seconds per hundred thousand rows
    sex = np.array(["f"] * 15_000 + ["m"] * 15_000 + ["x"] * 3)
    y_true = rng.integers(0, 2, rows)
    y_pred = (rng.random(rows) < np.where(sex == "f", 0.4, 0.5)).astype(int)
    assert_matches_fairlearn(y_true, y_pred, {"sex": sex})
    result = group_metrics(y_true, y_pred, {"sex": sex})
    assert [g.too_small for g in result.groups] == [False, False, True]
    parity = result.disparities["demographic_parity_ratio"]
    assert (parity.lowest, parity.highest, parity.groups_compared) == ("f", "m", 2)


def test_labels_other_than_zero_and_one_with_a_positive_label() -> None:
    y_true = np.array(["yes", "no", "yes", "no", "yes", "no"])
    y_pred = np.array(["yes", "yes", "no", "no", "yes", "no"])
    group = np.array(["a", "a", "a", "b", "b", "b"])
    result = group_metrics(y_true, y_pred, {"g": group}, pos_label="yes", min_group_size=1)
    ours = group_metrics(
        (y_true == "yes").astype(int), (y_pred == "yes").astype(int), {"g": group}, min_group_size=1
    )
    assert result.groups == ours.groups
    assert result.disparities == ours.disparities
    assert json.loads(json.dumps(result.as_dict()))["pos_label"] == "yes"


def test_booleans_pandas_and_arrow_columns_are_accepted() -> None:
    y_true = [True, False, True, True]
    y_pred = [True, True, False, True]
    group = ["a", "b", "a", "b"]
    expected = group_metrics(np.array(y_true), np.array(y_pred), {"g": group}, min_group_size=1)
    as_pandas = group_metrics(
        pd.Series(y_true), pd.Series(y_pred), {"g": pd.Categorical(group)}, min_group_size=1
    )
    as_arrow = group_metrics(
        pa.array(y_true), pa.chunked_array([y_pred]), {"g": pa.array(group)}, min_group_size=1
    )
    assert as_pandas.groups == expected.groups == as_arrow.groups


def test_a_group_of_one_is_flagged_and_left_out_of_the_disparities() -> None:
    y_true = np.array([1, 0, 1, 0, 1, 0, 1])
    y_pred = np.array([1, 0, 1, 1, 0, 0, 0])
    group = np.array(["a", "a", "a", "b", "b", "b", "c"])
    result = group_metrics(y_true, y_pred, {"g": group}, min_group_size=2)
    lonely = result.groups[2]
    assert (lonely.count, lonely.too_small, lonely.selection_rate) == (1, True, 0.0)
    assert lonely.empty_denominators == ["precision", "fpr", "tnr"]
    assert result.disparities["demographic_parity_difference"].groups_compared == 2
    assert result.demographic_parity_difference == pytest.approx(2 / 3 - 1 / 3)


def test_an_empty_intersection_is_listed_and_never_divided_by() -> None:
    y_true = np.array([1, 0, 1, 0])
    y_pred = np.array([1, 0, 0, 1])
    sex = np.array(["f", "f", "m", "m"])
    region = np.array(["n", "n", "n", "s"])
    result = group_metrics(y_true, y_pred, {"sex": sex, "region": region}, min_group_size=1)
    empty = next(g for g in result.groups if g.group == {"sex": "f", "region": "s"})
    assert (empty.count, empty.too_small, empty.tpr, empty.empty_denominators) == (
        0,
        True,
        None,
        [],
    )
    assert empty.label == "sex=f, region=s"
    assert result.disparities["demographic_parity_difference"].groups_compared == 3


def test_fewer_than_two_large_groups_leave_the_disparities_unset() -> None:
    result = group_metrics([1, 0, 1], [1, 1, 0], {"g": ["a", "a", "b"]}, min_group_size=30)
    assert all(d.value is None for d in result.disparities.values())
    verdict = judge(result)
    assert not verdict.passed
    assert verdict.reasons == [
        "demographic parity ratio cannot be judged: 0 group(s) of at least 30 members",
        "too small to judge (under 30 members): a, b",
    ]


# Judging


def fair_and_unfair() -> tuple:
    rng = np.random.default_rng(12)
    group = np.repeat(["a", "b"], 1000)
    y_true = rng.integers(0, 2, 2000)
    fair = rng.integers(0, 2, 2000)
    unfair = (rng.random(2000) < np.where(group == "a", 0.2, 0.6)).astype(int)
    return group_metrics(y_true, fair, {"g": group}), group_metrics(y_true, unfair, {"g": group})


def test_the_four_fifths_rule_passes_fair_and_fails_unfair_selection() -> None:
    fair, unfair = fair_and_unfair()
    assert judge(fair).passed
    verdict = judge(unfair)
    assert not verdict.passed
    assert verdict.reasons[0].startswith("demographic parity ratio 0.3")
    assert verdict.reasons[0].endswith("< 0.8 (a vs b, selection_rate)")


def test_a_policy_from_json_sets_its_limits() -> None:
    fair, _ = fair_and_unfair()
    strict = {"demographic_parity_ratio_min": None, "equalized_odds_difference_max": 0.0001}
    verdict = judge(fair, strict)
    assert not verdict.passed
    assert [c.disparity for c in verdict.checks] == ["equalized_odds_difference"]
    assert verdict.policy == Policy(**strict)
    assert json.loads(json.dumps(verdict.as_dict()))["passed"] is False


def test_small_groups_fail_only_when_the_policy_says_so() -> None:
    group = np.array(["a"] * 40 + ["b"] * 40 + ["c"] * 2)
    y = np.tile([0, 1], 41)
    result = group_metrics(y, y, {"g": group})
    assert judge(result).passed
    assert judge(result).reasons == ["too small to judge (under 30 members): c"]
    assert not judge(result, {"fail_on_small_groups": True}).passed


def test_a_ratio_of_nothing_to_nothing_passes() -> None:
    group = np.repeat(["a", "b"], 40)
    result = group_metrics(np.zeros(80, int), np.zeros(80, int), {"g": group})
    assert result.demographic_parity_ratio is None
    assert judge(result).passed


def test_an_invalid_policy_is_refused() -> None:
    fair, _ = fair_and_unfair()
    with pytest.raises(InvalidPolicy) as caught:
        judge(fair, {"demographic_parity_ratio_min": 1.5, "fail_on_small_groups": "no", "x": 1})
    assert set(caught.value.fields) == {
        "demographic_parity_ratio_min",
        "fail_on_small_groups",
        "x",
    }


# Bad input: each refused with the field named


def test_no_rows_are_refused() -> None:
    with pytest.raises(EmptyData) as caught:
        group_metrics([], [], {"g": []})
    assert set(caught.value.fields) == {"y_true", "y_pred", "g"}
    assert isinstance(caught.value, InvalidInput)


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(LengthMismatch) as caught:
        group_metrics([1, 0], [1, 0, 1], {"g": ["a", "b"]})
    assert caught.value.fields["y_pred"] == ["has 3 rows; y_true has 2"]


def test_more_than_two_labels_are_refused() -> None:
    with pytest.raises(InvalidLabels) as caught:
        group_metrics([0, 1, 2], [0, 1, 1], {"g": ["a", "b", "c"]})
    assert caught.value.fields["y_true"] == [
        "more than two labels across y_true and y_pred: 0, 1, 2"
    ]


def test_a_positive_label_that_is_not_a_label_is_refused() -> None:
    with pytest.raises(InvalidLabels) as caught:
        group_metrics(["no", "yes"], ["yes", "no"], {"g": ["a", "b"]})
    assert caught.value.fields["y_true"] == ["the positive label 1 is not among the labels no, yes"]


def test_missing_labels_are_refused() -> None:
    with pytest.raises(InvalidLabels) as caught:
        group_metrics([1.0, np.nan], [1, 0], {"g": ["a", "b"]})
    assert caught.value.fields == {"y_true": ["has missing values"]}


def test_missing_sensitive_values_are_refused() -> None:
    with pytest.raises(InvalidSensitiveFeatures) as caught:
        group_metrics([1, 0], [1, 0], {"sex": ["f", None]})
    assert caught.value.fields == {"sex": ["has 1 missing values"]}


@pytest.mark.parametrize("sensitive", [{}, {"a": [1], "b": [1], "c": [1]}, ["a"]])
def test_other_than_one_or_two_sensitive_features_are_refused(sensitive: object) -> None:
    with pytest.raises(InvalidSensitiveFeatures) as caught:
        group_metrics([1], [1], sensitive)
    assert list(caught.value.fields) == ["sensitive"]


def test_a_negative_minimum_group_size_is_refused() -> None:
    with pytest.raises(InvalidParameter) as caught:
        group_metrics([1], [1], {"g": ["a"]}, min_group_size=-1)
    assert list(caught.value.fields) == ["min_group_size"]
