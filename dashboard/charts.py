"""Plotly figures built from selector output, as plain dicts for `json_script`.

The pages carry no inline script: static/js/charts.js draws every figure it finds.
"""

import json
from collections.abc import Iterable, Mapping

import plotly.graph_objects as go

LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
    "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#1d2330"},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "legend": {"orientation": "h", "y": -0.2},
    "hovermode": "x unified",
}


def _number(value: object) -> float | None:
    return value if isinstance(value, int | float) else None


def _figure(figure: go.Figure) -> dict:
    figure.update_layout(**LAYOUT)
    return json.loads(figure.to_json())


def metric_histories(histories: Mapping[str, list]) -> dict | None:
    """One line per metric that has more than one step."""
    figure = go.Figure()
    for key, points in sorted(histories.items()):
        if len(points) < 2:
            continue
        figure.add_scatter(
            x=[step for step, _, _ in points],
            y=[_number(value) for _, _, value in points],
            mode="lines+markers",
            name=key,
        )
    if not figure.data:
        return None
    figure.update_xaxes(title="step")
    return _figure(figure)


def metric_bars(runs: list, metric_keys: Iterable[str]) -> dict | None:
    """Each metric's value per run, grouped by metric."""
    keys = list(metric_keys)
    if not keys:
        return None
    figure = go.Figure()
    for run in runs:
        figure.add_bar(
            x=keys, y=[_number(run.metrics.get(key)) for key in keys], name=str(run)[:40]
        )
    figure.update_layout(barmode="group")
    return _figure(figure)


def parallel_coordinates(runs: list, param_keys: Iterable[str], target: str) -> dict | None:
    """Params (numbers as numbers, text as categories) on the way to one metric."""
    if not target:
        return None
    dimensions = []
    for key in param_keys:
        values = [run.params.get(key, "") for run in runs]
        try:
            numbers = [float(value) for value in values]
            dimensions.append({"label": key, "values": numbers})
        except ValueError:
            labels = sorted(set(values))
            dimensions.append(
                {
                    "label": key,
                    "values": [labels.index(value) for value in values],
                    "tickvals": list(range(len(labels))),
                    "ticktext": labels,
                }
            )
    scores = [_number(run.metrics.get(target)) for run in runs]
    dimensions.append({"label": target, "values": scores})
    figure = go.Figure(
        go.Parcoords(
            line={"color": [s if s is not None else 0 for s in scores], "colorscale": "Blues",
                  "showscale": True},
            dimensions=dimensions[-8:],
        )
    )  # fmt: skip
    figure = go.Figure(_figure(figure))
    figure.update_layout(hovermode=False, margin={"t": 60, "l": 60, "r": 60})
    return json.loads(figure.to_json())


def version_timeline(versions: list) -> dict | None:
    """A model's versions over time."""
    dated = [v for v in versions if v.created_at]
    if not dated:
        return None
    figure = go.Figure(
        go.Scatter(
            x=[v.created_at.isoformat() for v in dated],
            y=[v.version for v in dated],
            mode="markers+text",
            text=[f"v{v.version}" for v in dated],
            textposition="top center",
            marker={"size": 10, "color": "#2d5bd7"},
        )
    )
    figure.update_yaxes(title="version", dtick=1)
    figure.update_layout(showlegend=False, hovermode="closest")
    return _figure(figure)


def quality_over_time(batches: list, reference: Mapping[str, object]) -> dict | None:
    """Each model-quality metric per measured batch over time, and the reference's value of
    it as a dotted line in the same colour."""
    from plotly.colors import qualitative

    from governance.monitoring.quality import METRIC_NAMES

    measured = sorted(
        (b for b in batches if b.model_quality_state == "done" and b.model_quality.get("metrics")),
        key=lambda b: (b.received_at, b.pk),
    )
    if not measured:
        return None
    names = list(dict.fromkeys(m for b in measured for m in b.model_quality["metrics"]))
    when = [b.received_at.isoformat() for b in measured]
    figure = go.Figure()
    palette = qualitative.Plotly
    for n, name in enumerate(names):
        colour, label = palette[n % len(palette)], METRIC_NAMES.get(name, name)
        figure.add_scatter(
            x=when,
            y=[_number(b.model_quality["metrics"].get(name)) for b in measured],
            mode="lines+markers",
            name=label,
            line={"color": colour},
            text=[f"batch {b.pk}" for b in measured],
        )
        value = _number(reference.get(name))
        if value is not None:
            figure.add_scatter(
                x=[when[0], when[-1]],
                y=[value, value],
                mode="lines",
                name=f"{label} (reference)",
                line={"color": colour, "dash": "dot"},
            )
    figure.update_xaxes(title="batch received")
    return _figure(figure)
