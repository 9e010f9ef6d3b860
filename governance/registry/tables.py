"""Tables Quorum keeps: read from CSV or Parquet, checked, and stored as Parquet under the
SHA-256 of the stored file, so the same data is one file and a file's name proves its content.

Pure of Django but for the errors: monitoring references, batches and evaluation data for bias
reports all come through here.
"""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from governance.registry.errors import DatasetTooLarge, SchemaMismatch, UnreadableTable

MAX_COLUMNS = 2000
DISTINCT_SHOWN = 20  # categories listed in a profile
PARQUET_MAGIC = b"PAR1"
UTF8_BOM = b"\xef\xbb\xbf"


def read(stream: BinaryIO, filename: str, *, limit: int) -> pa.Table:
    """The table in `stream`, CSV (comma or tab) or Parquet by its name or content.

    Raises DatasetTooLarge over `limit` bytes, UnreadableTable naming the line or column.
    """
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise DatasetTooLarge(f"Tables are limited to {limit // 2**20} MB here.")
    if not data.strip():
        raise UnreadableTable("The file is empty.", fields={"file": ["empty"]})
    name = filename.lower()
    if data[:4] == PARQUET_MAGIC or name.endswith(".parquet"):
        table = _parquet(data)
    elif name.endswith((".csv", ".tsv", ".txt")) or "." not in Path(name).name:
        table = _csv(data, delimiter="\t" if name.endswith(".tsv") else ",")
    else:
        raise UnreadableTable(
            f"{filename} is neither CSV (.csv, .tsv) nor Parquet (.parquet).",
            fields={"file": ["unknown type"]},
        )
    _check_columns(table)
    if table.num_rows == 0:
        raise UnreadableTable("The table has columns but no rows.", fields={"file": ["no rows"]})
    return table


def _parquet(data: bytes) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as error:
        raise UnreadableTable(
            f"The file is not a readable Parquet file: {error}", fields={"file": ["not Parquet"]}
        ) from None


def _csv(data: bytes, delimiter: str) -> pa.Table:
    data = data.removeprefix(UTF8_BOM)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UnreadableTable(
            f"Line {line} is not UTF-8 text: save the file as UTF-8 and send it again.",
            fields={"file": [f"line {line}: not UTF-8"]},
        ) from None
    try:
        return pacsv.read_csv(
            pa.BufferReader(data),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
        )
    except pa.ArrowInvalid as error:
        raise UnreadableTable(
            f"The CSV file is malformed: {_csv_problem(str(error))}",
            fields={"file": ["malformed CSV"]},
        ) from None


def _csv_problem(message: str) -> str:
    # Arrow says "CSV parse error: Expected 3 columns, got 4: <the row>"; keep it short.
    message = message.removeprefix("CSV parse error: ")
    return message if len(message) <= 300 else message[:300] + "…"


def _check_columns(table: pa.Table) -> None:
    names = table.column_names
    if len(names) > MAX_COLUMNS:
        raise UnreadableTable(
            f"The table has {len(names)} columns; at most {MAX_COLUMNS} are kept.",
            fields={"file": ["too many columns"]},
        )
    blank = [n for n, name in enumerate(names, start=1) if not name.strip()]
    if blank:
        raise UnreadableTable(
            f"Column {blank[0]} has no name.", fields={"file": [f"column {blank[0]}: no name"]}
        )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UnreadableTable(
                f"Two columns are called {name!r}.", fields={name: ["duplicate column"]}
            )
        seen.add(name)


# What a column holds, as the rest of Quorum speaks of it.


def kind_of(data_type: pa.DataType) -> str:
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
        return "numeric"
    if pa.types.is_decimal(data_type):
        return "numeric"
    if pa.types.is_temporal(data_type):
        return "datetime"
    if pa.types.is_null(data_type):
        return "empty"
    return "categorical"


def schema_of(table: pa.Table) -> dict:
    return {
        "columns": [
            {"name": field.name, "type": str(field.type), "kind": kind_of(field.type)}
            for field in table.schema
        ]
    }


def profile_of(table: pa.Table) -> dict:
    """Rows, and per column: missing values, and range (numbers) or top values (the rest)."""
    columns = {}
    for field in table.schema:
        column = table.column(field.name)
        entry: dict[str, object] = {"missing": column.null_count}
        kind = kind_of(field.type)
        if kind == "numeric" and column.null_count < len(column):
            low, high = pc.min_max(column).values()
            entry.update(min=low.as_py(), max=high.as_py(), mean=pc.mean(column).as_py())
        elif kind in ("categorical", "boolean"):
            counts = pc.value_counts(column.drop_null() if column.null_count else column)
            entry["distinct"] = len(counts)
            top = sorted(counts.to_pylist(), key=lambda c: -c["counts"])[:DISTINCT_SHOWN]
            entry["top"] = {str(c["values"]): c["counts"] for c in top}
        columns[field.name] = entry
    return {"rows": table.num_rows, "columns": columns}


def check_against(table: pa.Table, reference: dict) -> None:
    """Refuse a table whose columns or kinds differ from `reference` (a `schema_of`). A column
    of numbers that arrives as text is named with the first value that is not a number."""
    wanted = {c["name"]: c["kind"] for c in reference.get("columns", [])}
    found = {field.name: kind_of(field.type) for field in table.schema}
    missing = [name for name in wanted if name not in found]
    extra = [name for name in found if name not in wanted]
    problems: dict[str, list[str]] = {}
    for name in missing:
        problems[name] = ["missing: the reference has this column"]
    for name in extra:
        problems[name] = ["not in the reference"]
    for name, kind in found.items():
        if name not in wanted or kind == wanted[name] or "empty" in (kind, wanted[name]):
            continue
        problems[name] = [f"holds {kind} values where the reference holds {wanted[name]}"]
        if wanted[name] == "numeric":
            bad = _first_not_number(table.column(name))
            if bad is not None:
                row, value = bad
                problems[name] = [f"row {row} holds {value!r}, not a number"]
    if problems:
        first = next(iter(problems))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SchemaMismatch(
            f"Column {first!r}: {problems[first][0]}{more}.",
            fields=problems,
        )


def _first_not_number(column: pa.ChunkedArray) -> tuple[int, str] | None:
    """The first (row, value) of a text column that is not a number; rows count from 1."""
    for row, value in enumerate(column.cast(pa.string()).to_pylist(), start=1):
        if value is None:
            continue
        try:
            float(value)
        except ValueError:
            return row, value
    return None


# Storage


def store(table: pa.Table, root: Path) -> tuple[str, int]:
    """Write `table` as Parquet under `root`, named by the file's SHA-256; returns the digest
    and size. Written beside and renamed, so no reader ever sees half a file."""
    root.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=root, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            pq.write_table(table, file, compression="zstd")
        digest = hashlib.sha256()
        with open(partial, "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
        sha256 = digest.hexdigest()
        target = path_of(root, sha256)
        target.parent.mkdir(exist_ok=True)
        size = os.path.getsize(partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return sha256, size


def path_of(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / f"{sha256}.parquet"


def load(root: Path, sha256: str) -> pa.Table:
    """A stored table. Raises FileNotFoundError when the file is gone."""
    return pq.read_table(path_of(root, sha256))
