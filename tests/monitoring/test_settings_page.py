"""On the monitor's page: its source and schedule, the last poll, and "Check now"."""

import io

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.monitoring import services
from governance.monitoring.models import DriftCheck, Monitor
from tests.monitoring.test_monitors import csv_of, frame


def page(monitor) -> str:
    return reverse("monitor", args=["credit-risk", monitor.pk])


def settings_url(monitor) -> str:
    return reverse("monitor_settings", args=["credit-risk", monitor.pk])


def check_url(monitor) -> str:
    return reverse("monitor_check", args=["credit-risk", monitor.pk])


FORM = {"source_uri": "", "poll_minutes": "", "check_minutes": "", "window_hours": "24"}


def test_a_data_scientist_sets_the_source_and_schedule_on_the_page(
    login, monitor, scientist, settings, tmp_path
):
    settings.QUORUM_DATA_ROOTS = [str(tmp_path)]
    uri = (tmp_path / "today.csv").as_uri()
    form = {"source_uri": uri, "poll_minutes": "10", "check_minutes": "", "window_hours": "6"}
    response = login(scientist).post(settings_url(monitor), form, follow=True)
    assert "Source and schedule saved." in response.content.decode()
    monitor.refresh_from_db()
    assert (monitor.source_uri, monitor.poll_minutes) == (uri, 10)
    assert (monitor.check_minutes, monitor.window_hours) == (None, 6)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"poll_minutes": "0", "source_uri": "https://example.com/b.csv"}, "poll minutes"),
        ({"check_minutes": "-5"}, "check minutes"),
        ({"window_hours": "0"}, "window hours"),
        ({"window_hours": "a day"}, "window hours: A whole number."),
        ({"source_uri": "ftp://example.com/b.csv"}, "source uri"),
        ({"source_uri": "file:///etc/passwd"}, "QUORUM_DATA_ROOTS"),
    ],
)
def test_a_bad_setting_on_the_page_says_why_and_changes_nothing(
    login, monitor, scientist, changes, words
):
    response = login(scientist).post(settings_url(monitor), {**FORM, **changes}, follow=True)
    assert words in response.content.decode()
    monitor.refresh_from_db()
    assert (monitor.source_uri, monitor.poll_minutes, monitor.window_hours) == ("", None, 24)
    assert not AuditEvent.objects.filter(action="monitor.updated").exists()


def test_viewers_see_the_schedule_but_no_form_and_may_not_post(login, monitor, viewer):
    client = login(viewer)
    text = client.get(page(monitor)).content.decode()
    assert "Checks each batch as it arrives." in text
    assert "Check now" not in text
    client.post(settings_url(monitor), {**FORM, "window_hours": "2"})
    client.post(check_url(monitor))
    monitor.refresh_from_db()
    assert monitor.window_hours == 24
    assert not DriftCheck.objects.exists()


def test_outsiders_cannot_reach_the_settings(login, monitor, outsider):
    client = login(outsider)
    assert client.post(settings_url(monitor), FORM).status_code == 404
    assert client.post(check_url(monitor)).status_code == 404


def test_the_page_shows_the_last_polls_time_and_error(login, monitor, viewer):
    Monitor.objects.filter(pk=monitor.pk).update(
        source_uri="https://example.com/b.csv",
        poll_minutes=5,
        last_polled_at=timezone.now(),
        last_poll_error="https://example.com/b.csv could not be read: HTTP Error 404",
    )
    text = login(viewer).get(page(monitor)).content.decode()
    assert "Last poll" in text
    assert "HTTP Error 404" in text
    assert "every 5 min" in text


def test_check_now_queues_a_check_over_the_window(
    login, monitor, scientist, django_capture_on_commit_callbacks
):
    services.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(frame(200, seed=80)), filename="b.csv"
    )
    with django_capture_on_commit_callbacks() as queued:
        response = login(scientist).post(check_url(monitor), follow=True)
    assert "Checking 1 batch now." in response.content.decode()
    assert len(queued) == 1
    assert DriftCheck.objects.filter(trigger="manual").count() == 1


def test_check_now_without_batches_says_so(login, monitor, scientist):
    response = login(scientist).post(check_url(monitor), follow=True)
    assert "nothing to check" in response.content.decode()
    assert not DriftCheck.objects.exists()


def test_the_monitor_page_costs_the_same_with_more_batches_and_checks(
    login, monitor, scientist, django_assert_max_num_queries
):
    from django.db import reset_queries

    client = login(scientist)
    first = services.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(frame(100, seed=81)), filename="b.csv"
    )
    services.run_drift_check(check_id=first.checks.get().pk)
    reset_queries()  # the query log is a bounded deque: start it empty to count
    with django_assert_max_num_queries(30) as one:
        client.get(page(monitor))
    at_one = len(one.captured_queries)
    for seed in range(82, 87):
        batch = services.add_batch(
            actor=scientist,
            monitor=monitor,
            content=io.BytesIO(frame(100, seed=seed).to_csv(index=False).encode()),
            filename="b.csv",
        )
        services.run_drift_check(check_id=batch.checks.get().pk)
        services.request_check(actor=scientist, monitor=monitor)
    reset_queries()
    with django_assert_max_num_queries(at_one):
        client.get(page(monitor))
