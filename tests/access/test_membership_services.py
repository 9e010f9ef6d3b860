import threading

import pytest
from django.db import connection

from governance.access import services
from governance.access.errors import (
    AlreadyMember,
    LastProductOwner,
    MemberNotFound,
    NotAllowed,
    ProjectArchived,
    UnknownRole,
    UnknownUser,
)
from governance.access.models import Membership, ProjectUserPermission
from governance.access.permissions import capabilities_of
from governance.access.roles import ROLE_CAPABILITIES, Capability, Role
from tests.factories import UserFactory, make_project


def _membership(project, user) -> Membership:
    return Membership.objects.get(project=project, user=user)


def test_product_owner_adds_member_who_gains_the_roles_capabilities(project, owner, outsider):
    services.add_member(actor=owner, project=project, user=outsider, role=Role.ML_ENGINEER)
    assert capabilities_of(outsider, project) == ROLE_CAPABILITIES[Role.ML_ENGINEER]


def test_adding_an_existing_member_is_refused(project, owner, scientist):
    with pytest.raises(AlreadyMember):
        services.add_member(actor=owner, project=project, user=scientist, role=Role.VIEWER)
    assert _membership(project, scientist).role == Role.DATA_SCIENTIST


def test_unknown_role_is_refused(project, owner, outsider):
    with pytest.raises(UnknownRole) as error:
        services.add_member(actor=owner, project=project, user=outsider, role="overlord")
    assert "role" in error.value.fields
    assert not Membership.objects.filter(user=outsider).exists()
    assert not ProjectUserPermission.objects.filter(user=outsider).exists()


def test_deactivated_person_cannot_be_added(project, owner, outsider):
    outsider.is_active = False
    outsider.save()
    with pytest.raises(UnknownUser):
        services.add_member(actor=owner, project=project, user=outsider, role=Role.VIEWER)


def test_viewer_cannot_add_members(project, viewer, outsider):
    with pytest.raises(NotAllowed):
        services.add_member(actor=viewer, project=project, user=outsider, role=Role.VIEWER)
    assert not Membership.objects.filter(user=outsider).exists()


def test_changing_a_role_swaps_the_permissions(project, owner, scientist):
    services.change_role(actor=owner, membership=_membership(project, scientist), role=Role.AUDITOR)
    assert _membership(project, scientist).role == Role.AUDITOR
    assert capabilities_of(scientist, project) == ROLE_CAPABILITIES[Role.AUDITOR]


def test_last_product_owner_cannot_step_down(project, owner):
    with pytest.raises(LastProductOwner):
        services.change_role(actor=owner, membership=_membership(project, owner), role="viewer")
    assert _membership(project, owner).role == Role.PRODUCT_OWNER
    assert Capability.MANAGE_MEMBERS in capabilities_of(owner, project)


def test_last_product_owner_cannot_be_removed(project, admin_user, owner):
    with pytest.raises(LastProductOwner):
        services.remove_member(actor=admin_user, membership=_membership(project, owner))
    assert Membership.objects.filter(project=project, user=owner).exists()


def test_product_owner_may_leave_once_another_takes_over(project, owner, engineer):
    services.change_role(
        actor=owner, membership=_membership(project, engineer), role=Role.PRODUCT_OWNER
    )
    services.remove_member(actor=owner, membership=_membership(project, owner))
    assert capabilities_of(owner, project) == frozenset()
    assert not ProjectUserPermission.objects.filter(user=owner).exists()


def test_removed_member_loses_sight_of_the_project(project, owner, viewer):
    services.remove_member(actor=owner, membership=_membership(project, viewer))
    assert capabilities_of(viewer, project) == frozenset()


def test_removing_someone_already_removed_is_not_found(project, owner, viewer):
    membership = _membership(project, viewer)
    services.remove_member(actor=owner, membership=membership)
    with pytest.raises(MemberNotFound):
        services.remove_member(actor=owner, membership=membership)


def test_archived_project_refuses_membership_changes(project, admin_user, owner, outsider):
    services.archive_project(actor=admin_user, project=project)
    with pytest.raises(ProjectArchived):
        services.add_member(actor=owner, project=project, user=outsider, role=Role.VIEWER)
    assert not Membership.objects.filter(user=outsider).exists()


def test_roles_in_one_project_grant_nothing_in_another(project, admin_user, viewer):
    other = make_project(admin=admin_user, owner=viewer, slug="churn", name="Churn")
    assert Capability.MANAGE_MEMBERS in capabilities_of(viewer, other)
    assert Capability.MANAGE_MEMBERS not in capabilities_of(viewer, project)


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(needs_postgres):
    admin = UserFactory(username="root-admin", is_superuser=True, is_staff=True)
    first, second = UserFactory(username="po1"), UserFactory(username="po2")
    project = make_project(admin=admin, owner=first, members={second: Role.PRODUCT_OWNER})
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor, target) -> None:
        try:
            barrier.wait()
            services.change_role(
                actor=actor, membership=_membership(project, target), role=Role.VIEWER
            )
            outcomes.append("demoted")
        except (LastProductOwner, NotAllowed):
            # Refused either way: as the last owner if it locked first, or, once the other's
            # demotion committed, as a viewer who may no longer change roles.
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(first, second)),
        threading.Thread(target=demote, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["demoted", "refused"]
    owners = Membership.objects.filter(project=project, role=Role.PRODUCT_OWNER).count()
    assert owners == 1
