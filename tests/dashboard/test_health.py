import pytest

from dashboard.celery import app


def test_health_is_ok_when_database_broker_and_mlflow_answer(client, db):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "broker": "ok",
        "mlflow": "ok",
    }


def test_health_is_503_naming_mlflow_when_it_does_not_answer(client, db, settings):
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"  # nothing listens on the discard port
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "error"
    assert body["checks"]["mlflow"]["status"] == "error"
    assert "refused" in body["checks"]["mlflow"]["reason"].lower()
    assert body["checks"]["database"]["status"] == "ok"


@pytest.fixture
def broken_broker(settings, tmp_path):
    """Point Celery at a broker that cannot work, whichever kind this run uses."""
    saved = dict(app.conf.broker_transport_options), app.conf.broker_url
    if settings.REDIS_URL:
        app.conf.broker_url = "redis://127.0.0.1:9/0"
    else:
        missing = str(tmp_path / "missing")
        app.conf.broker_transport_options = {"data_folder_in": missing, "data_folder_out": missing}
    yield
    app.conf.broker_transport_options, app.conf.broker_url = saved


def test_health_is_503_naming_the_broker_when_it_is_gone(client, db, broken_broker):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["broker"]["status"] == "error"
    assert body["checks"]["broker"]["reason"]


def test_health_uses_redis_when_configured(client, db, needs_redis):
    with app.connection_for_write() as connection:
        assert connection.transport.driver_type == "redis"
    assert client.get("/healthz").json()["checks"]["broker"]["status"] == "ok"


def test_health_answers_anonymous_monitors_without_a_session(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
