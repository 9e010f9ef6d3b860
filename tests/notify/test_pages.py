"""The bell, the notifications page, opening and marking read, and the preferences page."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from dashboard.context_processors import navigation
from governance.audit.models import AuditEvent
from governance.notify import services
from governance.notify.kinds import Kind
from governance.notify.models import Notification, Preference

URL = "/projects/credit-risk/models/credit-scoring/versions/3/"


def many(say, user, count: int) -> None:
    for n in range(count):
        say([user], key=f"k{n}", subject=f"Release {n} waits", body=f"First line {n}\nmore")


# The bell


def test_the_bell_says_how_many_are_unread(login, say, scientist):
    say([scientist], key="a")
    say([scientist], key="b")
    response = login(scientist).get(reverse("home"))
    assert b'aria-label="Notifications, 2 unread"' in response.content
    assert b'href="/notifications/"' in response.content


def test_the_bell_reads_its_count_once_and_only_when_shown(
    rf, scientist, say, django_assert_num_queries
):
    say([scientist])
    request = rf.get("/")
    request.user = scientist
    with django_assert_num_queries(0):
        bell = navigation(request)["nav_bell"]
    with django_assert_num_queries(1):
        assert bell.unread == 1
        assert bell.unread == 1


def test_anonymous_visitors_get_no_bell(client, db):
    response = client.get(reverse("login"))
    assert b"Notifications," not in response.content
    assert navigation(RequestFactory().get("/")) == {}


# The list


def test_anonymous_visitor_is_sent_to_login(client, db):
    response = client.get(reverse("notifications"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_list_shows_ones_own_notifications_with_subject_first_line_and_project(
    login, say, scientist, owner
):
    say([scientist])
    say([owner], key="other", subject="Only for olivia")
    response = login(scientist).get(reverse("notifications"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "credit-scoring v3 waits for your decision for production" in content
    assert "olivia asks to release credit-scoring v3 to production." in content
    assert "AUC 0.91" not in content  # the first line only
    assert "Credit risk" in content
    assert 'class="badge role">Unread' in content
    assert "Only for olivia" not in content


def test_a_read_notification_is_not_marked_unread(login, say, scientist):
    (notification,) = say([scientist])
    services.mark_read(actor=scientist, notification=notification)
    response = login(scientist).get(reverse("notifications"))
    assert b'class="badge role">Unread' not in response.content
    assert b"Mark read" not in response.content


def test_the_list_is_paginated_newest_first(login, say, scientist):
    many(say, scientist, 30)
    client = login(scientist)
    first = client.get(reverse("notifications")).content.decode()
    assert "Release 29 waits" in first
    assert "Release 4 waits" not in first
    assert "Page 1 of 2" in first
    second = client.get(reverse("notifications") + "?page=2").content.decode()
    assert "Release 4 waits" in second
    assert "Release 29 waits" not in second


@pytest.mark.parametrize("page", ["x", "0", "99"])
def test_a_page_out_of_range_shows_the_nearest_page(login, say, scientist, page):
    say([scientist])
    response = login(scientist).get(reverse("notifications") + f"?page={page}")
    assert response.status_code == 200
    assert b"credit-scoring v3 waits" in response.content


def test_the_list_queries_do_not_grow_with_notifications(
    login, say, scientist, django_assert_max_num_queries
):
    say([scientist])
    client = login(scientist)
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("notifications"))
    many(say, scientist, 40)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("notifications"))
    assert response.content.count(b'id="notification-') == 25


# Opening and marking read


def test_opening_marks_it_read_and_goes_to_its_page(login, say, scientist):
    (notification,) = say([scientist])
    response = login(scientist).post(reverse("notification_open", args=[notification.pk]))
    assert response.status_code == 302
    assert response.url == URL
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_opening_is_a_post_only(login, say, scientist):
    (notification,) = say([scientist])
    response = login(scientist).get(reverse("notification_open", args=[notification.pk]))
    assert response.status_code == 405
    notification.refresh_from_db()
    assert notification.read_at is None


@pytest.mark.parametrize("name", ["notification_open", "notification_read"])
def test_someone_elses_notification_is_not_found_and_stays_unread(
    login, say, scientist, owner, name
):
    (notification,) = say([scientist])
    client = login(owner)
    hidden = client.post(reverse(name, args=[notification.pk]))
    missing = client.post(reverse(name, args=[notification.pk + 1000]))
    assert hidden.status_code == missing.status_code == 404
    assert b"No such notification." in hidden.content
    notification.refresh_from_db()
    assert notification.read_at is None


def test_marking_read_with_htmx_returns_the_item_and_the_new_count(login, say, scientist):
    (notification,) = say([scientist], key="a")
    say([scientist], key="b")
    response = login(scientist).post(
        reverse("notification_read", args=[notification.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "<html" not in content
    assert f'id="notification-{notification.pk}"' in content
    assert "Mark read" not in content
    assert 'hx-swap-oob="true"' in content
    assert 'aria-label="Notifications, 1 unread"' in content


def test_marking_read_without_htmx_goes_back_to_the_list(login, say, scientist):
    (notification,) = say([scientist])
    response = login(scientist).post(
        reverse("notification_read", args=[notification.pk]), {"page": "2"}
    )
    assert response.status_code == 302
    assert response.url == reverse("notifications") + "?page=2"


def test_mark_all_read_with_htmx_returns_the_list_and_a_silent_bell(login, say, scientist):
    many(say, scientist, 3)
    response = login(scientist).post(reverse("notifications_read_all"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="notifications"' in content
    assert "<html" not in content
    assert 'aria-label="Notifications, 0 unread"' in content
    assert not Notification.objects.filter(recipient=scientist, read_at__isnull=True).exists()


def test_mark_all_read_without_htmx_goes_back_to_the_list(login, say, scientist):
    say([scientist])
    response = login(scientist).post(reverse("notifications_read_all"))
    assert response.status_code == 302
    assert response.url == reverse("notifications")


def test_marking_read_needs_the_csrf_token(client, say, scientist):
    from django.test import Client

    (notification,) = say([scientist])
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(scientist, backend="django.contrib.auth.backends.ModelBackend")
    response = checked.post(reverse("notification_read", args=[notification.pk]))
    assert response.status_code == 403
    notification.refresh_from_db()
    assert notification.read_at is None


# Preferences


def test_the_profile_links_to_the_preferences(login, scientist):
    response = login(scientist).get(reverse("profile"))
    assert reverse("notification_preferences").encode() in response.content


def test_the_preferences_page_shows_every_kind_with_its_choice(login, scientist):
    services.set_preferences(actor=scientist, choices={"mention": "daily"})
    response = login(scientist).get(reverse("notification_preferences"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "A release waits for your decision" in content
    assert "Someone mentioned you" in content
    assert content.count('type="radio"') == 3 * len(Kind)
    assert "A deployment&#x27;s health changed" in content
    assert 'name="mention" value="daily" id="id_mention_1" required checked' in content
    assert 'name="mention" value="immediately" id="id_mention_0" required>' in content


def choices(**overrides) -> dict[str, str]:
    chosen = {kind.value: "immediately" for kind in Kind}
    chosen.update({key.replace("_", "."): value for key, value in overrides.items()})
    return chosen


def test_saving_preferences_records_them(login, scientist):
    response = login(scientist).post(
        reverse("notification_preferences"), choices(mention="off", drift_alert="daily")
    )
    assert response.status_code == 302
    assert dict(Preference.objects.filter(user=scientist).values_list("kind", "delivery")) == {
        "mention": "off",
        "drift.alert": "daily",
    }
    assert AuditEvent.objects.latest("seq").action == "notify.preferences_changed"


def test_saving_preferences_with_htmx_returns_the_form_saved(login, scientist):
    response = login(scientist).post(
        reverse("notification_preferences"), choices(mention="daily"), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"Saved your notification preferences." in response.content


@pytest.mark.parametrize(
    "data",
    [choices(mention="weekly"), {"mention": "daily"}],
    ids=["unknown delivery", "kinds missing"],
)
def test_bad_preferences_are_refused_and_change_nothing(login, scientist, data):
    client = login(scientist)
    events = AuditEvent.objects.count()
    response = client.post(reverse("notification_preferences"), data)
    assert response.status_code == 400
    assert b"errorlist" in response.content
    assert not Preference.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_person_without_an_address_is_told_emails_cannot_reach_them(login, scientist):
    scientist.email = ""
    scientist.save()
    response = login(scientist).get(reverse("notification_preferences"))
    assert b"Your account has no email address" in response.content
