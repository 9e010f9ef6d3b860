"""The hash chain, as pure functions: how an event is serialised, hashed and linked.

An event's hash is the SHA-256 of its canonical serialisation: a JSON object with the fields
below in sorted order, `", "` and `" : "` as separators, non-ASCII kept as UTF-8, the time as
`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, the payload as its own canonical JSON text, and the
previous event's hash inside. Anyone can recompute it from an export without Quorum.

PostgreSQL's `json_build_object(...)::text` writes exactly this form, which lets the database
verify a million events without sending them to Python (see `verification.py`).
"""

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

GENESIS = "0" * 64

FIELDS = (
    "action",
    "actor_id",
    "actor_kind",
    "actor_name",
    "actor_token",
    "at",
    "ip",
    "payload",
    "prev_hash",
    "project_id",
    "request_id",
    "seq",
    "target_id",
    "target_kind",
    "target_label",
    "user_agent",
)

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", " : "))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def clean_text(text: str) -> str:
    """Text as every database can store it: no NUL, no lone surrogates."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot go into an audit payload")


def canonical_payload(payload: Mapping[str, object] | None) -> str:
    """The payload's canonical JSON text: sorted keys, compact, UTF-8."""
    text = json.dumps(
        payload or {},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=_plain,
    )
    return clean_text(text)


def canonical(fields: Mapping[str, object]) -> str:
    """The serialisation that is hashed. `fields` holds FIELDS, `at` already formatted."""
    return _ENCODER.encode({name: fields[name] for name in FIELDS})


def event_hash(fields: Mapping[str, object]) -> str:
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()
