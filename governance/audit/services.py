"""The one door into the audit trail: `record`, called by every service that changes state."""

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.mail import EmailMessage
from django.db import connection, models, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from governance.access.errors import NotAllowed
from governance.audit import context, exports, selectors
from governance.audit.chain import (
    canonical,
    canonical_payload,
    clean_text,
    event_hash,
    format_time,
)
from governance.audit.errors import ChainUnavailable, TooManyRows, UnknownFormat
from governance.audit.models import ActorKind, AuditEvent, ChainHead, VerificationRun
from governance.audit.verification import Outcome, parse_checkpoint, walk_chain


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
    event = AuditEvent(
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
    )
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            _append_in_one_statement(event)
        else:
            _append(event)
    event._state.adding = False
    return event


def _append(event: AuditEvent) -> None:
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        raise ChainUnavailable
    event.seq, event.prev_hash = head.seq + 1, head.hash
    event.hash = event_hash(fields_of(event))
    event.save(force_insert=True)
    ChainHead.objects.filter(pk=1).update(seq=event.seq, hash=event.hash)


# PostgreSQL appends in one round trip: it locks the head, hashes the canonical text that
# Python wrote around the two values it alone knows (the previous hash and the next sequence
# number), inserts the event and moves the head.
_PREV, _SEQ = "\x00prev\x00", "\x00seq\x00"
_APPEND_SQL = """
    WITH old AS (
        SELECT seq, hash FROM audit_chainhead WHERE id = 1 FOR UPDATE
    ), new AS (
        SELECT old.seq + 1 AS seq, old.hash AS prev_hash, encode(sha256(convert_to(
            %(before)s || old.hash || %(between)s || (old.seq + 1) || %(after)s, 'UTF8'
        )), 'hex') AS hash
        FROM old
    ), inserted AS (
        INSERT INTO audit_auditevent (
            seq, at, actor_kind, actor_id, actor_name, actor_token, action, target_kind,
            target_id, target_label, project_id, payload, ip, user_agent, request_id,
            prev_hash, hash
        )
        SELECT new.seq, %(at)s, %(actor_kind)s, %(actor_id)s, %(actor_name)s, %(actor_token)s,
               %(action)s, %(target_kind)s, %(target_id)s, %(target_label)s, %(project_id)s,
               %(payload)s, %(ip)s, %(user_agent)s, %(request_id)s, new.prev_hash, new.hash
        FROM new
    ), moved AS (
        UPDATE audit_chainhead SET seq = new.seq, hash = new.hash FROM new
        WHERE audit_chainhead.id = 1
    )
    SELECT seq, prev_hash, hash FROM new
"""


def _append_in_one_statement(event: AuditEvent) -> None:
    fields = fields_of(event)
    text = canonical({**fields, "prev_hash": _PREV, "seq": _SEQ})
    # Markers inside user text would be escaped, so these exact sequences occur once.
    before, rest = text.split(f'"{_encoded(_PREV)}"', 1)
    between, after = rest.split(f'"{_encoded(_SEQ)}"', 1)
    params = {**fields, "at": event.at, "before": before + '"', "between": '"' + between}
    connection.ensure_connection()
    # A server-side-binding cursor of the same connection (and transaction), so that the
    # statement is prepared once and only executed afterwards.
    with connection.connection.cursor() as cursor:
        cursor.execute(_APPEND_SQL, {**params, "after": after}, prepare=True)
        row = cursor.fetchone()
    if row is None:
        raise ChainUnavailable
    event.seq, event.prev_hash, event.hash = row


def _encoded(marker: str) -> str:
    return canonical_payload(marker)[1:-1]


# Verification


def request_verification(
    *, actor: AbstractBaseUser, checkpoint: str = "", trigger: str = VerificationRun.Trigger.PAGE
) -> VerificationRun:
    """Queue a walk of the whole chain for a worker. Auditors and admins may.

    Raises NotAllowed, InvalidCheckpoint.
    """
    if not selectors.may_read_trail(actor):
        raise NotAllowed("Only auditors and admins verify the audit trail.")
    seq, digest = parse_checkpoint(checkpoint) if checkpoint.strip() else (None, "")
    from governance.audit.tasks import verify_chain  # it imports this module

    with transaction.atomic():
        run = VerificationRun.objects.create(
            requested_by=actor, trigger=trigger, checkpoint_seq=seq, checkpoint_hash=digest
        )
        record(
            actor=actor,
            action="audit.verification_requested",
            target=run,
            payload={"checkpoint": checkpoint.strip()},
        )
        transaction.on_commit(lambda: verify_chain.delay(run_id=run.pk))
    return run


def verify_now(
    *,
    actor: Actor,
    trigger: str,
    checkpoint: tuple[int, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerificationRun:
    """Walk the chain here and now (the command, the nightly task) and record the verdict."""
    run = VerificationRun.objects.create(
        requested_by=actor if isinstance(actor, AbstractBaseUser) else None,
        trigger=trigger,
        checkpoint_seq=checkpoint[0] if checkpoint else None,
        checkpoint_hash=checkpoint[1] if checkpoint else "",
    )
    return run_verification(run_id=run.pk, progress=progress)


def run_verification(
    *, run_id: int, progress: Callable[[int, int], None] | None = None
) -> VerificationRun:
    """Walk the chain for a queued run, noting progress, and record the verdict as an event.

    Idempotent: a finished run is left as it is. The verdict's head is the new checkpoint,
    emailed to the auditors once recorded.
    """
    with transaction.atomic():
        run = VerificationRun.objects.select_for_update().get(pk=run_id)
        if run.is_finished:
            return run
        run.state, run.started_at = VerificationRun.State.RUNNING, timezone.now()
        run.save(update_fields=["state", "started_at"])

    def note(done: int, total: int) -> None:
        VerificationRun.objects.filter(pk=run_id).update(done=done, total=total)
        if progress:
            progress(done, total)

    checkpoint = (run.checkpoint_seq, run.checkpoint_hash) if run.checkpoint_hash else None
    outcome = walk_chain(checkpoint=checkpoint, progress=note)
    return _finish(run, outcome)


def _finish(run: VerificationRun, outcome: Outcome) -> VerificationRun:
    from governance.audit.tasks import send_checkpoint  # it imports this module

    found = outcome.first_break
    with transaction.atomic():
        run = VerificationRun.objects.select_for_update().get(pk=run.pk)
        run.state = VerificationRun.State.PASSED if found is None else VerificationRun.State.FAILED
        run.checked, run.done, run.total = outcome.checked, outcome.head_seq, outcome.head_seq
        run.head_seq, run.head_hash = outcome.head_seq, outcome.head_hash
        run.break_seq = found.seq if found else None
        run.break_kind = found.kind if found else ""
        run.reason = found.reason if found else ""
        run.finished_at = timezone.now()
        run.save()
        actor = run.requested_by or SystemActor(f"verification ({run.get_trigger_display()})")
        record(
            actor=actor,
            action="audit.verified" if found is None else "audit.verification_failed",
            target=run,
            payload={
                "intact": found is None,
                "checked": outcome.checked,
                "head": run.checkpoint,
                "checkpoint": f"{run.checkpoint_seq}:{run.checkpoint_hash}"
                if run.checkpoint_hash
                else "",
                "first_break": {"seq": found.seq, "kind": found.kind, "reason": found.reason}
                if found
                else None,
            },
        )
        transaction.on_commit(lambda: send_checkpoint.delay(run_id=run.pk))
    return run


def fail_verification(*, run_id: int, error: str) -> VerificationRun:
    """Mark a run that could not finish (the walk itself crashed)."""
    with transaction.atomic():
        run = VerificationRun.objects.select_for_update().get(pk=run_id)
        if run.is_finished:
            return run
        run.state, run.reason, run.finished_at = VerificationRun.State.ERROR, error, timezone.now()
        run.save(update_fields=["state", "reason", "finished_at"])
        record(
            actor=SystemActor("verification"),
            action="audit.verification_errored",
            target=run,
            payload={"error": error[:500]},
        )
    return run


def send_checkpoint_email(*, run_id: int) -> int:
    """Email a finished run's verdict and checkpoint to the auditors. Returns recipients."""
    run = VerificationRun.objects.get(pk=run_id)
    recipients = selectors.checkpoint_recipients()
    if not run.is_finished or not recipients:
        return 0
    context_ = {"run": run}
    subject = render_to_string("audit/checkpoint_subject.txt", context_).strip()
    body = render_to_string("audit/checkpoint_email.txt", context_)
    EmailMessage(subject, body, to=recipients).send()
    return len(recipients)


# Exports


def export_trail(
    *, actor: AbstractBaseUser, fmt: str, criteria: Mapping[str, object], destination: BinaryIO
) -> AuditEvent:
    """Write the events `actor` may read, narrowed by `criteria` (see selectors.filter_trail),
    to `destination`, and record the export. The event's payload is the file's manifest.

    The export stops at the head as it stood when it began, so the file is a fixed snapshot.
    Raises NotAllowed, UnknownFormat, TooManyRows (a spreadsheet's limit).
    """
    if fmt not in exports.FORMATS:
        raise UnknownFormat(fields={"format": [UnknownFormat.default_message]})
    if not selectors.may_export_trail(actor):
        raise NotAllowed("Only auditors and admins export the audit trail.")
    through = ChainHead.objects.values_list("seq", flat=True).get(pk=1)
    events = selectors.filter_trail(selectors.trail_for(actor), **criteria).filter(seq__lte=through)
    if fmt == "xlsx" and (count := events.count()) > exports.XLSX_MAX_ROWS:
        raise TooManyRows(
            f"{count} events do not fit in a spreadsheet; export CSV or JSON Lines, "
            "or narrow the filters."
        )
    written = exports.write(fmt, events, destination)
    manifest = {
        "format": fmt,
        "filters": {name: _plain_value(value) for name, value in criteria.items() if value},
        "through_seq": through,
        "rows": written.rows,
        "first": {"seq": written.first[0], "hash": written.first[1]} if written.first else None,
        "last": {"seq": written.last[0], "hash": written.last[1]} if written.last else None,
        "sha256": written.sha256,
        "bytes": written.size,
        "columns": list(exports.COLUMNS),
        "hash_recipe": exports.HASH_RECIPE,
    }
    with transaction.atomic():
        return record(actor=actor, action="audit.exported", payload=manifest)


def _plain_value(value: object) -> object:
    if isinstance(value, models.Model):
        return getattr(value, "slug", None) or str(value.pk)
    if isinstance(value, datetime):
        return format_time(value)
    return value


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
