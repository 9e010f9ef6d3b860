"""A Celery worker process for the fault tests: the project's own worker, on the broker and
database the test gives it, knowing the fault tests' job kind, recovering a dead worker's message
within seconds rather than an hour.

    python -m tests.faults.worker QUEUE NAME
"""

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django.setup()

from dashboard.celery import app  # noqa: E402
from tests.faults import kinds  # noqa: E402, F401 - registers the kind

queue, name = sys.argv[1], sys.argv[2]
app.conf.task_default_queue = queue  # what this worker queues (emails) it runs too
app.conf.broker_transport_options = {
    **app.conf.broker_transport_options,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
app.worker_main(
    [
        "worker",
        "--pool=solo",
        f"--queues={queue}",
        f"--hostname={name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=INFO",
    ]
)
