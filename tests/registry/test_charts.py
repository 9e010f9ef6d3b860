"""The registry pages' charts (run, compare, model) are written as Plotly.js JSON: each is the
figure plotly builds from the same input, checked here against plotly itself."""

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import plotly.graph_objects as go
import pytest

from dashboard import charts


class Run(SimpleNamespace):
    def __str__(self) -> str:
        return self.name


def drawn(figure: dict | None) -> dict | None:
    """The figure as the page's JSON carries it, which holds no NaN or infinity."""
    return None if figure is None else json.loads(json.dumps(figure, allow_nan=False))


def plotly(figure: go.Figure, **layout) -> dict:
    """What plotly writes for `figure` with the house layout, then `layout`, over it."""
    figure.update_layout(**charts.LAYOUT)
    figure.update_layout(**layout)
    return json.loads(figure.to_json())


def number(value: object) -> float | None:
    return value if isinstance(value, int | float) else None


def runs() -> list[Run]:
    return [
        Run(name="a run with a name longer than forty characters", metrics={"auc": 0.9, "loss": 3},
            params={"C": "1.0", "solver": "lbfgs", "depth": "3", "alpha": "inf"}),
        Run(name="second", metrics={"auc": 0.8},
            params={"C": "0.1", "solver": "saga", "depth": ""}),
        Run(name="third", metrics={"auc": "NaN", "loss": 0.25},
            params={"C": "nan", "solver": "lbfgs", "alpha": "1e-3"}),
    ]  # fmt: skip


HISTORIES = {
    "several metrics, one of a single step": {
        "loss": [[0, 1, 0.5], [1, 2, 0.4], [2, 3, "NaN"]],
        "auc": [[0, 1, 0.7], [1, 2, 0.8]],
        "lr": [[0, 1, 0.1]],
        "odd": [[0, 1, None], [3, 2, float("nan")], [4, 3, float("inf")]],
    },
    "a single step": {"lr": [[0, 1, 0.1]]},
    "no metrics": {},
}


@pytest.mark.parametrize("histories", HISTORIES.values(), ids=HISTORIES.keys())
def test_metric_histories_are_what_plotly_draws(histories):
    reference = go.Figure()
    for key, points in sorted(histories.items()):
        if len(points) >= 2:
            reference.add_scatter(
                x=[step for step, _, _ in points],
                y=[number(value) for _, _, value in points],
                mode="lines+markers",
                name=key,
            )
    reference.update_xaxes(title="step")
    expected = plotly(reference) if reference.data else None
    assert drawn(charts.metric_histories(histories)) == expected


BARS = {
    "runs missing metrics": (runs(), ["auc", "loss"]),
    "one run, one metric": (runs()[:1], ["auc"]),
    "no runs": ([], ["auc"]),
}


@pytest.mark.parametrize(("runs", "keys"), BARS.values(), ids=BARS.keys())
def test_metric_bars_are_what_plotly_draws(runs, keys):
    reference = go.Figure()
    for run in runs:
        reference.add_bar(x=keys, y=[number(run.metrics.get(k)) for k in keys], name=str(run)[:40])
    assert drawn(charts.metric_bars(runs, keys)) == plotly(reference, barmode="group")


def test_no_metrics_no_bars():
    assert charts.metric_bars(runs(), []) is None


PARALLEL = {
    "numbers, blanks, text, nan, inf, no score": (["C", "alpha", "depth", "solver"], "auc"),
    "more params than fit, the last kept": ([f"p{n}" for n in range(10)], "loss"),
    "no params": ([], "loss"),
}  # fmt: skip


@pytest.mark.parametrize(("params", "target"), PARALLEL.values(), ids=PARALLEL.keys())
def test_parallel_coordinates_are_what_plotly_draws(params, target):
    compared = runs()
    for n, run in enumerate(compared):
        run.params |= {f"p{k}": str(k * n) for k in range(10)}
    dimensions = []
    for key in params:
        values = [run.params.get(key, "") for run in compared]
        try:
            dimensions.append({"label": key, "values": [float(v) for v in values]})
        except ValueError:
            labels = sorted(set(values))
            dimensions.append(
                {"label": key, "values": [labels.index(v) for v in values],
                 "tickvals": list(range(len(labels))), "ticktext": labels}
            )  # fmt: skip
    scores = [number(run.metrics.get(target)) for run in compared]
    dimensions.append({"label": target, "values": scores})
    reference = go.Figure(
        go.Parcoords(
            line={"color": [s if s is not None else 0 for s in scores], "colorscale": "Blues",
                  "showscale": True},
            dimensions=dimensions[-8:],
        )
    )  # fmt: skip
    expected = plotly(reference, hovermode=False, margin={"t": 60, "l": 60, "r": 60})
    assert drawn(charts.parallel_coordinates(compared, params, target)) == expected


def test_no_metric_to_follow_no_parallel_coordinates():
    assert charts.parallel_coordinates(runs(), ["C"], "") is None


START = datetime(2026, 1, 1, tzinfo=UTC)
TIMELINES = {
    "one undated among dated": [(1, START), (2, None), (3, START + timedelta(days=2))],
    "a single version": [(7, START)],
}


@pytest.mark.parametrize("versions", TIMELINES.values(), ids=TIMELINES.keys())
def test_version_timeline_is_what_plotly_draws(versions):
    versions = [SimpleNamespace(version=v, created_at=at) for v, at in versions]
    dated = [v for v in versions if v.created_at]
    reference = go.Figure(
        go.Scatter(
            x=[v.created_at.isoformat() for v in dated],
            y=[v.version for v in dated],
            mode="markers+text",
            text=[f"v{v.version}" for v in dated],
            textposition="top center",
            marker={"size": 10, "color": "#2d5bd7"},
        )
    )
    reference.update_yaxes(title="version", dtick=1)
    reference.update_layout(showlegend=False)
    assert drawn(charts.version_timeline(versions)) == plotly(reference)


@pytest.mark.parametrize("versions", [[], [SimpleNamespace(version=1, created_at=None)]])
def test_no_dated_versions_no_timeline(versions):
    assert charts.version_timeline(versions) is None
