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
    """A bias assessment of a model version on a kept table, made by a worker: queued when
    asked for, then running, then done (with figures and a verdict) or failed (with why)."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="bias_reports")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="bias_reports")
    dataset = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="+")
    y_true = models.CharField(max_length=250)
    y_pred = models.CharField(
        max_length=250, blank=True, help_text="Empty: the version's MLflow model predicts."
    )
    sensitive = models.JSONField(help_text="One or two sensitive columns.")
    pos_label = models.CharField(max_length=100, default="1")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    error = models.TextField(blank=True)
    min_group_size = models.PositiveIntegerField(default=30)
    policy = models.JSONField(default=dict, help_text="The limits the report was judged by.")
    result = models.JSONField(default=dict, help_text="Per-group metrics and disparities.")
    judgement = models.JSONField(default=dict)
    passed = models.BooleanField(null=True, help_text="Set when the report is done.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["version", "-created_at"], name="bias_report_recent")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state="done", passed__isnull=False)
                | (~models.Q(state="done") & models.Q(passed__isnull=True)),
                name="bias_report_verdict_when_done",
            )
        ]

    def __str__(self) -> str:
        return f"bias report {self.pk} of {self.version}"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)

    @property
    def predicted_by_model(self) -> bool:
        return not self.y_pred
