from celery import shared_task

from governance.monitoring import services
from governance.registry.errors import MlflowUnavailable


@shared_task(
    name="monitoring.run_drift_check",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=3600,
    ignore_result=True,
)
def run_drift_check(*, check_id: int) -> None:
    """A batch arrived: compare it with the reference. Bad data fails the check, not the task."""
    services.run_drift_check(check_id=check_id)


@shared_task(
    name="monitoring.check_data_quality",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=3600,
    ignore_result=True,
)
def check_data_quality(*, batch_id: int) -> None:
    """A batch arrived: report its data quality. Bad data fails the report, not the task."""
    services.check_data_quality(batch_id=batch_id)


@shared_task(
    name="monitoring.compute_quality",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    time_limit=3600,
    ignore_result=True,
)
def compute_quality(*, batch_id: int) -> None:
    """A batch's labels arrived: measure the model on it. Only an unreachable MLflow retries."""
    services.compute_model_quality(batch_id=batch_id)


@shared_task(name="monitoring.poll_sources", time_limit=120, ignore_result=True)
def poll_sources() -> None:
    """Every minute (beat): queue a poll of each monitor whose source is due."""
    services.poll_sources()


@shared_task(
    name="monitoring.poll_source",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=600,
    ignore_result=True,
)
def poll_source(*, monitor_id: int) -> None:
    """Fetch one monitor's source. A failure is kept on the monitor; the next poll is the retry."""
    services.poll_source(monitor_id=monitor_id)


@shared_task(name="monitoring.scheduled_checks", time_limit=120, ignore_result=True)
def scheduled_checks() -> None:
    """Every minute (beat): queue a check over its window for each monitor that is due."""
    services.run_scheduled_checks()
