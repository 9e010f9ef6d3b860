"""What a notification is about. Areas add their kinds here; people choose per kind how they
hear of it by email (governance.notify.models.Preference)."""

from django.db import models


class Kind(models.TextChoices):
    RELEASE_REQUESTED = "release.requested", "A release waits for your decision"
    RELEASE_DECIDED = "release.decided", "A decision on a release you requested or watch"
    RELEASE_OUTCOME = "release.outcome", "A release was approved, rejected, expired or withdrawn"
    MENTION = "mention", "Someone mentioned you"
    DRIFT_ALERT = "drift.alert", "A drift alert opened on a model you follow"
    JOB_FINISHED = "job.finished", "A job you started finished"
    DEPLOYMENT_HEALTH = "deployment.health", "A deployment's health changed"
