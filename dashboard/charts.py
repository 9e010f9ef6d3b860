"""Plotly figures built from selector output, as plain dicts for `json_script`.

The pages carry no inline script: static/js/charts.js draws every figure it finds.
"""

import functools
import itertools
import json
import math
from collections.abc import Iterable, Mapping

import plotly.graph_objects as go
from plotly.colors import sequential

LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
    "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#1d2330"},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "legend": {"orientation": "h", "y": -0.2},
    "hovermode": "x unified",
}
REFERENCE_COLOUR, CURRENT_COLOUR, LIMIT_COLOUR = "#8a94a6", "#2d5bd7", "#c0392b"


def _number(value: object) -> float | None:
    """A number Plotly.js can draw; anything else, NaN and the infinities (which JSON cannot
    hold) are gaps, as plotly's own JSON writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, int | float) else None


@functools.cache
def _template() -> dict:
    """Plotly's default template as the figures built with plotly carry it: the colours, grid
    and fonts Plotly.js draws with. Shared by every plain figure; never change it in place."""
    return json.loads(go.Figure().to_json())["layout"]["template"]


def _plain(data: list[dict], layout: dict) -> dict:
    """A figure written as the JSON Plotly.js takes, as plotly would write it: building it
    with plotly.graph_objects validates every property, tens of milliseconds on a page."""
    return {"data": data, "layout": {**layout, **LAYOUT, "template": _template()}}


def _colorscale(colours: list[str]) -> list[list]:
    """A named scale's colours spread evenly from 0 to 1, as plotly writes a named colorscale:
    Plotly.js knows some of the same names with other colours."""
    return [[n / (len(colours) - 1), colour] for n, colour in enumerate(colours)]


def _stacked_domains(rows: int, spacing: float) -> list[list[float]]:
    """The vertical domain of each of `rows` subplots in one column, top first, as
    plotly's make_subplots lays them out."""
    height = (1.0 - spacing * (rows - 1)) / rows
    domains, start = [], 0.0
    for _ in range(rows):
        domains.append([start, start + height])
        start += height + spacing
    return domains[::-1]


def metric_histories(histories: Mapping[str, list]) -> dict | None:
    """One line per metric that has more than one step."""
    lines = [
        {"type": "scatter", "x": [step for step, _, _ in points],
         "y": [_number(value) for _, _, value in points], "mode": "lines+markers", "name": key}
        for key, points in sorted(histories.items())
        if len(points) >= 2
    ]  # fmt: skip
    if not lines:
        return None
    return _plain(lines, {"xaxis": {"title": {"text": "step"}}})


def metric_bars(runs: list, metric_keys: Iterable[str]) -> dict | None:
    """Each metric's value per run, grouped by metric."""
    keys = list(metric_keys)
    if not keys:
        return None
    bars = [
        {"type": "bar", "x": keys, "y": [_number(run.metrics.get(key)) for key in keys],
         "name": str(run)[:40]}
        for run in runs
    ]  # fmt: skip
    return _plain(bars, {"barmode": "group"})


def parallel_coordinates(runs: list, param_keys: Iterable[str], target: str) -> dict | None:
    """Params (numbers as numbers, text as categories) on the way to one metric."""
    if not target:
        return None
    dimensions = []
    for key in param_keys:
        values = [run.params.get(key, "") for run in runs]
        try:
            numbers = [_number(float(value)) for value in values]
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
    drawn = _plain(
        [{"type": "parcoords", "dimensions": dimensions[-8:],
          "line": {"color": [s if s is not None else 0 for s in scores],
                   "colorscale": _colorscale(sequential.Blues), "showscale": True}}],
        {},
    )  # fmt: skip
    # The axis labels sit above the plot and the colour scale right of it.
    drawn["layout"] |= {
        "hovermode": False,
        "margin": {**LAYOUT["margin"], "t": 60, "l": 60, "r": 60},
    }
    return drawn


def version_timeline(versions: list) -> dict | None:
    """A model's versions over time."""
    dated = [v for v in versions if v.created_at]
    if not dated:
        return None
    return _plain(
        [{"type": "scatter", "x": [v.created_at.isoformat() for v in dated],
          "y": [v.version for v in dated], "mode": "markers+text",
          "text": [f"v{v.version}" for v in dated], "textposition": "top center",
          "marker": {"size": 10, "color": CURRENT_COLOUR}}],
        {"yaxis": {"title": {"text": "version"}, "dtick": 1}, "showlegend": False},
    )  # fmt: skip


def feature_distribution(feature: Mapping) -> dict | None:
    """One feature of a drift check: the reference's share per bin (or category) beside the
    current data's, from the counts the check kept."""
    if feature.get("kind") == "numeric":
        edges, ref, cur = (feature.get(k) for k in ("bin_edges", "reference_bins", "current_bins"))
        if not edges or not ref or not cur:
            return None
        # the check keeps the inner edges: below the first, between each two, from the last on
        labels = [
            f"< {_short(edges[0])}",
            *(f"{_short(lo)} to {_short(hi)}" for lo, hi in itertools.pairwise(edges)),
            f"≥ {_short(edges[-1])}",
        ]
    else:
        labels = [str(c) for c in feature.get("top_categories") or []]
        ref, cur = feature.get("reference_top_counts"), feature.get("current_top_counts")
        if not labels or not ref or not cur:
            return None
    bars = []
    for name, counts, total, colour in (
        ("reference", ref, feature.get("reference_values"), REFERENCE_COLOUR),
        ("current", cur, feature.get("current_values"), CURRENT_COLOUR),
    ):
        total = total or sum(counts) or 1
        bars.append(
            {"type": "bar", "x": labels[: len(counts)], "y": [c / total for c in counts],
             "name": name, "marker": {"color": colour}}
        )  # fmt: skip
    drawn = _plain(
        bars,
        {
            "barmode": "group",
            "xaxis": {"tickangle": -35},
            "yaxis": {"title": {"text": "share of values"}, "tickformat": ".0%"},
        },
    )
    # Above the plot: the slanted bin labels take the room below it.
    drawn["layout"]["legend"] = {"orientation": "h", "y": 1.12}
    return drawn


def feature_history(points: list, kind: str, thresholds: Mapping[str, float]) -> dict | None:
    """A feature's PSI, effect size and p-value per check, each with the line that makes it
    drift. `points` are FeatureDrift rows, oldest first."""
    if not points:
        return None
    effect = "KS statistic" if kind == "numeric" else "Cramér's V"
    minimum = thresholds["min_ks_statistic" if kind == "numeric" else "min_cramers_v"]
    rows = (
        ("PSI", "psi", thresholds["psi"]),
        (effect, "statistic", minimum),
        ("p-value", "p_value", thresholds["p_value"]),
    )
    when = [p.at.isoformat() for p in points]
    # a drifted check shows red on every statistic
    colours = [LIMIT_COLOUR if p.drifted else CURRENT_COLOUR for p in points]
    data, layout = [], {"showlegend": False, "height": 480, "shapes": [], "annotations": []}
    domains = _stacked_domains(len(rows), 0.08)
    for row, (title, field, limit) in enumerate(rows, start=1):
        axis = "" if row == 1 else str(row)
        data.append(
            {"type": "scatter", "x": when, "y": [getattr(p, field) for p in points],
             "mode": "lines+markers", "name": title, "marker": {"color": colours, "size": 8},
             "line": {"color": CURRENT_COLOUR}, "xaxis": f"x{axis}", "yaxis": f"y{axis}"}
        )  # fmt: skip
        # The x axes are shared: the upper rows follow the lowest and show no tick labels.
        layout[f"xaxis{axis}"] = {"anchor": f"y{axis}", "domain": [0.0, 1.0]}
        if row < len(rows):
            layout[f"xaxis{axis}"] |= {"matches": f"x{len(rows)}", "showticklabels": False}
        layout[f"yaxis{axis}"] = {
            "anchor": f"x{axis}", "domain": domains[row - 1], "title": {"text": title}
        }  # fmt: skip
        # The limit that makes the statistic drift, across its row.
        across = {"xref": f"x{axis} domain", "yref": f"y{axis}"}
        layout["shapes"].append(
            {"type": "line", "x0": 0, "x1": 1, "y0": limit, "y1": limit, **across,
             "line": {"color": LIMIT_COLOUR, "dash": "dash", "width": 1}}
        )  # fmt: skip
        layout["annotations"].append(
            {"text": f"{title} limit {limit:g}", "x": 1, "y": limit, **across,
             "xanchor": "right", "yanchor": "bottom", "showarrow": False, "font": {"size": 10}}
        )  # fmt: skip
    layout[f"yaxis{len(rows)}"] |= {"type": "log", "exponentformat": "power"}
    return _plain(data, layout)


def _short(value: float) -> str:
    """A bin edge for people: whole thousands with separators, else three digits."""
    if not isinstance(value, int | float):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


# Bias reports: per-group rates, with the lines the project's fairness policy draws.

BIAS_RATES = [
    ("selection_rate", "selection rate"),
    ("tpr", "true positive rate"),
    ("fpr", "false positive rate"),
    ("accuracy", "accuracy"),
]
SMALL_GROUP = "#b0b6c3"


def _limit_line(layout: dict, y: float | None, text: str, colour: str = LIMIT_COLOUR) -> None:
    """A dashed line across the plot at `y` with its label above its left end, as plotly's
    add_hline draws it."""
    if y is None:
        return
    across = {"xref": "x domain", "yref": "y"}
    layout.setdefault("shapes", []).append(
        {"type": "line", "x0": 0, "x1": 1, "y0": y, "y1": y, **across,
         "line": {"dash": "dash", "color": colour, "width": 1.5}}
    )  # fmt: skip
    layout.setdefault("annotations", []).append(
        {"text": text, "x": 0, "y": y, **across, "xanchor": "left", "yanchor": "bottom",
         "showarrow": False, "font": {"size": 11, "color": colour}}
    )  # fmt: skip


def _compared(groups: list[dict], metric: str) -> list[float]:
    return [g[metric] for g in groups if not g.get("too_small") and g.get(metric) is not None]


def bias_selection_rates(groups: list[dict], policy: Mapping[str, object]) -> dict | None:
    """Each group's selection rate, groups too small to judge in grey, and the floors the
    policy sets: the demographic-parity ratio limit times the highest compared group's rate, and
    the highest rate less the demographic-parity difference limit."""
    shown = [g for g in groups if g.get("count")]
    if not shown:
        return None
    bar = {
        "type": "bar",
        "x": [g["label"] for g in shown],
        "y": [_number(g.get("selection_rate")) for g in shown],
        "marker": {"color": [SMALL_GROUP if g.get("too_small") else CURRENT_COLOUR for g in shown]},
        "text": [f"n={g['count']}" for g in shown],
        "textposition": "outside",
        "name": "selection rate",
    }
    layout = {
        "yaxis": {"title": {"text": "selection rate"}, "rangemode": "tozero"},
        "showlegend": False,
    }
    rates = _compared(groups, "selection_rate")
    if rates:
        top = max(rates)
        ratio, difference = (
            policy.get("demographic_parity_ratio_min"),
            policy.get("demographic_parity_difference_max"),
        )
        if isinstance(ratio, int | float):
            _limit_line(layout, ratio * top, f"ratio floor: {ratio:g} of {top:.3f}")
        if isinstance(difference, int | float):
            text = f"difference floor: {top:.3f} less {difference:g}"
            _limit_line(layout, top - difference, text)
    return _plain([bar], layout)


def bias_group_rates(groups: list[dict], policy: Mapping[str, object]) -> dict | None:
    """True and false positive rates and accuracy per group, with the bounds the equal
    opportunity and equalized odds limits set from the compared groups' extremes."""
    shown = [g for g in groups if g.get("count")]
    if not shown:
        return None
    labels = [g["label"] for g in shown]
    bars = [
        {"type": "bar", "x": labels, "y": [_number(g.get(metric)) for g in shown], "name": title}
        for metric, title in BIAS_RATES[1:]
    ]
    layout = {"yaxis": {"title": {"text": "rate"}, "range": [0, 1.05]}, "barmode": "group"}
    tprs, fprs = _compared(groups, "tpr"), _compared(groups, "fpr")
    opportunity = policy.get("equal_opportunity_difference_max")
    odds = policy.get("equalized_odds_difference_max")
    odds_ratio = policy.get("equalized_odds_ratio_min")
    if tprs and isinstance(opportunity, int | float):
        _limit_line(
            layout, max(tprs) - opportunity, f"TPR floor (equal opportunity {opportunity:g})"
        )
    if tprs and isinstance(odds, int | float):
        _limit_line(layout, max(tprs) - odds, f"TPR floor (equalized odds {odds:g})", "#8e44ad")
    if fprs and isinstance(odds, int | float):
        _limit_line(layout, min(fprs) + odds, f"FPR ceiling (equalized odds {odds:g})", "#8e44ad")
    if tprs and isinstance(odds_ratio, int | float):
        _limit_line(layout, odds_ratio * max(tprs), f"TPR ratio floor ({odds_ratio:g})", "#d35400")
    if fprs and isinstance(odds_ratio, int | float):
        _limit_line(layout, odds_ratio * max(fprs), f"FPR ratio floor ({odds_ratio:g})", "#d35400")
    return _plain(bars, layout)


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
    data = []
    palette = qualitative.Plotly
    for n, name in enumerate(names):
        colour, label = palette[n % len(palette)], METRIC_NAMES.get(name, name)
        data.append(
            {"type": "scatter", "x": when,
             "y": [_number(b.model_quality["metrics"].get(name)) for b in measured],
             "mode": "lines+markers", "name": label, "line": {"color": colour},
             "text": [f"batch {b.pk}" for b in measured]}
        )  # fmt: skip
        value = _number(reference.get(name))
        if value is not None:
            data.append(
                {"type": "scatter", "x": [when[0], when[-1]], "y": [value, value],
                 "mode": "lines", "name": f"{label} (reference)",
                 "line": {"color": colour, "dash": "dot"}}
            )  # fmt: skip
    return _plain(data, {})
