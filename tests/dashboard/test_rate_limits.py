"""Guessing is slowed down: an address that keeps sending unknown API tokens, or floods the
webhook endpoint, is refused with 429, the one error body and Retry-After, while other
addresses and real tokens go on."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from governance.access.services import create_api_token
from tests.registry.test_webhooks import SECRET, delivery, post


@pytest.fixture
def address() -> str:
    """An address of this test's own: the limits count per address in the shared cache."""
    return ".".join(str(random.randint(1, 254)) for _ in range(4))  # noqa: S311


@pytest.fixture
def tight(settings):
    settings.QUORUM_RATE_LIMITS = {"token_failures": (3, 60), "webhooks": (2, 60)}


def test_an_address_that_keeps_guessing_tokens_is_refused_then_even_with_a_real_one(
    client, db, owner, address, tight
):
    _, secret = create_api_token(
        actor=owner, name="ci", expires_at=timezone.now() + timedelta(days=1)
    )
    for guess in ("qrm_guess1", "qrm_guess2", "not ascii é"):
        answer = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {guess}",
                            REMOTE_ADDR=address)  # fmt: skip
        assert answer.status_code == 401
    refused = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=address)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    elsewhere = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}",
                           REMOTE_ADDR="10.9.8.7")  # fmt: skip
    assert elsewhere.status_code == 200


def test_real_tokens_spend_no_allowance(client, db, owner, address, tight):
    _, secret = create_api_token(
        actor=owner, name="ci", expires_at=timezone.now() + timedelta(days=1)
    )
    for _ in range(6):
        answer = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}",
                            REMOTE_ADDR=address)  # fmt: skip
        assert answer.status_code == 200


def test_an_address_flooding_the_webhook_endpoint_is_refused(client, db, settings, address, tight):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    for _ in range(2):
        raw, headers = delivery()
        assert post(client, raw, {**headers, "REMOTE_ADDR": address}).status_code in (202, 404)
    raw, headers = delivery()
    refused = post(client, raw, {**headers, "REMOTE_ADDR": address})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    raw, headers = delivery()
    assert post(client, raw, {**headers, "REMOTE_ADDR": "10.1.2.3"}).status_code != 429


def test_an_address_flooding_deployment_callbacks_is_refused(client, db, address, tight):
    for _ in range(2):  # unknown deployments, unsigned: refused, and counted
        answer = client.post("/api/v1/deployments/999999/callback/", "{}",
                             content_type="application/json", REMOTE_ADDR=address)  # fmt: skip
        assert answer.status_code in (401, 404)
    refused = client.post("/api/v1/deployments/999999/callback/", "{}",
                          content_type="application/json", REMOTE_ADDR=address)  # fmt: skip
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
