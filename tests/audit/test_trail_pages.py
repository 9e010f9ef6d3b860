import pytest
from django.urls import reverse

from governance.access import services as access
from governance.audit.models import AuditEvent, VerificationRun
from governance.audit.services import SystemActor, record
from tests.factories import make_project


@pytest.fixture
def other_project(admin_user, outsider):
    return make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")


def test_auditor_reads_the_trail_of_their_projects_only(login, project, other_project, auditor):
    response = login(auditor).get(reverse("audit_trail"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "added sam as data scientist" in page
    assert "created the project Churn" not in page
    assert "credit-risk" in page


def test_admin_reads_every_event(login, project, other_project, admin_user):
    page = login(admin_user).get(reverse("audit_trail")).content.decode()
    assert "created the project Churn" in page
    assert "created the project Credit risk" in page


@pytest.mark.parametrize("who", ["owner", "scientist", "viewer", "outsider"])
def test_other_roles_may_not_read_the_trail(login, project, request, who):
    response = login(request.getfixturevalue(who)).get(reverse("audit_trail"))
    assert response.status_code == 403


def test_trail_filters_by_actor_action_and_dates(login, project, auditor, owner, outsider):
    access.add_member(actor=owner, project=project, user=outsider, role="viewer")
    client = login(auditor)
    by_owner = client.get(reverse("audit_trail"), {"actor": "olivia"}).content.decode()
    assert "added oscar as viewer" in by_owner
    assert "added sam" not in by_owner
    family = client.get(reverse("audit_trail"), {"action": "project.*"}).content.decode()
    assert "created the project" in family
    assert "added oscar" not in family
    future = client.get(reverse("audit_trail"), {"since": "2999-01-01"}).content.decode()
    assert "No events match these filters" in future


def test_reversed_date_range_is_refused_with_a_message(login, project, auditor):
    response = login(auditor).get(
        reverse("audit_trail"), {"since": "2026-02-01", "until": "2026-01-01"}
    )
    assert response.status_code == 400
    assert b"The date range is reversed" in response.content


def test_malformed_date_is_refused(login, project, auditor):
    response = login(auditor).get(reverse("audit_trail"), {"since": "last tuesday"})
    assert response.status_code == 400
    assert b"Enter a valid date" in response.content


def test_filtering_on_a_project_one_may_not_audit_is_not_found(
    login, project, other_project, auditor
):
    response = login(auditor).get(reverse("audit_trail"), {"project": "churn"})
    assert response.status_code == 404


def test_trail_pages_with_a_keyset(login, project, admin_user):
    for n in range(60):
        record(actor=SystemActor("test"), action="test.filler", project=project, payload={"n": n})
    client = login(admin_user)
    first = client.get(reverse("audit_trail"))
    older = first.context["older"]
    second = client.get(reverse("audit_trail"), {"before": older})
    seqs = [e.seq for e in first.context["events"]] + [e.seq for e in second.context["events"]]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == len(seqs)


def test_trail_page_queries_do_not_grow_with_events(
    login, project, auditor, django_assert_max_num_queries
):
    client = login(auditor)
    with django_assert_max_num_queries(20) as few:
        client.get(reverse("audit_trail"))
    for n in range(80):
        record(actor=SystemActor("test"), action="test.filler", project=project, payload={"n": n})
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("audit_trail"))
    assert len(response.context["events"]) == 50


def test_feed_queries_do_not_grow_with_events(
    login, project, viewer, django_assert_max_num_queries
):
    client = login(viewer)
    url = reverse("project_activity", args=[project.slug])
    with django_assert_max_num_queries(20) as few:
        client.get(url)
    for n in range(80):
        record(actor=SystemActor("test"), action="test.filler", project=project, payload={"n": n})
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def test_every_member_sees_the_project_feed_in_words(login, project, viewer, owner, scientist):
    access.change_role(
        actor=owner, membership=project.memberships.get(user=scientist), role="ml_engineer"
    )
    page = login(viewer).get(reverse("project_activity", args=[project.slug])).content.decode()
    assert "changed the role of sam from data scientist to ML engineer".lower() in page.lower()


def test_a_non_member_gets_not_found_for_a_feed(login, project, outsider):
    response = login(outsider).get(reverse("project_activity", args=[project.slug]))
    assert response.status_code == 404


def test_overview_shows_the_timeline_of_the_team(login, project, viewer):
    page = login(viewer).get(reverse("project_overview", args=[project.slug])).content.decode()
    assert "Timeline" in page
    assert "added val as viewer" in page


def test_auditor_starts_a_verification_and_polls_it_until_done(
    login, project, auditor, django_capture_on_commit_callbacks
):
    from governance.audit.tasks import verify_chain

    client = login(auditor)
    with django_capture_on_commit_callbacks():
        response = client.post(reverse("audit_verify"), HTTP_HX_REQUEST="true")
    run = VerificationRun.objects.get()
    assert b"Waiting for a worker" in response.content
    assert f'hx-get="/audit/verifications/{run.pk}/"'.encode() in response.content
    polling = client.get(reverse("audit_verification", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert polling.status_code == 200
    verify_chain(run_id=run.pk)
    done = client.get(reverse("audit_verification", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert done.status_code == 286
    run.refresh_from_db()
    assert run.checkpoint.encode() in done.content


def test_a_malformed_checkpoint_on_the_page_shows_why(login, project, auditor):
    response = login(auditor).post(
        reverse("audit_verify"), {"checkpoint": "nonsense"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert b"SEQ:HASH" in response.content
    assert not VerificationRun.objects.exists()


def test_viewer_cannot_start_a_verification(login, project, viewer):
    login(viewer).post(reverse("audit_verify"))
    assert not VerificationRun.objects.exists()
    assert not AuditEvent.objects.filter(action="audit.verification_requested").exists()


def test_profile_shows_the_persons_own_recent_activity(client, owner):
    from tests.conftest import PASSWORD

    client.post(reverse("login"), {"username": "olivia", "password": PASSWORD})
    page = client.get(reverse("profile")).content.decode()
    assert "Your recent activity" in page
    assert "signed in" in page
