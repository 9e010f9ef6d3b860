"""Celery entry points of jobs: thin, by id, safe to deliver twice."""

from celery import shared_task

from governance.delivery import runner, services
from governance.delivery.errors import TransientJobError
from governance.delivery.models import RetrainingPolicy, RetrainingRun


@shared_task(
    name="delivery.run_job",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientJobError,),
    retry_backoff=30,
    retry_backoff_max=900,
    retry_jitter=True,
    max_retries=runner.MAX_ATTEMPTS,
    time_limit=6 * 3600,
    ignore_result=True,
)
def run_job(*, job_id: int) -> None:
    runner.execute(job_id)


@shared_task(name="delivery.sweep_jobs", acks_late=True, time_limit=300, ignore_result=True)
def sweep_jobs() -> None:
    services.sweep_jobs()


@shared_task(name="delivery.probe_deployments", acks_late=True, time_limit=300, ignore_result=True)
def probe_deployments() -> None:
    services.probe_deployments()


@shared_task(
    name="delivery.retrain_on_schedule", acks_late=True, time_limit=300, ignore_result=True
)
def retrain_on_schedule(*, policy_id: int) -> None:
    """Beat's cron entry of a retraining policy: start a run unless one runs or cools down."""
    policy = RetrainingPolicy.objects.filter(pk=policy_id).first()
    if policy is not None and policy.enabled:
        services.trigger_retraining(policy=policy, trigger=RetrainingRun.Trigger.SCHEDULE)
