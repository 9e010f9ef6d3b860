"""Services these tests may break on purpose: a Redis server of their own (never the one the rest
of the run shares), Celery workers as separate processes that can be killed, and the test
process's Celery app pointed at that Redis."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import needs

ROOT = Path(__file__).resolve().parents[2]
REDIS = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.1)


class RedisServer:
    """A redis-server process on a free port, that a test can stop and start again."""

    def __init__(self, folder: Path):
        self.port, self.folder, self.process = _free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(0.2)
            try:
                probe.connect(("127.0.0.1", self.port))
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - the machine's own redis-server
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(self.answers, 10, "Redis did not answer")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class Workers:
    """Celery workers of the project, each a process of its own on the test's broker and
    database, started and killed by the test."""

    def __init__(self, broker: str, logs: Path):
        self.broker, self.logs, self.running = broker, logs, []
        db = connection.settings_dict
        self.database = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )

    def start(self, name: str) -> subprocess.Popen:
        from dashboard.celery import app

        env = {
            **os.environ,
            "DATABASE_URL": self.database,
            "REDIS_URL": self.broker,
            # A killed worker's message comes back after 3 s, and its job counts as abandoned.
            "QUORUM_BROKER_VISIBILITY_SECONDS": "3",
            "QUORUM_JOB_HEARTBEAT_SECONDS": "1",
            "QUORUM_JOB_STALE_SECONDS": "3",
        }
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - the project's own worker
            [sys.executable, "-m", "tests.faults.worker", app.conf.task_default_queue, name],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.running.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL: the worker gets no chance to give its message back."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)


@pytest.fixture(autouse=True)
def _services_round() -> None:
    """These tests break services on purpose and take minutes: they run in the round with
    PostgreSQL and Redis (CI's second), not in the embedded one."""
    needs("PostgreSQL", connection.vendor == "postgresql", "QUORUM_REQUIRE_SERVICES")


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    needs("redis-server", REDIS is not None, "QUORUM_REQUIRE_SERVICES")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server) -> Iterator[RedisServer]:
    """The test process's Celery app publishing to the private Redis, for this test only."""
    from dashboard.celery import app

    before = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url = redis_server.url
    app.conf.broker_transport_options = {"visibility_timeout": 3}
    app._after_fork()  # Celery's own reset of its cached connection and producer pools
    yield redis_server
    app.conf.broker_url, app.conf.broker_transport_options = before
    app._after_fork()


@pytest.fixture
def workers(transactional_db, broker, tmp_path) -> Iterator[Workers]:
    needs("PostgreSQL", connection.vendor == "postgresql", "QUORUM_REQUIRE_SERVICES")
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    running = Workers(broker.url, tmp_path)
    yield running
    running.stop_all()


class MlflowServer:
    """`mlflow server` over the test's tracking store, that a test can stop and start again;
    Quorum talks to it over HTTP while it runs and finds nobody there while it does not."""

    def __init__(self, store: str, artifacts: str, logs: Path):
        self.store, self.artifacts, self.logs = store, artifacts, logs
        self.port, self.process = _free_port(), None
        self.url = f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def start(self) -> None:
        log = (self.logs / "mlflow-server.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - MLflow's own server
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.store,
             "--default-artifact-root", self.artifacts, "--no-serve-artifacts",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        _wait(self.answers, 90, "MLflow's server did not answer")

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            self.process = None
        assert not self.answers()


@pytest.fixture
def mlflow_server(mlflow_uri, settings, tmp_path, monkeypatch) -> Iterator[MlflowServer]:
    """The test's MLflow store served over HTTP, and Quorum pointed at it. MLflow's own HTTP
    retries wait for seconds; a fault shows the same without them."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    server = MlflowServer(mlflow_uri, settings.MLFLOW_ARTIFACT_ROOT, tmp_path)
    server.start()
    settings.MLFLOW_TRACKING_URI = server.url
    yield server
    server.stop()
