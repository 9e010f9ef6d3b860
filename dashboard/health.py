"""Checks of the services Quorum needs: the database, the Celery broker and MLflow.

Each returns None when the service answers, or the reason it does not.
"""

import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

TIMEOUT_SECONDS = 3


def check_database() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            return "SELECT 1 did not return 1"
    return None


def check_broker() -> str | None:
    from dashboard.celery import app

    with app.connection_for_write() as conn:
        if conn.transport_cls in ("filesystem", getattr(settings, "CELERY_BROKER_TRANSPORT", "")):
            folder = Path(conn.transport_options["data_folder_in"])
            if not (folder.is_dir() and os.access(folder, os.W_OK)):
                return f"queue folder {folder} is missing or not writable"
            return None
        conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
    return None


def check_mlflow() -> str | None:
    uri = settings.MLFLOW_TRACKING_URI
    if uri.startswith(("http://", "https://")):
        # The tracking server's own health route; the client would retry for minutes.
        with urllib.request.urlopen(  # noqa: S310 (the scheme is checked above)
            f"{uri.rstrip('/')}/health", timeout=TIMEOUT_SECONDS
        ) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "broker": check_broker,
    "mlflow": check_mlflow,
}


def run_checks() -> dict[str, dict[str, object]]:
    """Every check's status ("ok" or "error"), reason and time taken."""
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            reason = check()
        except Exception as exc:  # a health check reports every failure
            reason = f"{type(exc).__name__}: {exc}"
        results[name] = {
            "status": "error" if reason else "ok",
            "reason": reason or "",
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
    return results
