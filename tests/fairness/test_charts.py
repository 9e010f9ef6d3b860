"""A bias report's charts are written as Plotly.js JSON: each is the figure plotly builds from
the same groups and policy, limit lines and their labels included, checked against plotly."""

import json

import plotly.graph_objects as go
import pytest

from dashboard import charts

GROUPS = [
    {"label": "a", "count": 100, "selection_rate": 0.5, "tpr": 0.8, "fpr": 0.1, "accuracy": 0.9},
    {"label": "b", "count": 80, "selection_rate": 0.3, "tpr": 0.6, "fpr": 0.2, "accuracy": 0.85},
    {"label": "tiny", "count": 3, "too_small": True, "selection_rate": 1.0, "tpr": 1.0,
     "fpr": 0.0, "accuracy": 1.0},
    {"label": "nobody", "count": 0, "selection_rate": None, "tpr": None, "fpr": None,
     "accuracy": None},
    {"label": "no positives", "count": 10, "selection_rate": 0.1, "tpr": None, "fpr": 0.05,
     "accuracy": 0.7},
]  # fmt: skip
EVERY_LIMIT = {
    "demographic_parity_ratio_min": 0.8,
    "demographic_parity_difference_max": 0.1,
    "equal_opportunity_difference_max": 0.1,
    "equalized_odds_difference_max": 0.15,
    "equalized_odds_ratio_min": 0.7,
}
CASES = {
    "every limit": (GROUPS, EVERY_LIMIT),
    "no limits": (GROUPS, {}),
    "some limits, one unset": (
        GROUPS,
        {"demographic_parity_ratio_min": 0.8, "demographic_parity_difference_max": None,
         "equalized_odds_difference_max": 0.2, "equalized_odds_ratio_min": 1},
    ),
    "every group too small to compare": (GROUPS[2:3], EVERY_LIMIT),
}  # fmt: skip


def drawn(figure: dict | None) -> dict | None:
    """The figure as the page's JSON carries it, which holds no NaN or infinity."""
    return None if figure is None else json.loads(json.dumps(figure, allow_nan=False))


def plotly(figure: go.Figure) -> dict:
    figure.update_layout(**charts.LAYOUT)
    return json.loads(figure.to_json())


def limit_line(figure: go.Figure, y: float, text: str, colour: str = "#c0392b") -> None:
    figure.add_hline(
        y=y,
        line={"dash": "dash", "color": colour, "width": 1.5},
        annotation_text=text,
        annotation_position="top left",
        annotation_font={"size": 11, "color": colour},
    )


def compared(groups: list[dict], metric: str) -> list[float]:
    return [g[metric] for g in groups if not g.get("too_small") and g.get(metric) is not None]


@pytest.mark.parametrize(("groups", "policy"), CASES.values(), ids=CASES.keys())
def test_selection_rates_are_what_plotly_draws(groups, policy):
    reference = go.Figure(
        go.Bar(
            x=[g["label"] for g in groups if g["count"]],
            y=[g["selection_rate"] for g in groups if g["count"]],
            marker={"color": ["#b0b6c3" if g.get("too_small") else "#2d5bd7"
                              for g in groups if g["count"]]},
            text=[f"n={g['count']}" for g in groups if g["count"]],
            textposition="outside",
            name="selection rate",
        )
    )  # fmt: skip
    if rates := compared(groups, "selection_rate"):
        top, ratio = max(rates), policy.get("demographic_parity_ratio_min")
        difference = policy.get("demographic_parity_difference_max")
        if ratio is not None:
            limit_line(reference, ratio * top, f"ratio floor: {ratio:g} of {top:.3f}")
        if difference is not None:
            limit_line(
                reference, top - difference, f"difference floor: {top:.3f} less {difference:g}"
            )
    reference.update_yaxes(title="selection rate", rangemode="tozero")
    reference.update_layout(showlegend=False)
    assert drawn(charts.bias_selection_rates(groups, policy)) == plotly(reference)


@pytest.mark.parametrize(("groups", "policy"), CASES.values(), ids=CASES.keys())
def test_error_rates_are_what_plotly_draws(groups, policy):
    shown = [g for g in groups if g["count"]]
    reference = go.Figure()
    for metric, title in (
        ("tpr", "true positive rate"),
        ("fpr", "false positive rate"),
        ("accuracy", "accuracy"),
    ):
        reference.add_bar(x=[g["label"] for g in shown], y=[g[metric] for g in shown], name=title)
    tprs, fprs = compared(groups, "tpr"), compared(groups, "fpr")
    opportunity = policy.get("equal_opportunity_difference_max")
    odds, odds_ratio = (
        policy.get("equalized_odds_difference_max"),
        policy.get("equalized_odds_ratio_min"),
    )
    if tprs and opportunity is not None:
        limit_line(
            reference, max(tprs) - opportunity, f"TPR floor (equal opportunity {opportunity:g})"
        )
    if tprs and odds is not None:
        limit_line(reference, max(tprs) - odds, f"TPR floor (equalized odds {odds:g})", "#8e44ad")
    if fprs and odds is not None:
        limit_line(reference, min(fprs) + odds, f"FPR ceiling (equalized odds {odds:g})", "#8e44ad")
    if tprs and odds_ratio is not None:
        limit_line(
            reference, odds_ratio * max(tprs), f"TPR ratio floor ({odds_ratio:g})", "#d35400"
        )
    if fprs and odds_ratio is not None:
        limit_line(
            reference, odds_ratio * max(fprs), f"FPR ratio floor ({odds_ratio:g})", "#d35400"
        )
    reference.update_yaxes(title="rate", range=[0, 1.05])
    reference.update_layout(barmode="group")
    assert drawn(charts.bias_group_rates(groups, policy)) == plotly(reference)


def test_every_limit_draws_its_line_and_label():
    layout = charts.bias_group_rates(GROUPS, EVERY_LIMIT)["layout"]
    assert [a["text"] for a in layout["annotations"]] == [
        "TPR floor (equal opportunity 0.1)",
        "TPR floor (equalized odds 0.15)",
        "FPR ceiling (equalized odds 0.15)",
        "TPR ratio floor (0.7)",
        "FPR ratio floor (0.7)",
    ]
    assert [s["y0"] for s in layout["shapes"]] == [a["y"] for a in layout["annotations"]]


@pytest.mark.parametrize("groups", [[], GROUPS[3:4]], ids=["no groups", "only an empty group"])
def test_no_group_with_members_no_charts(groups):
    assert charts.bias_selection_rates(groups, EVERY_LIMIT) is None
    assert charts.bias_group_rates(groups, EVERY_LIMIT) is None
