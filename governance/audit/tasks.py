import logging
from smtplib import SMTPException

from celery import shared_task
from django.db import InterfaceError, OperationalError

from governance.audit import services
from governance.audit.models import VerificationRun

log = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError)


@shared_task(
    name="audit.verify_chain",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
    time_limit=3600,
)
def verify_chain(*, run_id: int) -> None:
    try:
        services.run_verification(run_id=run_id)
    except TRANSIENT:
        raise
    except Exception as exc:  # the walk itself is broken: say so on the run, do not retry
        log.exception("verification %s could not finish", run_id)
        services.fail_verification(run_id=run_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(name="audit.verify_chain_nightly", time_limit=3600)
def verify_chain_nightly() -> None:
    services.verify_now(
        actor=services.SystemActor("nightly verification"),
        trigger=VerificationRun.Trigger.SCHEDULE,
    )


@shared_task(
    name="audit.send_checkpoint",
    autoretry_for=(SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    time_limit=60,
)
def send_checkpoint(*, run_id: int) -> None:
    services.send_checkpoint_email(run_id=run_id)
