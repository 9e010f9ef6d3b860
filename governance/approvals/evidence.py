"""The evidence a release is judged on, frozen when the request opens, and its hash.

The hash is SHA-256 over canonical JSON (sorted keys, no spaces, UTF-8): anyone holding the
evidence can recompute it, as `verify_bundle` does without the database.
"""

import hashlib
import json
from datetime import datetime

from governance.approvals import gates
from governance.approvals.models import PolicyVersion
from governance.registry.models import ModelCard, ModelVersion


def evidence_of(
    version: ModelVersion, terms: PolicyVersion, results: list[gates.GateResult], at: datetime
) -> dict:
    """What the release is judged on, as it stands at `at`: kept with the request, hashed."""
    run = version.run
    card = ModelCard.objects.filter(version=version).first()
    data = []
    if run is not None:
        data = [
            {
                "name": i.dataset.name,
                "digest": i.dataset.digest,
                "source": i.dataset.source,
                "context": i.context,
            }
            for i in run.inputs.select_related("dataset").order_by("dataset__name", "context")
        ]
    return {
        "model": version.model.name,
        "version": version.version,
        "source": version.source,
        "logged_model_id": version.logged_model_id,
        "signature_sha256": sha256_of(version.signature) if version.signature else "",
        "run": None
        if run is None
        else {
            "id": run.mlflow_id,
            "name": run.name,
            "user": run.user,
            "code_version": run.code_version,
            "params": run.params,
            "metrics": run.metrics,
        },
        "card": {
            "revision": card.revision if card else 0,
            "complete": bool(card and card.complete),
            "sections_sha256": sha256_of(card.sections) if card else "",
        },
        "data": data,
        "policy": {
            "stage": terms.policy.stage,
            "version": terms.number,
            **policy_content(terms),
        },
        "gates": [r.as_dict() for r in results],
        "frozen_at": at.isoformat(),
    }


def evidence_hash(evidence: dict) -> str:
    """The SHA-256 of the evidence in its canonical form."""
    return sha256_of(evidence)


def sha256_of(value: object) -> str:
    """SHA-256 of `value` as canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def policy_content(version: PolicyVersion) -> dict:
    """What a policy version decides, as saved and compared."""
    return {
        "required": version.required,
        "quorum": version.quorum,
        "open_days": version.open_days,
        "gates": version.gates,
        "guard": version.guard,
    }
