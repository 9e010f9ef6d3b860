"""The Celery app. Workers start with `celery -A dashboard worker`; beat reads its schedule
from the database (django-celery-beat), so schedules are edited in the admin."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("quorum")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
