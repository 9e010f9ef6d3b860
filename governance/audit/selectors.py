"""Reads of the trail shared by the pages, the API and the exports."""

import operator
from datetime import datetime
from functools import reduce

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from governance.access.models import Membership, Project
from governance.access.roles import Capability, Role
from governance.audit.models import AuditEvent, ChainHead, VerificationRun


def audited_projects(user: AbstractBaseUser) -> QuerySet[Project]:
    """The projects whose full trail `user` may read (every project, for admins)."""
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(
        projectuserpermission__user=user,
        projectuserpermission__permission__codename=Capability.READ_AUDIT_TRAIL,
    )


def may_read_trail(user: AbstractBaseUser) -> bool:
    return user.is_authenticated and user.is_active and audited_projects(user).exists()


def may_export_trail(user: AbstractBaseUser) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    return (
        user.is_superuser
        or Project.objects.filter(
            projectuserpermission__user=user,
            projectuserpermission__permission__codename=Capability.EXPORT_AUDIT_TRAIL,
        ).exists()
    )


def trail_for(user: AbstractBaseUser) -> QuerySet[AuditEvent]:
    """The events `user` may read in the trail: all for admins; their audited projects' for
    auditors. Site events without a project (sign-ins, tokens) are for admins only."""
    events = AuditEvent.objects.select_related("project")
    if user.is_superuser:
        return events
    # A literal list: the planner then sees how many projects there are and walks the
    # (actor, seq) or (action, seq) indexes instead of joining blindly.
    return events.filter(project__in=list(audited_projects(user).values_list("pk", flat=True)))


def feed_of(project: Project) -> QuerySet[AuditEvent]:
    """A project's activity, newest first."""
    return AuditEvent.objects.filter(project=project).select_related("project").order_by("-seq")


def history_of(kind: str, object_id: object) -> QuerySet[AuditEvent]:
    """What happened to one object, newest first."""
    return (
        AuditEvent.objects.filter(target_kind=kind, target_id=str(object_id))
        .select_related("project")
        .order_by("-seq")
    )


def events_about(
    targets: dict[str, list[str]], *, through: int | None = None
) -> QuerySet[AuditEvent]:
    """The events whose target is one of `targets` ({kind: [id, ...]}), up to event `through`,
    unordered. Each kind reads the (target_kind, target_id, seq) index."""
    conditions = [
        Q(target_kind=kind, target_id__in=[str(i) for i in ids])
        for kind, ids in targets.items()
        if ids
    ]
    if not conditions:
        return AuditEvent.objects.none()
    events = AuditEvent.objects.filter(reduce(operator.or_, conditions))
    return events if through is None else events.filter(seq__lte=through)


def head_seq() -> int:
    """The sequence number of the chain's last event (0 for an empty chain)."""
    return ChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0


def latest_checkpoint() -> VerificationRun | None:
    """The most recent verification that found the chain intact: its head is the checkpoint."""
    return (
        VerificationRun.objects.filter(state=VerificationRun.State.PASSED)
        .exclude(head_hash="")
        .order_by("-finished_at", "-pk")
        .first()
    )


def activity_of(user: AbstractBaseUser) -> QuerySet[AuditEvent]:
    """What a person did, newest first: their own history, sign-ins included."""
    return AuditEvent.objects.filter(actor=user).select_related("project").order_by("-seq")


def recent_verifications(limit: int = 5) -> list[VerificationRun]:
    return list(VerificationRun.objects.select_related("requested_by")[:limit])


def checkpoint_recipients() -> list[str]:
    """Where checkpoints go: every auditor of an active project, else the site admins."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    auditors = users.filter(
        pk__in=Membership.objects.filter(
            role=Role.AUDITOR, project__archived_at__isnull=True
        ).values("user")
    )
    chosen = auditors if auditors.exists() else users.filter(Q(is_superuser=True))
    return sorted(set(chosen.values_list("email", flat=True)))


def filter_trail(
    events: QuerySet[AuditEvent],
    *,
    actor: str = "",
    action: str = "",
    target_kind: str = "",
    target_id: str = "",
    project: Project | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    seqs: list[int] | None = None,
) -> QuerySet[AuditEvent]:
    """Narrow `events`. `action` ending in "." or ".*" matches a family ("membership.*");
    `since` is inclusive, `until` exclusive."""
    if actor:
        events = events.filter(actor_name=actor)
    if action:
        family = action.removesuffix("*")
        events = (
            events.filter(action__startswith=family)
            if family.endswith(".")
            else events.filter(action=action)
        )
    if target_kind:
        events = events.filter(target_kind=target_kind)
    if target_id:
        events = events.filter(target_id=target_id)
    if project is not None:
        events = events.filter(project=project)
    if since is not None:
        events = events.filter(at__gte=since)
    if until is not None:
        events = events.filter(at__lt=until)
    if seqs is not None:
        events = events.filter(seq__in=seqs)
    return events


def page_before(
    events: QuerySet[AuditEvent], before: int | None, size: int = 50
) -> tuple[list[AuditEvent], int | None]:
    """One page of events, newest first, older than `before`, and where the next page starts.
    Keyset pagination on seq: the cost does not grow with how far back one reads."""
    if before is not None:
        events = events.filter(seq__lt=before)
    page = list(events.order_by("-seq")[: size + 1])
    more = len(page) > size
    return page[:size], page[size - 1].seq if more else None


def exports_by(user: AbstractBaseUser, limit: int = 5) -> list[AuditEvent]:
    """The person's latest exports, whose payload is the manifest."""
    return list(
        AuditEvent.objects.filter(action="audit.exported", actor=user).order_by("-seq")[:limit]
    )


def activity_in(project_ids: list[int], since: datetime) -> tuple[int, list[AuditEvent]]:
    """How many events the projects' trail gained since `since`, and the newest five."""
    events = AuditEvent.objects.filter(project_id__in=project_ids)
    newest = list(events.select_related("project").order_by("-seq")[:5])
    return events.filter(at__gte=since).count(), newest


# What a project's timeline shows: the events that change what the project ships or knows,
# not the reads, sign-ins and bookkeeping around them.
NOTABLE = (
    "project.", "membership.", "policy.", "model.registered", "model.alias_moved",
    "model_version.registered", "model_version.deleted", "model_card.edited", "approval.opened",
    "approval.decided", "approval.approved", "approval.rejected", "approval.expired",
    "approval.withdrawn", "approval.superseded", "approval.alias_moved", "approval.alias_failed",
    "drift_alert.", "bias_report.generated", "bias_report.failed", "monitor.created",
    "job.succeeded", "job.failed", "deployment.", "target.", "retraining.",
)  # fmt: skip


def timeline_of(project: Project, limit: int = 30) -> list[AuditEvent]:
    """The project's notable events, newest first."""
    notable = reduce(operator.or_, (Q(action__startswith=prefix) for prefix in NOTABLE))
    return list(
        AuditEvent.objects.filter(notable, project=project)
        .select_related("project")
        .order_by("-seq")[:limit]
    )
