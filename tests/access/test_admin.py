from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from governance.access.models import ApiToken, Membership, Project
from governance.access.permissions import capabilities_of
from governance.access.roles import ROLE_CAPABILITIES, Role
from governance.access.services import create_api_token


def test_admin_lists_projects_members_and_tokens(login, project, admin_user):
    client = login(admin_user)
    for model in ["project", "membership", "apitoken"]:
        assert client.get(reverse(f"admin:access_{model}_changelist")).status_code == 200


def test_adding_a_member_in_the_admin_grants_the_roles_permissions(
    login, project, admin_user, outsider
):
    response = login(admin_user).post(
        reverse("admin:access_membership_add"),
        {"project": project.pk, "user": outsider.pk, "role": Role.AUDITOR},
    )
    assert response.status_code == 302
    assert capabilities_of(outsider, project) == ROLE_CAPABILITIES[Role.AUDITOR]


def test_changing_a_role_in_the_admin_goes_through_the_service(
    login, project, admin_user, scientist
):
    membership = Membership.objects.get(user=scientist)
    login(admin_user).post(
        reverse("admin:access_membership_change", args=[membership.pk]), {"role": Role.VIEWER}
    )
    assert capabilities_of(scientist, project) == ROLE_CAPABILITIES[Role.VIEWER]


def test_deleting_the_last_product_owner_in_the_admin_is_refused_with_a_message(
    login, project, admin_user, owner
):
    membership = Membership.objects.get(project=project, user=owner)
    response = login(admin_user).post(
        reverse("admin:access_membership_delete", args=[membership.pk]),
        {"post": "yes"},
        follow=True,
    )
    assert b"at least one product owner" in response.content
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_creating_a_project_in_the_admin_makes_the_admin_its_owner(login, admin_user):
    login(admin_user).post(
        reverse("admin:access_project_add"), {"slug": "fraud", "name": "Fraud", "description": ""}
    )
    project = Project.objects.get(slug="fraud")
    assert Membership.objects.get(project=project).user == admin_user


def test_projects_cannot_be_deleted_in_the_admin(login, project, admin_user):
    response = login(admin_user).get(reverse("admin:access_project_delete", args=[project.pk]))
    assert response.status_code == 403


def test_admin_revokes_tokens_with_the_action(login, admin_user, scientist):
    create_api_token(actor=scientist, name="ci", expires_at=timezone.now() + timedelta(days=1))
    token = ApiToken.objects.get()
    login(admin_user).post(
        reverse("admin:access_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.is_revoked
