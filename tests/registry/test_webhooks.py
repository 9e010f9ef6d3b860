import json
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest
from django.core.management import call_command

from governance.audit.models import AuditEvent
from governance.registry.mirror import webhook_signature
from governance.registry.models import ModelVersion, WebhookDelivery
from governance.registry.tasks import sync_model

SECRET = "a shared webhook secret"


@pytest.fixture
def webhooks_on(settings):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET


def delivery(
    body: object = None,
    *,
    delivery_id: str | None = None,
    timestamp: int | None = None,
    secret: str = SECRET,
) -> tuple[bytes, dict]:
    body = body or {
        "entity": "model_version",
        "action": "created",
        "timestamp": "2026-11-25T10:00:00+00:00",
        "data": {"name": "credit-scoring", "version": "1"},
    }
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    headers = {
        "HTTP_X_MLFLOW_DELIVERY_ID": delivery_id,
        "HTTP_X_MLFLOW_TIMESTAMP": stamp,
        "HTTP_X_MLFLOW_SIGNATURE": webhook_signature(secret, delivery_id, stamp, raw),
    }
    return raw, headers


def post(client, raw: bytes, headers: dict):
    return client.post("/hooks/mlflow/", raw, content_type="application/json", **headers)


def assert_nothing_changed() -> None:
    assert not WebhookDelivery.objects.exists()
    assert not AuditEvent.objects.filter(action="mlflow.webhook_received").exists()


def test_a_signed_delivery_queues_a_sync_of_its_model(
    client, project, tracking, webhooks_on, django_capture_on_commit_callbacks
):
    run_id = tracking.run(tracking.experiment("e", project="credit-risk"))
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", run_id)
    with django_capture_on_commit_callbacks() as queued:
        response = post(client, *delivery())
    assert response.status_code == 202
    assert len(queued) == 1
    assert WebhookDelivery.objects.get().model_name == "credit-scoring"
    sync_model(name="credit-scoring")  # the task body, as the worker runs it
    version = ModelVersion.objects.get(model__name="credit-scoring")
    assert version.run.mlflow_id == run_id  # its source run came along, unsynced before


def test_a_bad_signature_is_refused(client, db, webhooks_on):
    response = post(client, *delivery(secret="not the secret"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert_nothing_changed()


def test_a_missing_signature_is_refused(client, db, webhooks_on):
    raw, headers = delivery()
    del headers["HTTP_X_MLFLOW_SIGNATURE"]
    assert post(client, raw, headers).status_code == 401
    assert_nothing_changed()


def test_a_stale_timestamp_is_refused(client, db, webhooks_on):
    response = post(client, *delivery(timestamp=int(time.time()) - 3600))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "stale_delivery"
    assert_nothing_changed()


def test_a_replayed_delivery_is_refused(client, db, webhooks_on):
    raw, headers = delivery()
    assert post(client, raw, headers).status_code == 202
    replay = post(client, raw, headers)
    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "replayed_delivery"
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        {"entity": "experiment", "action": "created", "data": {"name": "x"}},
        {"entity": "model_version", "action": "created", "data": {}},
        {"entity": "model_version", "action": "created", "data": {"name": 7}},
    ],
)
def test_a_malformed_body_is_refused(client, db, webhooks_on, body):
    response = post(client, *delivery(body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_delivery"
    assert_nothing_changed()


def test_webhooks_are_off_without_a_secret(client, db, settings):
    settings.MLFLOW_WEBHOOK_SECRET = ""
    assert post(client, *delivery()).status_code == 503
    assert_nothing_changed()


def test_registering_needs_the_secret_and_quorums_address(settings):
    from django.core.management.base import CommandError

    settings.MLFLOW_WEBHOOK_SECRET = ""
    with pytest.raises(CommandError, match="MLFLOW_WEBHOOK_SECRET"):
        call_command("register_mlflow_webhook", "--url", "http://q/hooks/mlflow/")
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    with pytest.raises(CommandError, match="/hooks/mlflow/"):
        call_command("register_mlflow_webhook", "--url", "ftp://q/")


# MLflow's own server delivering to Quorum


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` with a SQL backend: the only kind that delivers webhooks."""
    from cryptography.fernet import Fernet

    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root", str(tmp_path / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    import urllib.request

    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("mlflow server did not start: " + process.stderr.read().decode()[-2000:])
    yield uri
    process.terminate()
    process.wait(timeout=20)


def test_mlflow_server_delivers_a_new_version_that_quorum_mirrors(
    project, mlflow_server, live_server, celery_worker, settings, monkeypatch
):
    from mlflow.tracking import MlflowClient

    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    settings.MLFLOW_TRACKING_URI = mlflow_server
    call_command(
        "register_mlflow_webhook", "--url", f"{live_server.url}/hooks/mlflow/",
        "--tracking-uri", mlflow_server,
    )  # fmt: skip
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.create_experiment("webhooked", tags={"quorum.project": "credit-risk"})
    run = client.create_run(experiment)
    client.create_registered_model("credit-scoring", tags={"quorum.project": "credit-risk"})
    client.create_model_version("credit-scoring", f"runs:/{run.info.run_id}/model", run.info.run_id)

    celery_worker.wait_for(
        lambda: ModelVersion.objects.filter(model__name="credit-scoring", version=1).exists(),
        timeout=60,
    )
    version = ModelVersion.objects.select_related("model__project", "run").get()
    assert version.model.project == project
    assert version.run.mlflow_id == run.info.run_id
    assert WebhookDelivery.objects.filter(event="model_version.created").exists()
