"""The drift engine against SciPy, on generated data with ties, constants and odd sizes; and
every kind of bad input it refuses, each with the column named."""

import itertools
import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from governance.errors import InvalidInput
from governance.monitoring.errors import (
    ColumnsDiffer,
    EmptyData,
    InvalidParameter,
    InvalidThresholds,
    NoValues,
    TypeMismatch,
    UnsupportedType,
)
from governance.monitoring.stats import DriftResult, Thresholds, decide, drift, quantile_edges

# SciPy says so when its exact KS p-value does not converge and it takes the asymptotic one; the
# engine calls the same function and reports the method it got.
pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs))


def reference_histograms(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple:
    """PSI's bins as the docs define them, built the slow obvious way."""
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    bounds = [-np.inf, *edges, np.inf]
    count = [
        [int(((x >= lo) & (x < hi)).sum()) for lo, hi in itertools.pairwise(bounds)]
        for x in (ref, cur)
    ]
    return edges, np.array(count[0]), np.array(count[1])


def reference_psi(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float = 1e-4) -> float:
    total = 0.0
    for r, c in zip(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), strict=True):
        r, c = r or epsilon, c or epsilon
        total += (c - r) * math.log(c / r)
    return total


# Values with many ties (small integers), wide floats, and constants.
tied = st.integers(-3, 3).map(float)
wide = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = st.one_of(
    st.lists(tied, min_size=1, max_size=60),
    st.lists(st.one_of(tied, wide), min_size=1, max_size=60),
    st.tuples(st.one_of(tied, wide), st.integers(1, 40)).map(lambda t: [t[0]] * t[1]),
)


@EXAMPLES
@given(ref=samples, cur=samples, bins=st.integers(2, 12))
def test_numeric_statistics_match_scipy(ref: list[float], cur: list[float], bins: int) -> None:
    result = drift({"x": ref}, {"x": cur}, bins=bins).features["x"]
    a, b = np.array(ref), np.array(cur)
    ks = stats.ks_2samp(a, b)
    assert result.kind == "numeric"
    assert close(result.ks_statistic, ks.statistic)
    assert close(result.ks_p_value, ks.pvalue)
    assert result.ks_method in {"exact", "asymp"}
    assert close(result.wasserstein, stats.wasserstein_distance(a, b))
    edges, ref_counts, cur_counts = reference_histograms(a, b, bins)
    assert result.bin_edges == edges.tolist()
    assert result.reference_bins == ref_counts.tolist()
    assert result.current_bins == cur_counts.tolist()
    assert close(result.psi, reference_psi(ref_counts, cur_counts))
    assert close(result.js_distance, jensenshannon(ref_counts, cur_counts, base=2))


@EXAMPLES
@given(
    ref=st.lists(st.sampled_from("abcde"), min_size=1, max_size=80),
    cur=st.lists(st.sampled_from("abcdef"), min_size=1, max_size=80),
)
def test_categorical_statistics_match_scipy(ref: list[str], cur: list[str]) -> None:
    result = drift({"c": ref}, {"c": cur}).features["c"]
    table = pd.crosstab(
        np.array(["reference"] * len(ref) + ["current"] * len(cur)), np.array(ref + cur)
    )
    chi2 = stats.chi2_contingency(table.to_numpy(), correction=False)
    assert result.kind == "categorical"
    assert close(result.chi2_statistic, chi2.statistic)
    assert close(result.chi2_p_value, chi2.pvalue)
    assert result.chi2_dof == chi2.dof
    ref_counts = table.loc["reference"].to_numpy()
    cur_counts = table.loc["current"].to_numpy()
    assert close(result.js_distance, jensenshannon(ref_counts, cur_counts, base=2))
    assert close(result.psi, reference_psi(ref_counts, cur_counts))
    if table.shape[1] > 1:
        v = stats.contingency.association(table.to_numpy(), method="cramer", correction=False)
        assert close(result.cramers_v, v)
    assert set(result.new_categories) == set(cur) - set(ref)
    assert set(result.vanished_categories) == set(ref) - set(cur)
    assert close(result.new_category_share, sum(c not in set(ref) for c in cur) / len(cur))


def test_large_samples_take_the_asymptotic_p_value_as_scipy_does() -> None:
    rng = np.random.default_rng(7)
    a = np.round(rng.normal(size=30_000), 2)
    b = np.round(rng.normal(0.03, 1, size=25_000), 2)
    result = drift({"x": a}, {"x": b}).features["x"]
    ks = stats.ks_2samp(a, b)
    assert result.ks_method == "asymp"
    assert close(result.ks_statistic, ks.statistic)
    assert close(result.ks_p_value, ks.pvalue)
    assert close(result.wasserstein, stats.wasserstein_distance(a, b))


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.one_of(tied, wide), min_size=1, max_size=200), bins=st.integers(2, 30))
def test_quantile_edges_are_numpys(values: list[float], bins: int) -> None:
    x = np.sort(np.array(values))
    expected = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
    assert np.array_equal(quantile_edges(x, bins), expected)


def test_threads_give_the_same_result_as_one() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {f"x{i}": rng.normal(size=40_000) for i in range(4)}
        | {"c": rng.choice(["a", "b", "c"], 40_000)}
    )
    other = frame.sample(frac=1.0, random_state=1).reset_index(drop=True) * 1
    assert drift(frame, other, workers=2) == drift(frame, other, workers=1)


def test_arrow_tables_and_mappings_give_what_dataframes_give() -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    cur = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(["a", "c"], 400)})
    expected = drift(ref, cur)
    assert drift(pa.Table.from_pandas(ref), pa.Table.from_pandas(cur)) == expected
    as_arrays = drift({k: v.to_numpy() for k, v in ref.items()}, dict(cur.items()))
    assert as_arrays == expected


def test_missing_values_are_left_out_and_their_rate_reported() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "n": pd.array([1, None, 3, 4], "Int64")})
    cur = pd.DataFrame({"x": [1.0, None, None, 5.0], "n": pd.array([1, 2, 3, 4], "Int64")})
    result = drift(ref, cur).features
    assert result["x"].missing_rate_reference == 0.25
    assert result["x"].missing_rate_current == 0.5
    assert result["x"].missing_rate_change == 0.25
    assert close(result["x"].ks_statistic, stats.ks_2samp([1, 2, 4], [1, 5]).statistic)
    assert result["n"].missing_rate_reference == 0.25
    assert result["n"].current_values == 4


def test_a_numeric_column_holding_text_counts_type_errors() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    cur = pd.DataFrame({"x": ["1.5", "n/a", 2, "oops", None, float("inf")]})
    result = drift(ref, cur).features["x"]
    assert result.kind == "numeric"
    assert result.type_errors_current == 3
    assert result.type_error_examples == ["n/a", "oops", "inf"]
    assert result.missing_rate_current == 1 / 6
    assert result.current_values == 2
    assert close(result.ks_statistic, stats.ks_2samp([1, 2, 3, 4], [1.5, 2]).statistic)
    verdict = decide(drift(ref, cur))
    assert "50.0% of current values are not numbers ('n/a', 'oops', 'inf')" in (
        verdict.features["x"].reasons
    )


def test_constant_columns_are_compared_not_refused() -> None:
    same = drift({"k": [2.0] * 5}, {"k": [2.0] * 7}).features["k"]
    assert (same.ks_statistic, same.ks_p_value, same.psi, same.js_distance) == (0, 1, 0, 0)
    assert same.wasserstein == 0
    assert same.bin_edges == [2.0]
    assert same.reference_bins == [0, 5]
    moved = drift({"k": [2.0] * 5}, {"k": [3.0] * 7}).features["k"]
    ks = stats.ks_2samp([2.0] * 5, [3.0] * 7)
    assert (moved.ks_statistic, moved.ks_p_value) == (1.0, ks.pvalue)
    assert moved.wasserstein == 1.0


def test_a_single_category_has_a_chi_square_of_zero_with_no_freedom() -> None:
    result = drift({"c": ["a"] * 3}, {"c": ["a"] * 9}).features["c"]
    assert (result.chi2_statistic, result.chi2_dof, result.chi2_p_value) == (0, 0, 1)
    assert (result.cramers_v, result.psi, result.js_distance) == (0, 0, 0)


def test_categories_listed_are_capped_but_counted_whole() -> None:
    ref = [f"r{i}" for i in range(30)]
    cur = [f"c{i}" for i in range(25)] + ["c0"] * 5
    result = drift({"c": ref}, {"c": cur}, max_listed=3).features["c"]
    assert result.new_categories[0] == "c0"
    assert len(result.new_categories) == 3
    assert result.new_category_count == 25
    assert result.vanished_category_count == 30
    assert result.vanished_category_share == 1.0


def test_results_round_trip_through_json() -> None:
    rng = np.random.default_rng(5)
    ref = {"x": rng.normal(size=300), "c": rng.choice(["a", "b"], 300), "b": rng.random(300) > 0.5}
    cur = {"x": rng.normal(size=200), "c": rng.choice(["a", "z"], 200), "b": rng.random(200) > 0.2}
    result = drift(ref, cur)
    assert result.features["b"].kind == "categorical"
    stored = json.loads(json.dumps(result.as_dict()))
    assert DriftResult.from_dict(stored) == result
    assert json.loads(json.dumps(decide(result).as_dict()))["features"]["c"]["drifted"]


# Deciding


def test_huge_samples_do_not_alarm_on_noise() -> None:
    rng = np.random.default_rng(6)
    ref = {"x": rng.normal(size=400_000)}
    cur = {"x": rng.normal(0.02, 1, size=400_000)}
    result = drift(ref, cur)
    assert result.features["x"].ks_p_value < 0.01
    verdict = decide(result)
    assert not verdict.features["x"].drifted
    assert not verdict.drifted


def test_a_shift_drifts_and_says_why() -> None:
    rng = np.random.default_rng(8)
    ref = {"x": rng.normal(size=5000), "y": rng.normal(size=5000)}
    cur = {"x": rng.normal(1, 1, size=5000), "y": rng.normal(size=5000)}
    verdict = decide(drift(ref, cur))
    assert verdict.features["x"].drifted
    assert verdict.features["x"].reasons[0].startswith("PSI ")
    assert verdict.features["x"].reasons[1].startswith("KS p-value ")
    assert not verdict.features["y"].drifted
    assert verdict.drifted  # 1 of 2 is the default 50% share
    assert verdict.reasons == ["1 of 2 features drifted (50%), at least the 50% share: x"]
    assert not decide(drift(ref, cur), {"drifted_share": 0.6}).drifted


def test_a_rising_missing_rate_drifts() -> None:
    ref = {"x": [1.0, 2.0, 3.0, 4.0] * 10}
    cur = {"x": [1.0, 2.0, 3.0, 4.0] * 9 + [None] * 12}
    reasons = decide(drift(ref, cur)).features["x"].reasons
    assert reasons == ["missing rate rose from 0.0% to 25.0%"]


def test_thresholds_from_json_are_checked() -> None:
    result = drift({"x": [1.0, 2.0]}, {"x": [1.0, 3.0]})
    with pytest.raises(InvalidThresholds) as caught:
        decide(result, {"psi": -1, "p_value": "0.05", "share": 0.5})
    assert set(caught.value.fields) == {"psi", "p_value", "share"}
    assert decide(result, {"psi": 0.1}).thresholds == Thresholds(psi=0.1)


# Bad input: each refused with the columns named


def test_different_columns_are_refused() -> None:
    with pytest.raises(ColumnsDiffer) as caught:
        drift({"x": [1.0], "y": [2.0]}, {"x": [1.0], "z": [2.0]})
    assert caught.value.fields == {
        "y": ["is in the reference data but not in the current data"],
        "z": ["is in the current data but not in the reference data"],
    }
    assert isinstance(caught.value, InvalidInput)


def test_text_where_the_reference_has_categories_of_numbers_is_refused() -> None:
    with pytest.raises(TypeMismatch) as caught:
        drift({"c": ["a", "b"], "x": [1.0, 2.0]}, {"c": [1.0, 2.0], "x": [1.0, 2.0]})
    assert caught.value.fields == {
        "c": ["holds text values in the reference data but number values in the current data"]
    }


def test_booleans_in_a_numeric_column_are_refused() -> None:
    with pytest.raises(TypeMismatch) as caught:
        drift({"x": [1.0, 2.0]}, {"x": [True, False]})
    assert list(caught.value.fields) == ["x"]


def test_dates_are_refused() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(UnsupportedType) as caught:
        drift({"when": [moment]}, {"when": [moment]})
    assert list(caught.value.fields) == ["when"]


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(EmptyData) as caught:
        drift(pd.DataFrame({"x": [1.0], "c": ["a"]}), pd.DataFrame({"x": [], "c": []}))
    assert caught.value.fields == {
        "x": ["the current data has no rows"],
        "c": ["the current data has no rows"],
    }


def test_data_with_no_columns_is_refused() -> None:
    with pytest.raises(EmptyData):
        drift(pd.DataFrame(), pd.DataFrame())


def test_an_all_missing_column_is_refused() -> None:
    with pytest.raises(NoValues) as caught:
        drift({"x": [1.0, 2.0], "y": [1.0, 2.0]}, {"x": [None, None], "y": [3.0, 4.0]})
    assert caught.value.fields == {"x": ["no values in the current data (2 missing)"]}


def test_a_numeric_column_of_text_alone_is_refused() -> None:
    with pytest.raises(NoValues) as caught:
        drift({"x": [1.0, 2.0]}, {"x": ["a", None]})
    assert caught.value.fields == {
        "x": ["no values in the current data (1 missing, 1 not numbers)"]
    }


def test_unknown_categorical_columns_and_bad_bins_are_refused() -> None:
    with pytest.raises(InvalidParameter) as caught:
        drift({"x": [1.0]}, {"x": [1.0]}, categorical=["colour"])
    assert list(caught.value.fields) == ["colour"]
    with pytest.raises(InvalidParameter) as caught:
        drift({"x": [1.0]}, {"x": [1.0]}, bins=1)
    assert list(caught.value.fields) == ["bins"]


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(InvalidParameter) as caught:
        drift({"x": [1.0, 2.0], "y": [1.0]}, {"x": [1.0], "y": [1.0]})
    assert list(caught.value.fields) == ["y"]


def test_columns_named_by_numbers_are_read_and_reported_by_name() -> None:
    result = drift(pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"]}), pd.DataFrame({0: [2.0], 1: ["a"]}))
    assert list(result.features) == ["0", "1"]
    assert result.features["1"].kind == "categorical"


def test_an_all_missing_text_column_is_refused() -> None:
    text = pd.Series(["a", "b"], dtype="str")
    with pytest.raises(NoValues) as caught:
        drift({"c": text}, {"c": pd.Series([None, None], dtype="str")})
    assert caught.value.fields == {"c": ["no values in the current data (2 missing)"]}
