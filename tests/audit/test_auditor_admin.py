import csv
import io

from django.urls import reverse

from dashboard import admin as trail_admin
from governance.audit.models import AuditEvent
from tests.factories import make_project


def test_auditor_browses_the_records_of_their_projects_read_only(
    login, project, auditor, admin_user, outsider
):
    make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")
    client = login(auditor)
    assert client.get(reverse("auditor_admin:index")).status_code == 200
    events = client.get(reverse("auditor_admin:audit_auditevent_changelist"))
    assert events.status_code == 200
    shown = {row.project_id for row in events.context["cl"].result_list}
    assert shown == {project.pk}
    projects = client.get(reverse("auditor_admin:access_project_changelist")).content
    assert b"Churn" not in projects
    event = AuditEvent.objects.filter(project=project).first()
    detail = client.get(reverse("auditor_admin:audit_auditevent_change", args=[event.seq]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content


def test_other_roles_are_sent_to_log_in(login, project, viewer):
    response = login(viewer).get(reverse("auditor_admin:index"))
    assert response.status_code == 302
    assert "/login/" in response.url


def test_admin_action_exports_the_selected_events(login, project, auditor):
    selected = list(AuditEvent.objects.filter(project=project).values_list("seq", flat=True)[:3])
    response = login(auditor).post(
        reverse("auditor_admin:audit_auditevent_changelist"),
        {"action": "export_csv", "_selected_action": selected},
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(int(row["seq"]) for row in rows) == sorted(selected)
    assert response["X-Quorum-Export-SHA256"]


def test_exporting_too_large_a_selection_is_refused_with_a_message(
    login, project, auditor, monkeypatch
):
    monkeypatch.setattr(trail_admin, "MAX_SELECTED", 2)
    selected = list(AuditEvent.objects.filter(project=project).values_list("seq", flat=True))
    response = login(auditor).post(
        reverse("auditor_admin:audit_auditevent_changelist"),
        {"action": "export_jsonl", "_selected_action": selected},
        follow=True,
    )
    assert b"Select at most 2 events" in response.content
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
