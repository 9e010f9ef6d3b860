"""Bias reports of model versions, and each project's fairness policy."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from governance.access.models import Project
from governance.registry.models import DatasetVersion, ModelVersion


class FairnessPolicy(models.Model):
    """The limits a project's bias reports must keep (`metrics.Policy` as JSON)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="fairness")
    limits = models.JSONField(default=dict, help_text="Overrides of the four-fifths default.")
    min_group_size = models.PositiveIntegerField(default=30)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    edited_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "fairness policies"

    def __str__(self) -> str:
        return f"fairness policy of {self.project}"


class BiasReport(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="bias_reports")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="bias_reports")
    dataset = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="+")
    y_true = models.CharField(max_length=250)
    y_pred = models.CharField(max_length=250)
    sensitive = models.JSONField(help_text="One or two sensitive columns.")
    pos_label = models.CharField(max_length=100, default="1")
    min_group_size = models.PositiveIntegerField()
    policy = models.JSONField(help_text="The limits the report was judged by.")
    result = models.JSONField(help_text="Per-group metrics and disparities.")
    judgement = models.JSONField()
    passed = models.BooleanField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["version", "-created_at"], name="bias_report_recent")]

    def __str__(self) -> str:
        return f"bias report {self.pk} of {self.version}"
