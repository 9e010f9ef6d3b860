"""The cast, the project they share, and the switches for tests that need real services."""

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from django.db import connection
from django.test import override_settings

from governance.access.roles import Role
from tests.factories import AdminFactory, UserFactory, make_project

PASSWORD = "correct horse battery"


def needs(what: str, available: bool, variable: str) -> None:
    """Skip unless `what` is available; fail instead when `variable` says it is required."""
    if available:
        return
    if os.environ.get(variable) == "1":
        pytest.fail(f"{what} is required here ({variable}=1) but is not available")
    pytest.skip(f"{what} is not available")


@pytest.fixture
def needs_postgres() -> None:
    needs("PostgreSQL", connection.vendor == "postgresql", "QUORUM_REQUIRE_SERVICES")


@pytest.fixture
def needs_redis(settings) -> None:
    needs("Redis", bool(settings.REDIS_URL), "QUORUM_REQUIRE_SERVICES")


@pytest.fixture(autouse=True, scope="session")
def _test_run_isolation(tmp_path_factory):
    """Static files straight from the finders, fast hashing, a Celery queue and a folder for
    kept tables of our own."""
    from dashboard.celery import app

    app.conf.task_default_queue = f"quorum-test-{uuid.uuid4().hex[:8]}"
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Hashing passwords properly is slow by design; tests make many people.
    hashers = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    data = tmp_path_factory.mktemp("data")
    # Rate limits count per address in the shared cache; the tests of the limits set their own.
    unlimited = {"token_failures": (10**6, 60), "webhooks": (10**6, 60)}
    with override_settings(
        STORAGES=storages, PASSWORD_HASHERS=hashers, DATA_DIR=data, QUORUM_RATE_LIMITS=unlimited
    ):
        yield


@pytest.fixture(autouse=True, scope="session")
def _flush_lifts_the_trail_protection():
    """Transactional tests end with a flush of every table, which the audit trail's triggers
    refuse. Around that flush only, lift the triggers and plant a fresh chain head."""
    from django.db import connection

    from governance.audit.chain import GENESIS
    from governance.audit.db import TABLE, protect_sql, unprotect_sql

    operations = type(connection.ops)
    original = operations.sql_flush

    def sql_flush(self, style, tables, **kwargs):
        statements = original(self, style, tables, **kwargs)
        if TABLE not in tables:
            return statements
        vendor = self.connection.vendor
        head = f"INSERT INTO audit_chainhead (id, seq, hash) VALUES (1, 0, '{GENESIS}')"  # noqa: S608
        return [*unprotect_sql(vendor), *statements, *protect_sql(vendor), head]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(operations, "sql_flush", sql_flush)
        yield


@pytest.fixture
def admin_user(db):
    return AdminFactory(username="ada")


@pytest.fixture
def owner(db):
    return UserFactory(username="olivia")


@pytest.fixture
def scientist(db):
    return UserFactory(username="sam")


@pytest.fixture
def engineer(db):
    return UserFactory(username="mei")


@pytest.fixture
def auditor(db):
    return UserFactory(username="alex")


@pytest.fixture
def viewer(db):
    return UserFactory(username="val")


@pytest.fixture
def outsider(db):
    return UserFactory(username="oscar")


@pytest.fixture
def project(admin_user, owner, scientist, engineer, auditor, viewer):
    return make_project(
        admin=admin_user,
        owner=owner,
        members={
            scientist: Role.DATA_SCIENTIST,
            engineer: Role.ML_ENGINEER,
            auditor: Role.AUDITOR,
            viewer: Role.VIEWER,
        },
    )


@pytest.fixture
def login(client):
    """Log `user` in on the test client and return the client."""

    def _login(user):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return _login


class RunningWorker:
    """A real Celery worker consuming this run's queue from the configured broker."""

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"the worker did not get there within {timeout} s")
            time.sleep(0.05)


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[RunningWorker]:
    """A worker thread on the real broker (files under var/, or Redis), for tests whose data
    the worker must see: they need committed transactions, hence `transactional_db`."""
    from celery.contrib.testing.worker import start_worker

    from dashboard.celery import app

    with start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    ):
        yield RunningWorker()


# A real MLflow tracking store (SQLite, on disk) for each test that needs one, copied from one
# made per run: creating a store runs MLflow's migrations, which takes seconds.


@pytest.fixture(scope="session")
def _blank_mlflow_store(tmp_path_factory) -> Path:
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(_blank_mlflow_store, tmp_path, settings) -> str:
    path = tmp_path / "mlflow.db"
    shutil.copy(_blank_mlflow_store, path)
    uri = f"sqlite:///{path}"
    settings.MLFLOW_TRACKING_URI = uri
    settings.MLFLOW_ARTIFACT_ROOT = str(tmp_path / "artifacts")
    return uri


@pytest.fixture
def tracking(mlflow_uri, tmp_path):
    """An MlflowClient on the test's store, and a helper that logs a run like a data
    scientist would: params, metrics with history, a data set, tags."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)

    class Tracking:
        def experiment(self, name: str, project: str | None = None) -> str:
            tags = {"quorum.project": project} if project else {}
            return client.create_experiment(
                name, artifact_location=str(tmp_path / "artifacts" / name), tags=tags
            )

        def run(
            self,
            experiment_id: str,
            name: str = "run",
            params: dict | None = None,
            metrics: dict | None = None,
            dataset: tuple[str, str] | None = None,
            finish: bool = True,
        ) -> str:
            run = client.create_run(
                experiment_id,
                run_name=name,
                tags={"mlflow.source.git.commit": "9f2c1e7a" * 5},
            )
            run_id = run.info.run_id
            client.log_batch(
                run_id,
                params=[Param(k, str(v)) for k, v in (params or {}).items()],
                metrics=[
                    Metric(k, v, 1_700_000_000_000 + step, step)
                    for k, values in (metrics or {}).items()
                    for step, v in enumerate(values if isinstance(values, list) else [values])
                ],
                tags=[RunTag("team", "risk")],
            )
            if dataset:
                data = Dataset(
                    name=dataset[0],
                    digest=dataset[1],
                    source_type="code",
                    source='{"path": "generated"}',
                    schema='{"mlflow_colspec": [{"name": "age", "type": "long"}]}',
                    profile='{"num_rows": 1000}',
                )
                context = InputTag("mlflow.data.context", "training")
                client.log_inputs(run_id, datasets=[DatasetInput(data, tags=[context])])
            if finish:
                client.set_terminated(run_id)
            return run_id

        def model(self, name: str, project: str | None = None) -> None:
            tags = {"quorum.project": project} if project else {}
            client.create_registered_model(name, tags=tags)

        def version(self, name: str, run_id: str) -> int:
            version = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
            return int(version.version)

        def sklearn_version(
            self,
            name: str,
            project: str | None = None,
            features: pd.DataFrame | None = None,
            labels: pd.Series | None = None,
            model: object = None,
        ) -> int:
            """A real scikit-learn model (a logistic regression unless `model` is given),
            fitted here on `features` and `labels` (generated when not given), logged with its
            signature and registered as a new version of `name`, as a data scientist would
            publish it. Returns the version's number; mirror it with a sync."""
            import mlflow
            import numpy as np
            from mlflow.models import infer_signature
            from sklearn.linear_model import LogisticRegression

            if features is None:
                rng = np.random.default_rng(0)
                features = pd.DataFrame(
                    {"age": rng.normal(40, 10, 300), "income": rng.normal(50, 8, 300)}
                )
                labels = (features["age"] + rng.normal(0, 5, 300) > 40).astype(int)
            fitted = (model or LogisticRegression()).fit(features, labels)
            if not any(m.name == name for m in client.search_registered_models()):
                self.model(name, project)
            found = client.get_experiment_by_name(f"{name}-training")
            experiment = (
                found.experiment_id if found else self.experiment(f"{name}-training", project)
            )
            previous = mlflow.get_tracking_uri()
            mlflow.set_tracking_uri(mlflow_uri)
            try:
                with mlflow.start_run(experiment_id=experiment):
                    info = mlflow.sklearn.log_model(
                        fitted,
                        name="model",
                        signature=infer_signature(features, fitted.predict(features)),
                        pip_requirements=["scikit-learn"],
                        registered_model_name=name,
                    )
            finally:
                mlflow.set_tracking_uri(previous)
            return int(info.registered_model_version)

    tracking = Tracking()
    tracking.client = client
    return tracking
