"""Reads of notifications and preferences shared by the pages, the header and the API."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from governance.notify.errors import NotificationNotFound
from governance.notify.kinds import Kind
from governance.notify.models import DEFAULT_DELIVERY, Notification, Preference


def unread_count_for(user: AbstractBaseUser) -> int:
    """How many of the person's notifications are unread: one query on a partial index."""
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def notifications_for(user: AbstractBaseUser, *, unread: bool | None = None) -> QuerySet:
    """The person's notifications, newest first, with their projects; `unread` narrows them
    to the unread (True) or the read (False) ones."""
    notifications = (
        Notification.objects.filter(recipient=user).select_related("project").order_by("-id")
    )
    if unread is not None:
        notifications = notifications.filter(read_at__isnull=unread)
    return notifications


def notification_of(user: AbstractBaseUser, notification_id: int) -> Notification:
    """One of the person's notifications. Raises NotificationNotFound, for someone else's too."""
    notification = notifications_for(user).filter(pk=notification_id).first()
    if notification is None:
        raise NotificationNotFound
    return notification


def preferences_of(user: AbstractBaseUser) -> dict[str, str]:
    """Every kind, in the order of `Kind`, with the person's delivery or the default."""
    chosen = dict(Preference.objects.filter(user=user).values_list("kind", "delivery"))
    return {kind: chosen.get(kind, DEFAULT_DELIVERY) for kind in Kind.values}


def mentions_for(user: AbstractBaseUser, limit: int = 5) -> list[Notification]:
    """The newest notifications that a person was mentioned or answered in comments."""
    return list(
        Notification.objects.filter(recipient=user, kind=Kind.MENTION)
        .select_related("project")
        .order_by("-created_at", "-pk")[:limit]
    )
