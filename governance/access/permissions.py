"""The one permission check of Quorum: `require(actor, capability, project)`.

A person who may not see a project is told it does not exist (404); a member whose role lacks
the capability is told so (403). Site admins hold every capability.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from guardian.shortcuts import get_user_perms

from governance.access.errors import NotAllowed, ProjectNotFound
from governance.access.models import Project
from governance.access.roles import Capability

ALL_CAPABILITIES = frozenset(Capability.values)
Actor = AbstractBaseUser | AnonymousUser


def capabilities_of(actor: Actor, project: Project) -> frozenset[str]:
    """What `actor` may do in `project`, from its guardian permissions. One query."""
    if not actor.is_authenticated or not actor.is_active:
        return frozenset()
    if actor.is_superuser:
        return ALL_CAPABILITIES
    return frozenset(get_user_perms(actor, project))


def require(actor: Actor, capability: str, project: Project) -> frozenset[str]:
    """Raise ProjectNotFound or NotAllowed unless `actor` holds `capability` in `project`.

    Returns every capability the actor holds there, so a page can reuse it.
    """
    capabilities = capabilities_of(actor, project)
    if Capability.VIEW_PROJECT not in capabilities:
        raise ProjectNotFound
    if capability not in capabilities:
        raise NotAllowed(
            f"Your role in {project.name} does not allow this: "
            f"{Capability(capability).label.lower()}."
        )
    return capabilities


def require_admin(actor: Actor) -> None:
    """Raise NotAllowed unless `actor` is a site admin."""
    if not (actor.is_authenticated and actor.is_active and actor.is_superuser):
        raise NotAllowed("Only site admins may do this.")
