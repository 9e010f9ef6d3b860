"""Monitors receive batches, check them for drift and open one alert per drifting feature."""

import io

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse

from governance.access.errors import NotAllowed
from governance.audit.models import AuditEvent
from governance.monitoring import services
from governance.monitoring.errors import AlertNotOpen, CommentRequired, NotATable
from governance.monitoring.models import Batch, DriftAlert, DriftCheck, FeatureDrift, Monitor
from governance.notify.models import Notification
from governance.registry.errors import SchemaMismatch, UnreadableTable
from governance.registry.models import DatasetVersion


def frame(rows: int, shift: float = 0.0, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift * 10, 10, rows).round(1),
            "income": rng.normal(50_000, 8_000, rows).round(0),
            "region": rng.choice(["north", "south", "east"], rows),
        }
    )


def csv_of(data: pd.DataFrame) -> io.BytesIO:
    return io.BytesIO(data.to_csv(index=False).encode())


def send(monitor, who, data, name="batch.csv", callbacks=None):
    return services.add_batch(actor=who, monitor=monitor, content=csv_of(data), filename=name)


def test_a_drifted_batch_opens_one_alert_per_feature_and_tells_subscribers(
    monitor, scientist, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        batch = send(monitor, scientist, frame(2000, shift=1.5, seed=2))
    assert len(queued) == 2, "the check and the quality report wait for the commit"
    check = DriftCheck.objects.get(batch=batch)

    services.run_drift_check(check_id=check.pk)

    check.refresh_from_db()
    assert check.state == DriftCheck.State.DONE
    assert check.decision["features"]["age"]["drifted"] is True
    assert check.decision["features"]["income"]["drifted"] is False
    assert FeatureDrift.objects.filter(drift_check=check).count() == 3
    (alert,) = DriftAlert.objects.all()
    assert (alert.feature, alert.state) == ("age", "open")
    assert Notification.objects.filter(recipient=scientist, kind="drift.alert").count() == 1
    assert AuditEvent.objects.filter(action="drift_alert.opened").count() == 1


def test_a_batch_like_the_reference_opens_nothing(monitor, scientist):
    batch = send(monitor, scientist, frame(2000, seed=3))
    check = services.run_drift_check(check_id=DriftCheck.objects.get(batch=batch).pk)
    assert check.drifted is False
    assert not DriftAlert.objects.exists()


def test_drift_seen_again_updates_the_open_alert(monitor, scientist):
    for seed in (4, 5):
        batch = send(monitor, scientist, frame(2000, shift=1.5, seed=seed))
        services.run_drift_check(check_id=DriftCheck.objects.get(batch=batch).pk)
    (alert,) = DriftAlert.objects.all()
    assert alert.last_seen_id != alert.opened_by_id


def test_a_check_runs_once_however_often_it_is_delivered(monitor, scientist):
    batch = send(monitor, scientist, frame(500, shift=2, seed=6))
    check_id = DriftCheck.objects.get(batch=batch).pk
    for _ in range(3):
        services.run_drift_check(check_id=check_id)
    assert FeatureDrift.objects.count() == 3
    assert AuditEvent.objects.filter(action="monitor.checked").count() == 1


def test_the_same_batch_twice_is_one_batch(monitor, scientist):
    data = frame(300, seed=7)
    first = send(monitor, scientist, data)
    second = send(monitor, scientist, data)
    assert first == second
    assert DriftCheck.objects.count() == 1


@pytest.mark.parametrize(
    ("content", "error", "words"),
    [
        (b"age,income\n1,2\n", SchemaMismatch, "region"),
        (b"age,income,region\n40,lots,north\n", SchemaMismatch, "row 1 holds 'lots'"),
        (b"age,income,region\n", UnreadableTable, "no rows"),
        (b"", UnreadableTable, "empty"),
        (b"age,income,region\n1,2\n", UnreadableTable, "Expected 3 columns, got 2"),
    ],
)
def test_a_bad_batch_is_refused_and_nothing_is_kept(monitor, scientist, content, error, words):
    kept = DatasetVersion.objects.count()
    with pytest.raises(error) as refused:
        services.add_batch(
            actor=scientist, monitor=monitor, content=io.BytesIO(content), filename="b.csv"
        )
    assert words in refused.value.message
    assert DatasetVersion.objects.count() == kept
    assert not Batch.objects.exists()


def test_an_all_missing_column_fails_the_check_with_the_reason(monitor, scientist):
    data = frame(200, seed=8)
    data["income"] = np.nan
    batch = send(monitor, scientist, data)
    check = services.run_drift_check(check_id=DriftCheck.objects.get(batch=batch).pk)
    assert check.state == DriftCheck.State.FAILED
    assert "income" in check.error
    assert AuditEvent.objects.filter(action="monitor.check_failed").exists()


def test_a_reference_must_be_a_kept_table(project, scientist):
    registered = DatasetVersion.objects.create(name="x", digest="d", project=project)
    with pytest.raises(NotATable):
        services.create_monitor(actor=scientist, project=project, name="m", reference=registered)
    assert not Monitor.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"categorical": ["shoe"]}, "categorical"),
        ({"thresholds": {"psi": "high"}}, "psi"),
        ({"thresholds": {"nonsense": 1}}, "nonsense"),
        ({"bins": 1}, "bins"),
    ],
)
def test_a_bad_monitor_is_refused_naming_the_field(monitor, project, scientist, changes, field):
    options = {"name": "another", "reference": monitor.reference, **changes}
    with pytest.raises(Exception) as refused:  # noqa: PT011 (each case its own error class)
        services.create_monitor(actor=scientist, project=project, **options)
    assert field in refused.value.fields
    assert Monitor.objects.count() == 1


@pytest.mark.parametrize("who", ["viewer", "auditor", "owner"])
def test_roles_that_do_not_monitor_may_not_send_batches(monitor, request, who):
    with pytest.raises(NotAllowed):
        send(monitor, request.getfixturevalue(who), frame(10))


def test_alerts_are_acknowledged_then_resolved_with_comments(monitor, scientist, owner, viewer):
    batch = send(monitor, scientist, frame(2000, shift=1.5, seed=9))
    services.run_drift_check(check_id=DriftCheck.objects.get(batch=batch).pk)
    alert = DriftAlert.objects.get()

    with pytest.raises(CommentRequired):
        services.acknowledge_alert(actor=owner, alert=alert, comment=" ")
    with pytest.raises(NotAllowed):
        services.acknowledge_alert(actor=viewer, alert=alert, comment="seen")
    services.acknowledge_alert(actor=owner, alert=alert, comment="Looking at the new branch.")
    with pytest.raises(AlertNotOpen):
        services.acknowledge_alert(actor=owner, alert=alert, comment="again")
    services.resolve_alert(actor=scientist, alert=alert, comment="A new branch opened; retrain.")

    alert.refresh_from_db()
    assert alert.state == "resolved"
    trail = AuditEvent.objects.filter(target_kind="driftalert").order_by("seq")
    assert [e.action for e in trail] == [
        "drift_alert.opened", "drift_alert.acknowledged", "drift_alert.resolved",
    ]  # fmt: skip


def test_the_monitor_page_shows_alerts_and_features(login, monitor, scientist, viewer):
    batch = send(monitor, scientist, frame(2000, shift=1.5, seed=10))
    services.run_drift_check(check_id=DriftCheck.objects.get(batch=batch).pk)
    body = login(viewer).get(reverse("monitor", args=["credit-risk", monitor.pk])).content
    text = body.decode()
    assert "age" in text
    assert "drifted" in text
    assert "Send a batch" not in text  # viewers read, they do not send


def test_a_batch_sent_from_the_page_is_checked_by_the_worker_later(login, monitor, scientist):
    client = login(scientist)
    upload = csv_of(frame(100, seed=11))
    upload.name = "batch.csv"
    response = client.post(reverse("monitor", args=["credit-risk", monitor.pk]), {"file": upload})
    assert response.status_code == 302
    assert DriftCheck.objects.get().state == DriftCheck.State.QUEUED


def test_a_bad_upload_on_the_page_shows_why(login, monitor, scientist):
    upload = io.BytesIO(b"age,income\n1,2\n")
    upload.name = "batch.csv"
    response = login(scientist).post(
        reverse("monitor", args=["credit-risk", monitor.pk]), {"file": upload}
    )
    assert response.status_code == 400
    assert "region" in response.content.decode()


def test_a_monitor_of_another_project_is_not_found(login, monitor, outsider):
    url = reverse("monitor", args=["credit-risk", monitor.pk])
    assert login(outsider).get(url).status_code == 404
