import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from governance.access.models import ApiToken
from tests.conftest import PASSWORD


def test_person_logs_in_with_the_right_password(client, owner):
    response = client.post(reverse("login"), {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("home")


def test_wrong_password_is_refused_with_a_message(client, owner):
    response = client.post(reverse("login"), {"username": "olivia", "password": "wrong"})
    assert response.status_code == 200
    assert b"Wrong username or password" in response.content
    assert "_auth_user_id" not in client.session


def test_repeated_failures_lock_the_account_out_even_with_the_right_password(
    client, owner, settings
):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "olivia", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.filter(username="olivia").exists()


def test_logout_ends_the_session(login, owner):
    client = login(owner)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_person_changes_their_password(login, owner):
    client = login(owner)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a much longer passphrase",
            "new_password2": "a much longer passphrase",
        },
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("a much longer passphrase")


def test_password_change_with_a_wrong_old_password_changes_nothing(login, owner):
    response = login(owner).post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "x" * 20, "new_password2": "x" * 20},
    )
    assert response.status_code == 200
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


@pytest.mark.django_db(transaction=True)
def test_password_reset_email_is_sent_by_the_worker_and_its_link_works(
    client, owner, celery_worker
):
    response = client.post(reverse("password_reset"), {"email": owner.email})
    assert response.status_code == 302
    celery_worker.wait_for(lambda: len(mail.outbox) == 1)
    link = re.search(r"https?://[^/]+(/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "new secret phrase 42", "new_password2": "new secret phrase 42"},
    )
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("new secret phrase 42")


def test_password_reset_for_an_unknown_address_answers_the_same_and_queues_nothing(
    client, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert queued == []


# API tokens on the profile page


def test_profile_shows_a_new_token_once(login, owner):
    client = login(owner)
    response = client.post(
        reverse("token_create"), {"name": "CI deploy", "lifetime": "30"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 201
    secret = re.search(rb'<code id="new-token">(qrm_[\w-]+)</code>', response.content).group(1)
    token = ApiToken.objects.get(user=owner)
    assert secret.decode() not in token.digest
    assert secret not in client.get(reverse("profile")).content
    assert token.expires_at - timezone.now() > timedelta(days=29)


def test_token_name_already_in_use_is_refused(login, owner):
    client = login(owner)
    client.post(reverse("token_create"), {"name": "CI", "lifetime": "30"})
    response = client.post(reverse("token_create"), {"name": "CI", "lifetime": "30"})
    assert response.status_code == 409
    assert b"already have an active token with this name" in response.content
    assert ApiToken.objects.filter(user=owner).count() == 1


def test_token_with_an_unknown_lifetime_is_refused(login, owner):
    response = login(owner).post(reverse("token_create"), {"name": "CI", "lifetime": "9999"})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_person_revokes_their_token(login, owner):
    client = login(owner)
    client.post(reverse("token_create"), {"name": "CI", "lifetime": "7"})
    token = ApiToken.objects.get(user=owner)
    client.post(reverse("token_revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.is_revoked


def test_nobody_revokes_another_persons_token(login, owner, scientist):
    login(owner).post(reverse("token_create"), {"name": "CI", "lifetime": "7"})
    token = ApiToken.objects.get(user=owner)
    response = login(scientist).post(reverse("token_revoke", args=[token.pk]))
    assert response.status_code == 404
    token.refresh_from_db()
    assert not token.is_revoked
