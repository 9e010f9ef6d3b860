"""python manage.py drift_check --reference R --current C [--categorical a,b] [--format json|table]

The drift engine for pipelines: compares two CSV or Parquet files with no database and no
site. Exit 0 when the data did not drift, 1 when it did, 2 for input it cannot compare.

The JSON output: {"drifted": bool, "drifted_share": float, "reasons": [...],
"features": {name: {"drifted": bool, "reasons": [...], "kind": "numeric"|"categorical",
"psi": ..., "js_distance": ..., "ks_statistic"/"ks_p_value"/"wasserstein" (numeric),
"chi2_statistic"/"chi2_p_value"/"cramers_v"/"new_categories"/"vanished_categories"
(categorical), "missing_rate_reference"/"missing_rate_current", "type_errors_current"}},
"reference_rows": int, "current_rows": int, "thresholds": {...}}.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.errors import DomainError
from governance.monitoring import stats
from governance.plain import json_safe
from governance.registry import tables

MAX_BYTES = 8 * 2**30  # files on the pipeline's own disk: only the machine's memory limits


class Command(BaseCommand):
    help = "Compare current data with reference data for drift; exit 1 when it drifted."
    requires_system_checks = []  # no database, no site: just the two files

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reference", required=True, help="CSV or Parquet file")
        parser.add_argument("--current", required=True, help="CSV or Parquet file")
        parser.add_argument("--categorical", default="", help="columns compared as categories")
        parser.add_argument("--bins", type=int, default=10)
        parser.add_argument("--thresholds", default="", help='JSON overrides, e.g. {"psi": 0.25}')
        parser.add_argument("--format", choices=["json", "table"], default="table")

    def handle(self, *args: object, **options: object) -> None:
        try:
            thresholds = json.loads(options["thresholds"]) if options["thresholds"] else {}
        except json.JSONDecodeError as error:
            raise CommandError(f"--thresholds is not JSON: {error}", returncode=2) from None
        categorical = [c.strip() for c in options["categorical"].split(",") if c.strip()]
        try:
            reference = _read(options["reference"])
            current = _read(options["current"])
            result = stats.drift(
                reference, current, categorical=categorical or None, bins=options["bins"]
            )
            decision = stats.decide(result, thresholds)
        except DomainError as error:
            raise CommandError(error.message, returncode=2) from None
        if options["format"] == "json":
            self.stdout.write(json.dumps(json_safe(report(result, decision)), indent=2))
        else:
            self.stdout.write(table(result, decision))
        if decision.drifted:
            raise CommandError("drifted: " + "; ".join(decision.reasons), returncode=1)


def _read(path: str) -> object:
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{path}: no such file", returncode=2)
    with file.open("rb") as stream:
        return tables.read(stream, file.name, limit=MAX_BYTES)


def report(result: stats.DriftResult, decision: stats.DriftDecision) -> dict:
    features = {}
    for name, feature in result.features.items():
        figures = {k: v for k, v in feature.as_dict().items() if v is not None}
        figures.pop("bin_edges", None)
        figures.pop("reference_bins", None)
        figures.pop("current_bins", None)
        features[name] = {
            "drifted": decision.features[name].drifted,
            "reasons": decision.features[name].reasons,
            **figures,
        }
    return {
        "drifted": decision.drifted,
        "drifted_share": decision.drifted_share,
        "reasons": decision.reasons,
        "reference_rows": result.reference_rows,
        "current_rows": result.current_rows,
        "thresholds": decision.as_dict()["thresholds"],
        "features": features,
    }


def table(result: stats.DriftResult, decision: stats.DriftDecision) -> str:
    lines = [f"{'feature':24} {'kind':11} {'PSI':>8} {'p-value':>9} {'effect':>7}  drifted"]
    for name, f in result.features.items():
        effect = f.ks_statistic if f.kind == stats.NUMERIC else f.cramers_v
        verdict = decision.features[name]
        why = "yes: " + "; ".join(verdict.reasons) if verdict.drifted else "no"
        lines.append(
            f"{name[:24]:24} {f.kind:11} {f.psi:8.3g} {f.p_value:9.3g} {effect:7.3g}  {why}"
        )
    verdict = "DRIFTED" if decision.drifted else "no drift"
    lines.append(f"{verdict}: {decision.drifted_count} of {len(result.features)} features")
    return "\n".join(lines)
