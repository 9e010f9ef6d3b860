"""python manage.py bias_report --data F --y-true COL --y-pred COL --sensitive COL[,COL]
                                 [--pos-label L] [--min-group-size N] [--policy JSON]
                                 [--format json|table]

The bias engine for pipelines, on one CSV or Parquet file, with no database and no site.
Exit 0 when the report keeps within the policy (the four-fifths rule unless --policy says
otherwise), 1 when it does not, 2 for input it cannot assess.

The JSON output: {"passed": bool, "reasons": [...], "checks": [{"name", "value", "limit",
"passed", "reason"}], "overall": {...}, "groups": [{"group", "label", "count",
"selection_rate", "accuracy", "precision", "tpr", "fpr", "tnr", "fnr", "too_small", ...}],
"disparities": {name: {"value", "lowest", "highest", "metric", "groups_compared"}}}.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.errors import DomainError
from governance.fairness import metrics
from governance.plain import json_safe
from governance.registry import tables

MAX_BYTES = 8 * 2**30


class Command(BaseCommand):
    help = "Per-group metrics and disparities of predictions; exit 1 when the policy fails."
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", required=True, help="CSV or Parquet file")
        parser.add_argument("--y-true", required=True, help="the label column")
        parser.add_argument("--y-pred", required=True, help="the prediction column")
        parser.add_argument(
            "--sensitive", required=True, help="one or two columns, comma-separated"
        )
        parser.add_argument("--pos-label", default="1")
        parser.add_argument("--min-group-size", type=int, default=30)
        parser.add_argument(
            "--policy", default="", help='JSON limits, e.g. {"demographic_parity_ratio_min": 0.8}'
        )
        parser.add_argument("--format", choices=["json", "table"], default="table")

    def handle(self, *args: object, **options: object) -> None:
        path = Path(options["data"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file", returncode=2)
        sensitive = [c.strip() for c in options["sensitive"].split(",") if c.strip()]
        try:
            policy = json.loads(options["policy"]) if options["policy"] else {}
        except json.JSONDecodeError as error:
            raise CommandError(f"--policy is not JSON: {error}", returncode=2) from None
        try:
            with path.open("rb") as stream:
                table = tables.read(stream, path.name, limit=MAX_BYTES)
            missing = [c for c in [options["y_true"], options["y_pred"], *sensitive]
                       if c not in table.column_names]  # fmt: skip
            if missing:
                raise CommandError(f"{path.name} has no column {missing[0]!r}", returncode=2)
            truth = table.column(options["y_true"]).to_numpy(zero_copy_only=False)
            result = metrics.group_metrics(
                truth,
                table.column(options["y_pred"]).to_numpy(zero_copy_only=False),
                {c: table.column(c).to_numpy(zero_copy_only=False) for c in sensitive},
                pos_label=metrics.label_for(options["pos_label"], truth),
                min_group_size=options["min_group_size"],
            )
            judgement = metrics.judge(result, policy)
        except DomainError as error:
            raise CommandError(error.message, returncode=2) from None
        if options["format"] == "json":
            body = {**result.as_dict(), **judgement.as_dict()}
            self.stdout.write(json.dumps(json_safe(body), indent=2))
        else:
            self.stdout.write(table_of(result, judgement))
        if not judgement.passed:
            raise CommandError("failed: " + "; ".join(judgement.reasons), returncode=1)


def table_of(result: metrics.FairnessResult, judgement: metrics.Judgement) -> str:
    def rate(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    lines = [f"{'group':28} {'count':>9} {'selected':>9} {'TPR':>7} {'FPR':>7} {'accuracy':>9}"]
    for g in result.groups:
        small = "  (too small)" if g.too_small else ""
        lines.append(
            f"{g.label[:28]:28} {g.count:9d} {rate(g.selection_rate):>9} {rate(g.tpr):>7} "
            f"{rate(g.fpr):>7} {rate(g.accuracy):>9}{small}"
        )
    lines.append("PASSED" if judgement.passed else "FAILED")
    lines += [f"  {r}" for r in judgement.reasons]
    lines += [f"  {c.reason}" for c in judgement.checks if c.passed]
    return "\n".join(lines)
