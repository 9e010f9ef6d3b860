"""Model cards: the sections people write, the facts Quorum fills in, and the exports.

Pure functions over plain values; the services store revisions and the pages render them.
"""

from dataclasses import dataclass

# key, title, required for the card to count as complete, what to write
SECTIONS = [
    ("intended_use", "Intended use", True, "Who uses the model, for what decision."),
    ("out_of_scope_use", "Out-of-scope use", True, "Uses it was not built or checked for."),
    ("training_data", "Training data", True, "Where the data came from, when, and its gaps."),
    ("evaluation_data", "Evaluation data", True, "How it was held out and why it is fair."),
    ("metrics", "Metrics", False, "Which metrics matter here and why."),
    (
        "ethical_considerations",
        "Ethical considerations",
        True,
        "Who could be harmed, sensitive attributes, mitigations.",
    ),
    ("caveats", "Caveats and recommendations", True, "Known limits, and what to watch in use."),
]
KEYS = [key for key, _, _, _ in SECTIONS]
TITLES = {key: title for key, title, _, _ in SECTIONS}
REQUIRED = [key for key, _, required, _ in SECTIONS if required]
# A required section counts as written from this many characters: "TBD" does not.
MIN_LENGTH = 20
MAX_LENGTH = 20_000


@dataclass(frozen=True)
class Facts:
    """What Quorum knows about the version without anyone writing it."""

    model: str
    version: int
    run: str
    code_version: str
    metrics: dict
    params: dict
    data: list[dict]
    signature: dict
    owners: list[str]


def missing(sections: dict[str, str]) -> list[str]:
    """The required sections not yet written, in card order."""
    return [key for key in REQUIRED if len(sections.get(key, "").strip()) < MIN_LENGTH]


def to_markdown(
    sections: dict[str, str],
    facts: Facts,
    revision: int,
    bias: dict | None = None,
    resources: dict | None = None,
) -> str:
    """The card as Markdown; `bias` is the latest finished bias report ({id, passed, url, on,
    reasons}), if any; `resources` the CPU and memory the newest profile recommends."""
    gaps = missing(sections)
    state = "Complete." if not gaps else f"Incomplete: {', '.join(TITLES[k] for k in gaps)}."
    lines = [
        f"# Model card: {facts.model} v{facts.version}",
        "",
        f"Revision {revision}. {state}",
        "",
    ]
    for key in KEYS:
        lines += [f"## {TITLES[key]}", "", sections.get(key, "").strip() or "_Not written._", ""]
    lines += ["## Facts", "", f"- Source run: `{facts.run or 'unknown'}`"]
    if facts.code_version:
        lines.append(f"- Code version: `{facts.code_version}`")
    lines.append(f"- Owners: {', '.join(facts.owners) or 'none'}")
    for item in facts.data:
        lines.append(f"- Data ({item['context'] or 'used'}): {item['name']} `{item['digest']}`")
    if bias is not None:
        verdict = "passes" if bias["passed"] else "fails"
        lines.append(
            f"- Latest bias report: [report {bias['id']}]({bias['url']}) {verdict} the "
            f"project's fairness policy ({bias['on']})"
        )
        lines += [f"  - {reason}" for reason in bias["reasons"]]
    if resources:
        lines.append(
            f"- Recommended resources ({resources['runtime']}): CPU {resources['cpu_request']} "
            f"requested, {resources['cpu_limit']} limit; memory {resources['memory_request']} "
            f"requested, {resources['memory_limit']} limit. {resources['basis']}"
        )
    if facts.metrics:
        lines += ["", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in sorted(facts.metrics.items())]
    if facts.params:
        lines += ["", "| parameter | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in sorted(facts.params.items())]
    return "\n".join(lines) + "\n"


def to_json(
    sections: dict[str, str], facts: Facts, revision: int, resources: dict | None = None
) -> dict:
    """The card as JSON; `resources` is the newest profile's recommendation, or None."""
    return {
        "model": facts.model,
        "version": facts.version,
        "revision": revision,
        "complete": not missing(sections),
        "missing": missing(sections),
        "sections": {key: sections.get(key, "") for key in KEYS},
        "facts": {
            "run": facts.run,
            "code_version": facts.code_version,
            "metrics": facts.metrics,
            "params": facts.params,
            "data": facts.data,
            "signature": facts.signature,
            "owners": facts.owners,
            "recommended_resources": resources,
        },
    }
