import math

import pytest

from governance.approvals.expressions import ExpressionError, evaluate, metrics_of, parse


@pytest.mark.parametrize(
    ("condition", "metrics", "passed"),
    [
        ("accuracy >= 0.9", {"accuracy": 0.9}, True),
        ("accuracy>=0.9", {"accuracy": 0.89}, False),
        ("log_loss < 0.4", {"log_loss": 0.3}, True),
        ("auc > 0.8 and accuracy >= 0.9", {"auc": 0.85, "accuracy": 0.95}, True),
        ("auc > 0.8 and accuracy >= 0.9", {"auc": 0.75, "accuracy": 0.95}, False),
        ("auc > 0.9 or accuracy >= 0.9", {"auc": 0.5, "accuracy": 0.95}, True),
        ("a > 1 or b > 1 and c > 1", {"a": 2, "b": 0, "c": 0}, True),  # and binds tighter
        ("(a > 1 or b > 1) and c > 1", {"a": 2, "b": 0, "c": 0}, False),
        ("val/f1-score != -1e-3", {"val/f1-score": 0.5}, True),
        ("n == 3", {"n": 3}, True),
        ("x <= .5", {"x": 0.5}, True),
    ],
)
def test_conditions_judge_metrics(condition, metrics, passed):
    assert evaluate(parse(condition), metrics).passed is passed


def test_a_missing_metric_is_missing_unless_the_other_side_decides():
    assert evaluate(parse("accuracy >= 0.9"), {}).passed is None
    assert evaluate(parse("auc > 0.8 and accuracy >= 0.9"), {"auc": 0.5}).passed is False
    assert evaluate(parse("auc > 0.8 or accuracy >= 0.9"), {"auc": 0.9}).passed is True
    assert evaluate(parse("auc > 0.8 or accuracy >= 0.9"), {"auc": 0.5}).passed is None


def test_nan_and_text_metrics_never_pass():
    assert evaluate(parse("loss < 1"), {"loss": math.nan}).passed is False
    assert evaluate(parse("loss < 1"), {"loss": "NaN"}).passed is None
    assert evaluate(parse("loss < 1"), {"loss": True}).passed is None


def test_the_reason_names_the_value_and_the_threshold():
    verdict = evaluate(parse("accuracy >= 0.9"), {"accuracy": 0.88})
    assert verdict.reason == "accuracy = 0.88, not >= 0.9"


def test_metrics_of_lists_each_metric_once():
    assert metrics_of(parse("a > 1 and (b < 2 or a < 5)")) == ["a", "b"]


@pytest.mark.parametrize(
    ("condition", "position"),
    [
        ("", 0),
        ("   ", 0),
        ("accuracy", 8),
        ("accuracy >=", 11),
        ("accuracy >= high", 12),
        ("accuracy => 0.9", 9),
        (">= 0.9", 0),
        ("accuracy >= 0.9 and", 19),
        ("accuracy >= 0.9 0.8", 16),
        ("(accuracy >= 0.9", 16),
        ("accuracy >= 0.9)", 15),
        ("accuracy >= 0.9; drop", 15),
        ("accuracy >= 1e999", 12),
        ("a > 1" + " and a > 1" * 60, 500),
    ],
)
def test_a_condition_that_does_not_parse_says_where(condition, position):
    with pytest.raises(ExpressionError) as refused:
        parse(condition)
    assert refused.value.position == position
