"""Reads of projects, members and tokens shared by the pages and the API."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, QuerySet, Subquery

from governance.access.errors import MemberNotFound, ProjectNotFound
from governance.access.models import ApiToken, Membership, Project, ProjectUserPermission
from governance.access.permissions import require
from governance.access.roles import Capability, Role


def projects_for(user: AbstractBaseUser, *, include_archived: bool = False) -> QuerySet[Project]:
    """The projects `user` may see, each with `my_role` (None for admins who are not members)
    and `member_count`. Admins see every project."""
    projects = Project.objects.all()
    if not user.is_superuser:
        projects = projects.filter(
            projectuserpermission__user=user,
            projectuserpermission__permission__codename=Capability.VIEW_PROJECT,
        )
    if not include_archived:
        projects = projects.filter(archived_at__isnull=True)
    my_role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return projects.annotate(
        my_role=Subquery(my_role), member_count=Count("memberships", distinct=True)
    ).order_by("name", "slug")


def visible_projects(user: AbstractBaseUser) -> QuerySet[Project]:
    """The projects `user` may see, bare: for filtering by, where `projects_for`'s
    annotations would only cost. Archived projects included (their history stays readable)."""
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(
        pk__in=ProjectUserPermission.objects.filter(
            user=user, permission__codename=Capability.VIEW_PROJECT
        ).values("content_object_id")
    )


def project_for(
    user: AbstractBaseUser, slug: str, capability: str = Capability.VIEW_PROJECT
) -> tuple[Project, frozenset[str]]:
    """The project called `slug` and what `user` may do in it.

    Raises ProjectNotFound when it does not exist or `user` may not see it, NotAllowed when
    `user` lacks `capability`.
    """
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise ProjectNotFound
    return project, require(user, capability, project)


def members_of(project: Project) -> QuerySet[Membership]:
    """The project's memberships with their people, by username."""
    return (
        Membership.objects.filter(project=project).select_related("user").order_by("user__username")
    )


def membership_of(project: Project, username: str) -> Membership:
    """The membership of `username` in `project`. Raises MemberNotFound."""
    membership = members_of(project).filter(user__username=username).first()
    if membership is None:
        raise MemberNotFound
    return membership


def role_counts(project: Project) -> dict[str, int]:
    """How many members hold each role, every role listed."""
    counts = dict.fromkeys(Role.values, 0)
    rows = Membership.objects.filter(project=project).values_list("role").annotate(n=Count("id"))
    counts.update(dict(rows))
    return counts


def tokens_of(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The person's API tokens, newest first."""
    return ApiToken.objects.filter(user=user).select_related("project").order_by("-created_at")
