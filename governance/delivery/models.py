"""Jobs: every long piece of work (packaging, profiling, deploying, retraining) as one row that
says where it stands, what it printed and what it cost."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from governance.access.models import Project
from governance.registry.models import ModelVersion, RegisteredModel

USER = settings.AUTH_USER_MODEL  # Target has a field named `settings`


class Job(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=40)
    version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    step = models.CharField(max_length=200, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="What the job made.")
    error = models.TextField(blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    trigger = models.CharField(max_length=40, default="manual", help_text="manual, schedule, ...")
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # Cost, added up over the attempts.
    cpu_seconds = models.FloatField(default=0)
    wall_seconds = models.FloatField(default=0)
    peak_memory_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker took it; empty while it could not."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="job_project_recent"),
            models.Index(fields=["state", "enqueued_at"], name="job_waiting"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk}"

    @property
    def finished(self) -> bool:
        return self.state in self.FINISHED


class JobLine(models.Model):
    """One line of a job's log, numbered so that a page can ask for the lines after one."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="lines")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    text = models.TextField()

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="job_line_once"),
        ]

    def __str__(self) -> str:
        return f"{self.job} line {self.number}"


class Secret(models.Model):
    """A project's secret: its name in clear, its value only encrypted (see vault.py)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=100)
    sealed = models.TextField(help_text="The value, encrypted; never shown.")
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    set_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="secret_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Target(models.Model):
    """Where a project's model versions are deployed: an entry of the endpoint registry."""

    class Kind(models.TextChoices):
        LOCAL = "local", "Local (a scoring server on Quorum's worker host)"
        WEBHOOK = "webhook", "Webhook (a signed request to a CD system)"
        KUBERNETES = "kubernetes", "Kubernetes (a Deployment and a Service)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="targets")
    name = models.CharField(max_length=60)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    stage = models.CharField(
        max_length=32, help_text="The approval stage a version needs to be deployed here."
    )
    settings = models.JSONField(default=dict, blank=True, help_text="Checked per kind.")
    secrets = models.JSONField(
        default=list, blank=True, help_text="Project secrets given to the server as variables."
    )
    created_by = models.ForeignKey(USER, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="target_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Deployment(models.Model):
    """One version put on one target, from its job to its end; a target's history."""

    class State(models.TextChoices):
        DEPLOYING = "deploying", "Deploying"
        LIVE = "live", "Live"
        MANIFESTS_READY = "manifests_ready", "Manifests ready (not applied)"
        FAILED = "failed", "Failed"
        ROLLED_BACK = "rolled_back", "Rolled back"
        SUPERSEDED = "superseded", "Superseded"
        STOPPED = "stopped", "Stopped"

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        HEALTHY = "healthy", "Healthy"
        UNHEALTHY = "unhealthy", "Unhealthy"

    # States in which the deployment serves, or may: the ones a new deployment replaces.
    CURRENT = (State.LIVE, State.MANIFESTS_READY)

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="deployments")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployments")
    state = models.CharField(max_length=16, choices=State.choices, default=State.DEPLOYING)
    health = models.CharField(max_length=16, choices=Health.choices, default=Health.UNKNOWN)
    probed_at = models.DateTimeField(null=True, blank=True)
    probe_detail = models.CharField(max_length=500, blank=True)
    healthy_at = models.DateTimeField(
        null=True, blank=True, help_text="When a probe last found it healthy."
    )
    endpoint = models.URLField(max_length=500, blank=True)
    detail = models.TextField(blank=True, help_text="Why it failed, or how to apply it.")
    runtime = models.JSONField(
        default=dict, blank=True, help_text="pid, port, log path; rendered manifests."
    )
    deployed_by = models.ForeignKey(USER, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When it left service.")
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, related_name="+")
    package_job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    replaced = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rollback_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target", "-created_at"], name="deployment_target_recent"),
            models.Index(fields=["state"], name="deployment_state"),
        ]

    def __str__(self) -> str:
        return f"deployment {self.pk}"


class RetrainingPolicy(models.Model):
    """How and when a registered model is trained again: the team's pipeline, its parameters
    and seed, and what starts a run (a cron schedule, new data, a drift alert)."""

    model = models.OneToOneField(
        RegisteredModel, on_delete=models.CASCADE, related_name="retraining_policy"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    entry_point = models.CharField(max_length=300, help_text="package.module:attribute")
    params = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(default=0)
    cron = models.CharField(max_length=120, blank=True, help_text="Five fields; blank: none.")
    schedule = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    on_new_data = models.BooleanField(default=False)
    on_drift = models.BooleanField(default=False)
    cooldown_minutes = models.PositiveIntegerField(default=60)
    enabled = models.BooleanField(default=True)
    open_approval_for_stage = models.CharField(max_length=64, blank=True)
    # Stored and shown only: deploying is not retraining's to do.
    auto_deploy = models.BooleanField(default=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return f"retraining of {self.model}"


class RetrainingRun(models.Model):
    """One retraining: the job that runs it and everything needed to run it again."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        NEW_DATA = "new_data", "New data"
        DRIFT = "drift", "Drift alert"
        MANUAL = "manual", "Run now"
        RERUN = "rerun", "Rerun"

    policy = models.ForeignKey(RetrainingPolicy, on_delete=models.CASCADE, related_name="runs")
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="retraining")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    cause = models.JSONField(default=dict, blank=True, help_text='{"alert": 3} or {"batch": 9}')
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    entry_point = models.CharField(max_length=300)
    params = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(default=0)
    inputs = models.JSONField(
        default=list, blank=True, help_text="The kept tables it trains on, by SHA-256."
    )
    data_digests = models.JSONField(default=dict, blank=True, help_text="As read by the run.")
    code_version = models.CharField(max_length=100, blank=True)
    env_hash = models.CharField(max_length=64, blank=True)
    mlflow_run_id = models.CharField(max_length=64, blank=True)
    registered_number = models.PositiveIntegerField(null=True, blank=True)
    registered_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approval = models.ForeignKey(
        "approvals.ApprovalRequest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    approval_note = models.TextField(blank=True, help_text="Why no approval was opened.")
    metrics = models.JSONField(default=dict, blank=True)
    rerun_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns"
    )
    metrics_match = models.BooleanField(null=True, blank=True)
    differences = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["policy", "-created_at"], name="retraining_recent"),
            # The newest runs across projects, for the ML engineer's home.
            models.Index(fields=["-created_at", "-id"], name="retraining_newest"),
        ]

    def __str__(self) -> str:
        return f"retraining run {self.pk} of {self.policy.model}"
