"""Every change to projects, memberships and API tokens.

Memberships and the guardian permissions they grant change together, here and nowhere else.
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import partial

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.contrib.auth.tokens import default_token_generator
from django.contrib.contenttypes.models import ContentType
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from governance.access.errors import (
    AlreadyMember,
    InvalidSlug,
    InvalidToken,
    LastProductOwner,
    MemberNotFound,
    NotAllowed,
    ProjectArchived,
    SlugTaken,
    TokenNameTaken,
    UnknownRole,
    UnknownUser,
)
from governance.access.models import (
    RESERVED_SLUGS,
    SLUG_RE,
    ApiToken,
    Membership,
    Project,
    ProjectUserPermission,
)
from governance.access.permissions import require, require_admin
from governance.access.roles import ROLE_CAPABILITIES, Capability, Role
from governance.audit.services import record
from governance.errors import Conflict, InvalidInput

User = get_user_model()

TOKEN_PREFIX = "qrm_"  # noqa: S105 (a marker, not a secret)
TOKEN_MAX_LIFETIME = timedelta(days=366)
# Writing last_used_at on every request would turn reads into writes; once a minute is enough.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


# Projects


def create_project(
    *,
    actor: AbstractBaseUser,
    slug: str,
    name: str,
    description: str = "",
    owner: AbstractBaseUser | None = None,
) -> Project:
    """Create a project with `owner` (default: the actor) as its first product owner.

    Raises NotAllowed (admins only), InvalidSlug, InvalidInput, SlugTaken, UnknownUser.
    """
    require_admin(actor)
    slug = _clean_slug(slug)
    name = _clean_name(name)
    owner = owner or actor
    if not owner.is_active:
        raise UnknownUser(fields={"owner": [UnknownUser.default_message]})
    with transaction.atomic():
        if Project.objects.filter(slug=slug).exists():
            raise SlugTaken(fields={"slug": [SlugTaken.default_message]})
        try:
            with transaction.atomic():
                project = Project.objects.create(slug=slug, name=name, description=description)
        except IntegrityError as exc:  # a concurrent create took the slug after our check
            raise SlugTaken(fields={"slug": [SlugTaken.default_message]}) from exc
        membership = Membership.objects.create(project=project, user=owner, role=Role.PRODUCT_OWNER)
        _grant(membership)
        after = {"slug": slug, "name": name, "description": description}
        record(
            actor=actor,
            action="project.created",
            target=project,
            project=project,
            payload={"after": after},
        )
        record(
            actor=actor,
            action="membership.added",
            target=membership,
            project=project,
            payload={"after": _member_state(membership)},
        )
    return project


def rename_project(
    *, actor: AbstractBaseUser, project: Project, name: str, description: str | None = None
) -> Project:
    """Change a project's name and, when given, its description. Raises ProjectArchived."""
    require(actor, Capability.MANAGE_PROJECT, project)
    name = _clean_name(name)
    with transaction.atomic():
        project = _lock_active(project)
        before = {"name": project.name, "description": project.description}
        project.name = name
        if description is not None:
            project.description = description
        project.save(update_fields=["name", "description"])
        after = {"name": project.name, "description": project.description}
        record(
            actor=actor,
            action="project.renamed",
            target=project,
            project=project,
            payload={"before": before, "after": after},
        )
    return project


def archive_project(*, actor: AbstractBaseUser, project: Project) -> Project:
    """Archive a project: it stays readable and refuses changes. Raises ProjectArchived."""
    require(actor, Capability.MANAGE_PROJECT, project)
    with transaction.atomic():
        project = _lock_active(project)
        project.archived_at = timezone.now()
        project.save(update_fields=["archived_at"])
        record(
            actor=actor,
            action="project.archived",
            target=project,
            project=project,
            payload={
                "before": {"archived_at": None},
                "after": {"archived_at": project.archived_at},
            },
        )
    return project


def restore_project(*, actor: AbstractBaseUser, project: Project) -> Project:
    """Bring an archived project back. Raises Conflict when it is not archived."""
    require(actor, Capability.MANAGE_PROJECT, project)
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        if not project.is_archived:
            raise Conflict("This project is not archived.")
        before = {"archived_at": project.archived_at}
        project.archived_at = None
        project.save(update_fields=["archived_at"])
        record(
            actor=actor,
            action="project.restored",
            target=project,
            project=project,
            payload={"before": before, "after": {"archived_at": None}},
        )
    return project


# Members


def add_member(
    *, actor: AbstractBaseUser, project: Project, user: AbstractBaseUser, role: str
) -> Membership:
    """Give `user` a role in `project`. Raises UnknownRole, UnknownUser, AlreadyMember."""
    require(actor, Capability.MANAGE_MEMBERS, project)
    role = _clean_role(role)
    if not user.is_active:
        raise UnknownUser(fields={"username": [UnknownUser.default_message]})
    with transaction.atomic():
        project = _lock_active(project)
        if Membership.objects.filter(project=project, user=user).exists():
            raise AlreadyMember(
                f"{user.get_username()} is already a member of {project.name}.",
                fields={"username": ["Already a member."]},
            )
        membership = Membership.objects.create(project=project, user=user, role=role)
        _grant(membership)
        record(
            actor=actor,
            action="membership.added",
            target=membership,
            project=project,
            payload={"after": _member_state(membership)},
        )
    return membership


def change_role(*, actor: AbstractBaseUser, membership: Membership, role: str) -> Membership:
    """Give a member another role. Raises UnknownRole, MemberNotFound, LastProductOwner."""
    require(actor, Capability.MANAGE_MEMBERS, membership.project)
    role = _clean_role(role)
    with transaction.atomic():
        # Locking the project serialises every membership change in it, so two product owners
        # demoting each other at once cannot leave the project with none.
        project = _lock_active(membership.project)
        membership = _reread(membership)
        if membership.role == role:
            return membership
        if membership.role == Role.PRODUCT_OWNER:
            _keep_a_product_owner(project)
        before = _member_state(membership)
        membership.role = role
        membership.save(update_fields=["role"])
        _revoke(membership)
        _grant(membership)
        record(
            actor=actor,
            action="membership.role_changed",
            target=membership,
            project=project,
            payload={"before": before, "after": _member_state(membership)},
        )
    return membership


def remove_member(*, actor: AbstractBaseUser, membership: Membership) -> None:
    """Take a person out of a project. Raises MemberNotFound, LastProductOwner."""
    require(actor, Capability.MANAGE_MEMBERS, membership.project)
    with transaction.atomic():
        project = _lock_active(membership.project)
        membership = _reread(membership)
        if membership.role == Role.PRODUCT_OWNER:
            _keep_a_product_owner(project)
        record(
            actor=actor,
            action="membership.removed",
            target=membership,
            project=project,
            payload={"before": _member_state(membership)},
        )
        _revoke(membership)
        membership.delete()


def find_user(username: str) -> AbstractBaseUser:
    """The active person with this username. Raises UnknownUser."""
    try:
        return User.objects.get(username=username.strip(), is_active=True)
    except User.DoesNotExist:
        raise UnknownUser(fields={"username": [UnknownUser.default_message]}) from None


# API tokens


def create_api_token(
    *, actor: AbstractBaseUser, name: str, expires_at: datetime, project: Project | None = None
) -> tuple[ApiToken, str]:
    """Make a personal API token; the secret is returned once and only its hash is kept.

    With `project`, a CI token: it acts as the actor but only asks the release gate and opens
    release requests, in that project (which the actor must see).

    Raises InvalidInput for an empty name or an expiry in the past or over a year away,
    TokenNameTaken when an active token already has the name, ProjectNotFound.
    """
    if project is not None:
        require(actor, Capability.VIEW_PROJECT, project)
    name = name.strip()
    now = timezone.now()
    fields = {}
    if not name or len(name) > 80:
        fields["name"] = ["Give the token a name of 1 to 80 characters."]
    if expires_at <= now:
        fields["expires_at"] = ["The expiry must be in the future."]
    elif expires_at > now + TOKEN_MAX_LIFETIME:
        fields["expires_at"] = ["A token lives at most a year."]
    if fields:
        raise InvalidInput(fields=fields)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        if ApiToken.objects.filter(user=actor, name=name, revoked_at__isnull=True).exists():
            raise TokenNameTaken(fields={"name": [TokenNameTaken.default_message]})
        token = ApiToken.objects.create(
            user=actor,
            name=name,
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            digest=_digest(secret),
            created_at=now,
            expires_at=expires_at,
            project=project,
        )
        record(
            actor=actor,
            action="api_token.created",
            target=token,
            payload={"after": _token_state(token)},
        )
    return token, secret


def revoke_api_token(*, actor: AbstractBaseUser, token: ApiToken) -> ApiToken:
    """Revoke a token at once. Its owner or a site admin may. Raises Conflict if revoked."""
    if token.user_id != actor.pk and not actor.is_superuser:
        raise NotAllowed("Only the token's owner or a site admin may revoke it.")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.is_revoked:
            raise Conflict("This token is already revoked.")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(
            actor=actor,
            action="api_token.revoked",
            target=token,
            payload={"before": {"revoked_at": None}, "after": _token_state(token)},
        )
    return token


def authenticate_api_token(*, secret: str) -> ApiToken:
    """The live token for a presented secret, its use noted. Raises InvalidToken.

    Reads the token with its user: callers need not select it.
    """
    token = (
        ApiToken.objects.select_related("user").filter(digest=_digest(secret)).first()
        if secret.startswith(TOKEN_PREFIX)
        else None
    )
    if token is None:
        raise InvalidToken("Unknown API token.")
    if token.is_revoked:
        raise InvalidToken("This API token was revoked.")
    now = timezone.now()
    if token.is_expired(now):
        raise InvalidToken("This API token has expired.")
    if not token.user.is_active:
        raise InvalidToken("The owner of this API token is deactivated.")
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# Helpers


def _member_state(membership: Membership) -> dict[str, object]:
    return {"username": membership.user.get_username(), "role": membership.role}


def _token_state(token: ApiToken) -> dict[str, object]:
    # The owner and the public prefix only: never the secret nor its digest.
    return {
        "owner": token.user.get_username(),
        "name": token.name,
        "prefix": token.prefix,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        "project": token.project.slug if token.project_id else None,
    }


def _digest(secret: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain SHA-256 cannot be brute-forced; a slow
    # password hash would only slow every API call down.
    return hashlib.sha256(secret.encode()).hexdigest()


def _clean_slug(slug: str) -> str:
    slug = slug.strip()
    if not (2 <= len(slug) <= 50 and SLUG_RE.match(slug)):
        raise InvalidSlug(fields={"slug": [InvalidSlug.default_message]})
    if slug in RESERVED_SLUGS:
        message = f"“{slug}” is reserved; choose another slug."
        raise InvalidSlug(message, fields={"slug": [message]})
    return slug


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 120:
        raise InvalidInput(fields={"name": ["Give a name of 1 to 120 characters."]})
    return name


def _clean_role(role: str) -> str:
    if role not in Role.values:
        message = f"“{role}” is not a role. Roles: {', '.join(Role.values)}."
        raise UnknownRole(message, fields={"role": [message]})
    return role


def _lock_active(project: Project) -> Project:
    project = Project.objects.select_for_update().get(pk=project.pk)
    if project.is_archived:
        raise ProjectArchived
    return project


def _reread(membership: Membership) -> Membership:
    try:
        return (
            Membership.objects.select_for_update()
            .select_related("project", "user")
            .get(pk=membership.pk)
        )
    except Membership.DoesNotExist:
        raise MemberNotFound from None


def _keep_a_product_owner(project: Project) -> None:
    if Membership.objects.filter(project=project, role=Role.PRODUCT_OWNER).count() <= 1:
        raise LastProductOwner


def _grant(membership: Membership) -> None:
    permissions = Permission.objects.filter(
        content_type=ContentType.objects.get_for_model(Project),
        codename__in=ROLE_CAPABILITIES[Role(membership.role)],
    )
    ProjectUserPermission.objects.bulk_create(
        ProjectUserPermission(
            user_id=membership.user_id,
            permission=permission,
            content_object_id=membership.project_id,
        )
        for permission in permissions
    )


def _revoke(membership: Membership) -> None:
    ProjectUserPermission.objects.filter(
        user_id=membership.user_id, content_object_id=membership.project_id
    ).delete()


# Sign-in and passwords


def note_sign_in(*, user: AbstractBaseUser) -> None:
    """Record a successful sign-in."""
    record(actor=user, action="session.login", target=user)


def note_sign_out(*, user: AbstractBaseUser | None) -> None:
    """Record a sign-out (of a session that may have been anonymous already)."""
    if user is not None and user.is_authenticated:
        record(actor=user, action="session.logout", target=user)


def note_failed_sign_in(*, username: str) -> None:
    """Record a refused sign-in; the username tried is kept, the password never."""
    record(actor=None, action="session.login_failed", payload={"username": username[:150]})


def note_lockout(*, username: str) -> None:
    """Record that repeated failures locked a username out."""
    record(actor=None, action="session.locked_out", payload={"username": username[:150]})


def set_password(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, password: str, reason: str
) -> None:
    """Give `user` a new password (already validated by the form): changed by themselves, or
    reset through an emailed link (`actor` None). Other sessions of the person end."""
    if actor is not None and actor.pk != user.pk and not actor.is_superuser:
        raise NotAllowed("Only the person or a site admin may set a password.")
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        record(actor=actor or user, action=f"user.password_{reason}", target=user)


def request_password_reset(*, email: str, domain: str, use_https: bool) -> int:
    """Queue a reset email to each active person with this address; returns how many.

    The answer is never shown to the asker, so the page does not reveal who has an account.
    """
    users = [
        user
        for user in User.objects.filter(email__iexact=email, is_active=True)
        if user.has_usable_password()
    ]
    from governance.access.tasks import send_password_reset_email as task  # it imports us

    with transaction.atomic():
        for user in users:
            record(actor=None, action="user.password_reset_requested", target=user)
            transaction.on_commit(
                partial(task.delay, user_id=user.pk, domain=domain, use_https=use_https)
            )
    return len(users)


# Email


def send_password_reset_email(*, user_id: int, domain: str, use_https: bool) -> bool:
    """Email a password-reset link to the person, if they may still reset. Returns whether sent.

    The token is made here, in the worker, so it never waits in the broker's queue.
    """
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.has_usable_password() or not user.email:
        return False
    context = {
        "email": user.email,
        "domain": domain,
        "site_name": "Quorum",
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "user": user,
        "token": default_token_generator.make_token(user),
        "protocol": "https" if use_https else "http",
    }
    subject = "".join(render_to_string("registration/password_reset_subject.txt", context).split())
    body = render_to_string("registration/password_reset_email.txt", context)
    EmailMessage(subject, body, to=[user.email]).send()
    return True
