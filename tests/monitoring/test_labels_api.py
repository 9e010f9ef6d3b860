"""/api/v1/batches/{id}/ and /api/v1/batches/{id}/labels/."""

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.monitoring import services
from governance.monitoring.models import Batch
from governance.registry.models import DatasetVersion
from tests.access.test_api import as_user, assert_error, bearer
from tests.monitoring.test_labels import applicants, csv_of
from tests.monitoring.test_quality_pages import measured
from tests.monitoring.test_quality_pages import monitor as monitor


@pytest.fixture
def batch(monitor, scientist) -> Batch:
    data = applicants(40, seed=30)
    batch = services.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(data.drop(columns="default")),
        filename="b.csv",
    )  # fmt: skip
    batch.data = data
    return batch


def labels_url(batch) -> str:
    return f"/api/v1/batches/{batch.pk}/labels/"


def test_a_batch_reads_with_its_data_and_model_quality(monitor, scientist, viewer):
    batch = measured(monitor, scientist, seed=31)
    body = as_user(viewer).get(f"/api/v1/batches/{batch.pk}/").json()
    assert body["id"] == batch.pk
    assert body["monitor"] == monitor.pk
    assert body["project"] == "credit-risk"
    assert body["rows"] == 100
    assert body["data_quality"]["passed"] is True
    assert "debt_ratio" in body["data_quality"]["report"]["columns"]
    assert body["labels"]["rows"] == 100
    assert body["model_quality"]["state"] == "done"
    assert body["model_quality"]["result"]["metrics"]["accuracy"] > 0.8
    assert body["model_quality"]["reference"]["metrics"]["accuracy"] > 0.8
    assert body["page"].endswith(f"/monitors/{monitor.pk}/batches/{batch.pk}/")


def test_a_batch_without_labels_says_so(batch, viewer):
    body = as_user(viewer).get(f"/api/v1/batches/{batch.pk}/").json()
    assert body["labels"] is None
    assert body["model_quality"]["state"] == ""
    assert body["data_quality"]["passed"] is None


def test_labels_sent_as_a_form_file_are_queued(
    batch, scientist, django_capture_on_commit_callbacks
):
    upload = csv_of(batch.data[["id", "default"]])
    upload.name = "labels.csv"
    with django_capture_on_commit_callbacks() as queued:
        response = as_user(scientist).post(labels_url(batch), {"file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    assert response.json() == {
        "batch": f"http://testserver/api/v1/batches/{batch.pk}/",
        "state": "queued",
    }
    assert response["Location"] == response.json()["batch"]
    assert len(queued) == 1
    batch.refresh_from_db()
    assert batch.model_quality_state == "queued"


def test_labels_sent_as_a_csv_body_with_a_token(batch, scientist):
    client, _ = bearer(scientist)
    body = batch.data[["id", "default"]].to_csv(index=False)
    response = client.post(labels_url(batch), body, content_type="text/csv")
    assert response.status_code == 202, response.content
    assert Batch.objects.get(pk=batch.pk).labels.profile["rows"] == 40


def test_labels_sent_as_a_parquet_body(batch, scientist):
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(batch.data[["id", "default"]]), sink)
    response = as_user(scientist).post(
        labels_url(batch), sink.getvalue(), content_type="application/vnd.apache.parquet"
    )
    assert response.status_code == 202, response.content


def nothing_changed(batch, kept: int, events: int) -> None:
    assert DatasetVersion.objects.count() == kept
    assert AuditEvent.objects.count() == events
    assert Batch.objects.get(pk=batch.pk).labels is None


@pytest.mark.parametrize(
    ("body", "content_type", "code", "field"),
    [
        ("default\n1\n", "text/csv", "labels_mismatch", "id"),
        ("id,default\nnobody,1\n", "text/csv", "labels_mismatch", "id"),
        ("id,outcome\na30-0,1\n", "text/csv", "labels_mismatch", "default"),
        ("   ", "text/csv", "unreadable_table", "file"),
        ("not parquet", "application/vnd.apache.parquet", "unreadable_table", "file"),
    ],
)
def test_bad_labels_are_refused_with_the_error_body(
    batch, scientist, body, content_type, code, field
):
    kept, events = DatasetVersion.objects.count(), AuditEvent.objects.count()
    response = as_user(scientist).post(labels_url(batch), body, content_type=content_type)
    error = assert_error(response, 400, code)
    assert field in error["fields"]
    nothing_changed(batch, kept, events)


def test_a_form_without_a_file_is_refused(batch, scientist):
    response = as_user(scientist).post(labels_url(batch), {}, format="multipart")
    assert "file" in assert_error(response, 400, "invalid")["fields"]


def test_a_body_of_another_type_is_refused(batch, scientist):
    response = as_user(scientist).post(labels_url(batch), {"labels": [1]}, format="json")
    assert_error(response, 415, "unsupported_media_type")


def test_those_who_do_not_monitor_may_not_send_labels(batch, viewer):
    kept, events = DatasetVersion.objects.count(), AuditEvent.objects.count()
    body = batch.data[["id", "default"]].to_csv(index=False)
    response = as_user(viewer).post(labels_url(batch), body, content_type="text/csv")
    assert_error(response, 403, "permission_denied")
    nothing_changed(batch, kept, events)


def test_a_batch_outsiders_cannot_see_is_not_found(batch, outsider):
    client = as_user(outsider)
    assert_error(client.get(f"/api/v1/batches/{batch.pk}/"), 404, "batch_not_found")
    response = client.post(labels_url(batch), "id,default\na30-0,1\n", content_type="text/csv")
    assert_error(response, 404, "batch_not_found")


def test_a_batch_that_does_not_exist_is_not_found(batch, scientist):
    response = as_user(scientist).get(f"/api/v1/batches/{batch.pk + 1000}/")
    assert_error(response, 404, "batch_not_found")


def test_strangers_are_asked_to_authenticate(batch):
    response = APIClient().get(f"/api/v1/batches/{batch.pk}/")
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"error"}
