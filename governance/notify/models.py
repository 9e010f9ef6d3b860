"""Notifications, shown in the app to their recipient and, as each person prefers, emailed
at once or in a daily digest."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from governance.notify.kinds import Kind


class EmailState(models.TextChoices):
    NOT_WANTED = "not_wanted", "Not emailed"  # preference off, or no email address
    PENDING = "pending", "To send now"
    DIGEST = "digest", "Waits for the daily digest"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Delivery(models.TextChoices):
    IMMEDIATELY = "immediately", "Immediately"
    DAILY = "daily", "Daily digest"
    OFF = "off", "Off"


DEFAULT_DELIVERY = Delivery.IMMEDIATELY.value


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,  # the (recipient, key) constraint and the indexes below lead with it
    )
    project = models.ForeignKey(
        "access.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, help_text="A path of this site, e.g. /projects/x/.")
    key = models.CharField(
        max_length=200, help_text="The caller's idempotency key: one notification per person."
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email_state = models.CharField(max_length=16, choices=EmailState.choices)
    # When a send was last queued: first on commit, then by each retry and by the sweeper,
    # which re-queues only what has waited longer than a retry ever would.
    email_queued_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"], name="notification_key_once"),
            models.CheckConstraint(
                condition=Q(email_state__in=EmailState.values), name="notification_email_state"
            ),
            models.CheckConstraint(
                condition=Q(url__startswith="/") & ~Q(url__startswith="//"),
                name="notification_url_is_a_path",
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="notification_list"),
            models.Index(
                fields=["recipient"],
                condition=Q(read_at__isnull=True),
                name="notification_unread",
            ),
            models.Index(
                fields=["email_state", "recipient"],
                condition=Q(email_state__in=["pending", "digest"]),
                name="notification_email_due",
            ),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def is_unread(self) -> bool:
        return self.read_at is None

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.body.splitlines() if line.strip()), "")


class Preference(models.Model):
    """How a person hears of one kind by email. No row means the default, immediately."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_preferences",
        db_index=False,  # the unique constraint leads with it
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    delivery = models.CharField(max_length=16, choices=Delivery.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="preference_one_per_kind"),
            models.CheckConstraint(
                condition=Q(delivery__in=Delivery.values), name="preference_delivery_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.kind}: {self.delivery}"
