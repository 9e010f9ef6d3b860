import pytest

from governance.access import services
from governance.access.errors import (
    InvalidSlug,
    NotAllowed,
    ProjectArchived,
    ProjectNotFound,
    SlugTaken,
)
from governance.access.models import Membership, Project
from governance.access.permissions import capabilities_of, require
from governance.access.roles import Capability, Role
from governance.errors import Conflict, InvalidInput


def test_admin_creates_project_with_owner_as_product_owner(admin_user, owner):
    project = services.create_project(
        actor=admin_user, slug="fraud", name="Fraud", description="Card fraud", owner=owner
    )
    membership = Membership.objects.get(project=project)
    assert membership.user == owner
    assert membership.role == Role.PRODUCT_OWNER
    assert Capability.MANAGE_MEMBERS in capabilities_of(owner, project)


def test_admin_is_product_owner_of_project_made_without_owner(admin_user):
    project = services.create_project(actor=admin_user, slug="fraud", name="Fraud")
    assert Membership.objects.get(project=project).user == admin_user


def test_member_cannot_create_project(project, owner):
    with pytest.raises(NotAllowed):
        services.create_project(actor=owner, slug="fraud", name="Fraud")
    assert not Project.objects.filter(slug="fraud").exists()


@pytest.mark.parametrize(
    "slug",
    ["Fraud", "fraud_detection", "-fraud", "fraud-", "fr--aud", "9lives", "f", "a" * 51, "new"],
)
def test_malformed_or_reserved_slug_is_refused(admin_user, slug):
    with pytest.raises(InvalidSlug) as error:
        services.create_project(actor=admin_user, slug=slug, name="Fraud")
    assert "slug" in error.value.fields
    assert not Project.objects.exists()
    assert not Membership.objects.exists()


def test_taken_slug_is_refused_and_nothing_changes(project, admin_user):
    with pytest.raises(SlugTaken):
        services.create_project(actor=admin_user, slug=project.slug, name="Another")
    assert Project.objects.count() == 1
    assert Membership.objects.filter(project=project).count() == 5


def test_blank_name_is_refused(admin_user):
    with pytest.raises(InvalidInput) as error:
        services.create_project(actor=admin_user, slug="fraud", name="   ")
    assert "name" in error.value.fields


def test_admin_renames_project(project, admin_user):
    services.rename_project(actor=admin_user, project=project, name="Credit", description="New")
    project.refresh_from_db()
    assert (project.name, project.description) == ("Credit", "New")


def test_product_owner_cannot_rename_project(project, owner):
    with pytest.raises(NotAllowed):
        services.rename_project(actor=owner, project=project, name="Mine")
    project.refresh_from_db()
    assert project.name == "Credit risk"


def test_outsider_is_told_the_project_does_not_exist(project, outsider):
    with pytest.raises(ProjectNotFound):
        services.rename_project(actor=outsider, project=project, name="Mine")


def test_archived_project_refuses_changes_until_restored(project, admin_user):
    services.archive_project(actor=admin_user, project=project)
    with pytest.raises(ProjectArchived):
        services.rename_project(actor=admin_user, project=project, name="Renamed")
    with pytest.raises(ProjectArchived):
        services.archive_project(actor=admin_user, project=project)
    services.restore_project(actor=admin_user, project=project)
    services.rename_project(actor=admin_user, project=project, name="Renamed")
    project.refresh_from_db()
    assert project.name == "Renamed"
    assert not project.is_archived


def test_restoring_an_active_project_is_a_conflict(project, admin_user):
    with pytest.raises(Conflict):
        services.restore_project(actor=admin_user, project=project)


def test_require_answers_not_found_to_outsiders_and_forbidden_to_members(project, outsider, viewer):
    with pytest.raises(ProjectNotFound):
        require(outsider, Capability.VIEW_PROJECT, project)
    with pytest.raises(NotAllowed):
        require(viewer, Capability.MANAGE_MEMBERS, project)
    assert Capability.VIEW_PROJECT in require(viewer, Capability.VIEW_PROJECT, project)


def test_deactivated_member_holds_no_capability(project, scientist):
    scientist.is_active = False
    scientist.save()
    assert capabilities_of(scientist, project) == frozenset()
