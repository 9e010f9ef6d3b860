"""The API fuzzed over its own OpenAPI schema with schemathesis, as every person and anonymously.

For every operation of `/api/v1/schema/`, Hypothesis draws requests from the schema (valid
ones, and invalid ones for the negative cases) and sends them with each person's token and
without one. Whatever is sent:

- the API never answers 5xx;
- the status, content type and body are those the schema documents;
- every 4xx carries the one error body `{"error": {"code", "message", "fields"}}`.

Path parameters are pinned to the world's objects (the project, its monitor, its request...)
so requests reach real rows instead of 404s; everything else is generated. Each request runs
in a savepoint that is rolled back, so operations that would destroy the world (archiving the
project, removing a member, deleting a secret) run in any order against the same world.

QUORUM_FUZZ_EXAMPLES sets the examples per operation, person and mode (default 2); the run is
derandomized, so it sends the same requests every time.
"""

import os
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.dashboard.conftest import World

EXAMPLES = int(os.environ.get("QUORUM_FUZZ_EXAMPLES", "2"))
ROLES = ("admin", "owner", "scientist", "engineer", "auditor", "viewer", "outsider", "anonymous")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Path parameters by name, and `id` by the first segment of the path.
PATH_VALUES = {
    "slug": "slug",
    "name": "model",
    "number": "number",
    "experiment_id": "experiment",
    "run_id": "run",
    "key": "metric",
    "username": "member",
    "notification_id": "notification",
    "seq": "export",
}
IDS = {
    "approval-requests": "approval",
    "batches": "scored_batch",
    "bias-reports": "bias_report",
    "drift-alerts": "alert",
    "drift-checks": "check",
    "monitors": "monitor",
    "deployments": "manifests",
}


def path_parameters(world: World, path: str, names: list[str]) -> dict[str, Any]:
    values = {}
    for name in names:
        if name == "id" and "/targets/{id}" in path:
            values[name] = world.ids["target"]
        elif name == "id":
            values[name] = world.ids[IDS[path.removeprefix("/api/v1/").split("/")[0]]]
        elif name == "key" and path.startswith("/api/v1/models/"):
            values[name] = world.ids["model"]
        elif path.startswith("/api/v1/audit/verifications/") and name == "run_id":
            values[name] = world.ids["verification"]
        elif path.endswith("/secrets/{name}/"):
            values[name] = world.ids["secret"]
        else:
            values[name] = world.ids[PATH_VALUES[name]]
    return values


def one_error_body(response: Any) -> str | None:
    """What is wrong with a 4xx body, or None when it is the one error body."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.content[:200]!r}"
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"not the error body: {body!r}"
    error = body["error"]
    if not isinstance(error, dict) or set(error) != {"code", "message", "fields"}:
        return f"not the error body: {body!r}"
    if not (isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str)):
        return f"no code or message: {body!r}"
    fields = error["fields"]
    if not isinstance(fields, dict) or not all(
        isinstance(messages, list) and all(isinstance(m, str) for m in messages)
        for messages in fields.values()
    ):
        return f"fields are not lists of messages: {body!r}"
    return None


@pytest.fixture
def schema(world, settings):
    """The schema as the app serves it, loaded and called through its WSGI application."""
    settings.ALLOWED_HOSTS = ["*"]
    # As Django's test client does: a request's end must not close the test's connection,
    # which holds the world in its transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_the_api_holds_whatever_anyone_sends(world, schema):
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    failures: list[str] = []
    for operation in operations:
        names = [p.name for p in operation.path_parameters]
        fixed = path_parameters(world, operation.path, names)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)
            for role in ROLES:
                headers = {}
                if role != "anonymous":
                    headers["Authorization"] = f"Bearer {world.tokens[role]}"
                run_examples(strategy, headers, f"{operation.label} as {role}", failures)
    assert not failures, f"{len(failures)} failures:\n" + "\n\n".join(failures[:40])


def run_examples(strategy, headers: dict, label: str, failures: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def example(case: schemathesis.Case) -> None:
        with transaction.atomic():
            response = case.call(headers=headers)
            transaction.set_rollback(True)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as error:  # every failure, not only the first
            failures.append(f"{label}: {case.method} {case.formatted_path}\n{error}")
        problem = one_error_body(response)
        if problem:
            failures.append(f"{label}: {case.method} {case.formatted_path}: {problem}")

    example()
