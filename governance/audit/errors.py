from governance.errors import Conflict, DomainError, InvalidInput


class ChainUnavailable(Conflict):
    code = "audit_chain_unavailable"
    default_message = "The audit chain's head is missing; run audit_verify and restore it."


class InvalidFilter(InvalidInput):
    code = "invalid_filter"


class InvalidCheckpoint(InvalidInput):
    code = "invalid_checkpoint"
    default_message = "A checkpoint is written SEQ:HASH, e.g. 1042:9f86d081…"


class UnknownFormat(InvalidInput):
    code = "unknown_format"
    default_message = "Export as csv, jsonl or xlsx."


class TooManyRows(InvalidInput):
    code = "too_many_rows"


class ExportUnavailable(DomainError):
    """The folder exports are written to cannot be written (full, read-only, missing)."""

    code = "export_unavailable"
    status = 503
    default_message = (
        "Exports cannot be written on the server just now; nothing was exported. "
        "An admin has been told the reason in the server's log."
    )
