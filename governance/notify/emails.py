"""The emails of notifications: one per notification, or one digest per person a day.

Each message carries a Message-ID made from what it sends, so that a resend after a crash
between the SMTP server's acceptance and our commit is recognisable as the same message.
"""

from collections.abc import Sequence
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from governance.notify.models import Notification

SUBJECT_PREFIX = "[Quorum]"


def absolute(path: str) -> str:
    """The address of a site path as people reach it (settings.QUORUM_BASE_URL)."""
    return settings.QUORUM_BASE_URL + path


def notification_message(notification: Notification) -> EmailMultiAlternatives:
    """The email of one notification. Reads `recipient` and `project`: select them first."""
    context = {
        **_common(notification.recipient),
        "notification": notification,
        "link": absolute(notification.url),
    }
    return _message(
        to=notification.recipient,
        subject=notification.subject,
        message_id=f"notification.{notification.pk}",
        kind=notification.kind,
        template="notify/email",
        context=context,
    )


def digest_message(
    recipient: AbstractBaseUser, notifications: Sequence[Notification]
) -> EmailMultiAlternatives:
    """One email listing `notifications` (oldest first). Reads each one's `project`."""
    count = len(notifications)
    context = {
        **_common(recipient),
        "items": [(notification, absolute(notification.url)) for notification in notifications],
        "count": count,
        "notifications_link": absolute(reverse("notifications")),
    }
    first, last = notifications[0].pk, notifications[-1].pk
    return _message(
        to=recipient,
        subject=f"Your daily digest: {count} notification{'' if count == 1 else 's'}",
        message_id=f"digest.{recipient.pk}.{first}-{last}.{count}",
        kind="digest",
        template="notify/digest",
        context=context,
    )


def _common(recipient: AbstractBaseUser) -> dict[str, object]:
    return {
        "recipient": recipient,
        "name": recipient.get_full_name() or recipient.get_username(),
        "preferences_link": absolute(reverse("notification_preferences")),
    }


def _message(
    *,
    to: AbstractBaseUser,
    subject: str,
    message_id: str,
    kind: str,
    template: str,
    context: dict[str, object],
) -> EmailMultiAlternatives:
    host = urlsplit(settings.QUORUM_BASE_URL).hostname or "quorum.invalid"
    message = EmailMultiAlternatives(
        subject=f"{SUBJECT_PREFIX} {subject}",
        body=render_to_string(f"{template}.txt", context),
        to=[to.email],
        headers={
            "Message-ID": f"<{message_id}@{host}>",
            # Automatic mail: out-of-office replies and auto-forwarders should leave it alone.
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
            "List-Unsubscribe": f"<{context['preferences_link']}>",
            "X-Quorum-Kind": kind,
        },
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message
