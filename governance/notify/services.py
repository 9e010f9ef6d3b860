"""Notifications: `notify`, the one door other areas use, read state, preferences and emails.

In the app, a notification is always shown; a person's preference per kind decides only the
email: at once (queued on commit), in the daily digest, or none.
"""

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial
from smtplib import SMTPException
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from governance.access.models import Project
from governance.audit.services import record
from governance.notify import emails, selectors
from governance.notify.errors import (
    InvalidLink,
    InvalidNotification,
    InvalidPreferences,
    NotificationNotFound,
    UnknownKind,
)
from governance.notify.kinds import Kind
from governance.notify.models import (
    DEFAULT_DELIVERY,
    Delivery,
    EmailState,
    Notification,
    Preference,
)

log = logging.getLogger(__name__)
User = get_user_model()

# What a later try may cure: the SMTP server or the network (smtplib's errors are OSErrors).
TRANSIENT = (SMTPException, OSError)
# The email task's first try and its retries; the last failure marks the email failed.
MAX_EMAIL_ATTEMPTS = 6
# Longer than the email task ever waits between retries (its backoff stops at 10 minutes).
SWEEP_AFTER = timedelta(minutes=15)
SWEEP_BATCH = 500
SUBJECT_LENGTH = Notification._meta.get_field("subject").max_length
KEY_LENGTH = Notification._meta.get_field("key").max_length
URL_LENGTH = Notification._meta.get_field("url").max_length


def notify(
    *,
    recipients: Iterable[AbstractBaseUser],
    kind: str,
    subject: str,
    body: str = "",
    url: str,
    key: str,
    project: Project | None = None,
) -> list[Notification]:
    """Notify each distinct active person in `recipients` once per `key`: in the app always,
    by email as each prefers (queued when the caller's transaction commits, or kept for the
    daily digest). Returns the notifications made now; people already notified under `key`
    are skipped, so a retried caller sends nothing twice.

    Call it inside the transaction of the change it announces: that change's audit event is
    the record, so this writes none. Raises UnknownKind, InvalidLink, InvalidNotification.
    """
    kind, url = _clean_kind(kind), _clean_url(url)
    subject, key = _clean_subject(subject), _clean_key(key)
    body = "\n".join(line.rstrip() for line in body.strip().splitlines())
    people = {user.pk: user for user in recipients if user.is_active}
    if not people:
        return []

    made = []
    with transaction.atomic():
        already = set(
            Notification.objects.filter(recipient_id__in=people, key=key).values_list(
                "recipient_id", flat=True
            )
        )
        deliveries = dict(
            Preference.objects.filter(user_id__in=people, kind=kind).values_list(
                "user_id", "delivery"
            )
        )
        now = timezone.now()
        for pk, user in people.items():
            if pk in already:
                continue
            state = _email_state(user, deliveries.get(pk, DEFAULT_DELIVERY))
            notification = Notification(
                recipient=user,
                project=project,
                kind=kind,
                subject=subject,
                body=body,
                url=url,
                key=key,
                created_at=now,
                email_state=state,
                email_queued_at=now if state == EmailState.PENDING else None,
            )
            try:
                with transaction.atomic():
                    notification.save(force_insert=True)
            except IntegrityError:
                continue  # a concurrent call with the same key made it first
            made.append(notification)
            if state == EmailState.PENDING:
                # Robust: a broker that is down must not fail the caller's change once it
                # has committed; the sweeper queues the email again later.
                transaction.on_commit(_queue_email(notification.pk), robust=True)
    return made


def mark_read(*, actor: AbstractBaseUser, notification: Notification) -> Notification:
    """Mark one of the actor's notifications read; a read one stays as it was.

    Raises NotificationNotFound for anyone else's, admins' too: ids reveal nothing.
    """
    if notification.recipient_id != actor.pk:
        raise NotificationNotFound
    if notification.read_at is None:
        now = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.read_at = now
    return notification


def mark_all_read(*, actor: AbstractBaseUser) -> int:
    """Mark all the actor's unread notifications read; returns how many."""
    return Notification.objects.filter(recipient=actor, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def set_preferences(*, actor: AbstractBaseUser, choices: Mapping[str, str]) -> dict[str, str]:
    """Set how the actor hears of each kind in `choices` ({kind: delivery}); kinds left out
    keep theirs. Returns every kind's delivery. Turning a kind off drops its emails that
    wait for the digest. Raises InvalidPreferences naming each bad kind or delivery.
    """
    fields = {}
    for kind, delivery in choices.items():
        if kind not in Kind.values:
            fields[kind] = [f"“{kind}” is not a kind of notification."]
        elif delivery not in Delivery.values:
            allowed = ", ".join(Delivery.values)
            fields[kind] = [f"“{delivery}” is not a delivery; choose one of {allowed}."]
    if fields:
        raise InvalidPreferences(fields=fields)
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=actor.pk).first()  # one change at a time
        before = selectors.preferences_of(actor)
        changed = {kind: delivery for kind, delivery in choices.items() if before[kind] != delivery}
        if not changed:
            return before
        for kind, delivery in changed.items():
            Preference.objects.update_or_create(
                user=actor, kind=kind, defaults={"delivery": delivery}
            )
        off = [kind for kind, delivery in changed.items() if delivery == Delivery.OFF]
        if off:
            Notification.objects.filter(
                recipient=actor, kind__in=off, email_state=EmailState.DIGEST
            ).update(email_state=EmailState.NOT_WANTED)
        record(
            actor=actor,
            action="notify.preferences_changed",
            target=actor,
            payload={"before": {kind: before[kind] for kind in changed}, "after": changed},
        )
    return {**before, **changed}


# Email


def send_email(*, notification_id: int) -> bool:
    """Email one pending notification; True when this call sent it.

    The row stays locked through the send, so two workers never both send it; one already
    sent, failed or not wanted is left quietly (False). On an SMTP or network error the
    attempt and the error are kept, the email stays pending and the error is re-raised for
    the task to retry; the last attempt marks it failed. Any other error fails it at once.
    """
    failure: Exception | None = None
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("recipient", "project")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.email_state != EmailState.PENDING:
            return False
        recipient = notification.recipient
        if not (recipient.is_active and recipient.email):
            notification.email_state = EmailState.NOT_WANTED
            notification.save(update_fields=["email_state"])
            return False
        notification.email_attempts += 1
        try:
            emails.notification_message(notification).send()
        except TRANSIENT as exc:
            failure = exc
            notification.email_error = _describe(exc)
            notification.email_queued_at = timezone.now()  # the task's retry queues it again
            if notification.email_attempts >= MAX_EMAIL_ATTEMPTS:
                notification.email_state = EmailState.FAILED
            log.warning("email of notification %s failed: %s", notification_id, exc)
        except Exception as exc:  # a message the server refuses to take, or a bug: no retry
            failure = exc
            notification.email_error = _describe(exc)
            notification.email_state = EmailState.FAILED
        else:
            notification.email_state = EmailState.SENT
            notification.emailed_at = timezone.now()
            notification.email_error = ""
        notification.save(
            update_fields=[
                "email_state",
                "email_attempts",
                "email_error",
                "emailed_at",
                "email_queued_at",
            ]
        )
    if failure is not None:
        raise failure
    return True


def send_digests(*, now: datetime | None = None) -> int:
    """Email each person one digest of their notifications waiting for it, made up to `now`.
    Returns how many emails were sent.

    Each person's rows are locked and marked sent with their send, so running it again sends
    nothing twice. An SMTP or network error leaves that person's rows waiting, the others
    are still sent, and the first error is re-raised at the end for the task to retry.
    """
    now = now or timezone.now()
    recipient_ids = list(
        Notification.objects.filter(email_state=EmailState.DIGEST, created_at__lte=now)
        .order_by("recipient_id")
        .values_list("recipient_id", flat=True)
        .distinct()
    )
    sent, failure = 0, None
    for recipient_id in recipient_ids:
        try:
            sent += _send_digest(recipient_id, now)
        except TRANSIENT as exc:
            log.warning("digest of person %s failed: %s", recipient_id, exc)
            failure = failure or exc
    if failure is not None:
        raise failure
    return sent


def _send_digest(recipient_id: int, now: datetime) -> int:
    failure: Exception | None = None
    with transaction.atomic():
        waiting = list(
            Notification.objects.select_for_update(of=("self",))
            .select_related("recipient", "project")
            .filter(recipient_id=recipient_id, email_state=EmailState.DIGEST, created_at__lte=now)
            .order_by("id")
        )
        if not waiting:
            return 0  # another run sent them meanwhile
        recipient = waiting[0].recipient
        rows = Notification.objects.filter(pk__in=[notification.pk for notification in waiting])
        if not (recipient.is_active and recipient.email):
            rows.update(email_state=EmailState.NOT_WANTED)
            return 0
        try:
            emails.digest_message(recipient, waiting).send()
        except TRANSIENT as exc:
            failure = exc
            rows.update(email_attempts=F("email_attempts") + 1, email_error=_describe(exc))
        else:
            rows.update(
                email_state=EmailState.SENT,
                emailed_at=timezone.now(),
                email_attempts=F("email_attempts") + 1,
                email_error="",
            )
    if failure is not None:
        raise failure
    return 1


def sweep_pending_emails(*, older_than: timedelta = SWEEP_AFTER) -> int:
    """Queue again the pending emails whose task may be lost (the broker was down when the
    notification was made, a queue was wiped): those last queued longer ago than any retry
    waits. Returns how many were queued. A duplicate is harmless: `send_email` sends once.
    """

    cutoff = timezone.now() - older_than
    with transaction.atomic():
        ids = list(
            Notification.objects.filter(email_state=EmailState.PENDING)
            .filter(Q(email_queued_at__lte=cutoff) | Q(email_queued_at__isnull=True))
            .order_by("id")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        Notification.objects.filter(pk__in=ids).update(email_queued_at=timezone.now())
        for pk in ids:
            transaction.on_commit(_queue_email(pk), robust=True)
    return len(ids)


# Helpers


def _queue_email(notification_id: int) -> partial:
    """What to run on commit to queue one email. Django names a robust callback when it logs
    its failure (a broker that is down), and a bare partial has no name: this one has."""
    from governance.notify.tasks import send_email  # it imports this module

    queued = partial(send_email.delay, notification_id=notification_id)
    queued.__qualname__ = "send_email.delay"
    return queued


def _email_state(user: AbstractBaseUser, delivery: str) -> str:
    if delivery == Delivery.OFF or not user.email:
        return EmailState.NOT_WANTED
    if delivery == Delivery.DAILY:
        return EmailState.DIGEST
    return EmailState.PENDING


def _clean_kind(kind: str) -> str:
    if kind not in Kind.values:
        message = f"“{kind}” is not a kind of notification."
        raise UnknownKind(message, fields={"kind": [message]})
    return kind


def _clean_url(url: str) -> str:
    url = url if isinstance(url, str) else ""
    parts = urlsplit(url)
    if (
        not url.startswith("/")
        or url.startswith("//")  # another host, to a browser
        or "\\" in url  # "/\\host" is "//host" to some browsers
        or parts.scheme
        or parts.netloc
        or len(url) > URL_LENGTH
        or any(char.isspace() or ord(char) < 32 for char in url)
    ):
        raise InvalidLink(fields={"url": [InvalidLink.default_message]})
    return url


def _clean_subject(subject: str) -> str:
    subject = " ".join(subject.split())  # one line: it becomes an email's subject
    if not subject:
        raise InvalidNotification(
            "A notification needs a subject.", fields={"subject": ["Give a subject."]}
        )
    if len(subject) > SUBJECT_LENGTH:
        subject = subject[: SUBJECT_LENGTH - 1].rstrip() + "…"
    return subject


def _clean_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > KEY_LENGTH:
        message = f"A notification needs a key of 1 to {KEY_LENGTH} characters."
        raise InvalidNotification(message, fields={"key": [message]})
    return key


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
