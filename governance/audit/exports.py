"""Writing the trail to files that auditors' own tools read: CSV, JSON Lines and XLSX.

Rows are read in keyset batches and written as they come, so memory stays flat whatever the
size; the file's SHA-256 is computed while it is written, for the manifest.
"""

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.db.models import QuerySet

from governance.audit.chain import format_time
from governance.audit.models import AuditEvent
from governance.audit.verification import COLUMNS  # every stored column, hash last

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson", "jsonl"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
BATCH = 1_000  # larger batches cost memory (and fragmentation) for no speed
# A worksheet holds 1,048,576 rows, the header included.
XLSX_MAX_ROWS = 1_048_575
HASH_RECIPE = (
    "hash = SHA-256 of the UTF-8 JSON object of every column but `hash`, keys sorted, "
    "separators ', ' and ' : ', non-ASCII unescaped, `at` as YYYY-MM-DDTHH:MM:SS.ffffffZ, "
    "`payload` as its text; `prev_hash` is the previous event's `hash` (64 zeros for #1)."
)


def iter_rows(events: QuerySet[AuditEvent]) -> Iterator[tuple]:
    """Every event's columns, oldest first, `at` formatted, in keyset batches."""
    after = 0
    while True:
        batch = list(events.filter(seq__gt=after).order_by("seq").values_list(*COLUMNS)[:BATCH])
        for row in batch:
            yield (row[0], format_time(row[1]), *row[2:])
        if len(batch) < BATCH:
            return
        after = batch[-1][0]


@dataclass
class Written:
    rows: int = 0
    first: tuple[int, str] | None = None
    last: tuple[int, str] | None = None
    sha256: str = ""
    size: int = 0
    _digest: "hashlib._Hash" = field(default_factory=hashlib.sha256, repr=False)

    def note(self, row: tuple) -> tuple:
        self.rows += 1
        if self.first is None:
            self.first = (row[0], row[-1])
        self.last = (row[0], row[-1])
        return row


class _Hashing(io.RawIOBase):
    """A binary sink that hashes and counts what passes through it."""

    def __init__(self, sink: BinaryIO, written: Written):
        self.sink, self.written = sink, written

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self.written._digest.update(data)
        self.written.size += len(data)
        return self.sink.write(data)


def _csv(rows: Iterable[tuple], sink: BinaryIO) -> None:
    text = io.TextIOWrapper(sink, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    text.flush()
    text.detach()


def _jsonl(rows: Iterable[tuple], sink: BinaryIO) -> None:
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines = []
    for row in rows:
        lines.append(encode(dict(zip(COLUMNS, row, strict=True))))
        if len(lines) == 1000:
            sink.write(("\n".join(lines) + "\n").encode())
            lines.clear()
    if lines:
        sink.write(("\n".join(lines) + "\n").encode())


def _xlsx(rows: Iterable[tuple], sink: BinaryIO) -> None:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(value: object) -> object:
        # Spreadsheets cannot hold control characters; CSV and JSONL keep them exactly.
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value

    # Write-only mode streams rows to a temporary file instead of holding cells in memory.
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Audit trail")
    sheet.append(COLUMNS)
    for row in rows:
        sheet.append([cell(value) for value in row])
    book.save(sink)


WRITERS = {"csv": _csv, "jsonl": _jsonl, "xlsx": _xlsx}


def write(fmt: str, events: QuerySet[AuditEvent], destination: BinaryIO) -> Written:
    """Write `events` in `fmt` to `destination`; return what went in and the file's digest."""
    written = Written()
    sink = _Hashing(destination, written)
    WRITERS[fmt]((written.note(row) for row in iter_rows(events)), sink)
    written.sha256 = written._digest.hexdigest()
    return written
