from celery import shared_task

from governance.fairness import services
from governance.registry.errors import MlflowUnavailable


@shared_task(
    bind=True,
    name="fairness.generate_bias_report",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=5,
    time_limit=1800,
    ignore_result=True,
)
def generate_bias_report(self, *, report_id: int) -> None:
    """A bias report was asked for: make it. Bad input fails the report, not the task; MLflow
    out of reach is retried with backoff, and fails the report after the last retry."""
    last = self.request.retries >= self.max_retries
    try:
        services.generate_bias_report(report_id=report_id, last_attempt=last)
    except MlflowUnavailable as error:
        raise self.retry(exc=error, countdown=min(600, 5 * 2**self.request.retries)) from None
