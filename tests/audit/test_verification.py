"""Tampering with the trail behind Quorum's back, with the triggers dropped by hand, and the
walk naming the first broken event each time. Runs on SQLite and on PostgreSQL."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from governance.audit.chain import event_hash
from governance.audit.db import protect_sql, unprotect_sql
from governance.audit.models import AuditEvent, ChainHead
from governance.audit.services import SystemActor, fields_of, record
from governance.audit.verification import BreakKind, walk_chain


@pytest.fixture
def chain(db) -> list[AuditEvent]:
    """Twenty events, with text that tests the canonical form: quotes, newlines, emoji."""
    return [
        record(
            actor=SystemActor(f'writer "{n}"\n'),
            action="test.event",
            payload={"n": n, "note": "é ü 😀 \t\x01 \\ /", "nested": {"b": [1, 2.5], "a": None}},
        )
        for n in range(1, 21)
    ]


@contextmanager
def triggers_dropped() -> Iterator[object]:
    vendor = connection.vendor
    with connection.cursor() as cursor:
        for statement in unprotect_sql(vendor):
            cursor.execute(statement)
        try:
            yield cursor
        finally:
            for statement in protect_sql(vendor):
                cursor.execute(statement)


def broken(**options) -> tuple[int, str]:
    outcome = walk_chain(batch_size=7, **options)
    assert outcome.first_break is not None, "the walk found the chain intact"
    return outcome.first_break.seq, outcome.first_break.kind


def insert(cursor, event: AuditEvent) -> None:
    fields = fields_of(event)
    fields["at"] = event.at
    fields["hash"] = event.hash
    columns = ", ".join(fields)
    holders = ", ".join(["%s"] * len(fields))
    cursor.execute(
        f"INSERT INTO audit_auditevent ({columns}) VALUES ({holders})",  # noqa: S608
        list(fields.values()),
    )


def forge(after: AuditEvent, seq: int) -> AuditEvent:
    forged = AuditEvent(**{f.attname: getattr(after, f.attname) for f in AuditEvent._meta.fields})
    forged.seq = seq
    forged.prev_hash = after.hash
    forged.action = "project.archived"
    forged.actor_name = "mallory"
    forged.hash = event_hash(fields_of(forged))
    return forged


def test_an_untouched_chain_is_intact(chain):
    outcome = walk_chain(batch_size=7)
    assert outcome.intact
    assert (outcome.checked, outcome.head_seq, outcome.head_hash) == (20, 20, chain[-1].hash)


def test_a_changed_payload_is_found(chain):
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE audit_auditevent SET payload = '{\"n\":70}' WHERE seq = 7")
    assert broken() == (7, BreakKind.CHANGED)


def test_a_changed_actor_is_found(chain):
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_name = 'someone' WHERE seq = 9")
    assert broken() == (9, BreakKind.CHANGED)


def test_a_deleted_middle_event_is_found(chain):
    with triggers_dropped() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 10")
    assert broken() == (10, BreakKind.MISSING)


def test_two_swapped_events_are_found(chain):
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE audit_auditevent SET seq = -5 WHERE seq = 5")
        cursor.execute("UPDATE audit_auditevent SET seq = 5 WHERE seq = 6")
        cursor.execute("UPDATE audit_auditevent SET seq = 6 WHERE seq = -5")
    assert broken() == (5, BreakKind.REORDERED)


def test_an_event_replaced_by_a_forgery_with_a_recomputed_hash_is_found(chain):
    with triggers_dropped() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 12")
        insert(cursor, forge(after=chain[10], seq=12))
    assert broken() == (12, BreakKind.FORGED)


def test_a_forgery_slipped_in_by_renumbering_the_rest_is_found(chain):
    with triggers_dropped() as cursor:
        for seq in range(20, 12, -1):
            cursor.execute("UPDATE audit_auditevent SET seq = seq + 1 WHERE seq = %s", [seq])
        insert(cursor, forge(after=chain[11], seq=13))
    assert broken() == (13, BreakKind.FORGED)


def test_events_appended_outside_quorum_are_found(chain):
    with triggers_dropped() as cursor:
        insert(cursor, forge(after=chain[-1], seq=21))
    assert broken() == (21, BreakKind.FORGED)


def test_a_truncated_tail_is_found_by_the_head(chain):
    with triggers_dropped() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq > 17")
    assert broken() == (18, BreakKind.TRUNCATED)


def test_a_truncated_tail_with_a_doctored_head_is_found_by_the_checkpoint(chain):
    checkpoint = (20, chain[-1].hash)
    with triggers_dropped() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq > 17")
    ChainHead.objects.update(seq=17, hash=chain[16].hash)
    assert walk_chain().intact  # only something held outside can tell
    assert broken(checkpoint=checkpoint) == (18, BreakKind.TRUNCATED)


def test_a_chain_rewritten_from_the_start_is_found_by_the_checkpoint(chain):
    checkpoint = (15, chain[14].hash)
    with triggers_dropped() as cursor:
        cursor.execute("DELETE FROM audit_auditevent")
    ChainHead.objects.update(seq=0, hash="0" * 64)
    for n in range(1, 21):
        record(actor=SystemActor("mallory"), action="test.event", payload={"n": n})
    assert walk_chain().intact
    assert broken(checkpoint=checkpoint) == (15, BreakKind.CHECKPOINT)


def test_a_checkpoint_that_matches_passes(chain):
    assert walk_chain(checkpoint=(13, chain[12].hash)).intact
