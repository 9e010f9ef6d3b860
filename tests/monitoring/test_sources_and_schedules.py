"""Monitor settings, batches polled from a source URI, and checks over a window on a schedule."""

from datetime import timedelta

import pyarrow as pa
import pytest
from django.utils import timezone

from governance.access.errors import NotAllowed
from governance.audit.models import AuditEvent
from governance.monitoring import services
from governance.monitoring.errors import InvalidSource, MonitorNameTaken, NoBatchesInWindow
from governance.monitoring.models import Batch, DriftCheck, Monitor
from tests.monitoring.test_monitors import csv_of, frame


@pytest.fixture
def root(tmp_path, settings):
    folder = tmp_path / "served"
    folder.mkdir()
    settings.QUORUM_DATA_ROOTS = [str(folder)]
    return folder


def events(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


def send(monitor, who, seed: int, shift: float = 0.0, rows: int = 500) -> Batch:
    return services.add_batch(
        actor=who, monitor=monitor, content=csv_of(frame(rows, shift, seed)), filename="b.csv"
    )


# Settings


def test_settings_change_with_before_and_after_on_the_trail(monitor, scientist, root):
    uri = (root / "today.csv").as_uri()
    changes = {"source_uri": uri, "poll_minutes": 5, "check_minutes": 60, "window_hours": 12}
    services.update_monitor(actor=scientist, monitor=monitor, changes=changes)

    monitor.refresh_from_db()
    assert (monitor.source_uri, monitor.poll_minutes) == (uri, 5)
    assert (monitor.check_minutes, monitor.window_hours) == (60, 12)
    assert monitor.last_scheduled_at is not None
    event = AuditEvent.objects.get(action="monitor.updated")
    assert event.data["before"] == {
        "source_uri": "", "poll_minutes": None, "check_minutes": None, "window_hours": 24,
    }  # fmt: skip
    assert event.data["after"] == changes


def test_settings_that_do_not_change_write_nothing(monitor, scientist):
    services.update_monitor(actor=scientist, monitor=monitor, changes={"bins": 10})
    assert events("monitor.updated") == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"poll_minutes": 0}, "poll_minutes"),
        ({"poll_minutes": -5}, "poll_minutes"),
        ({"check_minutes": 0}, "check_minutes"),
        ({"check_minutes": -1}, "check_minutes"),
        ({"window_hours": 0}, "window_hours"),
        ({"window_hours": None}, "window_hours"),
        ({"poll_minutes": "5"}, "poll_minutes"),
        ({"bins": 1}, "bins"),
        ({"name": " "}, "name"),
        ({"categorical": ["shoe"]}, "categorical"),
        ({"thresholds": {"psi": "high"}}, "psi"),
        ({"active": "yes"}, "active"),
        ({"colour": "red"}, "colour"),
        ({"source_uri": "ftp://example.com/batch.csv"}, "source_uri"),
        ({"source_uri": "/srv/batch.csv"}, "source_uri"),
        ({"source_uri": "https:///batch.csv"}, "source_uri"),
        ({"source_uri": "http://[::1/batch.csv"}, "source_uri"),
        ({"poll_minutes": 5}, "source_uri"),  # polling what?
    ],
)
def test_a_bad_setting_is_refused_naming_it_and_nothing_changes(
    monitor, scientist, root, changes, field
):
    with pytest.raises(Exception) as refused:  # noqa: PT011 (each case its own error class)
        services.update_monitor(actor=scientist, monitor=monitor, changes=changes)
    assert field in refused.value.fields
    monitor.refresh_from_db()
    assert (monitor.poll_minutes, monitor.check_minutes, monitor.window_hours) == (None, None, 24)
    assert events("monitor.updated") == 0


def test_a_file_outside_the_data_roots_is_refused(monitor, scientist, root, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    with pytest.raises(InvalidSource) as refused:
        services.update_monitor(
            actor=scientist, monitor=monitor, changes={"source_uri": outside.as_uri()}
        )
    assert "QUORUM_DATA_ROOTS" in refused.value.message
    sneaky = f"{root.as_uri()}/../elsewhere.csv"
    with pytest.raises(InvalidSource):
        services.update_monitor(actor=scientist, monitor=monitor, changes={"source_uri": sneaky})
    monitor.refresh_from_db()
    assert monitor.source_uri == ""


def test_a_monitor_cannot_take_another_monitors_name(monitor, project, scientist):
    services.create_monitor(
        actor=scientist, project=project, name="other", reference=monitor.reference
    )
    with pytest.raises(MonitorNameTaken):
        services.update_monitor(actor=scientist, monitor=monitor, changes={"name": "other"})


@pytest.mark.parametrize("who", ["viewer", "auditor", "owner"])
def test_roles_that_do_not_monitor_may_not_change_settings(monitor, request, who):
    with pytest.raises(NotAllowed):
        services.update_monitor(
            actor=request.getfixturevalue(who), monitor=monitor, changes={"window_hours": 2}
        )
    assert events("monitor.updated") == 0


# Polled sources


def polled(monitor, scientist, root, minutes: int = 5):
    services.update_monitor(
        actor=scientist,
        monitor=monitor,
        changes={"source_uri": (root / "today.csv").as_uri(), "poll_minutes": minutes},
    )
    monitor.refresh_from_db()
    return root / "today.csv"


def test_a_changed_file_is_one_new_batch_and_an_unchanged_one_none(
    monitor, scientist, root, django_capture_on_commit_callbacks
):
    source = polled(monitor, scientist, root)
    source.write_bytes(csv_of(frame(300, seed=21)).getvalue())

    with django_capture_on_commit_callbacks() as queued:
        first = services.poll_source(monitor_id=monitor.pk)
    assert first is not None
    assert (first.source, first.received_by, first.rows) == ("poll", None, 300)
    assert len(queued) == 2, "its check and quality report are queued"
    assert services.poll_source(monitor_id=monitor.pk) is None
    assert Batch.objects.count() == 1

    source.write_bytes(csv_of(frame(300, seed=22)).getvalue())
    second = services.poll_source(monitor_id=monitor.pk)
    assert second is not None
    assert Batch.objects.count() == 2
    assert DriftCheck.objects.filter(trigger="batch").count() == 2
    monitor.refresh_from_db()
    assert monitor.last_polled_at is not None
    assert monitor.last_poll_error == ""
    received = AuditEvent.objects.filter(action="monitor.batch_received").order_by("seq")
    assert [e.actor_name for e in received] == ["monitoring", "monitoring"]


def test_an_unreachable_source_is_kept_on_the_monitor_and_audited_once(monitor, scientist, root):
    source = polled(monitor, scientist, root)  # not written yet
    for _ in range(3):
        assert services.poll_source(monitor_id=monitor.pk) is None
    monitor.refresh_from_db()
    assert "could not be read" in monitor.last_poll_error
    assert monitor.last_polled_at is not None
    assert events("monitor.poll_failed") == 1

    source.write_bytes(csv_of(frame(300, seed=23)).getvalue())
    assert services.poll_source(monitor_id=monitor.pk) is not None
    monitor.refresh_from_db()
    assert monitor.last_poll_error == ""
    assert events("monitor.poll_recovered") == 1


def test_an_unreachable_url_is_kept_on_the_monitor(monitor, scientist):
    services.update_monitor(
        actor=scientist,
        monitor=monitor,
        changes={"source_uri": "http://127.0.0.1:9/batch.csv", "poll_minutes": 1},
    )
    assert services.poll_source(monitor_id=monitor.pk) is None
    monitor.refresh_from_db()
    assert "could not be read" in monitor.last_poll_error
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"age,income\n1,2\n", "region"),
        (b"age,income,region\n1,2\n", "Expected 3 columns, got 2"),
    ],
)
def test_a_bad_file_at_the_source_is_kept_as_the_error(monitor, scientist, root, content, words):
    polled(monitor, scientist, root).write_bytes(content)
    assert services.poll_source(monitor_id=monitor.pk) is None
    monitor.refresh_from_db()
    assert words in monitor.last_poll_error
    assert not Batch.objects.exists()


def test_a_source_over_the_size_limit_is_refused(monitor, scientist, root, settings):
    polled(monitor, scientist, root).write_bytes(csv_of(frame(300, seed=24)).getvalue())
    settings.QUORUM_MAX_DATASET_BYTES = 1000
    services.poll_source(monitor_id=monitor.pk)
    monitor.refresh_from_db()
    assert "limited" in monitor.last_poll_error
    assert not Batch.objects.exists()


def test_polls_are_claimed_when_due_and_once(monitor, scientist, root):
    polled(monitor, scientist, root, minutes=5)
    now = timezone.now()
    assert services.poll_sources(now=now) == [monitor.pk]
    assert services.poll_sources(now=now) == [], "a second beat finds it claimed"
    assert services.poll_sources(now=now + timedelta(minutes=4)) == []
    assert services.poll_sources(now=now + timedelta(minutes=5)) == [monitor.pk]


def test_inactive_monitors_and_monitors_without_polling_are_not_polled(
    monitor, project, scientist, root
):
    polled(monitor, scientist, root)
    services.update_monitor(actor=scientist, monitor=monitor, changes={"active": False})
    other = services.create_monitor(
        actor=scientist, project=project, name="manual", reference=monitor.reference
    )
    services.update_monitor(
        actor=scientist, monitor=other, changes={"source_uri": (root / "x.csv").as_uri()}
    )
    assert services.poll_sources() == []


# Checks over a window


def test_a_scheduled_check_compares_the_windows_batches_together(monitor, scientist):
    old = send(monitor, scientist, seed=31)
    Batch.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(hours=30))
    recent = [send(monitor, scientist, seed=32, shift=1.5), send(monitor, scientist, seed=33)]
    services.update_monitor(actor=scientist, monitor=monitor, changes={"check_minutes": 60})
    monitor.refresh_from_db()
    due = monitor.last_scheduled_at + timedelta(minutes=60)

    assert services.run_scheduled_checks(now=due - timedelta(minutes=1)) == []
    (check,) = services.run_scheduled_checks(now=due)
    assert services.run_scheduled_checks(now=due) == [], "a second beat makes no second check"

    assert (check.trigger, check.batch) == ("schedule", None)
    assert check.window_batches == [b.pk for b in recent]
    assert check.window_end - check.window_start == timedelta(hours=24)
    check = services.run_drift_check(check_id=check.pk)
    assert check.state == DriftCheck.State.DONE
    assert check.result["current_rows"] == 1000
    assert check.decision["features"]["age"]["drifted"] is True
    assert events("monitor.check_queued") == 1


def test_a_window_joins_batches_whose_columns_come_in_another_order_and_type(monitor, scientist):
    import io

    import pyarrow.parquet as pq

    send(monitor, scientist, seed=37, rows=300)
    reordered = frame(200, seed=38)[["region", "income", "age"]]
    reordered["income"] = reordered["income"].astype(int)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(reordered, preserve_index=False), sink)
    sink.seek(0)
    services.add_batch(actor=scientist, monitor=monitor, content=sink, filename="b.parquet")

    check = services.request_check(actor=scientist, monitor=monitor)
    check = services.run_drift_check(check_id=check.pk)
    assert check.state == DriftCheck.State.DONE, check.error
    assert check.result["current_rows"] == 500


def test_a_window_without_batches_makes_no_check_but_the_schedule_moves_on(monitor, scientist):
    services.update_monitor(actor=scientist, monitor=monitor, changes={"check_minutes": 10})
    monitor.refresh_from_db()
    due = monitor.last_scheduled_at + timedelta(minutes=10)
    assert services.run_scheduled_checks(now=due) == []
    monitor.refresh_from_db()
    assert monitor.last_scheduled_at == due
    assert not DriftCheck.objects.exists()


def test_a_window_check_whose_batches_are_gone_fails_with_the_reason(monitor, scientist):
    send(monitor, scientist, seed=34)
    check = services.request_check(actor=scientist, monitor=monitor)
    DriftCheck.objects.filter(pk=check.pk).update(window_batches=[999999])
    check = services.run_drift_check(check_id=check.pk)
    assert check.state == DriftCheck.State.FAILED
    assert "gone" in check.error


def test_check_now_checks_the_window(monitor, scientist, django_capture_on_commit_callbacks):
    batch = send(monitor, scientist, seed=35)
    with django_capture_on_commit_callbacks() as queued:
        check = services.request_check(actor=scientist, monitor=monitor)
    assert len(queued) == 1
    assert (check.trigger, check.window_batches) == ("manual", [batch.pk])
    event = AuditEvent.objects.filter(action="monitor.check_queued").get()
    assert event.actor_name == "sam"


def test_check_now_without_batches_in_the_window_is_refused(monitor, scientist):
    with pytest.raises(NoBatchesInWindow):
        services.request_check(actor=scientist, monitor=monitor)
    assert not DriftCheck.objects.exists()


def test_viewers_may_not_check_now(monitor, scientist, viewer):
    send(monitor, scientist, seed=36)
    with pytest.raises(NotAllowed):
        services.request_check(actor=viewer, monitor=monitor)
    assert DriftCheck.objects.count() == 1  # the batch's own


def test_the_monitor_model_refuses_a_zero_interval(monitor):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Monitor.objects.filter(pk=monitor.pk).update(poll_minutes=0)


# Beat, a real worker, and racing beats


def test_beat_runs_both_every_minute(db):
    from django_celery_beat.models import PeriodicTask

    from dashboard.celery import app
    from governance.monitoring import tasks  # noqa: F401 (registers them, as the worker does)

    for name in ("monitoring.poll_sources", "monitoring.scheduled_checks"):
        task = PeriodicTask.objects.get(task=name)
        assert task.enabled
        assert (task.interval.every, task.interval.period) == (1, "minutes")
        assert name in app.tasks


@pytest.mark.django_db(transaction=True)
def test_a_worker_polls_the_source_and_checks_what_it_fetched(
    monitor, scientist, root, celery_worker
):
    from governance.monitoring import tasks

    polled(monitor, scientist, root).write_bytes(csv_of(frame(2000, 1.5, seed=90)).getvalue())
    tasks.poll_sources.delay()
    celery_worker.wait_for(lambda: DriftCheck.objects.filter(state="done").exists())
    batch = Batch.objects.get()
    assert batch.source == "poll"
    assert DriftCheck.objects.get().batch == batch
    monitor.refresh_from_db()
    assert monitor.last_poll_sha256


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_scheduled_check_over_the_window(monitor, scientist, celery_worker):
    from governance.monitoring import tasks

    services.update_monitor(actor=scientist, monitor=monitor, changes={"check_minutes": 1})
    send(monitor, scientist, seed=91)
    celery_worker.wait_for(lambda: DriftCheck.objects.filter(state="done").exists())
    Monitor.objects.filter(pk=monitor.pk).update(
        last_scheduled_at=timezone.now() - timedelta(minutes=1)
    )
    tasks.scheduled_checks.delay()
    celery_worker.wait_for(
        lambda: DriftCheck.objects.filter(trigger="schedule", state="done").exists()
    )
    assert DriftCheck.objects.get(trigger="schedule").window_batches == [Batch.objects.get().pk]


@pytest.mark.django_db(transaction=True)
def test_racing_beats_make_one_scheduled_check_and_one_poll(needs_postgres, monitor, scientist):
    import threading

    from django.db import connection

    send(monitor, scientist, seed=92)
    services.update_monitor(
        actor=scientist,
        monitor=monitor,
        changes={"check_minutes": 5, "source_uri": "https://example.com/b.csv", "poll_minutes": 5},
    )
    due = timezone.now() + timedelta(minutes=5)
    beats = 8
    barrier = threading.Barrier(beats)
    claimed: list[int] = []

    def beat() -> None:
        try:
            barrier.wait()
            claimed.extend(c.pk for c in services.run_scheduled_checks(now=due))
            claimed.extend(services.poll_sources(now=due))
        finally:
            connection.close()

    # Queued polls would go to the broker; nothing consumes them here, which is the point.
    threads = [threading.Thread(target=beat) for _ in range(beats)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert DriftCheck.objects.filter(trigger="schedule").count() == 1
    assert len(claimed) == 2  # one check, one poll
    assert AuditEvent.objects.filter(action="monitor.check_queued").count() == 1
