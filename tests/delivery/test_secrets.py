"""Project secrets are kept encrypted, written but never read back by people, given to jobs
by name with each use audited, blotted out of job logs, and re-encrypted when keys rotate."""

import base64
import json
import secrets as random

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from governance.access.errors import NotAllowed, ProjectNotFound
from governance.audit.models import AuditEvent
from governance.delivery import kinds, runner, services
from governance.delivery.errors import InvalidSecret, SecretNotFound, SecretUnreadable
from governance.delivery.models import Job, JobLine, Secret

VALUE = "s3cr3t-hunter2-value"


def fernet_key() -> str:
    return base64.urlsafe_b64encode(random.token_bytes(32)).decode()


def trail_text() -> str:
    return json.dumps(list(AuditEvent.objects.values_list("payload", flat=True)), default=str)


def _leaky(context):
    value = context.secret("DB_PASSWORD")
    context.step("connecting", 50)
    context.log(f"connecting with password {value}")
    raise RuntimeError(f"login refused for password {value}")


kinds.register(kinds.JobKind("leaky", "Leaky", _leaky, needs_version=False))


def test_a_secret_is_kept_encrypted_and_its_value_is_never_on_the_trail(project, engineer):
    secret = services.set_secret(actor=engineer, project=project, name="DB_PASSWORD", value=VALUE)
    stored = Secret.objects.get(pk=secret.pk)
    assert VALUE not in stored.sealed
    assert services.use_secret(project=project, name="DB_PASSWORD", user="job 1") == VALUE

    services.set_secret(actor=engineer, project=project, name="DB_PASSWORD", value="other")
    assert Secret.objects.count() == 1
    events = list(AuditEvent.objects.filter(action__startswith="secret.").order_by("seq"))
    assert [e.action for e in events] == ["secret.set", "secret.used", "secret.set"]
    assert events[1].data == {"name": "DB_PASSWORD", "by": "job 1"}
    assert events[2].data == {"name": "DB_PASSWORD", "replaced": True}
    assert VALUE not in trail_text()


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("db_password", VALUE, "name"),
        ("1PASSWORD", VALUE, "name"),
        ("", VALUE, "name"),
        ("DB PASSWORD", VALUE, "name"),
        ("DB_PASSWORD", "", "value"),
        ("DB_PASSWORD", "x" * (services.MAX_SECRET + 1), "value"),
    ],
)
def test_a_malformed_secret_is_refused_naming_the_field(project, engineer, name, value, field):
    with pytest.raises(InvalidSecret) as refused:
        services.set_secret(actor=engineer, project=project, name=name, value=value)
    assert field in refused.value.fields
    assert not Secret.objects.exists()


def test_only_those_who_run_pipelines_write_secrets(project, viewer, outsider, engineer):
    with pytest.raises(NotAllowed):
        services.set_secret(actor=viewer, project=project, name="TOKEN", value=VALUE)
    with pytest.raises(ProjectNotFound):
        services.set_secret(actor=outsider, project=project, name="TOKEN", value=VALUE)
    services.set_secret(actor=engineer, project=project, name="TOKEN", value=VALUE)
    with pytest.raises(NotAllowed):
        services.delete_secret(actor=viewer, project=project, name="TOKEN")


def test_an_unknown_secret_is_named(project, engineer):
    with pytest.raises(SecretNotFound, match="NOPE"):
        services.use_secret(project=project, name="NOPE", user="job 1")
    with pytest.raises(SecretNotFound):
        services.delete_secret(actor=engineer, project=project, name="NOPE")


def test_a_job_gets_the_secret_but_its_log_result_and_error_never_show_it(project, engineer):
    services.set_secret(actor=engineer, project=project, name="DB_PASSWORD", value=VALUE)
    job = services.start_job(actor=engineer, project=project, kind="leaky")
    job = runner.execute(job.pk)
    assert job.state == Job.State.FAILED
    log = "\n".join(JobLine.objects.filter(job=job).values_list("text", flat=True))
    assert "connecting with password ••••••" in log
    assert VALUE not in log
    assert VALUE not in job.error
    assert VALUE not in trail_text()
    used = AuditEvent.objects.get(action="secret.used")
    assert used.data["by"] == f"job {job.pk}"


def test_keys_rotate_without_losing_a_secret(project, engineer, settings):
    old, new = fernet_key(), fernet_key()
    settings.QUORUM_SECRET_KEYS = [old]
    services.set_secret(actor=engineer, project=project, name="API_KEY", value=VALUE)
    before = Secret.objects.get().sealed

    settings.QUORUM_SECRET_KEYS = [new, old]
    assert services.rotate_secrets() == 1
    assert Secret.objects.get().sealed != before
    assert AuditEvent.objects.filter(action="secret.rotated").count() == 1

    settings.QUORUM_SECRET_KEYS = [new]
    assert services.use_secret(project=project, name="API_KEY", user="job 1") == VALUE


def test_a_key_dropped_before_rotating_says_how_to_recover(project, engineer, settings):
    settings.QUORUM_SECRET_KEYS = [fernet_key()]
    services.set_secret(actor=engineer, project=project, name="API_KEY", value=VALUE)
    settings.QUORUM_SECRET_KEYS = [fernet_key()]
    with pytest.raises(SecretUnreadable, match="rotate_secrets"):
        services.use_secret(project=project, name="API_KEY", user="job 1")
    with pytest.raises(SecretUnreadable):
        services.rotate_secrets()


def test_the_page_lists_names_and_never_values(login, project, engineer, viewer):
    client = login(engineer)
    url = reverse("secrets", args=["credit-risk"])
    response = client.post(url, {"name": "DB_PASSWORD", "value": VALUE})
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "DB_PASSWORD" in page
    assert VALUE not in page
    read_only = login(viewer).get(url).content.decode()
    assert "DB_PASSWORD" in read_only
    assert "Set a secret" not in read_only


def test_a_bad_secret_on_the_page_shows_why_and_keeps_nothing(login, project, engineer):
    response = login(engineer).post(
        reverse("secrets", args=["credit-risk"]), {"name": "lower", "value": VALUE}
    )
    assert response.status_code == 400
    assert "Capitals, digits and _" in response.content.decode()
    assert VALUE not in response.content.decode(), "the value is not echoed back"
    assert not Secret.objects.exists()


def test_a_secret_is_deleted_from_the_page(login, project, engineer):
    services.set_secret(actor=engineer, project=project, name="OLD_TOKEN", value=VALUE)
    login(engineer).post(reverse("secret_delete", args=["credit-risk", "OLD_TOKEN"]))
    assert not Secret.objects.exists()
    assert AuditEvent.objects.filter(action="secret.deleted").count() == 1


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_writes_values_and_reads_back_names_only(project, engineer, viewer, outsider):
    url = reverse("api-secrets", args=["credit-risk"])
    created = api(engineer).post(url, {"name": "DB_PASSWORD", "value": VALUE}, format="json")
    assert created.status_code == 201
    assert "value" not in created.json()
    listed = api(viewer).get(url)
    assert [s["name"] for s in listed.json()] == ["DB_PASSWORD"]
    assert VALUE not in listed.content.decode()

    bad = api(engineer).post(url, {"name": "x y", "value": VALUE}, format="json")
    assert bad.status_code == 400
    assert "name" in bad.json()["error"]["fields"]
    assert api(viewer).post(url, {"name": "B", "value": VALUE}, format="json").status_code == 403
    assert api(outsider).get(url).status_code == 404

    gone = api(engineer).delete(reverse("api-secret", args=["credit-risk", "DB_PASSWORD"]))
    assert gone.status_code == 204
    again = api(engineer).delete(reverse("api-secret", args=["credit-risk", "DB_PASSWORD"]))
    assert again.status_code == 404


def test_the_rotate_command_reports_its_count_and_a_lost_key_clearly(
    project, engineer, settings, capsys
):
    from django.core.management import CommandError, call_command

    old = fernet_key()
    settings.QUORUM_SECRET_KEYS = [old]
    services.set_secret(actor=engineer, project=project, name="API_KEY", value=VALUE)
    settings.QUORUM_SECRET_KEYS = [fernet_key(), old]
    call_command("rotate_secrets")
    assert "1 secret(s) encrypted with the first key." in capsys.readouterr().out
    settings.QUORUM_SECRET_KEYS = [fernet_key()]
    with pytest.raises(CommandError, match="QUORUM_SECRET_KEYS"):
        call_command("rotate_secrets")
