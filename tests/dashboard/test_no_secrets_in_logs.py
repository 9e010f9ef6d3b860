"""No secret reaches a log line: API tokens (made, used, refused, revoked), project secrets (set,
used by a job, rotated) and the failures around them, with every logger at DEBUG."""

import logging
from datetime import timedelta

from django.utils import timezone

from governance.access.services import create_api_token, revoke_api_token
from governance.delivery import kinds, runner, services

TOKEN_GUESS = "qrm_this-is-a-guessed-token-value"
SECRET_VALUE = "s3cr3t-database-password-9f2c"


def _prints_its_secret(context):
    value = context.secret("DB_PASSWORD")
    context.log(f"connecting with {value}")
    raise RuntimeError(f"the database refused {value}")


kinds.register(kinds.JobKind("leaky", "Leaky", _prints_its_secret, needs_version=False))


def test_tokens_and_secrets_never_reach_the_logs(client, project, engineer, caplog, settings):
    caplog.set_level(logging.DEBUG)
    token, secret = create_api_token(
        actor=engineer, name="ci", expires_at=timezone.now() + timedelta(days=1)
    )
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {TOKEN_GUESS}").status_code == 401
    revoke_api_token(actor=engineer, token=token)
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401

    services.set_secret(actor=engineer, project=project, name="DB_PASSWORD", value=SECRET_VALUE)
    job = services.start_job(actor=engineer, project=project, kind="leaky")
    failed = runner.execute(job.pk)
    assert failed.state == failed.State.FAILED
    assert SECRET_VALUE not in failed.error
    services.rotate_secrets()

    logged = caplog.text
    assert logged, "the loggers were heard"
    for value in (secret, TOKEN_GUESS, SECRET_VALUE):
        assert value not in logged
