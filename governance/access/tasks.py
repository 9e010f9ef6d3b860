from smtplib import SMTPException

from celery import shared_task

from governance.access import services


@shared_task(
    name="access.send_password_reset_email",
    autoretry_for=(SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    time_limit=60,
)
def send_password_reset_email(*, user_id: int, domain: str, use_https: bool) -> None:
    services.send_password_reset_email(user_id=user_id, domain=domain, use_https=use_https)
