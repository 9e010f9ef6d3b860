"""Release policies, requests, decisions, comments and watchers.

A policy says who must approve a release of a project's model version to a stage (an MLflow
alias such as `production`), how many, and which gates must pass. Every edit makes a new
`PolicyVersion`; a request is judged by the version it opened under.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from governance.access.models import Project
from governance.access.roles import Role
from governance.registry.models import ModelVersion


class ApprovalPolicy(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="policies")
    stage = models.CharField(max_length=32, help_text="The MLflow alias a release moves.")
    current = models.ForeignKey(
        "PolicyVersion", on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "policies"
        ordering = ["project", "stage"]
        constraints = [
            models.UniqueConstraint(fields=["project", "stage"], name="policy_stage_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}: {self.stage}"


class PolicyVersion(models.Model):
    """One saved state of a policy. Never changed once saved: requests point at it."""

    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    required = models.JSONField(
        default=dict, help_text='Approvals needed per role, e.g. {"product_owner": 1}.'
    )
    quorum = models.PositiveSmallIntegerField(help_text="Approvals needed in all.")
    open_days = models.PositiveSmallIntegerField(default=14)
    gates = models.JSONField(default=list)
    guard = models.BooleanField(
        default=False, help_text="Move the alias back when someone moves it outside Quorum."
    )
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="policy_version_number"),
            models.CheckConstraint(condition=Q(quorum__gte=1), name="policy_quorum_positive"),
            models.CheckConstraint(condition=Q(open_days__gte=1), name="policy_open_days"),
        ]

    def __str__(self) -> str:
        return f"{self.policy} v{self.number}"

    def slots(self) -> list[tuple[Role, int]]:
        return [(role, self.required[role.value]) for role in Role if role in self.required]


class ApprovalRequest(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"
        EXPIRED = "expired", "Expired"
        SUPERSEDED = "superseded", "Superseded"

    class AliasState(models.TextChoices):
        NONE = "", "Not due"
        PENDING = "pending", "Alias pending"
        MOVED = "moved", "Alias moved"
        FAILED = "failed", "Alias move failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="approvals")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="approvals")
    stage = models.CharField(max_length=32)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    note = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    evidence = models.JSONField(default=dict)
    evidence_hash = models.CharField(max_length=64)
    gate_results = models.JSONField(default=list, help_text="The latest check of the gates.")
    gates_checked_at = models.DateTimeField(default=timezone.now)
    opened_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome_note = models.CharField(max_length=500, blank=True)
    alias_state = models.CharField(
        max_length=16, choices=AliasState.choices, default=AliasState.NONE, blank=True
    )
    alias_attempts = models.PositiveSmallIntegerField(default=0)
    alias_error = models.TextField(blank=True)
    alias_moved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "stage"],
                condition=Q(state="open"),
                name="approval_one_open_per_version_stage",
            )
        ]
        indexes = [
            models.Index(fields=["project", "state", "-opened_at"], name="approval_project_state"),
            models.Index(fields=["version", "stage", "-opened_at"], name="approval_version_stage"),
            models.Index(fields=["state", "expires_at"], name="approval_state_expiry"),
        ]

    def __str__(self) -> str:
        return f"request #{self.pk}: {self.version} to {self.stage}"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN


class Decision(models.Model):
    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"

    approval = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, related_name="decisions"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_decisions"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["approval", "approver"], name="decision_once_each"),
            models.CheckConstraint(
                condition=~Q(verdict="reject") | ~Q(comment=""),
                name="decision_reject_has_comment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.verdict} #{self.approval_id}"


class Comment(models.Model):
    """A remark on a release request or a model version, in Markdown, answered in threads."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    approval = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, null=True, blank=True, related_name="comments"
    )
    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, null=True, blank=True, related_name="comments"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    mentions = models.JSONField(default=list, help_text="Usernames told about it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(approval__isnull=False) | Q(version__isnull=False),
                name="comment_has_a_subject",
            )
        ]

    def __str__(self) -> str:
        return f"comment #{self.pk} by {self.author_id}"


class Watcher(models.Model):
    """Someone told about each decision and outcome of a request."""

    approval = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="watchers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["approval", "user"], name="watcher_once_each")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} watches #{self.approval_id}"
