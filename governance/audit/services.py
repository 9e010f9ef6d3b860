"""The one door into the audit trail: `record`, called by every service that changes state."""

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models, transaction
from django.utils import timezone

from governance.audit import context
from governance.audit.chain import canonical_payload, clean_text, event_hash, format_time
from governance.audit.errors import ChainUnavailable
from governance.audit.models import ActorKind, AuditEvent, ChainHead


@dataclass(frozen=True)
class SystemActor:
    """Quorum itself acting: a task, a command, the MLflow sync."""

    name: str


@dataclass(frozen=True)
class Target:
    kind: str
    id: str
    label: str

    @classmethod
    def of(cls, instance: models.Model) -> "Target":
        return cls(instance._meta.model_name, str(instance.pk), str(instance))


Actor = AbstractBaseUser | AnonymousUser | SystemActor | None

# These fields hold plain characters only, so their canonical form needs no escaping (which
# lets PostgreSQL rebuild it quickly when verifying; see verification.py).
ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
KIND = re.compile(r"^[a-z0-9_]*$")
TOKEN_OR_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]*$")


def record(
    *,
    actor: Actor,
    action: str,
    target: models.Model | Target | None = None,
    project: models.Model | None = None,
    payload: Mapping[str, object] | None = None,
) -> AuditEvent:
    """Append an event to the chain, in the caller's transaction: if it rolls back, so does
    the event. Writers queue on the chain head's row lock, so sequences have no gaps or forks.

    Never put a secret in `payload`. Raises ChainUnavailable if the head row is gone.
    """
    if not ACTION.match(action):
        raise ValueError(f"an action is dotted lower-case words, not {action!r}")
    if isinstance(target, models.Model):
        target = Target.of(target)
    if target is not None and not KIND.match(target.kind):
        raise ValueError(f"a target kind is a lower-case word, not {target.kind!r}")
    request = context.current()
    kind, actor_id, actor_name = _actor(actor, request)
    with transaction.atomic(savepoint=False):
        head = ChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            raise ChainUnavailable
        event = AuditEvent(
            seq=head.seq + 1,
            at=timezone.now(),
            actor_kind=kind,
            actor_id=actor_id,
            actor_name=clean_text(actor_name)[:150],
            actor_token=_plain(request.token) if kind == ActorKind.TOKEN else "",
            action=action,
            target_kind=target.kind if target else "",
            target_id=clean_text(target.id)[:64] if target else "",
            target_label=clean_text(target.label)[:200] if target else "",
            project_id=project.pk if project is not None else None,
            payload=canonical_payload(payload),
            ip=_address(request.ip),
            user_agent=clean_text(request.user_agent)[:255],
            request_id=_plain(request.request_id)[:64],
            prev_hash=head.hash,
        )
        event.hash = event_hash(fields_of(event))
        event.save(force_insert=True)
        ChainHead.objects.filter(pk=1).update(seq=event.seq, hash=event.hash)
    return event


def fields_of(event: AuditEvent) -> dict[str, object]:
    """The hashed fields of a stored event."""
    return {
        "action": event.action,
        "actor_id": event.actor_id,
        "actor_kind": event.actor_kind,
        "actor_name": event.actor_name,
        "actor_token": event.actor_token,
        "at": format_time(event.at),
        "ip": event.ip,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
        "project_id": event.project_id,
        "request_id": event.request_id,
        "seq": event.seq,
        "target_id": event.target_id,
        "target_kind": event.target_kind,
        "target_label": event.target_label,
        "user_agent": event.user_agent,
    }


def _actor(actor: Actor, request: context.RequestContext) -> tuple[str, int | None, str]:
    if isinstance(actor, SystemActor):
        return ActorKind.SYSTEM, None, actor.name
    if actor is None or not actor.is_authenticated:
        return ActorKind.ANONYMOUS, None, ""
    kind = ActorKind.TOKEN if request.token else ActorKind.USER
    return kind, actor.pk, actor.get_username()


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return ""


def _plain(text: str) -> str:
    return text if TOKEN_OR_REQUEST_ID.match(text) else ""
