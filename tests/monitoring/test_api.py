"""/api/v1 for monitors: set up and tune monitors, send batches, read checks, handle alerts."""

import io
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import reset_queries
from django.utils import timezone
from rest_framework.test import APIClient

from governance.access import services as access
from governance.audit.models import AuditEvent
from governance.monitoring import services
from governance.monitoring.models import Batch, DriftAlert, DriftCheck, Monitor
from governance.registry import services as registry
from governance.registry.models import DatasetVersion
from tests.monitoring.test_monitors import frame

MONITORS = "/api/v1/projects/credit-risk/monitors/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def bearer(user) -> APIClient:
    _, secret = access.create_api_token(
        actor=user, name="serving", expires_at=timezone.now() + timedelta(days=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def error_of(response) -> dict:
    return response.json()["error"]


def csv_bytes(rows: int = 300, shift: float = 0.0, seed: int = 1) -> bytes:
    return frame(rows, shift, seed).to_csv(index=False).encode()


def upload(content: bytes, name: str = "batch.csv") -> io.BytesIO:
    file = io.BytesIO(content)
    file.name = name
    return file


@pytest.fixture
def reference(project, scientist):
    return registry.keep_table(
        actor=scientist,
        project=project,
        name="applicants",
        table=pa.Table.from_pandas(frame(2000), preserve_index=False),
        source="reference.csv",
    )


@pytest.fixture
def monitor(project, scientist, reference):
    return services.create_monitor(
        actor=scientist, project=project, name="credit inputs", reference=reference
    )


def batches_url(monitor) -> str:
    return f"/api/v1/monitors/{monitor.pk}/batches/"


def drifted(monitor, scientist, seed: int = 40) -> DriftAlert:
    batch = services.add_batch(
        actor=scientist,
        monitor=monitor,
        content=io.BytesIO(csv_bytes(2000, shift=1.5, seed=seed)),
        filename="b.csv",
    )
    services.run_drift_check(check_id=batch.checks.get().pk)
    return DriftAlert.objects.get(monitor=monitor, feature="age")


# Monitors


def test_members_list_monitors_with_their_open_alerts_and_batches(monitor, scientist, viewer):
    drifted(monitor, scientist)
    (listed,) = api(viewer).get(MONITORS).json()["results"]
    assert (listed["id"], listed["name"]) == (monitor.pk, "credit inputs")
    assert (listed["open_alerts"], listed["batch_count"]) == (1, 1)
    assert listed["url"] == f"/projects/credit-risk/monitors/{monitor.pk}/"


def test_the_monitor_list_costs_the_same_at_one_and_many(
    monitor, project, scientist, viewer, django_assert_max_num_queries
):
    client = api(viewer)
    reset_queries()  # the query log is a bounded deque: start it empty to count
    with django_assert_max_num_queries(8) as one:
        client.get(MONITORS)
    at_one = len(one.captured_queries)
    for n in range(6):
        services.create_monitor(
            actor=scientist, project=project, name=f"m{n}", reference=monitor.reference
        )
    reset_queries()
    with django_assert_max_num_queries(at_one):
        assert len(client.get(MONITORS).json()["results"]) == 7


def test_a_data_scientist_sets_up_a_monitor(project, reference, scientist):
    response = api(scientist).post(
        MONITORS,
        {"name": "inputs", "reference": reference.pk, "categorical": ["region"], "bins": 12},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["bins"], body["categorical"]) == ("inputs", 12, ["region"])
    assert (body["latest_check"], body["window_hours"], body["poll_minutes"]) == (None, 24, None)
    assert AuditEvent.objects.filter(action="monitor.created").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "inputs", "reference": 999999}, "reference"),
        ({"name": "inputs", "version": 999999}, "version"),
        ({"name": "inputs", "bins": 1}, "bins"),
        ({"name": "inputs", "categorical": ["shoe"]}, "categorical"),
        ({"reference": None}, "name"),
    ],
)
def test_a_bad_monitor_is_refused_naming_the_field(reference, scientist, body, field):
    response = api(scientist).post(MONITORS, {"reference": reference.pk, **body}, format="json")
    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert not Monitor.objects.exists()


def test_viewers_may_not_set_up_monitors_and_outsiders_see_no_project(reference, viewer, outsider):
    body = {"name": "inputs", "reference": reference.pk}
    assert api(viewer).post(MONITORS, body, format="json").status_code == 403
    assert api(outsider).post(MONITORS, body, format="json").status_code == 404
    assert api(outsider).get(MONITORS).status_code == 404
    assert not Monitor.objects.exists()


def test_a_monitor_shows_its_latest_check(monitor, scientist, viewer):
    drifted(monitor, scientist)
    body = api(viewer).get(f"/api/v1/monitors/{monitor.pk}/").json()
    latest = body["latest_check"]
    assert (latest["state"], latest["trigger"]) == ("done", "batch")
    assert latest["drifted_features"] == ["age"]
    assert latest["url"] == f"/api/v1/drift-checks/{latest['id']}/"


def test_settings_change_over_the_api_and_go_on_the_trail(monitor, scientist, settings, tmp_path):
    settings.QUORUM_DATA_ROOTS = [str(tmp_path)]
    uri = (tmp_path / "today.csv").as_uri()
    response = api(scientist).patch(
        f"/api/v1/monitors/{monitor.pk}/",
        {"source_uri": uri, "poll_minutes": 15, "check_minutes": 60, "window_hours": 6},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["source_uri"], body["poll_minutes"]) == (uri, 15)
    assert (body["check_minutes"], body["window_hours"]) == (60, 6)
    event = AuditEvent.objects.get(action="monitor.updated")
    assert event.data["after"]["poll_minutes"] == 15
    assert event.data["before"]["poll_minutes"] is None


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"poll_minutes": 0, "source_uri": "https://example.com/b.csv"}, "poll_minutes", "invalid"),
        ({"check_minutes": -10}, "check_minutes", "invalid"),
        ({"window_hours": 0}, "window_hours", "invalid"),
        ({"window_hours": "soon"}, "window_hours", "invalid"),
        ({"source_uri": "ftp://example.com/b.csv"}, "source_uri", "invalid_source"),
        ({"source_uri": "file:///etc/passwd"}, "source_uri", "invalid_source"),
        ({"poll_minutes": 5}, "source_uri", "invalid_source"),
        ({"colour": "red"}, "colour", "invalid"),
        ({"name": ""}, "name", "invalid"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    monitor, scientist, settings, tmp_path, body, field, code
):
    settings.QUORUM_DATA_ROOTS = [str(tmp_path)]
    response = api(scientist).patch(f"/api/v1/monitors/{monitor.pk}/", body, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == code
    assert field in error_of(response)["fields"]
    assert not AuditEvent.objects.filter(action="monitor.updated").exists()


def test_viewers_may_not_change_settings_and_outsiders_see_no_monitor(monitor, viewer, outsider):
    url = f"/api/v1/monitors/{monitor.pk}/"
    assert api(viewer).patch(url, {"window_hours": 2}, format="json").status_code == 403
    assert api(outsider).patch(url, {"window_hours": 2}, format="json").status_code == 404
    assert api(outsider).get(url).status_code == 404
    monitor.refresh_from_db()
    assert monitor.window_hours == 24


# Batches


def test_a_serving_system_sends_a_batch_with_a_token(
    monitor, engineer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = bearer(engineer).post(
            batches_url(monitor), {"file": upload(csv_bytes())}, format="multipart"
        )
    assert response.status_code == 201, response.content
    body = response.json()
    batch = Batch.objects.get()
    assert (body["id"], body["source"], body["rows"]) == (batch.pk, "api", 300)
    assert (body["received_by"], body["filename"]) == ("mei", "batch.csv")
    assert body["check"] == DriftCheck.objects.get(batch=batch).pk
    assert body["check_url"] == f"/api/v1/drift-checks/{body['check']}/"
    assert body["monitor_url"] == f"/projects/credit-risk/monitors/{monitor.pk}/"
    assert len(queued) == 2, "the check and the quality report wait for the commit"


def test_the_same_batch_sent_again_answers_with_the_existing_one(monitor, engineer):
    client = api(engineer)
    first = client.post(batches_url(monitor), {"file": upload(csv_bytes())}, format="multipart")
    again = client.post(batches_url(monitor), {"file": upload(csv_bytes())}, format="multipart")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["check"] == first.json()["check"]
    assert DriftCheck.objects.count() == 1


def test_a_batch_may_be_the_body_itself_as_csv(monitor, engineer):
    response = api(engineer).generic(
        "POST", f"{batches_url(monitor)}?filename=tuesday.csv", csv_bytes(), content_type="text/csv"
    )
    assert response.status_code == 201, response.content
    assert response.json()["filename"] == "tuesday.csv"


def test_a_batch_may_be_the_body_itself_as_parquet(monitor, engineer):
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame(200, seed=41), preserve_index=False), sink)
    response = api(engineer).generic(
        "POST",
        batches_url(monitor),
        sink.getvalue(),
        content_type="application/vnd.apache.parquet",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["filename"], response.json()["rows"]) == ("batch.parquet", 200)


def nothing_kept() -> bool:
    return (
        not Batch.objects.exists()
        and not DatasetVersion.objects.filter(name__endswith="batch").exists()
    )


def test_an_unknown_content_type_is_refused(monitor, engineer):
    response = api(engineer).generic(
        "POST", batches_url(monitor), b'{"age": 1}', content_type="application/json"
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert nothing_kept()


def test_a_batch_over_the_limit_is_refused_as_too_large(monitor, engineer, settings):
    settings.QUORUM_MAX_DATASET_BYTES = 1000
    response = api(engineer).generic(
        "POST", batches_url(monitor), csv_bytes(), content_type="text/csv"
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "dataset_too_large"
    assert nothing_kept()


def test_a_malformed_csv_is_refused_naming_the_line(monitor, engineer):
    content = b"age,income,region\n40,50000,north\n41,50000\n"
    response = api(engineer).post(
        batches_url(monitor), {"file": upload(content)}, format="multipart"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "unreadable_table"
    assert "Expected 3 columns, got 2" in error_of(response)["message"]
    assert nothing_kept()


def test_a_batch_whose_columns_differ_is_refused_naming_the_column(monitor, engineer):
    response = api(engineer).generic(
        "POST", batches_url(monitor), b"age,income\n40,50000\n", content_type="text/csv"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "schema_mismatch"
    assert "region" in error_of(response)["fields"]
    assert nothing_kept()


def test_a_batch_without_a_file_is_refused(monitor, engineer):
    response = api(engineer).post(batches_url(monitor), {"note": "x"}, format="multipart")
    assert response.status_code == 400
    assert "file" in error_of(response)["fields"]


def test_viewers_may_not_send_batches_and_outsiders_see_no_monitor(monitor, viewer, outsider):
    for who, answer in ((viewer, 403), (outsider, 404)):
        response = api(who).post(
            batches_url(monitor), {"file": upload(csv_bytes())}, format="multipart"
        )
        assert response.status_code == answer
    assert nothing_kept()


def test_batches_are_listed_at_the_same_cost_however_many(
    monitor, engineer, viewer, django_assert_max_num_queries
):
    client = api(engineer)
    client.post(batches_url(monitor), {"file": upload(csv_bytes(seed=50))}, format="multipart")
    reader = api(viewer)
    reset_queries()  # the query log is a bounded deque: start it empty to count
    with django_assert_max_num_queries(8) as one:
        reader.get(batches_url(monitor))
    at_one = len(one.captured_queries)
    for seed in range(51, 56):
        client.post(
            batches_url(monitor), {"file": upload(csv_bytes(seed=seed))}, format="multipart"
        )
    reset_queries()
    with django_assert_max_num_queries(at_one):
        listed = reader.get(batches_url(monitor)).json()["results"]
    assert len(listed) == 6
    assert all(b["check"] is not None for b in listed)


# Checks and alerts


def test_a_check_gives_every_statistic_per_feature_and_the_decision(monitor, scientist, viewer):
    alert = drifted(monitor, scientist)
    client = api(viewer)
    (summary,) = client.get(f"/api/v1/monitors/{monitor.pk}/checks/").json()["results"]
    assert summary["id"] == alert.opened_by_id
    assert "result" not in summary
    check = client.get(summary["url"]).json()
    assert check["decision"]["features"]["age"]["drifted"] is True
    assert set(check["result"]["features"]) == {"age", "income", "region"}
    age = next(f for f in check["features"] if f["feature"] == "age")
    assert age["drifted"] is True
    assert age["psi"] > 0.2


def test_checks_are_listed_at_the_same_cost_however_many(
    monitor, scientist, viewer, django_assert_max_num_queries
):
    drifted(monitor, scientist, seed=60)
    client = api(viewer)
    url = f"/api/v1/monitors/{monitor.pk}/checks/"
    reset_queries()  # the query log is a bounded deque: start it empty to count
    with django_assert_max_num_queries(8) as one:
        client.get(url)
    at_one = len(one.captured_queries)
    for seed in range(61, 64):
        drifted(monitor, scientist, seed=seed)
    reset_queries()
    with django_assert_max_num_queries(at_one):
        assert len(client.get(url).json()["results"]) == 4


def test_outsiders_see_no_check_and_no_alert(monitor, scientist, outsider):
    alert = drifted(monitor, scientist)
    client = api(outsider)
    assert client.get(f"/api/v1/drift-checks/{alert.opened_by_id}/").status_code == 404
    assert client.get(f"/api/v1/monitors/{monitor.pk}/checks/").status_code == 404
    assert client.get(f"/api/v1/monitors/{monitor.pk}/alerts/").status_code == 404
    response = client.post(
        f"/api/v1/drift-alerts/{alert.pk}/acknowledge/", {"comment": "x"}, format="json"
    )
    assert response.status_code == 404
    assert error_of(response)["code"] == "alert_not_found"


def test_alerts_are_listed_by_state(monitor, scientist, owner, viewer):
    alert = drifted(monitor, scientist)
    url = f"/api/v1/monitors/{monitor.pk}/alerts/"
    client = api(viewer)
    assert [a["feature"] for a in client.get(url, {"state": "open"}).json()["results"]] == ["age"]
    services.acknowledge_alert(actor=owner, alert=alert, comment="seen")
    assert client.get(url, {"state": "open"}).json()["results"] == []
    (listed,) = client.get(url, {"state": "acknowledged"}).json()["results"]
    assert (listed["acknowledged_by"], listed["acknowledge_comment"]) == ("olivia", "seen")
    assert len(client.get(url).json()["results"]) == 1


def test_an_unknown_alert_state_is_refused(monitor, viewer):
    response = api(viewer).get(f"/api/v1/monitors/{monitor.pk}/alerts/", {"state": "closed"})
    assert response.status_code == 400
    assert "state" in error_of(response)["fields"]


def test_an_alert_is_acknowledged_then_resolved_over_the_api(monitor, scientist, owner):
    alert = drifted(monitor, scientist)
    client = api(owner)
    response = client.post(
        f"/api/v1/drift-alerts/{alert.pk}/acknowledge/", {"comment": "Looking."}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["acknowledged_by"]) == (
        "acknowledged", "olivia",
    )  # fmt: skip
    response = client.post(
        f"/api/v1/drift-alerts/{alert.pk}/resolve/", {"comment": "Retrained."}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["resolve_comment"] == "Retrained."


def test_acknowledging_a_resolved_alert_is_a_conflict(monitor, scientist, owner):
    alert = drifted(monitor, scientist)
    services.resolve_alert(actor=owner, alert=alert, comment="fixed")
    response = api(owner).post(
        f"/api/v1/drift-alerts/{alert.pk}/acknowledge/", {"comment": "seen"}, format="json"
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == "alert_not_open"
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledge_comment) == ("resolved", "")


def test_an_alert_needs_a_comment_and_a_role_that_handles_alerts(monitor, scientist, viewer, owner):
    alert = drifted(monitor, scientist)
    url = f"/api/v1/drift-alerts/{alert.pk}/acknowledge/"
    blank = api(owner).post(url, {"comment": "  "}, format="json")
    assert (blank.status_code, error_of(blank)["code"]) == (400, "comment_required")
    assert api(viewer).post(url, {"comment": "seen"}, format="json").status_code == 403
    alert.refresh_from_db()
    assert alert.state == "open"


# With a real worker


@pytest.mark.django_db(transaction=True)
def test_a_batch_sent_over_the_api_ends_in_a_finished_check_and_an_alert(
    monitor, engineer, celery_worker
):
    response = bearer(engineer).generic(
        "POST", batches_url(monitor), csv_bytes(2000, shift=1.5, seed=70), content_type="text/csv"
    )
    assert response.status_code == 201, response.content
    check_id = response.json()["check"]
    celery_worker.wait_for(lambda: DriftCheck.objects.get(pk=check_id).state == "done")
    check = DriftCheck.objects.get(pk=check_id)
    assert check.decision["features"]["age"]["drifted"] is True
    alert = DriftAlert.objects.get(monitor=monitor)
    assert (alert.feature, alert.state, alert.opened_by_id) == ("age", "open", check_id)
