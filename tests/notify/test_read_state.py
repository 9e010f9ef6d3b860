"""Read state is the recipient's alone: anyone else is told the notification does not exist."""

import pytest

from governance.notify import selectors, services
from governance.notify.errors import NotificationNotFound


def test_the_recipient_marks_a_notification_read(say, scientist):
    (notification,) = say([scientist])
    services.mark_read(actor=scientist, notification=notification)
    notification.refresh_from_db()
    assert notification.read_at is not None
    assert selectors.unread_count_for(scientist) == 0


def test_marking_a_read_notification_again_keeps_when_it_was_read(say, scientist):
    (notification,) = say([scientist])
    first = services.mark_read(actor=scientist, notification=notification).read_at
    notification.refresh_from_db()
    assert services.mark_read(actor=scientist, notification=notification).read_at == first


@pytest.mark.parametrize("other", ["owner", "admin_user"])
def test_someone_else_cannot_mark_it_read_and_is_told_it_does_not_exist(
    say, scientist, other, request
):
    (notification,) = say([scientist])
    with pytest.raises(NotificationNotFound) as error:
        services.mark_read(actor=request.getfixturevalue(other), notification=notification)
    assert error.value.status == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_someone_elses_notification_is_not_found_by_id(say, scientist, owner):
    (notification,) = say([scientist])
    with pytest.raises(NotificationNotFound):
        selectors.notification_of(owner, notification.pk)


def test_mark_all_read_marks_only_the_actors_own(say, owner, scientist):
    say([owner, scientist], key="a")
    say([scientist], key="b")
    assert services.mark_all_read(actor=scientist) == 2
    assert selectors.unread_count_for(scientist) == 0
    assert selectors.unread_count_for(owner) == 1
    assert services.mark_all_read(actor=scientist) == 0


def test_the_list_is_newest_first_and_filters_unread(say, scientist):
    (first,) = say([scientist], key="a")
    (second,) = say([scientist], key="b")
    services.mark_read(actor=scientist, notification=first)
    assert list(selectors.notifications_for(scientist)) == [second, first]
    assert list(selectors.notifications_for(scientist, unread=True)) == [second]
    assert list(selectors.notifications_for(scientist, unread=False)) == [first]
