"""Other areas hear of new drift alerts and new batches (delivery retrains on them)."""

import pytest

from governance.monitoring import hooks, services
from governance.monitoring.models import DriftCheck
from tests.monitoring.test_monitors import frame, send


@pytest.fixture
def heard():
    said = {"alerts": [], "batches": []}

    def on_alert(alert):
        said["alerts"].append(alert.feature)

    def on_batch(batch):
        said["batches"].append(batch.pk)

    hooks.ALERT_OPENED.append(on_alert)
    hooks.BATCH_RECEIVED.append(on_batch)
    yield said
    hooks.ALERT_OPENED.remove(on_alert)
    hooks.BATCH_RECEIVED.remove(on_batch)


def test_listeners_hear_each_new_alert_once_and_each_new_batch(
    monitor,
    scientist,
    heard,
):
    for seed in (40, 41):
        batch = send(monitor, scientist, frame(1500, shift=1.5, seed=seed))
        services.run_drift_check(check_id=DriftCheck.objects.get(batch=batch).pk)
    assert heard["alerts"] == ["age"], "a drift seen again is not a new alert"
    assert len(heard["batches"]) == 2

    send(monitor, scientist, frame(1500, shift=1.5, seed=41))  # the same data again
    assert len(heard["batches"]) == 2
