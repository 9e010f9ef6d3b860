import pytest

from governance.access.roles import Role
from tests.factories import make_project


@pytest.fixture
def churn(admin_user, owner, scientist):
    return make_project(
        admin=admin_user,
        owner=owner,
        slug="churn",
        name="Churn",
        members={scientist: Role.DATA_SCIENTIST},
    )
