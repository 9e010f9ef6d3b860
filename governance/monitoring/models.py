"""Monitors, the batches of current data they receive, drift checks and drift alerts.

A monitor ties a model version to a reference table Quorum keeps. Each batch of current data
is kept the same way (a data set version, Parquet named by its SHA-256) and checked against
the reference; what drifted opens an alert per feature, one at a time.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from governance.access.models import Project
from governance.registry.models import DatasetVersion, ModelVersion


class Monitor(models.Model):
    class Task(models.TextChoices):
        CLASSIFICATION = "classification", "Classification"
        REGRESSION = "regression", "Regression"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="monitors")
    name = models.CharField(max_length=200)
    version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="monitors"
    )
    reference = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="+")
    categorical = models.JSONField(
        default=list, blank=True, help_text="Columns compared as categories (default: text)."
    )
    thresholds = models.JSONField(
        default=dict, blank=True, help_text="Overrides of the default drift thresholds."
    )
    bins = models.PositiveSmallIntegerField(default=10)
    active = models.BooleanField(default=True)
    subscribers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Model quality, once labels arrive: what the model does, and where to find the truth and
    # its predictions. No task: the monitor watches the data only.
    task = models.CharField(max_length=16, choices=Task.choices, blank=True)
    label_column = models.CharField(
        max_length=250, blank=True, help_text="The reference's column of true labels."
    )
    prediction_column = models.CharField(
        max_length=250,
        blank=True,
        help_text="The batches' column of predictions; blank: the model version computes them.",
    )
    positive_label = models.CharField(
        max_length=200, blank=True, help_text="The positive class (default: the last in order)."
    )
    id_column = models.CharField(
        max_length=250,
        blank=True,
        help_text="Labels join a batch's rows by it; blank: labels come in the batch's order.",
    )
    reference_quality = models.JSONField(
        default=dict, blank=True, help_text="The model's quality on the reference, once."
    )
    # Batches fetched from a URI: an http(s) URL or a file:// path under QUORUM_DATA_ROOTS.
    source_uri = models.CharField(max_length=2000, blank=True)
    poll_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Null: off.")
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_poll_sha256 = models.CharField(max_length=64, blank=True)
    last_poll_error = models.TextField(blank=True)
    # Checks over the batches of a recent window, on a schedule or on request.
    check_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Null: check only when a batch arrives."
    )
    window_hours = models.PositiveIntegerField(default=24)
    last_scheduled_at = models.DateTimeField(
        null=True, blank=True, help_text="When a scheduled check was last due."
    )

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="monitor_name_unique"),
            models.CheckConstraint(
                condition=Q(poll_minutes__isnull=True) | Q(poll_minutes__gte=1),
                name="monitor_poll_minutes_positive",
            ),
            models.CheckConstraint(
                condition=Q(check_minutes__isnull=True) | Q(check_minutes__gte=1),
                name="monitor_check_minutes_positive",
            ),
            models.CheckConstraint(
                condition=Q(window_hours__gte=1), name="monitor_window_hours_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class QualityState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Batch(models.Model):
    class Source(models.TextChoices):
        UPLOAD = "upload", "Uploaded"
        API = "api", "Sent over the API"
        POLL = "poll", "Fetched from a URI"

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="batches")
    dataset = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices)
    rows = models.PositiveIntegerField()
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    received_at = models.DateTimeField(default=timezone.now)
    # Data quality, checked on arrival; None until then.
    quality = models.JSONField(default=dict, blank=True, help_text="The data-quality report.")
    quality_passed = models.BooleanField(null=True)
    # Model quality, once the batch's labels arrive.
    labels = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    labels_received_at = models.DateTimeField(null=True, blank=True)
    model_quality_state = models.CharField(max_length=16, choices=QualityState.choices, blank=True)
    model_quality = models.JSONField(default=dict, blank=True)
    model_quality_error = models.TextField(blank=True)
    model_quality_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            # The same data twice is one batch: a retried upload checks nothing twice.
            models.UniqueConstraint(fields=["monitor", "dataset"], name="batch_once_per_monitor")
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} of {self.monitor}"


class DriftCheck(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="checks")
    batch = models.ForeignKey(
        Batch, on_delete=models.CASCADE, null=True, blank=True, related_name="checks"
    )
    trigger = models.CharField(max_length=16, help_text="batch, schedule or manual")
    # A scheduled or manual check compares the batches of a window, concatenated.
    window_batches = models.JSONField(
        default=list, blank=True, help_text="Ids of the batches a window check compares."
    )
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    drifted = models.BooleanField(null=True)
    drifted_share = models.FloatField(null=True)
    result = models.JSONField(default=dict, blank=True, help_text="Every statistic per feature.")
    decision = models.JSONField(default=dict, blank=True, help_text="What drifted and why.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["monitor", "-created_at"], name="check_monitor_recent")]

    def __str__(self) -> str:
        return f"check {self.pk} of {self.monitor} ({self.state})"


class FeatureDrift(models.Model):
    """One feature's figures in one check, apart from the check's JSON so that a feature's
    history is one indexed query."""

    drift_check = models.ForeignKey(DriftCheck, on_delete=models.CASCADE, related_name="features")
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="+")
    feature = models.CharField(max_length=250)
    kind = models.CharField(max_length=16)
    psi = models.FloatField()
    p_value = models.FloatField(null=True)
    statistic = models.FloatField(null=True, help_text="KS statistic or Cramér's V.")
    js_distance = models.FloatField()
    drifted = models.BooleanField()
    reasons = models.JSONField(default=list)
    at = models.DateTimeField()

    class Meta:
        ordering = ["feature"]
        constraints = [
            models.UniqueConstraint(
                fields=["drift_check", "feature"], name="feature_once_per_check"
            )
        ]
        indexes = [models.Index(fields=["monitor", "feature", "at"], name="feature_history")]

    def __str__(self) -> str:
        return f"{self.feature} in check {self.drift_check_id}"


class DriftAlert(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="alerts")
    feature = models.CharField(max_length=250)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    opened_by = models.ForeignKey(DriftCheck, on_delete=models.CASCADE, related_name="+")
    last_seen = models.ForeignKey(DriftCheck, on_delete=models.CASCADE, related_name="+")
    reasons = models.JSONField(default=list)
    opened_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledge_comment = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolve_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # One alert per feature until it is resolved: a drift seen again updates it.
            models.UniqueConstraint(
                fields=["monitor", "feature"],
                condition=~Q(state="resolved"),
                name="alert_one_unresolved_per_feature",
            )
        ]

    def __str__(self) -> str:
        return f"{self.feature} drifting in {self.monitor} ({self.state})"
