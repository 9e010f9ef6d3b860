"""Batches polled from a URI, checks over a window on a schedule, and the two beat tasks
that drive them (edited in the admin, django-celery-beat)."""

from django.conf import settings
from django.db import migrations, models

SCHEDULES = {
    "Poll monitor sources": "monitoring.poll_sources",
    "Scheduled drift checks": "monitoring.scheduled_checks",
}


def plant(apps, schema_editor):
    # Every minute: each monitor's own poll and check intervals decide what is due.
    every, _ = apps.get_model("django_celery_beat", "IntervalSchedule").objects.get_or_create(
        every=1, period="minutes"
    )
    for name, task in SCHEDULES.items():
        apps.get_model("django_celery_beat", "PeriodicTask").objects.get_or_create(
            name=name, defaults={"task": task, "interval": every, "enabled": True}
        )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=list(SCHEDULES)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0004_ci_tokens"),
        ("monitoring", "0003_quality_and_labels"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("registry", "0006_kept_tables"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="driftcheck",
            name="window_batches",
            field=models.JSONField(
                blank=True, default=list, help_text="Ids of the batches a window check compares."
            ),
        ),
        migrations.AddField(
            model_name="driftcheck",
            name="window_end",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="driftcheck",
            name="window_start",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="monitor",
            name="check_minutes",
            field=models.PositiveIntegerField(
                blank=True, help_text="Null: check only when a batch arrives.", null=True
            ),
        ),
        migrations.AddField(
            model_name="monitor",
            name="last_poll_error",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="monitor",
            name="last_poll_sha256",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="monitor",
            name="last_polled_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="monitor",
            name="last_scheduled_at",
            field=models.DateTimeField(
                blank=True, help_text="When a scheduled check was last due.", null=True
            ),
        ),
        migrations.AddField(
            model_name="monitor",
            name="poll_minutes",
            field=models.PositiveIntegerField(blank=True, help_text="Null: off.", null=True),
        ),
        migrations.AddField(
            model_name="monitor",
            name="source_uri",
            field=models.CharField(blank=True, max_length=2000),
        ),
        migrations.AddField(
            model_name="monitor",
            name="window_hours",
            field=models.PositiveIntegerField(default=24),
        ),
        migrations.AddConstraint(
            model_name="monitor",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("poll_minutes__isnull", True), ("poll_minutes__gte", 1), _connector="OR"
                ),
                name="monitor_poll_minutes_positive",
            ),
        ),
        migrations.AddConstraint(
            model_name="monitor",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("check_minutes__isnull", True), ("check_minutes__gte", 1), _connector="OR"
                ),
                name="monitor_check_minutes_positive",
            ),
        ),
        migrations.AddConstraint(
            model_name="monitor",
            constraint=models.CheckConstraint(
                condition=models.Q(("window_hours__gte", 1)), name="monitor_window_hours_positive"
            ),
        ),
        migrations.RunPython(plant, remove),
    ]
