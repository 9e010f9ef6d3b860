"""Celery entry points of notifications: thin, by id, safe to run twice."""

from smtplib import SMTPException

from celery import shared_task

from governance.notify import services

# Only what a later try may cure: the SMTP server or the network.
TRANSIENT = (SMTPException, OSError)


@shared_task(
    name="notify.send_email",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=600,  # services.SWEEP_AFTER waits longer than this
    retry_jitter=True,
    max_retries=services.MAX_EMAIL_ATTEMPTS - 1,
    time_limit=120,
    ignore_result=True,
)
def send_email(*, notification_id: int) -> None:
    services.send_email(notification_id=notification_id)


@shared_task(
    name="notify.send_digests",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=60,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=5,
    time_limit=3600,
    ignore_result=True,
)
def send_digests() -> None:
    services.send_digests()


@shared_task(
    name="notify.sweep_pending_emails",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=300,
    ignore_result=True,
)
def sweep_pending_emails() -> None:
    services.sweep_pending_emails()
