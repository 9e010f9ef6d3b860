"""Gates: conditions on a release's evidence that must pass before it can be approved.

Gates are pluggable. An area registers a kind with `register(GateKind(...))` in its AppConfig's
`ready()`: a function that checks a spec when a policy is saved (returning the spec to keep, or
raising InvalidGate) and one that judges a model version (pass, fail or missing, with a reason).
This area registers the metric condition and the complete model card; bias, drift and delivery
register theirs.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models

from governance.approvals import expressions
from governance.approvals.errors import InvalidGate
from governance.registry.models import ModelCard, ModelVersion


class Outcome(models.TextChoices):
    PASS = "pass", "Passes"
    FAIL = "fail", "Fails"
    MISSING = "missing", "Evidence missing"


@dataclass(frozen=True)
class GateResult:
    kind: str
    label: str
    outcome: str
    reason: str

    @property
    def passed(self) -> bool:
        return self.outcome == Outcome.PASS

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "label": self.label, "outcome": self.outcome,
                "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class GateKind:
    name: str
    label: str
    help: str
    # (spec) -> the spec to keep; raises InvalidGate
    clean: Callable[[dict], dict]
    # (version, spec) -> (outcome, reason)
    check: Callable[[ModelVersion, dict], tuple[str, str]]
    # (spec) -> how the gate reads in a policy, e.g. "accuracy >= 0.9"
    describe: Callable[[dict], str]


KINDS: dict[str, GateKind] = {}


def register(kind: GateKind) -> None:
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ValueError(f"a gate kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind


def clean(specs: object) -> list[dict]:
    """The gates of a policy as they will be kept. Raises InvalidGate naming the gate."""
    if not isinstance(specs, list):
        raise InvalidGate("Gates are a list.")
    cleaned = []
    for number, spec in enumerate(specs, start=1):
        if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
            raise InvalidGate(f"Gate {number} needs a kind.")
        kind = KINDS.get(spec["kind"])
        if kind is None:
            known = ", ".join(sorted(KINDS))
            raise InvalidGate(f"Gate {number}: unknown kind {spec['kind']!r} (known: {known}).")
        try:
            kept = kind.clean({k: v for k, v in spec.items() if k != "kind"})
        except InvalidGate as error:
            raise InvalidGate(
                f"Gate {number} ({kind.label.lower()}): {error.message}", fields=error.fields
            ) from None
        cleaned.append({"kind": kind.name, **kept})
    return cleaned


def describe(spec: dict) -> str:
    kind = KINDS.get(spec.get("kind", ""))
    return kind.describe(spec) if kind else f"unknown gate {spec.get('kind')!r}"


def check_all(version: ModelVersion, specs: list[dict]) -> list[GateResult]:
    """Judge every gate on `version` now. A gate whose kind is no longer registered, or whose
    check fails unexpectedly, is missing: a gate never passes by accident."""
    results = []
    for spec in specs:
        kind = KINDS.get(spec.get("kind", ""))
        if kind is None:
            results.append(
                GateResult(
                    spec.get("kind", "?"),
                    "Unknown gate",
                    Outcome.MISSING,
                    "this kind of gate is not available on this site",
                )
            )
            continue
        outcome, reason = kind.check(version, spec)
        results.append(GateResult(kind.name, kind.describe(spec), outcome, reason))
    return results


# The gates of this area


def _clean_metric(spec: dict) -> dict:
    condition = spec.get("condition")
    if not isinstance(condition, str):
        raise InvalidGate("A metric gate needs a condition, such as `accuracy >= 0.9`.")
    try:
        expressions.parse(condition)
    except expressions.ExpressionError as error:
        raise InvalidGate(
            f"{error.message} at character {error.position + 1} of `{condition}`",
            fields={"condition": [error.message], "position": [str(error.position)]},
        ) from None
    return {"condition": condition.strip()}


def _check_metric(version: ModelVersion, spec: dict) -> tuple[str, str]:
    if version.run is None:
        return Outcome.MISSING, "the version has no source run in the mirror"
    verdict = expressions.evaluate(expressions.parse(spec["condition"]), version.run.metrics)
    if verdict.passed is None:
        return Outcome.MISSING, verdict.reason
    return (Outcome.PASS if verdict.passed else Outcome.FAIL), verdict.reason


def clean_no_settings(spec: dict) -> dict:
    """For gate kinds that take no settings: refuse any."""
    if spec:
        raise InvalidGate(f"This gate takes no settings, not {', '.join(sorted(spec))}.")
    return {}


def _check_card(version: ModelVersion, spec: dict) -> tuple[str, str]:
    card = ModelCard.objects.filter(version=version).only("complete", "revision").first()
    if card is None or card.revision == 0:
        return Outcome.FAIL, "the model card is not written yet"
    if not card.complete:
        return Outcome.FAIL, f"revision {card.revision} of the card leaves sections empty"
    return Outcome.PASS, f"revision {card.revision} of the card is complete"


register(
    GateKind(
        name="metric",
        label="Metric condition",
        help="A condition on the source run's metrics, e.g. `accuracy >= 0.9 and auc > 0.8`.",
        clean=_clean_metric,
        check=_check_metric,
        describe=lambda spec: spec["condition"],
    )
)
register(
    GateKind(
        name="card_complete",
        label="Model card complete",
        help="Every required section of the version's model card is written.",
        clean=clean_no_settings,
        check=_check_card,
        describe=lambda spec: "model card complete",
    )
)
