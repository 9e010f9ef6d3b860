"""MLflow's entities as rows of the mirror: pure conversions, no database."""

import base64
import hashlib
import hmac
import json
import math
from datetime import UTC, datetime

PROJECT_TAG = "quorum.project"
CONTEXT_TAG = "mlflow.data.context"
CODE_VERSION_TAGS = ("mlflow.source.git.commit", "mlflow.gitRepoCommit")


def moment(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def metric_value(value: float) -> float | str:
    """JSON (and PostgreSQL) hold no NaN or infinity: those are kept as their names."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _json(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text[:2000]}
    return value if isinstance(value, dict) else {"value": value}


def experiment_row(experiment: object) -> dict:
    return {
        "mlflow_id": experiment.experiment_id,
        "name": experiment.name,
        "artifact_location": experiment.artifact_location or "",
        "lifecycle": experiment.lifecycle_stage,
        "tags": dict(experiment.tags),
        "created_at": moment(experiment.creation_time),
        "updated_at": moment(experiment.last_update_time),
    }


def run_row(run: object) -> dict:
    info, data = run.info, run.data
    tags = dict(data.tags)
    return {
        "mlflow_id": info.run_id,
        "experiment_mlflow_id": info.experiment_id,
        "name": info.run_name or "",
        "status": info.status,
        "user": info.user_id or "",
        "start_time": moment(info.start_time),
        "end_time": moment(info.end_time),
        "lifecycle": info.lifecycle_stage,
        "params": dict(data.params),
        "metrics": {key: metric_value(value) for key, value in data.metrics.items()},
        "tags": tags,
        "code_version": next((tags[k] for k in CODE_VERSION_TAGS if tags.get(k)), "")[:100],
        "source_name": tags.get("mlflow.source.name", "")[:500],
        "artifact_uri": info.artifact_uri or "",
    }


def run_datasets(run: object) -> list[tuple[dict, str]]:
    """Each data set the run used, with the context it was used in."""
    inputs = getattr(run, "inputs", None)
    found = []
    for dataset_input in getattr(inputs, "dataset_inputs", None) or []:
        dataset = dataset_input.dataset
        context = next((tag.value for tag in dataset_input.tags if tag.key == CONTEXT_TAG), "")
        row = {
            "name": dataset.name,
            "digest": dataset.digest,
            "source_type": dataset.source_type or "",
            "source": dataset.source or "",
            "schema": _json(dataset.schema),
            "profile": _json(dataset.profile),
        }
        found.append((row, context[:64]))
    return found


def model_row(model: object) -> dict:
    return {
        "name": model.name,
        "description": model.description or "",
        "tags": dict(model.tags),
        "aliases": {alias: int(version) for alias, version in dict(model.aliases).items()},
        "created_at": moment(model.creation_timestamp),
        "updated_at": moment(model.last_updated_timestamp),
    }


def version_row(version: object) -> dict:
    return {
        "model_name": version.name,
        "version": int(version.version),
        "source": version.source or "",
        "run_mlflow_id": version.run_id or "",
        "logged_model_id": getattr(version, "model_id", None) or _logged_model(version.source),
        "status": version.status or "",
        "stage": version.current_stage or "",
        "tags": dict(version.tags),
        "description": version.description or "",
        "user": version.user_id or "",
        "created_at": moment(version.creation_timestamp),
        "updated_at": moment(version.last_updated_timestamp),
        "updated_ms": version.last_updated_timestamp or 0,
    }


def _logged_model(source: str | None) -> str:
    """MLflow 3 registers logged models by `models:/<model id>`."""
    return source.removeprefix("models:/") if source and source.startswith("models:/m-") else ""


def webhook_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's signature: HMAC-SHA256 over "delivery id.timestamp.body", base64, "v1,"."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
