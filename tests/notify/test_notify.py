"""`notify`, the one door other areas use: who gets what, once, and by which way."""

import pytest
from django.db import transaction

from governance.audit.models import AuditEvent
from governance.notify.errors import InvalidLink, InvalidNotification, UnknownKind
from governance.notify.models import EmailState, Notification, Preference
from tests.factories import UserFactory
from tests.notify.queued import run_queued


def test_each_distinct_active_person_gets_one_notification(say, owner, scientist, viewer):
    viewer.is_active = False
    viewer.save()
    made = say([owner, scientist, owner, viewer])
    assert sorted(n.recipient.username for n in made) == ["olivia", "sam"]
    assert Notification.objects.count() == 2


def test_the_same_key_twice_makes_one_notification_and_one_email(
    say, scientist, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        first = say([scientist])
        again = say([scientist])
    assert len(first) == 1
    assert again == []
    assert Notification.objects.filter(recipient=scientist).count() == 1
    assert run_queued(queued) == ["notify.send_email"]
    assert len(mailoutbox) == 1


def test_the_same_key_reaches_only_the_people_not_yet_notified(say, owner, scientist):
    say([owner])
    made = say([owner, scientist])
    assert [n.recipient for n in made] == [scientist]


def test_another_key_is_another_notification(say, scientist):
    say([scientist], key="release-3-requested")
    say([scientist], key="release-4-requested")
    assert Notification.objects.filter(recipient=scientist).count() == 2


def test_by_default_the_email_is_queued_when_the_change_commits(
    say, scientist, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        (notification,) = say([scientist])
    assert notification.email_state == EmailState.PENDING
    assert [(c.func.__self__.name, c.keywords) for c in queued] == [
        ("notify.send_email", {"notification_id": notification.pk})
    ]


def test_daily_keeps_the_email_for_the_digest(say, scientist, django_capture_on_commit_callbacks):
    Preference.objects.create(user=scientist, kind="release.requested", delivery="daily")
    with django_capture_on_commit_callbacks() as queued:
        (notification,) = say([scientist])
    assert notification.email_state == EmailState.DIGEST
    assert queued == []


def test_off_shows_it_in_the_app_only(say, scientist, django_capture_on_commit_callbacks):
    Preference.objects.create(user=scientist, kind="release.requested", delivery="off")
    with django_capture_on_commit_callbacks() as queued:
        (notification,) = say([scientist])
    assert notification.email_state == EmailState.NOT_WANTED
    assert notification.read_at is None
    assert queued == []


def test_a_preference_for_another_kind_does_not_apply(say, scientist):
    Preference.objects.create(user=scientist, kind="mention", delivery="off")
    (notification,) = say([scientist])
    assert notification.email_state == EmailState.PENDING


def test_a_person_without_an_email_address_is_notified_in_the_app_only(
    say, django_capture_on_commit_callbacks
):
    nobody = UserFactory(username="no-mail", email="")
    with django_capture_on_commit_callbacks() as queued:
        (notification,) = say([nobody])
    assert notification.email_state == EmailState.NOT_WANTED
    assert queued == []


def test_a_change_that_rolls_back_leaves_no_notification_and_queues_nothing(
    say, scientist, django_capture_on_commit_callbacks
):
    def change() -> None:
        with transaction.atomic():
            say([scientist])
            raise RuntimeError("the caller's change failed")

    with django_capture_on_commit_callbacks() as queued, pytest.raises(RuntimeError):
        change()
    assert not Notification.objects.exists()
    assert queued == []


def test_notify_writes_no_audit_event_of_its_own(say, scientist):
    before = AuditEvent.objects.count()
    say([scientist])
    assert AuditEvent.objects.count() == before


def test_a_long_or_multi_line_subject_becomes_one_line_that_fits(say, scientist):
    (notification,) = say([scientist], subject="Line one\nline two " + "x" * 300)
    assert "\n" not in notification.subject
    assert notification.subject.startswith("Line one line two x")
    assert len(notification.subject) == 200
    assert notification.subject.endswith("…")


def test_nobody_to_notify_makes_nothing(say, viewer):
    viewer.is_active = False
    viewer.save()
    assert say([viewer]) == []
    assert say([]) == []


# Bad input: a clear error, and nothing made


@pytest.mark.parametrize("kind", ["release.exploded", "", "RELEASE.REQUESTED"])
def test_an_unknown_kind_is_refused(say, scientist, kind):
    with pytest.raises(UnknownKind) as error:
        say([scientist], kind=kind)
    assert error.value.code == "unknown_kind"
    assert "kind" in error.value.fields
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/steal",
        "//evil.example/steal",
        "/\\evil.example/steal",
        "projects/credit-risk/",
        "javascript:alert(1)",
        "/projects/credit risk/",
        "/projects/x/\n",
        "",
        "/" + "a" * 500,
    ],
)
def test_a_url_that_is_not_a_path_of_the_site_is_refused(say, scientist, url):
    with pytest.raises(InvalidLink) as error:
        say([scientist], url=url)
    assert error.value.code == "invalid_url"
    assert error.value.fields == {"url": [InvalidLink.default_message]}
    assert not Notification.objects.exists()


@pytest.mark.parametrize("subject", ["", "   \n "])
def test_an_empty_subject_is_refused(say, scientist, subject):
    with pytest.raises(InvalidNotification) as error:
        say([scientist], subject=subject)
    assert "subject" in error.value.fields
    assert not Notification.objects.exists()


@pytest.mark.parametrize("key", ["", "  ", "k" * 201])
def test_a_missing_or_overlong_key_is_refused(say, scientist, key):
    with pytest.raises(InvalidNotification) as error:
        say([scientist], key=key)
    assert "key" in error.value.fields
    assert not Notification.objects.exists()


def test_the_database_refuses_a_link_to_another_host_made_around_the_service(scientist):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(
            recipient=scientist,
            kind="mention",
            subject="s",
            url="//evil.example/",
            key="k",
            email_state=EmailState.NOT_WANTED,
        )
