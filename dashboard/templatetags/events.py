"""Audit events in words, for the feeds and the trail."""

from django import template
from django.utils.html import format_html

from governance.access.roles import role_words
from governance.audit.models import ActorKind, AuditEvent

register = template.Library()


def _after(event: AuditEvent) -> dict:
    return event.data.get("after") or {}


def _before(event: AuditEvent) -> dict:
    return event.data.get("before") or {}


SENTENCES = {
    "project.created": lambda e: f"created the project {_after(e).get('name', '')}",
    "project.renamed": lambda e: (
        f"renamed the project from {_before(e).get('name')} to {_after(e).get('name')}"
    ),
    "project.archived": lambda e: "archived the project",
    "project.restored": lambda e: "restored the project",
    "membership.added": lambda e: (
        f"added {_after(e).get('username')} as {role_words(_after(e).get('role'))}"
    ),
    "membership.role_changed": lambda e: (
        f"changed the role of {_after(e).get('username')} from "
        f"{role_words(_before(e).get('role'))} to {role_words(_after(e).get('role'))}"
    ),
    "membership.removed": lambda e: (
        f"removed {_before(e).get('username')} ({role_words(_before(e).get('role'))})"
    ),
    "api_token.created": lambda e: f"created the API token “{_after(e).get('name')}”",
    "api_token.revoked": lambda e: f"revoked the API token “{_after(e).get('name')}”",
    "session.login": lambda e: "signed in",
    "session.logout": lambda e: "signed out",
    "session.login_failed": lambda e: f"failed to sign in as {e.data.get('username')}",
    "session.locked_out": lambda e: f"locked out {e.data.get('username')} after failed sign-ins",
    "user.password_changed": lambda e: "changed their password",
    "user.password_reset_requested": lambda e: f"asked to reset the password of {e.target_label}",
    "user.password_reset": lambda e: "set a new password through an emailed link",
    "audit.verification_requested": lambda e: "asked for a verification of the trail",
    "audit.verified": lambda e: f"verified the trail: intact up to #{e.data.get('head', '')}",
    "audit.verification_failed": lambda e: (
        f"found the trail broken at #{(e.data.get('first_break') or {}).get('seq')}"
    ),
    "audit.verification_errored": lambda e: "could not finish a verification of the trail",
    "audit.exported": lambda e: (
        f"exported {e.data.get('rows')} events as {str(e.data.get('format', '')).upper()}"
    ),
    "notify.preferences_changed": lambda e: "changed their notification preferences",
    "policy.saved": lambda e: (
        f"saved version {e.data.get('version')} of the {e.data.get('stage')} release policy"
    ),
    "approval.opened": lambda e: f"asked for {e.target_label}",
    "approval.decided": lambda e: (
        f"{'approved' if e.data.get('verdict') == 'approve' else 'rejected'} {e.target_label} "
        f"as {role_words(e.data.get('role'))}"
        + (f": “{e.data['comment']}”" if e.data.get("comment") else "")
    ),
    "approval.approved": lambda e: f"closed {e.target_label}: approved",
    "approval.rejected": lambda e: f"closed {e.target_label}: rejected",
    "approval.withdrawn": lambda e: f"withdrew {e.target_label}",
    "approval.expired": lambda e: f"closed {e.target_label}: expired",
    "approval.superseded": lambda e: f"superseded {e.target_label} by #{e.data.get('by')}",
    "approval.gates_checked": lambda e: f"checked the gates of {e.target_label} again",
    "approval.alias_moved": lambda e: (
        f"pointed {e.data.get('model')}'s alias {e.data.get('alias')} at "
        f"v{_after(e).get('version')}"
    ),
    "approval.alias_failed": lambda e: (
        f"could not move the alias {e.data.get('alias')}: {e.data.get('reason')}"
    ),
    "approval.alias_retried": lambda e: f"asked to move the alias of {e.target_label} again",
    "approval.alias_reverted": lambda e: (
        f"moved {e.target_label}'s alias {e.data.get('alias')} back from "
        f"v{_before(e).get('version')} to v{_after(e).get('version')}"
    ),
    "approval.bundle_exported": lambda e: f"downloaded the evidence bundle of {e.target_label}",
    "comment.added": lambda e: f"commented on {e.data.get('on')}",
    "dataset.stored": lambda e: (
        f"kept the table {_after(e).get('name')} ({_after(e).get('rows')} rows)"
    ),
}


@register.filter
def describe(event: AuditEvent) -> str:
    """What happened, in words: "changed the role of sam from viewer to auditor"."""
    sentence = SENTENCES.get(event.action)
    if sentence is not None:
        try:
            return sentence(event)
        except (AttributeError, TypeError, ValueError):
            pass  # a payload of an older shape: fall back to the plain action
    words = event.action.replace(".", " ").replace("_", " ")
    return f"{words} {event.target_label}".strip()


@register.filter
def actor(event: AuditEvent) -> str:
    if event.actor_kind == ActorKind.ANONYMOUS:
        return "Someone"
    if event.actor_kind == ActorKind.SYSTEM:
        return f"Quorum ({event.actor_name})"
    return event.actor_name


@register.simple_tag
def short_hash(value: str) -> str:
    return format_html('<code title="{}">{}…</code>', value, value[:10])


@register.filter
def pretty_json(event: AuditEvent) -> str:
    import json

    return json.dumps(event.data, indent=2, ensure_ascii=False, sort_keys=True)
