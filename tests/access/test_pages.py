import pytest
from django.urls import reverse

from governance.access.models import Membership, Project
from governance.access.roles import Role
from tests.factories import UserFactory, make_project


def members_url(project: Project) -> str:
    return reverse("project_members", args=[project.slug])


def test_anonymous_visitor_is_sent_to_login(client, project):
    response = client.get(members_url(project))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_home_lists_only_the_projects_of_the_person(login, project, admin_user, outsider):
    make_project(admin=admin_user, owner=outsider, slug="churn", name="Customer churn")
    response = login(outsider).get(reverse("home"))
    assert response.status_code == 200
    assert b"Customer churn" in response.content
    assert b"Credit risk" not in response.content


def test_home_explains_what_to_do_when_in_no_project(login, outsider):
    response = login(outsider).get(reverse("home"))
    assert b"You are not in any project yet" in response.content


def test_overview_shows_role_and_what_it_allows(login, project, auditor):
    response = login(auditor).get(reverse("project_overview", args=[project.slug]))
    assert response.status_code == 200
    assert b"Auditor" in response.content
    assert b"Export the audit trail" in response.content
    assert b"Approve or reject releases" not in response.content
    assert b"<title>Credit risk \xc2\xb7 Quorum</title>" in response.content


@pytest.mark.parametrize("name", ["project_overview", "project_members"])
def test_non_member_gets_not_found_like_a_missing_project(login, project, outsider, name):
    client = login(outsider)
    hidden = client.get(reverse(name, args=[project.slug]))
    missing = client.get(reverse(name, args=["no-such-project"]))
    assert hidden.status_code == missing.status_code == 404
    assert b"No such project." in hidden.content
    assert b"No such project." in missing.content
    assert project.name.encode() not in hidden.content


def test_member_sees_the_members(login, project, viewer):
    response = login(viewer).get(members_url(project))
    assert response.status_code == 200
    for username in ["olivia", "sam", "mei", "alex", "val"]:
        assert username.encode() in response.content
    assert b"Add a member" not in response.content


def test_product_owner_sees_the_controls(login, project, owner):
    response = login(owner).get(members_url(project))
    assert b"Add a member" in response.content
    assert b'name="role"' in response.content


def test_members_page_queries_do_not_grow_with_members(
    login, project, owner, admin_user, django_assert_max_num_queries
):
    client = login(owner)
    with django_assert_max_num_queries(10) as few:
        client.get(members_url(project))
    for _ in range(25):
        Membership.objects.create(project=project, user=UserFactory(), role=Role.VIEWER)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(members_url(project))
    assert response.content.count(b'id="member-') == 30


def test_home_queries_do_not_grow_with_projects(
    login, admin_user, owner, django_assert_max_num_queries
):
    make_project(admin=admin_user, owner=owner, slug="p0", name="P0")
    client = login(owner)
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("home"))
    for n in range(1, 15):
        make_project(admin=admin_user, owner=owner, slug=f"p{n}", name=f"P{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("home"))
    assert response.content.count(b'class="panel card"') == 15


def test_product_owner_adds_a_member(login, project, owner, outsider):
    response = login(owner).post(members_url(project), {"username": "oscar", "role": "viewer"})
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=outsider).role == Role.VIEWER


def test_adding_with_htmx_returns_the_refreshed_section(login, project, owner, outsider):
    response = login(owner).post(
        members_url(project), {"username": "oscar", "role": "auditor"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b'id="members"' in response.content
    assert b"<html" not in response.content
    assert b"oscar" in response.content


def test_adding_an_unknown_person_shows_the_error_and_changes_nothing(login, project, owner):
    response = login(owner).post(
        members_url(project), {"username": "nobody", "role": "viewer"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert b"No active person has this username." in response.content
    assert Membership.objects.filter(project=project).count() == 5


def test_adding_an_existing_member_is_a_conflict(login, project, owner):
    response = login(owner).post(members_url(project), {"username": "sam", "role": "viewer"})
    assert response.status_code == 409
    assert b"Already a member." in response.content
    assert Membership.objects.get(project=project, user__username="sam").role == "data_scientist"


def test_adding_with_a_role_that_does_not_exist_is_refused(login, project, owner, outsider):
    response = login(owner).post(members_url(project), {"username": "oscar", "role": "king"})
    assert response.status_code == 400
    assert not Membership.objects.filter(user=outsider).exists()


def test_viewer_cannot_change_members(login, project, viewer, outsider):
    response = login(viewer).post(members_url(project), {"username": "oscar", "role": "viewer"})
    assert response.status_code == 403
    assert not Membership.objects.filter(user=outsider).exists()


def test_outsider_posting_to_members_gets_not_found(login, project, outsider):
    response = login(outsider).post(members_url(project), {"username": "oscar", "role": "viewer"})
    assert response.status_code == 404
    assert not Membership.objects.filter(user=outsider).exists()


def _row_url(name: str, project: Project, user) -> str:
    membership = Membership.objects.get(project=project, user=user)
    return reverse(name, args=[project.slug, membership.pk])


def test_changing_a_role_with_htmx_returns_the_row(login, project, owner, scientist):
    response = login(owner).post(
        _row_url("member_role", project, scientist), {"role": "ml_engineer"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response.content.strip().startswith(b"<tr")
    assert Membership.objects.get(user=scientist).role == Role.ML_ENGINEER


def test_demoting_the_last_product_owner_shows_why_and_keeps_the_role(login, project, owner):
    response = login(owner).post(
        _row_url("member_role", project, owner), {"role": "viewer"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert b"at least one product owner" in response.content
    assert Membership.objects.get(project=project, user=owner).role == Role.PRODUCT_OWNER


def test_removing_the_last_product_owner_is_refused(login, project, admin_user, owner):
    response = login(admin_user).post(_row_url("member_remove", project, owner))
    assert response.status_code == 302
    assert Membership.objects.filter(project=project, user=owner).exists()


def test_removing_a_member_with_htmx_empties_the_row(login, project, owner, viewer):
    response = login(owner).post(_row_url("member_remove", project, viewer), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.content == b""
    assert not Membership.objects.filter(project=project, user=viewer).exists()


def test_member_of_another_project_cannot_be_changed_through_this_one(
    login, project, admin_user, owner, outsider
):
    other = make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")
    foreign = Membership.objects.get(project=other, user=outsider)
    url = reverse("member_role", args=[project.slug, foreign.pk])
    response = login(owner).post(url, {"role": "viewer"})
    assert response.status_code == 404
    assert Membership.objects.get(pk=foreign.pk).role == Role.PRODUCT_OWNER


def test_post_without_csrf_token_is_refused(project, owner, outsider):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(members_url(project), {"username": "oscar", "role": "viewer"})
    assert response.status_code == 403
    assert b"Form expired" in response.content
    assert not Membership.objects.filter(user=outsider).exists()


def test_admin_creates_a_project_and_becomes_its_owner(login, admin_user):
    response = login(admin_user).post(
        reverse("project_new"), {"slug": "fraud", "name": "Fraud", "description": ""}
    )
    assert response.status_code == 302
    assert Membership.objects.get(project__slug="fraud").user == admin_user


@pytest.mark.parametrize("slug", ["Bad Slug", "new"])
def test_new_project_form_refuses_malformed_or_reserved_slug(login, admin_user, slug):
    response = login(admin_user).post(reverse("project_new"), {"slug": slug, "name": "X"})
    assert response.status_code == 400
    assert not Project.objects.exists()


def test_new_project_form_refuses_a_taken_slug(login, project, admin_user):
    response = login(admin_user).post(reverse("project_new"), {"slug": project.slug, "name": "X"})
    assert response.status_code == 400
    assert b"Another project already uses this slug." in response.content
    assert Project.objects.count() == 1


def test_product_owner_cannot_open_new_project_page(login, project, owner):
    assert login(owner).get(reverse("project_new")).status_code == 403


def test_settings_are_for_admins_only(login, project, owner):
    assert login(owner).get(reverse("project_settings", args=[project.slug])).status_code == 403


def test_admin_renames_and_archives_from_settings(login, project, admin_user):
    client = login(admin_user)
    client.post(reverse("project_settings", args=[project.slug]), {"name": "Credit v2"})
    client.post(reverse("project_archive", args=[project.slug]))
    project.refresh_from_db()
    assert project.name == "Credit v2"
    assert project.is_archived
    page = client.get(members_url(project))
    assert b"This project is archived" in page.content
    assert b"Add a member" not in page.content
