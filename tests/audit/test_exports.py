import csv
import hashlib
import io
import json

import pytest
from django.urls import reverse
from openpyxl import load_workbook
from rest_framework.test import APIClient

from governance.audit.chain import event_hash
from governance.audit.models import AuditEvent
from governance.audit.services import SystemActor, record


def download(response) -> bytes:
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content)


def manifest_of(client, response) -> dict:
    link = response["Link"].split(";")[0].strip("<>")
    return client.get(link).json()


@pytest.fixture
def auditor_client(login, project, auditor):
    record(
        actor=SystemActor("test"),
        action="test.text",
        project=project,
        payload={"note": 'quotes " commas , newlines \n and é'},
    )
    return login(auditor)


def test_csv_export_carries_every_field_and_a_manifest_that_checks_out(auditor_client):
    response = auditor_client.get(reverse("audit_export"), {"format": "csv"})
    body = download(response)
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    manifest = manifest_of(auditor_client, response)
    assert manifest["rows"] == len(rows) == AuditEvent.objects.filter(project__isnull=False).count()
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert response["X-Quorum-Export-SHA256"] == manifest["sha256"]
    assert (manifest["first"]["seq"], manifest["last"]["hash"]) == (
        int(rows[0]["seq"]),
        rows[-1]["hash"],
    )
    # An auditor can recompute each hash from the file alone, as the manifest says.
    for row in rows:
        fields = {k: v for k, v in row.items() if k != "hash"}
        for number in ("seq", "actor_id", "project_id"):
            fields[number] = int(fields[number]) if fields[number] else None
        assert event_hash(fields) == row["hash"]


def test_jsonl_export_is_one_event_per_line(auditor_client):
    response = auditor_client.get(reverse("audit_export"), {"format": "jsonl", "actor": "ada"})
    lines = download(response).decode().splitlines()
    events = [json.loads(line) for line in lines]
    assert events
    assert {event["actor_name"] for event in events} == {"ada"}
    assert manifest_of(auditor_client, response)["filters"] == {"actor": "ada"}


def test_xlsx_export_opens_as_a_spreadsheet(auditor_client, tmp_path):
    response = auditor_client.get(reverse("audit_export"), {"format": "xlsx"})
    path = tmp_path / "trail.xlsx"
    path.write_bytes(download(response))
    sheet = load_workbook(path, read_only=True)["Audit trail"]
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert header[0] == "seq"
    assert header[-2:] == ("prev_hash", "hash")
    assert len(rows) == manifest_of(auditor_client, response)["rows"]


def test_each_export_is_itself_an_event(auditor_client):
    auditor_client.get(reverse("audit_export"), {"format": "csv"})
    event = AuditEvent.objects.latest("seq")
    assert event.action == "audit.exported"
    assert event.actor_name == "alex"


def test_unknown_format_is_refused(auditor_client):
    response = auditor_client.get(reverse("audit_export"), {"format": "pdf"})
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_reversed_date_range_export_is_refused(auditor_client):
    response = auditor_client.get(
        reverse("audit_export"), {"format": "csv", "since": "2026-02-02", "until": "2026-02-01"}
    )
    assert response.status_code == 400
    assert b"reversed" in response.content


def test_export_of_a_project_one_cannot_see_is_not_found(auditor_client, admin_user, outsider):
    from tests.factories import make_project

    make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")
    response = auditor_client.get(reverse("audit_export"), {"format": "csv", "project": "churn"})
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["owner", "viewer", "scientist"])
def test_non_auditors_may_not_export(login, project, request, who):
    response = login(request.getfixturevalue(who)).get(reverse("audit_export"), {"format": "csv"})
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_only_the_exporter_reads_a_manifest(auditor_client, login, owner):
    response = auditor_client.get(reverse("audit_export"), {"format": "csv"})
    link = response["Link"].split(";")[0].strip("<>")
    assert login(owner).get(link).status_code == 404


# The same through the API


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_lists_events_with_a_cursor_and_filters(project, auditor):
    client = api(auditor)
    body = client.get("/api/v1/audit/events/", {"action": "membership.*", "page_size": 2}).json()
    assert [e["action"] for e in body["results"]] == ["membership.added"] * 2
    assert body["results"][0]["seq"] > body["results"][1]["seq"]
    assert body["results"][0]["payload"]["after"]["role"]
    following = client.get(body["next"]).json()
    assert following["results"][0]["seq"] < body["results"][1]["seq"]


def test_api_refuses_a_reversed_date_range(project, auditor):
    response = api(auditor).get(
        "/api/v1/audit/events/", {"since": "2026-03-01", "until": "2026-01-01"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_api_events_are_forbidden_to_non_auditors(project, viewer):
    response = api(viewer).get("/api/v1/audit/events/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_api_exports_csv_with_its_manifest(project, auditor):
    client = api(auditor)
    response = client.get("/api/v1/audit/export", {"format": "csv"})
    body = download(response)
    manifest = client.get(response["Link"].split(";")[0].strip("<>")).json()
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()


def test_api_export_with_an_unknown_format_gets_the_error_body(project, auditor):
    response = api(auditor).get("/api/v1/audit/export", {"format": "docx"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_format"


def test_api_queues_a_verification(project, auditor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        response = api(auditor).post("/api/v1/audit/verifications/", {}, format="json")
    assert response.status_code == 202
    run = api(auditor).get(f"/api/v1/audit/verifications/{response.json()['id']}/").json()
    assert run["state"] == "queued"


def test_api_verification_with_a_bad_checkpoint_is_refused(project, auditor):
    response = api(auditor).post(
        "/api/v1/audit/verifications/", {"checkpoint": "12:zz"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_checkpoint"
