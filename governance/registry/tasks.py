import logging

from celery import shared_task

from governance.registry import services
from governance.registry.errors import MlflowUnavailable, SyncBusy

log = logging.getLogger(__name__)


@shared_task(
    name="registry.sync_mlflow",
    autoretry_for=(MlflowUnavailable,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    time_limit=3600,
)
def sync_mlflow(*, full: bool = False, trigger: str = "schedule") -> None:
    try:
        services.sync_mlflow(trigger=trigger, full=full)
    except SyncBusy:
        log.info("an MLflow sync is already running; skipped")


@shared_task(
    name="registry.sync_model",
    autoretry_for=(MlflowUnavailable, SyncBusy),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
    time_limit=600,
)
def sync_model(*, name: str) -> None:
    """A webhook said this model changed: mirror it now (or soon, when a sync is running)."""
    services.sync_model(name=name)
