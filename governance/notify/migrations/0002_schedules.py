"""Send the daily digests at 07:00 UTC and sweep up emails whose task was lost every five
minutes; both schedules are edited in the admin (django-celery-beat)."""

from django.db import migrations

DIGESTS = "Send the daily notification digests"
SWEEP = "Queue notification emails whose task was lost"


def plant(apps, schema_editor):
    crontab, _ = apps.get_model("django_celery_beat", "CrontabSchedule").objects.get_or_create(
        minute="0", hour="7", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    interval, _ = apps.get_model("django_celery_beat", "IntervalSchedule").objects.get_or_create(
        every=300, period="seconds"
    )
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    task_model.objects.get_or_create(
        name=DIGESTS,
        defaults={"task": "notify.send_digests", "crontab": crontab, "enabled": True},
    )
    task_model.objects.get_or_create(
        name=SWEEP,
        defaults={"task": "notify.sweep_pending_emails", "interval": interval, "enabled": True},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[DIGESTS, SWEEP]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notify", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(plant, remove)]
