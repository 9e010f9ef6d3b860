"""compose.yaml, the real stack: Docker Compose accepts it, and it wires the app to its services.

The first tests ask Docker Compose itself (the `docker compose` plugin, else Compose v1's
`docker-compose`) and skip when neither is installed; the others read the file with PyYAML.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
SETTINGS_FILE = ROOT / "dashboard" / "settings.py"

APP_SERVICES = ("web", "worker", "beat")
SERVICE_URLS = ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI", "EMAIL_URL")


def _answers(command: list[str]) -> bool:
    try:
        result = subprocess.run(  # noqa: S603 (a fixed command)
            [*command, "version"], capture_output=True, timeout=60, check=False
        )
    except OSError:
        return False
    return result.returncode == 0


def compose_command() -> list[str]:
    """`docker compose` when the plugin is there, else Compose v1; skip when neither is."""
    docker = shutil.which("docker")
    if docker and _answers([docker, "compose"]):
        return [docker, "compose"]
    docker_compose = shutil.which("docker-compose")
    if docker_compose and _answers([docker_compose]):
        return [docker_compose]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed")


def run_compose_config(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (a fixed command)
        [*compose_command(), "--file", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def environment_without(*names: str) -> dict[str, str]:
    """This process's environment without `names` or anything else compose.yaml reads."""
    ignored = {*names, "COMPOSE_FILE", "POSTGRES_PASSWORD", "MLFLOW_DB_PASSWORD"}
    return {name: value for name, value in os.environ.items() if name not in ignored}


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def environment_of(service: dict) -> dict[str, str]:
    """A service's environment as a mapping, whether written as a mapping or a list."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def one_shot_services(services: dict) -> set[str]:
    """Services that others wait on to finish (such as `migrate`), not to be healthy."""
    return {
        name
        for service in services.values()
        if isinstance(service.get("depends_on"), dict)
        for name, dependency in service["depends_on"].items()
        if dependency.get("condition") == "service_completed_successfully"
    }


def test_compose_file_is_valid_for_docker_compose():
    result = run_compose_config({**environment_without(), "SECRET_KEY": "compose-test"})
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_run_the_app_without_a_secret_key():
    result = run_compose_config(environment_without("SECRET_KEY"))
    assert result.returncode != 0, "compose.yaml accepted a stack with no SECRET_KEY"
    assert "SECRET_KEY" in result.stderr


def test_compose_runs_the_app_and_every_service_it_needs():
    services = load_compose()["services"]
    assert {*APP_SERVICES, "db", "redis", "mlflow", "mailpit"} <= set(services)


def test_web_worker_and_beat_share_the_same_service_urls():
    services = load_compose()["services"]
    environments = {name: environment_of(services[name]) for name in APP_SERVICES}
    for name in SERVICE_URLS:
        values = {service: environment.get(name) for service, environment in environments.items()}
        assert None not in values.values(), f"{name} is missing: {values}"
        assert len(set(values.values())) == 1, f"{name} differs: {values}"


def test_service_urls_point_at_services_of_the_compose_file():
    services = load_compose()["services"]
    environment = environment_of(services["web"])
    for name in SERVICE_URLS:
        host = urlsplit(environment[name]).hostname
        assert host in services, f"{name} points at {host}, which compose.yaml does not run"


def test_app_environment_names_are_ones_the_settings_read():
    read = set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", SETTINGS_FILE.read_text()))
    services = load_compose()["services"]
    for name in APP_SERVICES:
        unknown = set(environment_of(services[name])) - read
        assert not unknown, f"{name} sets {unknown}, which dashboard/settings.py never reads"


def test_every_long_running_service_has_a_healthcheck():
    services = load_compose()["services"]
    # Beat only sends tasks on schedule; there is nothing in it to ask.
    exempt = one_shot_services(services) | {"beat"}
    missing = [
        name for name in services if name not in exempt and "healthcheck" not in services[name]
    ]
    assert not missing, f"no healthcheck: {missing}"


def test_services_waited_on_until_healthy_have_a_healthcheck():
    services = load_compose()["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on")
        if not isinstance(depends_on, dict):
            continue
        for dependency, options in depends_on.items():
            if options.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency} to be healthy, but it has no healthcheck"
                )
