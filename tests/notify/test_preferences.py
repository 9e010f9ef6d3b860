"""Preferences: per kind, immediately (the default), daily or off; every change audited."""

import json

import pytest

from governance.audit.models import AuditEvent
from governance.notify import selectors, services
from governance.notify.errors import InvalidPreferences
from governance.notify.kinds import Kind
from governance.notify.models import EmailState, Preference


def test_everyone_starts_with_every_kind_emailed_immediately(scientist):
    assert selectors.preferences_of(scientist) == dict.fromkeys(Kind.values, "immediately")


def test_setting_preferences_records_what_changed(scientist):
    result = services.set_preferences(
        actor=scientist, choices={"mention": "daily", "job.finished": "off"}
    )
    assert result["mention"] == "daily"
    assert result["job.finished"] == "off"
    assert result["release.requested"] == "immediately"
    assert selectors.preferences_of(scientist) == result
    event = AuditEvent.objects.latest("seq")
    assert event.action == "notify.preferences_changed"
    assert (event.actor_id, event.target_kind, event.target_id) == (
        scientist.pk,
        "user",
        str(scientist.pk),
    )
    assert json.loads(event.payload) == {
        "before": {"mention": "immediately", "job.finished": "immediately"},
        "after": {"mention": "daily", "job.finished": "off"},
    }


def test_choosing_what_is_already_chosen_records_nothing(scientist):
    services.set_preferences(actor=scientist, choices={"mention": "daily"})
    before = AuditEvent.objects.count()
    services.set_preferences(
        actor=scientist, choices={"mention": "daily", "drift.alert": "immediately"}
    )
    assert AuditEvent.objects.count() == before


def test_a_changed_choice_updates_the_one_row(scientist):
    services.set_preferences(actor=scientist, choices={"mention": "daily"})
    services.set_preferences(actor=scientist, choices={"mention": "off"})
    assert list(Preference.objects.filter(user=scientist).values_list("kind", "delivery")) == [
        ("mention", "off")
    ]


def test_turning_a_kind_off_drops_its_emails_waiting_for_the_digest(say, scientist):
    services.set_preferences(actor=scientist, choices={"release.requested": "daily"})
    (waiting,) = say([scientist], key="a")
    (other_kind,) = say([scientist], key="b", kind="mention")
    services.set_preferences(actor=scientist, choices={"release.requested": "off"})
    waiting.refresh_from_db()
    other_kind.refresh_from_db()
    assert waiting.email_state == EmailState.NOT_WANTED
    assert other_kind.email_state == EmailState.PENDING


@pytest.mark.parametrize(
    ("choices", "field"),
    [
        ({"release.exploded": "daily"}, "release.exploded"),
        ({"mention": "weekly"}, "mention"),
        ({"mention": ""}, "mention"),
        ({"mention": "daily", "drift.alert": "sometimes"}, "drift.alert"),
    ],
)
def test_an_unknown_kind_or_delivery_is_refused_and_changes_nothing(scientist, choices, field):
    events = AuditEvent.objects.count()
    with pytest.raises(InvalidPreferences) as error:
        services.set_preferences(actor=scientist, choices=choices)
    assert error.value.code == "invalid_preferences"
    assert list(error.value.fields) == [field]
    assert not Preference.objects.exists()
    assert AuditEvent.objects.count() == events
