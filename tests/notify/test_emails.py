"""Emails of notifications: what they say, that each goes once, and that an SMTP outage
loses nothing."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from governance.notify import services, tasks
from governance.notify.models import EmailState, Notification
from tests.notify.queued import run_queued
from tests.notify.smtp import running_smtp_server

URL = "/projects/credit-risk/models/credit-scoring/versions/3/"


def test_the_email_has_a_text_and_an_html_part_with_the_absolute_link(say, scientist, mailoutbox):
    (notification,) = say([scientist])
    assert services.send_email(notification_id=notification.pk) is True
    (email,) = mailoutbox
    link = settings.QUORUM_BASE_URL + URL
    assert email.to == [scientist.email]
    assert email.subject == "[Quorum] credit-scoring v3 waits for your decision for production"
    assert "olivia asks to release credit-scoring v3 to production.\nAUC 0.91." in email.body
    assert link in email.body
    assert "Project: Credit risk" in email.body
    ((html, mimetype),) = email.alternatives
    assert mimetype == "text/html"
    assert f'href="{link}"' in html
    assert "olivia asks to release credit-scoring v3 to production.<br>AUC 0.91." in html
    assert "<script" not in html
    assert email.extra_headers["Message-ID"] == f"<notification.{notification.pk}@127.0.0.1>"
    assert email.extra_headers["Auto-Submitted"] == "auto-generated"
    assert "/account/notifications/" in email.body


def test_the_link_starts_with_the_sites_address(say, scientist, mailoutbox, settings):
    settings.QUORUM_BASE_URL = "https://quorum.example.com"
    (notification,) = say([scientist])
    services.send_email(notification_id=notification.pk)
    assert f"https://quorum.example.com{URL}" in mailoutbox[0].body
    assert mailoutbox[0].extra_headers["Message-ID"].endswith("@quorum.example.com>")


def test_markup_in_a_notification_is_escaped_in_the_html_part(say, scientist, mailoutbox):
    (notification,) = say([scientist], subject="<b>v3</b>", body="<script>alert(1)</script>")
    services.send_email(notification_id=notification.pk)
    html = mailoutbox[0].alternatives[0][0]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;v3&lt;/b&gt;" in html


def test_a_sent_email_is_marked_and_never_sent_again(say, scientist, mailoutbox):
    (notification,) = say([scientist])
    services.send_email(notification_id=notification.pk)
    assert services.send_email(notification_id=notification.pk) is False
    tasks.send_email(notification_id=notification.pk)  # the task delivered twice
    assert len(mailoutbox) == 1
    notification.refresh_from_db()
    assert notification.email_state == EmailState.SENT
    assert notification.emailed_at is not None
    assert notification.email_attempts == 1


def test_an_email_not_pending_is_left_alone(say, scientist, mailoutbox):
    Notification.objects.filter(pk__in=[n.pk for n in say([scientist])]).update(
        email_state=EmailState.DIGEST
    )
    assert services.send_email(notification_id=Notification.objects.get().pk) is False
    assert services.send_email(notification_id=10**9) is False  # deleted meanwhile
    assert mailoutbox == []


def test_a_person_who_lost_their_address_meanwhile_is_not_emailed(say, scientist, mailoutbox):
    (notification,) = say([scientist])
    scientist.email = ""
    scientist.save()
    assert services.send_email(notification_id=notification.pk) is False
    notification.refresh_from_db()
    assert notification.email_state == EmailState.NOT_WANTED
    assert mailoutbox == []


# SMTP down, then up


def test_smtp_down_keeps_the_email_pending_with_the_error_and_a_retry_sends_it_once(
    say, scientist, smtp_port, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        (notification,) = say([scientist])
    with pytest.raises(OSError):  # noqa: PT011 (any socket error: the server is not there)
        run_queued(queued)
    notification.refresh_from_db()
    assert notification.email_state == EmailState.PENDING
    assert notification.email_attempts == 1
    assert "Connection refused" in notification.email_error
    assert notification.read_at is None  # still in the app, unread

    with running_smtp_server(smtp_port) as server:
        tasks.send_email(notification_id=notification.pk)  # the retry
        tasks.send_email(notification_id=notification.pk)  # and a duplicate delivery of it
    (received,) = server.received
    assert received.recipients == [scientist.email]
    assert received.message["Subject"].startswith("[Quorum] credit-scoring v3")
    assert received.message["Message-ID"] == f"<notification.{notification.pk}@127.0.0.1>"
    text = received.message.get_body(("plain",)).get_content()
    html = received.message.get_body(("html",)).get_content()
    assert settings.QUORUM_BASE_URL + URL in text
    assert f'href="{settings.QUORUM_BASE_URL}{URL}"' in html
    notification.refresh_from_db()
    assert (notification.email_state, notification.email_attempts) == (EmailState.SENT, 2)
    assert notification.email_error == ""


def test_after_the_last_attempt_the_email_is_failed_and_left_alone(say, scientist, smtp_port):
    (notification,) = say([scientist])
    for _ in range(services.MAX_EMAIL_ATTEMPTS):
        with pytest.raises(OSError):  # noqa: PT011
            services.send_email(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.email_state == EmailState.FAILED
    assert notification.email_attempts == services.MAX_EMAIL_ATTEMPTS
    with running_smtp_server(smtp_port) as server:
        assert services.send_email(notification_id=notification.pk) is False
    assert server.received == []


def test_the_task_retries_exactly_as_many_times_as_the_service_allows():
    assert tasks.send_email.max_retries + 1 == services.MAX_EMAIL_ATTEMPTS
    assert tasks.send_email.autoretry_for == tasks.TRANSIENT
    assert tasks.send_email.acks_late
    assert tasks.send_email.reject_on_worker_lost


@pytest.mark.django_db(transaction=True)
def test_a_worker_retries_through_an_smtp_outage_and_delivers_one_message(
    project, scientist, smtp_port, celery_worker
):
    (notification,) = services.notify(
        recipients=[scientist],
        kind="mention",
        subject="olivia mentioned you on credit-scoring v3",
        url=URL,
        key="mention-1",
        project=project,
    )
    celery_worker.wait_for(lambda: Notification.objects.get(pk=notification.pk).email_attempts >= 1)
    notification.refresh_from_db()
    assert notification.email_state == EmailState.PENDING
    assert notification.email_error

    with running_smtp_server(smtp_port) as server:
        celery_worker.wait_for(
            lambda: Notification.objects.get(pk=notification.pk).email_state == EmailState.SENT,
            timeout=60,
        )
    assert len(server.received) == 1
    assert server.received[0].message["Subject"] == (
        "[Quorum] olivia mentioned you on credit-scoring v3"
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_emails_a_notification_once_its_change_commits(
    project, scientist, celery_worker, mailoutbox
):
    services.notify(
        recipients=[scientist], kind="mention", subject="Hello", url=URL, key="k", project=project
    )
    # The message leaves before the worker's transaction commits the row's new state.
    celery_worker.wait_for(lambda: Notification.objects.get().email_state == EmailState.SENT)
    assert len(mailoutbox) == 1


# Lost tasks


def test_the_sweeper_queues_again_an_email_whose_task_was_lost(
    say, scientist, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():  # queued, but the broker never got it
        say([scientist])
    assert services.sweep_pending_emails() == 0  # too recent: its task may still come
    with django_capture_on_commit_callbacks() as queued:
        assert services.sweep_pending_emails(older_than=timedelta(0)) == 1
    assert run_queued(queued) == ["notify.send_email"]
    assert len(mailoutbox) == 1
    assert services.sweep_pending_emails(older_than=timedelta(0)) == 0  # sent: nothing left


def test_the_sweeper_leaves_an_email_it_just_queued_to_its_task(say, scientist):
    say([scientist])
    Notification.objects.update(email_queued_at=timezone.now() - timedelta(hours=1))
    assert services.sweep_pending_emails() == 1
    assert services.sweep_pending_emails() == 0


# The daily digest


@pytest.fixture
def daily(scientist):
    services.set_preferences(
        actor=scientist, choices=dict.fromkeys(["release.requested", "mention"], "daily")
    )
    return scientist


def test_the_digest_sends_one_email_with_everything_waiting(say, daily, owner, mailoutbox):
    say([daily], key="a")
    say([daily, owner], key="b", kind="mention", subject="olivia mentioned you", url="/x/")
    assert services.send_digests() == 1
    (email,) = mailoutbox
    assert email.to == [daily.email]
    assert email.subject == "[Quorum] Your daily digest: 2 notifications"
    assert "credit-scoring v3 waits for your decision for production" in email.body
    assert "olivia mentioned you" in email.body
    assert settings.QUORUM_BASE_URL + URL in email.body
    assert settings.QUORUM_BASE_URL + "/x/" in email.body
    assert "olivia asks to release credit-scoring v3 to production." in email.body
    assert "AUC 0.91" not in email.body  # the first line only
    html = email.alternatives[0][0]
    assert f'href="{settings.QUORUM_BASE_URL}{URL}"' in html
    assert "olivia mentioned you" in html
    assert re.fullmatch(
        r"<digest\.\d+\.\d+-\d+\.2@127\.0\.0\.1>", email.extra_headers["Message-ID"]
    )
    assert set(
        Notification.objects.filter(recipient=daily).values_list("email_state", flat=True)
    ) == {EmailState.SENT}


def test_a_second_digest_run_sends_nothing_again(say, daily, mailoutbox):
    say([daily])
    assert services.send_digests() == 1
    assert services.send_digests() == 0
    tasks.send_digests()
    assert len(mailoutbox) == 1


def test_the_digest_takes_what_was_made_up_to_its_time(say, daily, mailoutbox):
    (notification,) = say([daily])
    assert services.send_digests(now=notification.created_at - timedelta(seconds=1)) == 0
    assert mailoutbox == []
    assert services.send_digests(now=notification.created_at) == 1


def test_the_digest_is_kept_when_smtp_is_down_and_sent_once_it_is_up(say, daily, smtp_port):
    (notification,) = say([daily])
    with pytest.raises(OSError):  # noqa: PT011
        services.send_digests()
    notification.refresh_from_db()
    assert notification.email_state == EmailState.DIGEST
    assert (notification.email_attempts, bool(notification.email_error)) == (1, True)
    with running_smtp_server(smtp_port) as server:
        assert services.send_digests() == 1
        assert services.send_digests() == 0
    assert len(server.received) == 1
    assert server.received[0].message["Subject"] == "[Quorum] Your daily digest: 1 notification"


# Schedules


def test_beat_sends_the_digests_at_seven_and_sweeps_every_five_minutes(db):
    from django_celery_beat.models import PeriodicTask

    digests = PeriodicTask.objects.get(task="notify.send_digests")
    assert digests.enabled
    assert (digests.crontab.hour, digests.crontab.minute) == ("7", "0")
    sweep = PeriodicTask.objects.get(task="notify.sweep_pending_emails")
    assert sweep.enabled
    assert (sweep.interval.every, sweep.interval.period) == (300, "seconds")
