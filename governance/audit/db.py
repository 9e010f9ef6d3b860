"""The database's own refusal to change the trail: triggers on PostgreSQL and SQLite.

A migration installs them. The test suite lifts them only around the flush it does between
transactional tests (see tests/conftest.py); nothing in Quorum itself ever does.

SQLite rebuilds a table to alter it, and its triggers go with it: every migration that alters
the audit table must end with `reprotect()` (installing is idempotent on both databases).
"""

TABLE = "audit_auditevent"

PROTECT = {
    "postgresql": [
        """
        CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING
                MESSAGE = 'the audit trail is append-only: ' || TG_OP || ' refused',
                ERRCODE = 'insufficient_privilege';
        END $$
        """,
        f"""
        CREATE OR REPLACE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()
        """,
        f"""
        CREATE OR REPLACE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()
        """,
    ],
    "sqlite": [
        f"""
        CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: UPDATE refused'); END
        """,
        f"""
        CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: DELETE refused'); END
        """,
    ],
}

UNPROTECT = {
    "postgresql": [
        f"DROP TRIGGER IF EXISTS audit_event_append_only ON {TABLE}",
        f"DROP TRIGGER IF EXISTS audit_event_no_truncate ON {TABLE}",
        "DROP FUNCTION IF EXISTS audit_refuse_change()",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS audit_event_no_update",
        "DROP TRIGGER IF EXISTS audit_event_no_delete",
    ],
}


def protect_sql(vendor: str) -> list[str]:
    return PROTECT.get(vendor, [])


def unprotect_sql(vendor: str) -> list[str]:
    return UNPROTECT.get(vendor, [])


def reprotect():
    """A migration operation that (re)installs the triggers."""
    from django.db import migrations

    def protect(apps, schema_editor):
        for statement in protect_sql(schema_editor.connection.vendor):
            schema_editor.execute(statement)

    return migrations.RunPython(protect, migrations.RunPython.noop)
