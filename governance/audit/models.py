import json

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property

from governance.audit.chain import GENESIS


class ActorKind(models.TextChoices):
    USER = "user", "Person"
    TOKEN = "token", "Person, through an API token"
    SYSTEM = "system", "Quorum"
    ANONYMOUS = "anonymous", "Anonymous"


class AuditEvent(models.Model):
    """One link of the chain. The database refuses UPDATE, DELETE and TRUNCATE on this table.

    `actor` and `project` are foreign keys without database constraints: the trail outlives
    the rows it names, and the copied `actor_name` keeps it readable.
    """

    seq = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the trail is searched by actor_name, indexed below with seq
        null=True,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150)
    actor_token = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=80)
    target_kind = models.CharField(max_length=60, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    project = models.ForeignKey(
        "access.Project",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # covered by the (project, seq) index below
        null=True,
        related_name="+",
    )
    payload = models.TextField(default="{}", help_text="Canonical JSON: what changed.")
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["project", "seq"], name="audit_project_seq"),
            models.Index(fields=["actor_name", "seq"], name="audit_actor_name_seq"),
            models.Index(fields=["action", "seq"], name="audit_action_seq"),
            models.Index(fields=["target_kind", "target_id", "seq"], name="audit_target_seq"),
            models.Index(fields=["at"], name="audit_at"),
        ]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_name or self.actor_kind}"

    @cached_property
    def data(self) -> dict:
        """The payload, parsed."""
        return json.loads(self.payload)


class ChainHead(models.Model):
    """The last link: its sequence and hash. Writers lock this row, so the chain never forks."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="chain_head_single")]

    def __str__(self) -> str:
        return f"head #{self.seq}"


class VerificationRun(models.Model):
    """One walk of the whole chain: its progress while it runs, then its verdict."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Intact"
        FAILED = "failed", "Broken"
        ERROR = "error", "Could not finish"

    class Trigger(models.TextChoices):
        PAGE = "page", "From the trail page"
        API = "api", "Through the API"
        SCHEDULE = "schedule", "Nightly schedule"
        COMMAND = "command", "audit_verify command"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    checkpoint_seq = models.BigIntegerField(null=True, blank=True)
    checkpoint_hash = models.CharField(max_length=64, blank=True)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    checked = models.BigIntegerField(default=0)
    head_seq = models.BigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    break_seq = models.BigIntegerField(null=True, blank=True)
    break_kind = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"verification {self.pk} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in {self.State.PASSED, self.State.FAILED, self.State.ERROR}

    @property
    def percent(self) -> int:
        if self.is_finished:
            return 100
        return min(99, int(100 * self.done / self.total)) if self.total else 0

    @property
    def checkpoint(self) -> str:
        """The head as an outside checkpoint, `SEQ:HASH`."""
        return f"{self.head_seq}:{self.head_hash}" if self.head_hash else ""
