"""Reads of policies and requests that pages, the API and the gate share."""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from governance.access.models import Membership, Project
from governance.access.permissions import capabilities_of
from governance.access.roles import Capability
from governance.approvals import rules
from governance.approvals.errors import PolicyNotFound, RequestNotFound
from governance.approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    Comment,
    Decision,
    PolicyVersion,
)
from governance.registry.errors import VersionNotFound
from governance.registry.models import ModelCard, ModelVersion, RegisteredModel

State = ApprovalRequest.State


def policies_of(project: Project) -> QuerySet[ApprovalPolicy]:
    """The project's policies by stage, each with its version in force."""
    return (
        ApprovalPolicy.objects.filter(project=project, current__isnull=False)
        .select_related("current__created_by")
        .order_by("stage")
    )


def policy_of(project: Project, stage: str) -> ApprovalPolicy:
    """Raises PolicyNotFound."""
    policy = policies_of(project).filter(stage=stage).first()
    if policy is None:
        raise PolicyNotFound
    return policy


def policy_history(policy: ApprovalPolicy) -> QuerySet[PolicyVersion]:
    return policy.versions.select_related("created_by").order_by("-number")


def _with_parts(approvals: QuerySet[ApprovalRequest]) -> QuerySet[ApprovalRequest]:
    return approvals.select_related(
        "project", "version__model", "version__run", "policy_version__policy", "requested_by"
    ).prefetch_related(Prefetch("decisions", queryset=Decision.objects.select_related("approver")))


def approvals_of(
    project: Project, *, state: str = "", stage: str = "", model: str = ""
) -> QuerySet[ApprovalRequest]:
    """The project's requests, newest first, filtered by state, stage and model name."""
    approvals = ApprovalRequest.objects.filter(project=project)
    if state:
        approvals = approvals.filter(state=state)
    if stage:
        approvals = approvals.filter(stage=stage)
    if model:
        approvals = approvals.filter(version__model__name=model)
    return _with_parts(approvals).order_by("-opened_at", "-id")


def approval_of(project: Project, pk: int) -> ApprovalRequest:
    """Raises RequestNotFound (also for a request of another project)."""
    approval = _with_parts(ApprovalRequest.objects.filter(project=project, pk=pk)).first()
    if approval is None:
        raise RequestNotFound
    return approval


def approvals_of_version(version: ModelVersion) -> list[ApprovalRequest]:
    return list(
        ApprovalRequest.objects.filter(version=version)
        .select_related("requested_by")
        .order_by("-opened_at", "-id")
    )


def progress_of(approval: ApprovalRequest) -> rules.Progress:
    """Where the request stands: slots filled, approvals counted, rejections. Uses the
    prefetched decisions when there are some."""
    terms = approval.policy_version
    if "decisions" in getattr(approval, "_prefetched_objects_cache", {}):
        decisions = approval.decisions.all()
    else:
        decisions = approval.decisions.select_related("approver")
    decisions = sorted(decisions, key=lambda d: (d.at, d.pk))
    return rules.progress(
        terms.required,
        terms.quorum,
        [(d.role, d.verdict, d.approver.get_username()) for d in decisions],
    )


def _card_editors(version_ids: list[int]) -> dict[int, int | None]:
    return dict(
        ModelCard.objects.filter(version_id__in=version_ids).values_list(
            "version_id", "edited_by_id"
        )
    )


def barred(
    user: AbstractBaseUser, approval: ApprovalRequest, editors: dict[int, int | None] | None = None
) -> str | None:
    """Why `user` may not approve `approval` by separation of duties, or None."""
    if editors is None:
        editors = _card_editors([approval.version_id])
    run = approval.version.run
    return rules.separation_of_duties(
        username=user.get_username(),
        email=getattr(user, "email", ""),
        user_id=user.pk,
        requested_by_id=approval.requested_by_id,
        run_user=run.user if run else "",
        card_editor_id=editors.get(approval.version_id),
    )


def may_decide(user: AbstractBaseUser, approval: ApprovalRequest) -> str | None:
    """Why `user` may not decide on `approval` now, or None when they may. For pages: the
    services check the same rules again under the lock."""
    if not approval.is_open:
        return f"the request is {approval.get_state_display().lower()}"
    if approval.expires_at <= timezone.now():
        return "the request has expired"
    if Capability.APPROVE_RELEASE not in capabilities_of(user, approval.project):
        return "your role does not approve releases"
    reason = barred(user, approval)
    if reason:
        return reason
    role = (
        Membership.objects.filter(project=approval.project, user=user)
        .values_list("role", flat=True)
        .first()
    )
    if role not in approval.policy_version.required:
        return "your role fills none of the approvals this policy asks for"
    if any(d.approver_id == user.pk for d in approval.decisions.all()):
        return "you have decided already"
    return None


# The JSON a queue of requests neither shows nor needs to sort out who may decide: the
# evidence and the runs' figures weigh more than everything else together.
QUEUE_UNSHOWN = (
    "evidence", "gate_results", "version__signature", "version__tags", "version__model__tags",
    "version__model__aliases", "version__run__params", "version__run__metrics",
    "version__run__tags",
)  # fmt: skip


def waiting_for(user: AbstractBaseUser) -> list[ApprovalRequest]:
    """Open requests `user` can decide on now, oldest first: their role fills a slot, they
    have not decided, and separation of duties does not bar them. Four queries."""
    roles = dict(
        Membership.objects.filter(user=user, project__archived_at__isnull=True).values_list(
            "project_id", "role"
        )
    )
    if not roles:
        return []
    candidates = list(
        _with_parts(
            ApprovalRequest.objects.filter(
                state=State.OPEN, project_id__in=list(roles), expires_at__gt=timezone.now()
            )
        )
        .defer(*QUEUE_UNSHOWN)
        .order_by("opened_at", "id")
    )
    editors = _card_editors([a.version_id for a in candidates])
    return [
        approval
        for approval in candidates
        if roles[approval.project_id] in approval.policy_version.required
        and not any(d.approver_id == user.pk for d in approval.decisions.all())
        and barred(user, approval, editors) is None
    ]


def comments_on(
    *, approval: ApprovalRequest | None = None, version: ModelVersion | None = None
) -> list[Comment]:
    """Top-level comments, oldest first, each with `thread`: its answers. Two queries."""
    comments = Comment.objects.select_related("author").order_by("created_at", "id")
    comments = comments.filter(approval=approval) if approval else comments.filter(version=version)
    everything = list(comments)
    threads: dict[int, list[Comment]] = {}
    for comment in everything:
        if comment.parent_id:
            threads.setdefault(comment.parent_id, []).append(comment)
    tops = [c for c in everything if not c.parent_id]
    for comment in tops:
        comment.thread = threads.get(comment.pk, [])
    return tops


@dataclass
class StageHolder:
    stage: str
    approved: int | None
    alias: int | None
    request: int | None
    guarded: bool

    @property
    def moved_outside(self) -> bool:
        """The alias points somewhere no approval put it."""
        return self.approved is not None and self.alias != self.approved


def stage_holders(model: RegisteredModel) -> list[StageHolder]:
    """Per stage with a policy: the version approved for it and where MLflow's alias points."""
    if model.project_id is None:
        return []
    policies = list(policies_of(model.project))
    held = {
        a.stage: a
        for a in ApprovalRequest.objects.filter(
            version__model=model, state=State.APPROVED
        ).select_related("version")
    }
    return [
        StageHolder(
            stage=policy.stage,
            approved=held[policy.stage].version.version if policy.stage in held else None,
            alias=model.aliases.get(policy.stage),
            request=held[policy.stage].pk if policy.stage in held else None,
            guarded=policy.current.guard,
        )
        for policy in policies
    ]


@dataclass
class GateAnswer:
    allowed: bool
    request: int | None
    state: str
    reasons: list[str] = field(default_factory=list)
    checked_at: datetime = field(default_factory=timezone.now)


def gate(projects: list[int], *, model: str, version: int, stage: str) -> GateAnswer:
    """May `model` version `version` ship to `stage`? Yes only when a request for it was
    approved and no later approval superseded it. `projects` are the ids of the projects the
    caller may see; raises VersionNotFound for a version of any other. One query for an
    answered request, two or three otherwise, whatever the history: CI asks this often."""
    latest = (
        ApprovalRequest.objects.filter(
            project_id__in=projects,
            version__model__name=model,
            version__version=version,
            stage=stage,
        )
        .select_related("policy_version")
        # What the answer reads, and no more: the evidence alone can be kilobytes of JSON.
        .only(
            "state", "alias_state", "outcome_note", "expires_at", "gate_results",
            "policy_version__required", "policy_version__quorum",
        )
        .order_by("-opened_at", "-id")
        .first()
    )  # fmt: skip
    if latest is None:
        found = ModelVersion.objects.filter(
            model__name=model, version=version, model__project_id__in=projects
        ).exists()
        if not found:
            raise VersionNotFound
        return GateAnswer(
            False, None, "", [f"no release of {model} v{version} to {stage} was requested"]
        )
    if latest.state == State.APPROVED:
        reasons = []
        if latest.alias_state != ApprovalRequest.AliasState.MOVED:
            reasons.append(f"approved; MLflow's alias: {latest.get_alias_state_display().lower()}")
        return GateAnswer(True, latest.pk, latest.state, reasons)
    if latest.state != State.OPEN:
        reasons = [f"request #{latest.pk} is {latest.get_state_display().lower()}"]
        if latest.outcome_note:
            reasons.append(latest.outcome_note)
        return GateAnswer(False, latest.pk, latest.state, reasons)
    if latest.expires_at <= timezone.now():
        return GateAnswer(False, latest.pk, State.EXPIRED, [f"request #{latest.pk} expired"])
    standing = progress_of(latest)
    reasons = [f"waiting for {need}" for need in standing.waiting_for()]
    reasons += [
        f"gate {g['label']}: {g['reason']}" for g in latest.gate_results if g["outcome"] != "pass"
    ]
    return GateAnswer(False, latest.pk, latest.state, reasons or ["waiting for the outcome"])


# What a list of comments on the homes shows.
COMMENT_SHOWN = (
    "body", "created_at", "author__username", "project__slug", "version__version",
    "version__model__name", "approval__stage", "approval__version__version",
    "approval__version__model__name",
)  # fmt: skip


def comments_for(
    user: AbstractBaseUser, versions: QuerySet[ModelVersion], project_ids: list[int], limit: int = 5
) -> list[Comment]:
    """The newest comments others wrote on the person's `versions` or on the releases they
    asked for, in the projects: for their home."""
    version_ids = versions.values("pk")
    return list(
        Comment.objects.filter(project_id__in=project_ids)
        .filter(
            Q(version_id__in=version_ids)
            | Q(approval__version_id__in=version_ids)
            | Q(approval__requested_by=user)
        )
        .exclude(author=user)
        .select_related("author", "project", "version__model", "approval__version__model")
        .only(*COMMENT_SHOWN)
        .order_by("-created_at", "-id")[:limit]
    )


def latest_requests_of(version_ids: list[int]) -> dict[int, ApprovalRequest]:
    """Each version's newest release request (any stage, any state)."""
    latest: dict[int, ApprovalRequest] = {}
    for approval in ApprovalRequest.objects.filter(version_id__in=version_ids).order_by(
        "version_id", "-opened_at", "-pk"
    ):
        latest.setdefault(approval.version_id, approval)
    return latest
