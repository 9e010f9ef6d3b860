from celery import shared_task

from governance.monitoring import services


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
