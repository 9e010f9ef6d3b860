"""Walking the chain to prove it intact, or to name the first event that is not.

`ChainWalker` is the rule, fed one stored event at a time, and keeps constant memory. On
PostgreSQL the database recomputes the hashes itself (`json_build_object` writes the canonical
form of chain.py) in keyset batches, and Python only looks closely at a break; elsewhere Python
walks every event.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

from governance.audit.chain import GENESIS, event_hash, format_time
from governance.audit.errors import InvalidCheckpoint
from governance.audit.models import AuditEvent, ChainHead

COLUMNS = (
    "seq",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "actor_token",
    "action",
    "target_kind",
    "target_id",
    "target_label",
    "project_id",
    "payload",
    "ip",
    "user_agent",
    "request_id",
    "prev_hash",
    "hash",
)
# How far from its place a moved event is looked for, to tell "reordered" from "changed".
REORDER_WINDOW = 1000


class BreakKind:
    CHANGED = "changed"
    MISSING = "missing"
    REORDERED = "reordered"
    FORGED = "forged"
    TRUNCATED = "truncated"
    CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class Break:
    seq: int
    kind: str
    reason: str


@dataclass(frozen=True)
class Outcome:
    checked: int
    head_seq: int
    head_hash: str
    first_break: Break | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


Progress = Callable[[int, int], None]


def parse_checkpoint(text: str) -> tuple[int, str]:
    """`SEQ:HASH` as published after each verification. Raises InvalidCheckpoint."""
    seq, _, digest = text.strip().partition(":")
    if not (seq.isdigit() and int(seq) > 0 and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise InvalidCheckpoint(fields={"checkpoint": [InvalidCheckpoint.default_message]})
    return int(seq), digest


def _fields(row: tuple) -> dict[str, object]:
    fields = dict(zip(COLUMNS, row, strict=True))
    fields["at"] = format_time(fields["at"])
    return fields


def _hash_at(fields: dict[str, object], seq: int) -> str:
    return event_hash({**fields, "seq": seq})


class ChainWalker:
    """Checks events in sequence order against each other; the first break found is kept."""

    def __init__(self, *, seq: int = 0, hash: str = GENESIS, before: str | None = None):
        self.seq, self.hash, self.before = seq, hash, before  # last event, and the one before it
        self.checked = 0

    def feed(self, row: tuple) -> Break | None:
        fields = _fields(row)
        seq, stored, prev_hash = fields["seq"], fields["hash"], fields["prev_hash"]
        self.checked += 1
        if seq != self.seq + 1:
            last = seq - 1
            span = f"#{self.seq + 1}" if last == self.seq + 1 else f"#{self.seq + 1} to #{last}"
            return Break(self.seq + 1, BreakKind.MISSING, f"event {span} is missing")
        intact = _hash_at(fields, seq) == stored
        if prev_hash != self.hash and self.before is not None and prev_hash == self.before:
            # Chained to the event before the previous one: the previous one was slipped in.
            return Break(
                self.seq,
                BreakKind.FORGED,
                f"event #{self.seq} was inserted: the next event is chained to #{self.seq - 1}",
            )
        if intact and prev_hash != self.hash:
            return Break(
                self.seq,
                BreakKind.FORGED,
                f"event #{self.seq} was replaced with a recomputed hash: "
                f"event #{seq} was chained to a different one",
            )
        if not intact:
            origin = self._recorded_as(fields, seq, stored)
            if origin is not None:
                return Break(
                    seq,
                    BreakKind.REORDERED,
                    f"event #{seq} holds the event recorded as #{origin}",
                )
            return Break(seq, BreakKind.CHANGED, f"event #{seq} was changed after it was recorded")
        self.before, self.seq, self.hash = self.hash, seq, stored
        return None

    @staticmethod
    def _recorded_as(fields: dict[str, object], seq: int, stored: str) -> int | None:
        for distance in range(1, REORDER_WINDOW + 1):
            for candidate in (seq - distance, seq + distance):
                if candidate > 0 and _hash_at(fields, candidate) == stored:
                    return candidate
        return None


def _rows(after: int, size: int) -> list[tuple]:
    return list(
        AuditEvent.objects.filter(seq__gt=after).order_by("seq").values_list(*COLUMNS)[:size]
    )


def _python_walk(
    head_seq: int, checkpoint: tuple[int, str] | None, batch_size: int, progress: Progress | None
) -> tuple[ChainWalker, Break | None, str | None]:
    walker = ChainWalker()
    checkpoint_hash = None
    while rows := _rows(walker.seq, batch_size):
        for row in rows:
            found = walker.feed(row)
            if found is not None:
                return walker, found, checkpoint_hash
            if checkpoint and walker.seq == checkpoint[0]:
                checkpoint_hash = walker.hash
        if progress:
            progress(walker.seq, head_seq)
    return walker, None, checkpoint_hash


# PostgreSQL recomputes each hash from the columns, writing exactly chain.canonical(). Fields
# that `record` restricts to plain characters (actions, kinds, hashes, addresses, ids) are
# pasted in; free text goes through to_json. Both run in parallel workers over a range.
_CANONICAL_SQL = """
    '{"action" : "' || action
    || '", "actor_id" : ' || coalesce(actor_id::text, 'null')
    || ', "actor_kind" : "' || actor_kind
    || '", "actor_name" : ' || to_json(actor_name)::text
    || ', "actor_token" : "' || actor_token
    || '", "at" : "' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    || '", "ip" : "' || ip
    || '", "payload" : ' || to_json(payload)::text
    || ', "prev_hash" : "' || prev_hash
    || '", "project_id" : ' || coalesce(project_id::text, 'null')
    || ', "request_id" : "' || request_id
    || '", "seq" : ' || seq
    || ', "target_id" : ' || to_json(target_id)::text
    || ', "target_kind" : "' || target_kind
    || '", "target_label" : ' || to_json(target_label)::text
    || ', "user_agent" : ' || to_json(user_agent)::text
    || '}'
"""

_HASHES_SQL = f"""
    SELECT count(*),
           min(seq) FILTER (
               WHERE encode(sha256(convert_to({_CANONICAL_SQL}, 'UTF8')), 'hex') <> hash
           )
    FROM audit_auditevent WHERE seq > %(low)s AND seq <= %(high)s
"""  # noqa: S608 (a constant: nothing is formatted in from outside)

_LINKS_SQL = """
    SELECT min(seq) FROM (
        SELECT seq, prev_hash,
               lag(hash) OVER (ORDER BY seq) AS before_hash,
               lag(seq) OVER (ORDER BY seq) AS before_seq
        FROM audit_auditevent WHERE seq > %(low)s AND seq <= %(high)s
    ) linked
    WHERE prev_hash <> coalesce(before_hash, %(after_hash)s)
       OR seq <> coalesce(before_seq, %(after_seq)s) + 1
"""

_LAST_SQL = """
    SELECT seq, hash FROM audit_auditevent WHERE seq <= %(high)s ORDER BY seq DESC LIMIT 1
"""


def _explain(bad_seq: int) -> Break:
    """Let the walker name the break that the database flagged at `bad_seq`.

    Everything before `bad_seq` passed the database's checks, but the event just before it
    may be the culprit (a forged one links fine backwards), so the walk restarts one earlier.
    """
    earlier = list(
        AuditEvent.objects.filter(seq__lt=bad_seq)
        .order_by("-seq")
        .values_list("seq", "hash", "prev_hash")[:2]
    )
    walker = ChainWalker()
    if len(earlier) == 2:
        seq, last_hash, chained_to = earlier[1]
        walker = ChainWalker(seq=seq, hash=last_hash, before=chained_to)
    for row in _rows(walker.seq, 4):
        found = walker.feed(row)
        if found is not None:
            return found
    raise AssertionError(f"the database flagged #{bad_seq} but the walker finds it intact")


def _postgres_walk(
    head_seq: int, checkpoint: tuple[int, str] | None, batch_size: int, progress: Progress | None
) -> tuple[ChainWalker, Break | None, str | None]:
    walker = ChainWalker()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(seq), 0) FROM audit_auditevent")
        (last,) = cursor.fetchone()
        for low in range(0, last, batch_size):
            span = {"low": low, "high": min(low + batch_size, last)}
            cursor.execute(_HASHES_SQL, span)
            count, bad_hash = cursor.fetchone()
            cursor.execute(_LINKS_SQL, {**span, "after_seq": walker.seq, "after_hash": walker.hash})
            (bad_link,) = cursor.fetchone()
            bad = min(filter(None, (bad_hash, bad_link)), default=None)
            if bad is not None:
                return walker, _explain(bad), None
            walker.checked += count
            if count:
                cursor.execute(_LAST_SQL, span)
                walker.seq, walker.hash = cursor.fetchone()
            if progress:
                progress(walker.seq, head_seq)
        checkpoint_hash = None
        if checkpoint is not None:
            cursor.execute("SELECT hash FROM audit_auditevent WHERE seq = %s", [checkpoint[0]])
            found = cursor.fetchone()
            checkpoint_hash = found[0] if found else None
    return walker, None, checkpoint_hash


def walk_chain(
    *,
    checkpoint: tuple[int, str] | None = None,
    batch_size: int = 100_000,
    progress: Progress | None = None,
) -> Outcome:
    """Verify every event, the chain head and, when given, an outside checkpoint (SEQ, HASH).

    Reads in keyset batches of `batch_size` rows: memory stays flat whatever the length.
    """
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first() or (None, None)
    head_seq = head[0] or 0
    walk = _postgres_walk if connection.vendor == "postgresql" else _python_walk
    walker, found, checkpoint_hash = walk(head_seq, checkpoint, batch_size, progress)
    if found is None:
        found = _check_ends(walker, head, checkpoint, checkpoint_hash)
    return Outcome(walker.checked, walker.seq, walker.hash, found)


def _check_ends(
    walker: ChainWalker,
    head: tuple[int | None, str | None],
    checkpoint: tuple[int, str] | None,
    checkpoint_hash: str | None,
) -> Break | None:
    head_seq, head_hash = head
    if head_seq is None:
        return Break(walker.seq + 1, BreakKind.TRUNCATED, "the chain head record is missing")
    if head_seq > walker.seq:
        return Break(
            walker.seq + 1,
            BreakKind.TRUNCATED,
            f"the chain ends at #{walker.seq} but its head says #{head_seq}",
        )
    if head_seq < walker.seq or head_hash != walker.hash:
        return Break(
            head_seq + 1 if head_seq < walker.seq else walker.seq,
            BreakKind.FORGED,
            f"events after the recorded head #{head_seq} were added outside Quorum",
        )
    if checkpoint is not None:
        seq, expected = checkpoint
        if seq > walker.seq:
            return Break(
                walker.seq + 1,
                BreakKind.TRUNCATED,
                f"the checkpoint saw event #{seq}; the chain now ends at #{walker.seq}",
            )
        if checkpoint_hash != expected:
            return Break(
                seq,
                BreakKind.CHECKPOINT,
                f"event #{seq} differs from the checkpoint: the chain up to it was rewritten",
            )
    return None
