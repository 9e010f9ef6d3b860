"""The mirror of MLflow: what Quorum reads fast and joins with its governance.

MLflow stays the source of truth for everything here; the sync overwrites these rows. Each
experiment and registered model may belong to a project (tag `quorum.project=<slug>`, or a link
made in Quorum); runs and versions follow their experiment and model.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

# Where runs without a start (scheduled ones) sort: as the oldest.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Lifecycle(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted in MLflow"


class Experiment(models.Model):
    mlflow_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=500)
    artifact_location = models.TextField(blank=True)
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, default="active")
    tags = models.JSONField(default=dict)
    project = models.ForeignKey(
        "access.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A link made in Quorum outlives a tag that MLflow later drops.
    linked_in_quorum = models.BooleanField(default=False)
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["project", "name"], name="experiment_project_name")]

    def __str__(self) -> str:
        return self.name


class Run(models.Model):
    class Status(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        SCHEDULED = "SCHEDULED", "Scheduled"
        FINISHED = "FINISHED", "Finished"
        FAILED = "FAILED", "Failed"
        KILLED = "KILLED", "Killed"

    mlflow_id = models.CharField(max_length=64, unique=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    user = models.CharField(max_length=255, blank=True)
    start_time = models.DateTimeField(null=True)
    end_time = models.DateTimeField(null=True)
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, default="active")
    params = models.JSONField(default=dict)
    # Latest value per key; NaN and infinities are kept as the strings "NaN", "Infinity".
    metrics = models.JSONField(default=dict)
    tags = models.JSONField(default=dict)
    code_version = models.CharField(max_length=100, blank=True)
    source_name = models.CharField(max_length=500, blank=True)
    artifact_uri = models.TextField(blank=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-start_time", "-pk"]
        indexes = [
            # The runs table's default order, exactly as runs_page sorts: newest first.
            models.Index(
                F("experiment"),
                Coalesce("start_time", Value(EPOCH)).desc(),
                F("id").desc(),
                name="run_experiment_started",
            ),
            models.Index(fields=["name"], name="run_name"),
            # An experiment's last run, on the experiments list.
            models.Index(fields=["experiment", "start_time"], name="run_experiment_start_time"),
            # A person's newest runs, on their home page.
            models.Index(
                F("user"), F("start_time").desc(), F("id").desc(), name="run_user_started"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.mlflow_id


class MetricHistory(models.Model):
    """A run's metric over steps, fetched from MLflow when a page first asks for it."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="histories")
    key = models.CharField(max_length=250)
    points = models.JSONField(default=list, help_text="[[step, timestamp ms, value], ...]")
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="metric_history_one_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} of {self.run_id}"


class DatasetVersion(models.Model):
    """A data set as a run used it (name and digest), or as registered in Quorum with the
    SHA-256 of its whole content (MLflow's own digest covers only the first rows)."""

    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=64)
    source_type = models.CharField(max_length=64, blank=True)
    source = models.TextField(blank=True)
    schema = models.JSONField(default=dict, blank=True)
    profile = models.JSONField(default=dict, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    stored = models.BooleanField(
        default=False, help_text="Quorum keeps the table, as Parquet named by its SHA-256."
    )
    project = models.ForeignKey(
        "access.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "digest"], name="dataset_name_digest")
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.digest[:8]}"


class RunInput(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs")
    dataset = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="uses")
    context = models.CharField(max_length=64, blank=True, help_text="training, evaluation, …")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "dataset", "context"], name="run_input_once_per_context"
            )
        ]

    def __str__(self) -> str:
        return f"{self.dataset} for {self.context or 'the run'}"


class RegisteredModel(models.Model):
    name = models.CharField(max_length=500, unique=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict)
    aliases = models.JSONField(default=dict, help_text="{alias: version}")
    project = models.ForeignKey(
        "access.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    linked_in_quorum = models.BooleanField(default=False)
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, default="active")
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["project", "name"], name="model_project_name")]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    source = models.TextField(blank=True)
    run = models.ForeignKey(
        Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="model_versions"
    )
    # Kept even when the run is not (or no longer) mirrored: lineage must not lose it.
    run_mlflow_id = models.CharField(max_length=64, blank=True)
    logged_model_id = models.CharField(max_length=64, blank=True)
    signature = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=32, blank=True)
    stage = models.CharField(max_length=32, blank=True)
    tags = models.JSONField(default=dict)
    description = models.TextField(blank=True)
    user = models.CharField(max_length=255, blank=True)
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, default="active")
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "-version"]
        # The versions a person registered, newest first, on their home page.
        indexes = [models.Index(fields=["user", "-created_at"], name="version_user_created")]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"


class SyncRun(models.Model):
    """One pass of the sync: its progress while it runs, then what it changed or why it
    failed. The pages show the last one as "last synced at"."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    full = models.BooleanField(default=False)
    trigger = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    phase = models.CharField(max_length=32, blank=True)
    done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"sync {self.pk} ({self.state})"


class SyncState(models.Model):
    """Where the incremental sync resumes, and the lease that keeps two syncs apart."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    runs_started_after = models.BigIntegerField(default=0, help_text="ms since the epoch")
    runs_checked_at = models.BigIntegerField(default=0, help_text="ms since the epoch")
    versions_updated_after = models.BigIntegerField(default=0, help_text="ms since the epoch")
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="sync_state_single")]

    def __str__(self) -> str:
        return "sync state"


class WebhookDelivery(models.Model):
    """An MLflow webhook delivery accepted once: a second one with the same id is a replay."""

    delivery_id = models.CharField(max_length=64, unique=True)
    event = models.CharField(max_length=64)
    model_name = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event} ({self.delivery_id})"


class ModelCard(models.Model):
    """A model version's card as it stands: the latest of its revisions."""

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="card")
    revision = models.PositiveIntegerField(default=0)
    sections = models.JSONField(default=dict)
    complete = models.BooleanField(default=False)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    edited_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"card of {self.version_id} r{self.revision}"


class ModelCardRevision(models.Model):
    """Every saved state of a card, kept: who wrote what, when, and why."""

    card = models.ForeignKey(ModelCard, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    sections = models.JSONField(default=dict)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    edited_by_name = models.CharField(max_length=150)
    edited_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["card", "number"], name="card_revision_number")
        ]

    def __str__(self) -> str:
        return f"{self.card} revision {self.number}"
