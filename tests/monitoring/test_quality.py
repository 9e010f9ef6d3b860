"""The data-quality and model-quality engine, checked by hand and against scikit-learn."""

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from governance.monitoring import quality, stats
from governance.monitoring.errors import (
    EmptyData,
    InvalidParameter,
    InvalidThresholds,
    LengthMismatch,
    NoValues,
    TypeMismatch,
    UnsupportedType,
)


def reference() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, 30, 40, 50, 60, 25, 35, 45, 55, None],
            "region": ["north", "south"] * 5,
        }
    )


def test_a_batch_like_the_reference_passes():
    report = quality.data_quality(reference(), reference().iloc[:9].sample(frac=1, random_state=1))
    assert report.passed
    assert report.problems == []
    assert report.columns["age"].out_of_range == 0
    assert report.columns["region"].unseen == 0


def test_missing_rate_and_its_rise_over_the_reference():
    current = reference().assign(age=[20.0, None, None, None, 60, 25, 35, 45, 55, 30])
    column = quality.data_quality(reference(), current).columns["age"]
    assert column.missing_rate == pytest.approx(0.3)
    assert column.missing_rate_reference == pytest.approx(0.1)
    assert column.missing_rate_increase == pytest.approx(0.2)
    assert "missing rate rose from 10.0% to 30.0%" in column.problems[0]


def test_text_in_a_numeric_column_is_a_type_error_with_examples():
    current = reference().assign(
        age=["20", "thirty", "40", "n/a", "60", "25", "35", "45", "55", "30"]
    )
    report = quality.data_quality(reference(), current)
    column = report.columns["age"]
    assert column.type_errors == 2
    assert column.type_error_examples == ["thirty", "n/a"]
    assert (column.min, column.max) == (20, 60)
    assert not report.passed
    assert "'thirty'" in report.problems[0]


def test_numbers_outside_the_reference_range_are_counted_with_what_was_seen():
    current = reference().assign(age=[10.0, 30, 40, 50, 99, 25, 35, 45, 55, 30])
    column = quality.data_quality(reference(), current).columns["age"]
    assert (column.reference_min, column.reference_max) == (20, 60)
    assert (column.min, column.max) == (10, 99)
    assert column.out_of_range == 2
    assert column.out_of_range_share == pytest.approx(0.2)
    assert "outside the reference's [20, 60]" in column.problems[0]


def test_unseen_categories_are_a_share_of_the_values_present():
    current = reference().assign(region=["north", "west", "west", "east", None] * 2)
    column = quality.data_quality(reference(), current).columns["region"]
    assert column.unseen == 6
    assert column.unseen_share == pytest.approx(6 / 8)
    assert column.unseen_examples == ["west", "east"]


def test_repeated_rows_are_counted_over_the_batch():
    current = pd.concat([reference().iloc[:6], reference().iloc[:4]], ignore_index=True)
    report = quality.data_quality(reference(), current)
    assert report.duplicate_rows == 4
    assert report.duplicate_share == pytest.approx(0.4)
    assert any("repeat an earlier row" in p for p in report.problems)


def test_thresholds_decide_pass_or_fail():
    current = pd.concat([reference().iloc[:9], reference().iloc[:1]], ignore_index=True)
    assert not quality.data_quality(reference(), current).passed
    assert quality.data_quality(reference(), current, thresholds={"duplicate_share": 0.2}).passed


def test_arrow_tables_give_the_same_report_as_frames():
    current = reference().assign(age=[10.0, 30, 40, 50, 99, 25, 35, 45, 55, None])
    from_frames = quality.data_quality(reference(), current).as_dict()
    from_arrow = quality.data_quality(
        pa.Table.from_pandas(reference()), pa.Table.from_pandas(current)
    ).as_dict()
    assert from_arrow == from_frames


def test_columns_only_one_side_has_are_listed_not_compared():
    current = reference().drop(columns="region").assign(score=1.0)
    report = quality.data_quality(reference(), current)
    assert list(report.columns) == ["age"]
    assert report.missing_columns == ["region"]
    assert report.extra_columns == ["score"]


def test_named_categorical_columns_are_compared_by_category():
    ref = pd.DataFrame({"code": [1, 2, 3, 1]})
    report = quality.data_quality(ref, pd.DataFrame({"code": [1, 7, 7, 2]}), categorical=["code"])
    assert report.columns["code"].kind == quality.CATEGORICAL
    assert report.columns["code"].unseen_examples == [7]


@pytest.mark.parametrize(
    ("ref", "cur", "error", "field"),
    [
        (reference(), reference().iloc[:0], EmptyData, "current"),
        (reference(), pd.DataFrame({"other": [1]}), EmptyData, "columns"),
        (reference(), [1, 2], InvalidParameter, "current"),
        (
            pa.table({"age": [[1.0, 2.0]]}),
            pa.table({"age": [[1.0]]}),
            UnsupportedType,
            "age",
        ),
    ],
)
def test_data_it_cannot_compare_is_refused_naming_why(ref, cur, error, field):
    with pytest.raises(error) as refused:
        quality.data_quality(ref, cur)
    assert field in refused.value.fields


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ({"duplicate_share": "lots"}, "quality.duplicate_share"),
        ({"duplicate_share": 2}, "quality.duplicate_share"),
        ({"metric_drop": -0.1}, "quality.metric_drop"),
        ({"sharpness": 0.1}, "quality.sharpness"),
        ({"error_rise": True}, "quality.error_rise"),
        ("strict", "quality"),
    ],
)
def test_bad_quality_thresholds_are_refused_naming_the_key(given, key):
    with pytest.raises(InvalidThresholds) as refused:
        quality.thresholds_of({"psi": 0.3, "quality": given})
    assert key in refused.value.fields


def test_drift_thresholds_leave_the_quality_key_to_this_engine():
    thresholds = {"psi": 0.3, "quality": {"duplicate_share": 0.5}}
    assert stats.Thresholds.from_mapping(thresholds).psi == 0.3
    assert quality.thresholds_of(thresholds).duplicate_share == 0.5
    assert quality.thresholds_of({}) == quality.QualityThresholds()


# Model quality against scikit-learn

labels_strategy = st.lists(
    st.tuples(
        st.sampled_from([0, 1, None]),
        st.sampled_from([0, 1]),
        st.floats(0, 1, allow_nan=False),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(rows=labels_strategy)
def test_binary_metrics_are_sklearns_on_the_labelled_rows(rows):
    truth = pd.Series([r[0] for r in rows], dtype="Float64")
    predicted = [r[1] for r in rows]
    scores = [r[2] for r in rows]
    keep = truth.notna().to_numpy()
    if not keep.any():
        with pytest.raises(NoValues):
            quality.model_quality("classification", truth, predicted, scores=scores)
        return
    result = quality.model_quality(
        "classification", truth, predicted, scores=scores, positive_label="1"
    )
    y = truth[keep].astype(int).to_numpy()
    p = np.asarray(predicted)[keep]
    s = np.asarray(scores)[keep]
    assert result.rows == keep.sum()
    assert result.left_out == (~keep).sum()
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    for name, function in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        expected = function(y, p, pos_label=1, zero_division=0, labels=[0, 1])
        assert result.metrics[name] == pytest.approx(expected)
    assert result.metrics["positive_rate"] == pytest.approx(np.mean(p == 1))
    if len(set(y)) == 2:
        assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    else:
        assert result.metrics["roc_auc"] is None
        assert "both classes" in result.notes[0]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=2, max_size=60)
)
def test_regression_metrics_are_sklearns(rows):
    truth = np.array([r[0] for r in rows])
    predicted = np.array([r[1] for r in rows])
    result = quality.model_quality("regression", truth, predicted)
    assert result.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(truth, predicted))
    assert result.metrics["mae"] == pytest.approx(skm.mean_absolute_error(truth, predicted))
    if np.ptp(truth) > 0:
        assert result.metrics["r2"] == pytest.approx(skm.r2_score(truth, predicted))
    else:
        assert result.metrics["r2"] is None


def test_text_classes_take_the_named_positive_label():
    truth = ["yes", "no", "yes", "yes", "no"]
    predicted = ["yes", "yes", "no", "yes", "no"]
    result = quality.model_quality("classification", truth, predicted, positive_label="no")
    assert result.positive_label == "no"
    assert result.metrics["precision"] == pytest.approx(
        skm.precision_score(truth, predicted, pos_label="no")
    )


def test_labels_read_as_decimals_are_the_same_classes_as_whole_numbers():
    result = quality.model_quality("classification", [1.0, 0.0, None], np.array([1, 0, 1]))
    assert result.classes == ["0", "1"]
    assert result.metrics["accuracy"] == 1.0


def test_many_classes_average_over_classes():
    truth, predicted = ["a", "b", "c", "a"], ["a", "b", "b", "c"]
    result = quality.model_quality("classification", truth, predicted)
    assert result.metrics["f1"] == pytest.approx(
        skm.f1_score(truth, predicted, average="macro", zero_division=0)
    )
    assert result.metrics["roc_auc"] is None


def test_one_class_present_gives_what_can_be_measured():
    result = quality.model_quality("classification", [1, 1, 1], [1, 1, 0], scores=[0.9, 0.8, 0.3])
    assert result.metrics["accuracy"] == pytest.approx(2 / 3)
    assert result.metrics["recall"] == pytest.approx(2 / 3)
    assert result.metrics["roc_auc"] is None


@pytest.mark.parametrize(
    ("task", "labels", "predictions", "options", "error", "words"),
    [
        ("classification", [1, 0], [1], {}, LengthMismatch, "2 labels but 1 predictions"),
        ("classification", [1, 0], [1, 0], {"scores": [0.5]}, LengthMismatch, "1 scores"),
        ("regression", ["high", 2], [1, 2], {}, TypeMismatch, "'high'"),
        ("classification", [None, None], [1, 0], {}, NoValues, "No row"),
        ("regression", [np.nan], [1.0], {}, NoValues, "No row"),
        ("ranking", [1], [1], {}, InvalidParameter, "ranking"),
        ("classification", [1, 0], [1, 0], {"positive_label": "yes"}, InvalidParameter, "yes"),
    ],
)
def test_bad_model_quality_input_is_refused_clearly(
    task, labels, predictions, options, error, words
):
    with pytest.raises(error) as refused:
        quality.model_quality(task, labels, predictions, **options)
    assert words in refused.value.message


def test_a_drop_beyond_the_threshold_is_degraded_and_within_it_is_not():
    ref = quality.ModelQuality("classification", 100, 0, {"accuracy": 0.9, "f1": 0.8}, [], [], "1")
    now = quality.ModelQuality("classification", 100, 0, {"accuracy": 0.8, "f1": 0.78}, [], [], "1")
    changes = quality.compare(now, ref)
    assert changes["accuracy"].degraded
    assert "accuracy fell from 0.900 to 0.800" in changes["accuracy"].reason
    assert not changes["f1"].degraded


def test_errors_degrade_when_they_rise_by_more_than_the_share():
    ref = quality.ModelQuality(
        "regression", 10, 0, {"rmse": 1.0, "mae": 1.0, "r2": None}, [], [], None
    )
    now = quality.ModelQuality(
        "regression", 10, 0, {"rmse": 1.2, "mae": 1.05, "r2": 0.5}, [], [], None
    )
    changes = quality.compare(now, ref)
    assert changes["rmse"].degraded
    assert not changes["mae"].degraded
    assert "r2" not in changes
    relaxed = quality.compare(now, ref, quality.QualityThresholds(error_rise=0.5))
    assert not relaxed["rmse"].degraded


def test_reports_are_plain_json():
    import json

    report = quality.data_quality(reference(), reference())
    again = json.loads(json.dumps(report.as_dict()))
    assert again["passed"] is True
    result = quality.model_quality("classification", [1, 0], [1, 1], scores=[0.7, 0.6])
    assert quality.ModelQuality.from_dict(json.loads(json.dumps(result.as_dict()))) == result
    assert not math.isnan(result.metrics["roc_auc"])
