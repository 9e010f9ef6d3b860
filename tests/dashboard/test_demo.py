from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance.access.models import Membership, Project
from governance.access.permissions import capabilities_of
from governance.access.roles import ROLE_CAPABILITIES, Role


def test_demo_gives_one_person_per_role_and_two_projects(db, settings, capsys):
    call_command("load_demo")
    output = capsys.readouterr().out
    users = get_user_model().objects.in_bulk(field_name="username")
    assert set(users) == {"admin", "priya", "sam", "mei", "alex", "val"}
    assert users["admin"].is_superuser
    assert set(Project.objects.values_list("slug", flat=True)) == {"credit-risk", "churn"}
    credit = Project.objects.get(slug="credit-risk")
    assert capabilities_of(users["mei"], credit) == ROLE_CAPABILITIES[Role.ML_ENGINEER]
    assert not Membership.objects.filter(user__username="val", project__slug="churn").exists()
    for username in users:
        assert username in output
    assert "priya" in (settings.VAR_DIR / "demo-people.txt").read_text()


def test_demo_loads_twice_without_changing_anything(db, capsys):
    call_command("load_demo", password="demo pass phrase")
    before = set(Membership.objects.values_list("project__slug", "user__username", "role"))
    call_command("load_demo")
    after = set(Membership.objects.values_list("project__slug", "user__username", "role"))
    assert before == after
    assert "already set up" in capsys.readouterr().out
    assert get_user_model().objects.get(username="sam").check_password("demo pass phrase")
