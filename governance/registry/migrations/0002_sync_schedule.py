"""Poll MLflow every minute and reconcile everything every six hours; both are edited in the
admin (django-celery-beat). QUORUM_MLFLOW_SYNC_SECONDS sets the first interval when the
schedule is created."""

import json
import os

from django.db import migrations

SCHEDULES = [
    ("Sync MLflow", int(os.environ.get("QUORUM_MLFLOW_SYNC_SECONDS", "60")), False),
    ("Reconcile MLflow (full sync)", 6 * 3600, True),
]


def plant(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, seconds, full in SCHEDULES:
        interval, _ = interval_model.objects.get_or_create(every=seconds, period="seconds")
        task_model.objects.get_or_create(
            name=name,
            defaults={
                "task": "registry.sync_mlflow",
                "interval": interval,
                "kwargs": json.dumps({"full": full}),
                "enabled": True,
            },
        )


def remove(apps, schema_editor):
    names = [name for name, _, _ in SCHEDULES]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(plant, remove)]
