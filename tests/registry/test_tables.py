"""Tables Quorum keeps: read, checked against a reference, stored by their SHA-256."""

import hashlib
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from governance.access.errors import NotAllowed
from governance.audit.models import AuditEvent
from governance.registry import services, tables
from governance.registry.errors import DatasetTooLarge, SchemaMismatch, UnreadableTable
from governance.registry.models import DatasetVersion

CSV = b"age,income,region\n34,52000.5,north\n51,,south\n29,31000,north\n"
LIMIT = 1 << 20


def read(data: bytes, name: str = "batch.csv") -> pa.Table:
    return tables.read(io.BytesIO(data), name, limit=LIMIT)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_csv_and_parquet_read_to_the_same_table():
    from_csv = read(CSV)
    from_parquet = read(parquet_bytes(from_csv), "batch.parquet")
    assert from_csv.equals(from_parquet)
    assert [c["kind"] for c in tables.schema_of(from_csv)["columns"]] == [
        "numeric", "numeric", "categorical",
    ]  # fmt: skip


def test_a_tab_separated_file_and_a_byte_order_mark_are_read():
    table = read(b"\xef\xbb\xbfa\tb\n1\tx\n", "data.tsv")
    assert table.column_names == ["a", "b"]


def test_the_profile_counts_missing_values_and_ranges():
    profile = tables.profile_of(read(CSV))
    assert profile["rows"] == 3
    assert profile["columns"]["income"] == {
        "missing": 1, "min": 31000.0, "max": 52000.5, "mean": 41500.25,
    }  # fmt: skip
    assert profile["columns"]["region"]["top"] == {"north": 2, "south": 1}


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"", "a.csv", "empty"),
        (b"   \n", "a.csv", "empty"),
        (b"a,b\n", "a.csv", "no rows"),
        (b"a,b\n1,2,3\n", "a.csv", "Expected 2 columns, got 3"),
        (b"a,b\n1,2\n\xff\xfe,3\n", "a.csv", "Line 3 is not UTF-8"),
        (b"PAR1 not really", "a.parquet", "not a readable Parquet"),
        (b"a,a\n1,2\n", "a.csv", "Two columns are called 'a'"),
        (b"a,\n1,2\n", "a.csv", "Column 2 has no name"),
        (b"{}", "a.json", "neither CSV"),
    ],
)
def test_unreadable_files_are_refused_saying_where(data, name, words):
    with pytest.raises(UnreadableTable) as refused:
        read(data, name)
    assert words in refused.value.message


def test_too_large_a_file_is_refused():
    with pytest.raises(DatasetTooLarge):
        tables.read(io.BytesIO(CSV), "a.csv", limit=10)


def test_a_table_unlike_its_reference_is_refused_naming_the_columns():
    reference = tables.schema_of(read(CSV))
    with pytest.raises(SchemaMismatch) as refused:
        tables.check_against(read(b"age,region,shoe\n1,x,2\n"), reference)
    assert refused.value.fields == {
        "income": ["missing: the reference has this column"],
        "shoe": ["not in the reference"],
    }


def test_text_in_a_numeric_column_is_refused_with_its_row():
    reference = tables.schema_of(read(CSV))
    batch = read(b"age,income,region\n40,1000,north\n41,lots,south\n")
    with pytest.raises(SchemaMismatch) as refused:
        tables.check_against(batch, reference)
    assert refused.value.message == "Column 'income': row 2 holds 'lots', not a number."


def test_an_all_missing_column_matches_any_kind():
    reference = tables.schema_of(read(CSV))
    tables.check_against(read(b"age,income,region\n40,,north\n41,,south\n"), reference)


def test_a_stored_table_is_named_by_the_sha256_of_its_file(tmp_path):
    table = read(CSV)
    sha256, size = tables.store(table, tmp_path)
    path = tables.path_of(tmp_path, sha256)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    assert path.stat().st_size == size
    assert tables.load(tmp_path, sha256).equals(table)
    assert tables.store(table, tmp_path) == (sha256, size)  # the same table, the same file
    assert [p.name for p in tmp_path.rglob("*.part")] == []


def test_a_kept_table_is_a_dataset_version_on_the_trail(project, scientist, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    table = read(CSV)
    kept = services.keep_table(
        actor=scientist, project=project, name="applicants", table=table, source="batch.csv"
    )
    again = services.keep_table(
        actor=scientist, project=project, name="applicants", table=table, source="batch.csv"
    )
    assert kept == again
    assert kept.stored
    assert kept.source_type == "quorum"
    assert tables.load(tmp_path, kept.sha256).num_rows == 3
    (event,) = AuditEvent.objects.filter(action="dataset.stored")
    assert event.data["after"]["rows"] == 3


@pytest.mark.parametrize("who", ["viewer", "auditor", "owner"])
def test_roles_that_neither_publish_nor_monitor_keep_no_tables(
    project, request, who, settings, tmp_path
):
    settings.DATA_DIR = tmp_path
    with pytest.raises(NotAllowed):
        services.keep_table(
            actor=request.getfixturevalue(who), project=project, name="x", table=read(CSV),
            source="x.csv",
        )  # fmt: skip
    assert not DatasetVersion.objects.exists()
