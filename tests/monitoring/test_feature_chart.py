"""A feature's history chart: each statistic on its own row with the limit that makes it
drift drawn across that row, and a drifted check marked on every row."""

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from dashboard import charts

THRESHOLDS = {"psi": 0.2, "min_ks_statistic": 0.1, "min_cramers_v": 0.15, "p_value": 0.05}


def points(count: int) -> list:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        SimpleNamespace(at=start + timedelta(hours=n), drifted=n == 1, psi=0.1 * n,
                        statistic=0.05, p_value=0.5)
        for n in range(count)
    ]  # fmt: skip


def test_each_statistic_has_its_limit_line_and_label_on_its_own_row():
    drawn = charts.feature_history(points(3), "numeric", THRESHOLDS)
    lines = {(s["yref"], s["xref"], s["y0"], s["y1"]) for s in drawn["layout"]["shapes"]}
    assert lines == {("y", "x domain", 0.2, 0.2), ("y2", "x2 domain", 0.1, 0.1),
                     ("y3", "x3 domain", 0.05, 0.05)}  # fmt: skip
    assert all(s["line"]["dash"] == "dash" for s in drawn["layout"]["shapes"])
    labels = {(a["yref"], a["text"]) for a in drawn["layout"]["annotations"]}
    assert labels == {("y", "PSI limit 0.2"), ("y2", "KS statistic limit 0.1"),
                      ("y3", "p-value limit 0.05")}  # fmt: skip
    assert [t["yaxis"] for t in drawn["data"]] == ["y", "y2", "y3"]
    assert drawn["data"][0]["marker"]["color"][1] == charts.LIMIT_COLOUR


def test_a_categorical_feature_is_judged_by_cramers_v_limit():
    drawn = charts.feature_history(points(2), "categorical", THRESHOLDS)
    labels = {a["text"] for a in drawn["layout"]["annotations"]}
    assert "Cramér's V limit 0.15" in labels


def test_no_checks_no_chart():
    assert charts.feature_history([], "numeric", THRESHOLDS) is None


def test_the_rows_are_laid_out_as_plotly_lays_out_three_subplots_sharing_their_x_axis():
    from plotly.subplots import make_subplots

    plotly = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    expected = plotly.to_plotly_json()["layout"]
    drawn = charts.feature_history(points(3), "numeric", THRESHOLDS)["layout"]
    for axis in ("xaxis", "xaxis2", "xaxis3", "yaxis", "yaxis2", "yaxis3"):
        assert {k: drawn[axis][k] for k in expected[axis]} == expected[axis]
    assert drawn["template"] == json.loads(plotly.to_json())["layout"]["template"]
