"""Reads of the trail shared by the pages, the API and the exports."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from governance.access.models import Membership, Project
from governance.access.roles import Capability, Role
from governance.audit.models import AuditEvent, VerificationRun


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


def trail_for(user: AbstractBaseUser) -> QuerySet[AuditEvent]:
    """The events `user` may read in the trail: all for admins; their audited projects' for
    auditors. Site events without a project (sign-ins, tokens) are for admins only."""
    events = AuditEvent.objects.select_related("project")
    if user.is_superuser:
        return events
    return events.filter(project__in=audited_projects(user).values("pk"))


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
