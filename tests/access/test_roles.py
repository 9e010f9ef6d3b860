import pytest

from governance.access.models import Project
from governance.access.roles import ADMIN_ONLY, ROLE_CAPABILITIES, Capability, Role, role_words


def test_every_role_has_a_row_in_the_table():
    assert set(ROLE_CAPABILITIES) == set(Role)


def test_every_role_may_see_its_project():
    assert all(Capability.VIEW_PROJECT in caps for caps in ROLE_CAPABILITIES.values())


def test_only_admins_rename_and_archive_projects():
    assert set(ADMIN_ONLY) == {Capability.MANAGE_PROJECT}


def test_auditors_read_the_trail_and_cannot_approve():
    auditor = ROLE_CAPABILITIES[Role.AUDITOR]
    assert Capability.READ_AUDIT_TRAIL in auditor
    assert Capability.APPROVE_RELEASE not in auditor


def test_viewers_only_view():
    assert ROLE_CAPABILITIES[Role.VIEWER] == {Capability.VIEW_PROJECT}


def test_each_capability_is_a_guardian_permission_on_projects():
    codenames = {codename for codename, _ in Project._meta.permissions}
    assert codenames == set(Capability.values)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("product_owner", "product owner"),
        (Role.ML_ENGINEER, "ML engineer"),
        ("retired_role", "retired_role"),
        (None, ""),
    ],
)
def test_roles_read_as_words_inside_a_sentence(value, words):
    assert role_words(value) == words
