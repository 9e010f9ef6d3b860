import re

from django.urls import reverse

from governance.access.tasks import send_password_reset_email
from governance.audit.models import ActorKind, AuditEvent
from tests.conftest import PASSWORD


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


def test_login_and_logout_are_recorded_with_the_request(client, owner):
    client.post(
        reverse("login"), {"username": "olivia", "password": PASSWORD}, HTTP_USER_AGENT="Firefox"
    )
    client.post(reverse("logout"))
    login, logout = AuditEvent.objects.order_by("seq")
    assert (login.action, logout.action) == ("session.login", "session.logout")
    assert login.actor_name == "olivia"
    assert login.user_agent == "Firefox"
    assert login.ip == "127.0.0.1"


def test_failed_login_keeps_the_username_and_never_the_password(client, owner):
    client.post(reverse("login"), {"username": "olivia", "password": "hunter2-wrong"})
    event = AuditEvent.objects.get()
    assert event.action == "session.login_failed"
    assert event.actor_kind == ActorKind.ANONYMOUS
    assert '"username":"olivia"' in event.payload
    assert "hunter2" not in event.payload


def test_lockout_is_recorded(client, owner, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "olivia", "password": "wrong"})
    assert "session.locked_out" in actions()


def test_password_change_is_recorded(login, owner):
    login(owner).post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "x9 long phrase",
            "new_password2": "x9 long phrase",
        },
    )
    assert actions()[-1] == "user.password_changed"


def test_password_reset_request_and_use_are_recorded(
    client, owner, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        client.post(reverse("password_reset"), {"email": owner.email})
    assert len(queued) == 1
    send_password_reset_email(user_id=owner.pk, domain="testserver", use_https=False)
    link = re.search(r"https?://[^/]+(/password-reset/\S+/)", mailoutbox[0].body).group(1)
    form = client.get(link, follow=True)
    client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "fresh long phrase", "new_password2": "fresh long phrase"},
    )
    assert actions()[-2:] == ["user.password_reset_requested", "user.password_reset"]
