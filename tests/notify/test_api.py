"""/api/v1/notifications/: one's own notifications, read state and preferences."""

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.notify import services
from governance.notify.kinds import Kind
from governance.notify.models import Notification, Preference
from tests.access.test_api import as_user, assert_error, bearer

URL = "/projects/credit-risk/models/credit-scoring/versions/3/"


def test_the_list_has_only_ones_own_newest_first(say, scientist, owner):
    (first,) = say([scientist], key="a")
    (second,) = say([scientist], key="b", kind="mention", subject="olivia mentioned you")
    say([owner], key="c")
    body = as_user(scientist).get("/api/v1/notifications/").json()
    assert [item["id"] for item in body["results"]] == [second.pk, first.pk]
    item = body["results"][1]
    assert item == {
        "id": first.pk,
        "kind": "release.requested",
        "subject": "credit-scoring v3 waits for your decision for production",
        "body": "olivia asks to release credit-scoring v3 to production.\nAUC 0.91.",
        "url": URL,
        "link": settings.QUORUM_BASE_URL + URL,
        "project": "credit-risk",
        "created_at": item["created_at"],
        "read_at": None,
        "unread": True,
        "email_state": "pending",
    }


def test_a_token_reads_its_persons_notifications(say, scientist):
    say([scientist])
    client, _ = bearer(scientist)
    assert len(client.get("/api/v1/notifications/").json()["results"]) == 1


@pytest.mark.parametrize(("value", "expected"), [("true", ["b"]), ("false", ["a"])])
def test_the_list_filters_unread_or_read(say, scientist, value, expected):
    (first,) = say([scientist], key="a")
    say([scientist], key="b")
    services.mark_read(actor=scientist, notification=first)
    body = as_user(scientist).get(f"/api/v1/notifications/?unread={value}").json()
    assert [Notification.objects.get(pk=item["id"]).key for item in body["results"]] == expected


@pytest.mark.parametrize("value", ["maybe", "1", "yes"])
def test_a_bad_unread_filter_is_refused(say, scientist, value):
    say([scientist])
    response = as_user(scientist).get(f"/api/v1/notifications/?unread={value}")
    error = assert_error(response, 400, "invalid")
    assert "unread" in error["fields"]


def test_the_list_is_paginated_with_a_cursor(say, scientist):
    for n in range(5):
        say([scientist], key=f"k{n}")
    client = as_user(scientist)
    page = client.get("/api/v1/notifications/?page_size=2").json()
    assert len(page["results"]) == 2
    after = client.get(page["next"]).json()
    assert len(after["results"]) == 2
    assert after["results"][0]["id"] < page["results"][-1]["id"]


def test_the_list_queries_do_not_grow_with_notifications(
    say, scientist, django_assert_max_num_queries
):
    say([scientist])
    client = as_user(scientist)
    with django_assert_max_num_queries(5) as few:
        client.get("/api/v1/notifications/")
    for n in range(30):
        say([scientist], key=f"k{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/api/v1/notifications/")
    assert len(response.json()["results"]) == 31


def test_no_credentials_get_401(db):
    assert_error(APIClient().get("/api/v1/notifications/"), 401, "not_authenticated")


# Read state


def test_marking_one_read(say, scientist):
    (notification,) = say([scientist])
    response = as_user(scientist).post(f"/api/v1/notifications/{notification.pk}/read/")
    assert response.status_code == 200
    assert response.json()["unread"] is False
    assert response.json()["read_at"] is not None
    notification.refresh_from_db()
    assert notification.read_at is not None


@pytest.mark.parametrize("offset", [0, 1000])
def test_someone_elses_or_a_missing_notification_is_not_found(say, scientist, owner, offset):
    (notification,) = say([scientist])
    response = as_user(owner).post(f"/api/v1/notifications/{notification.pk + offset}/read/")
    assert_error(response, 404, "notification_not_found")
    notification.refresh_from_db()
    assert notification.read_at is None


def test_marking_all_read(say, scientist, owner):
    say([scientist, owner], key="a")
    say([scientist], key="b")
    response = as_user(scientist).post("/api/v1/notifications/read-all/")
    assert response.json() == {"marked": 2}
    assert Notification.objects.filter(read_at__isnull=True).count() == 1


# Preferences


def test_reading_preferences_lists_every_kind(scientist):
    body = as_user(scientist).get("/api/v1/notifications/preferences/").json()
    assert [row["kind"] for row in body["preferences"]] == Kind.values
    assert {row["delivery"] for row in body["preferences"]} == {"immediately"}
    assert body["preferences"][0]["label"] == "A release waits for your decision"


def test_putting_preferences_changes_the_kinds_given(scientist):
    response = as_user(scientist).put(
        "/api/v1/notifications/preferences/",
        {"preferences": {"mention": "daily", "job.finished": "off"}},
        format="json",
    )
    assert response.status_code == 200
    rows = {row["kind"]: row["delivery"] for row in response.json()["preferences"]}
    assert rows["mention"] == "daily"
    assert rows["job.finished"] == "off"
    assert rows["release.requested"] == "immediately"
    assert AuditEvent.objects.latest("seq").action == "notify.preferences_changed"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"preferences": {"nope": "daily"}}, "invalid_preferences", "preferences.nope"),
        ({"preferences": {"mention": "weekly"}}, "invalid_preferences", "preferences.mention"),
        ({"preferences": {"mention": 3}}, "invalid_preferences", "preferences.mention"),
        ({"preferences": ["mention", "daily"]}, "invalid", "preferences"),
        ({"preferences": {"mention": None}}, "invalid", "preferences.mention"),
        ({}, "invalid", "preferences"),
    ],
)
def test_bad_preferences_are_refused_and_change_nothing(scientist, body, code, field):
    events = AuditEvent.objects.count()
    response = as_user(scientist).put("/api/v1/notifications/preferences/", body, format="json")
    error = assert_error(response, 400, code)
    assert field in error["fields"]
    assert not Preference.objects.exists()
    assert AuditEvent.objects.count() == events
