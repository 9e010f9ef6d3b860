from celery import shared_task

from governance.approvals import services
from governance.registry.errors import MlflowUnavailable


@shared_task(
    bind=True,
    name="approvals.move_alias",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=6,
    time_limit=120,
    ignore_result=True,
)
def move_alias(self, *, approval_id: int) -> None:
    """Point MLflow's alias at an approved version. MLflow down: retried with backoff; after the
    last retry the request shows the failure and offers a retry."""
    try:
        services.move_alias(approval_id=approval_id)
    except MlflowUnavailable as error:
        final = self.request.retries >= self.max_retries
        services.note_alias_failure(approval_id=approval_id, error=error.message, final=final)
        if not final:
            raise self.retry(exc=error, countdown=min(600, 5 * 2**self.request.retries)) from None


@shared_task(
    name="approvals.enforce_guard",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
    time_limit=120,
    ignore_result=True,
)
def enforce_guard(*, model_id: int, stage: str) -> None:
    services.enforce_guard(model_id=model_id, stage=stage)


@shared_task(name="approvals.expire_requests", time_limit=300, ignore_result=True)
def expire_requests() -> None:
    services.expire_requests()
