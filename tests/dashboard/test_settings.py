import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.settings import _secret_key_from

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh machine: none of Quorum's variables, a var/ of its own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI", "EMAIL_URL", "DEBUG"}
        and not key.startswith(("QUORUM_", "DJANGO_"))
    }
    env["QUORUM_VAR_DIR"] = str(tmp_path / "var")
    env.update(extra)
    return env


def test_deploy_check_is_clean_with_the_documented_production_settings(tmp_path):
    env = clean_env(
        tmp_path,
        DEBUG="false",
        QUORUM_HTTPS="true",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="quorum.example.com",
        CSRF_TRUSTED_ORIGINS="https://quorum.example.com",
    )
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_check_warns_without_https(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=clean_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(64)),
    )
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    path = tmp_path / "secret_key"
    first = _secret_key_from(path)
    assert len(first) >= 50
    assert _secret_key_from(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_embedded_defaults_keep_everything_under_var(tmp_path):
    script = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['NAME']); print(s.CELERY_BROKER_URL); "
        "print(s.MLFLOW_TRACKING_URI); print(s.EMAIL_BACKEND); print(s.EMAIL_FILE_PATH)"
    )
    result = run_manage("shell", "--no-imports", "-c", script, env=clean_env(tmp_path))
    var = str(tmp_path / "var")
    database, broker, mlflow, email, mail_path = result.stdout.split()
    assert database == f"{var}/db.sqlite3"
    assert broker == "filesystem://localhost//"
    assert mlflow == f"sqlite:///{var}/mlflow/mlflow.db"
    assert email == "django.core.mail.backends.filebased.EmailBackend"
    assert mail_path == f"{var}/mail"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "postgres://q:pw@db:5432/quorum", "django.db.backends.postgresql"),
        ("REDIS_URL", "redis://cache:6379/0", "redis://cache:6379/0"),
        ("EMAIL_URL", "smtp+tls://u:p@mail:587", "django.core.mail.backends.smtp.EmailBackend"),
    ],
)
def test_environment_switches_to_real_services(tmp_path, variable, value, expected):
    script = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.EMAIL_BACKEND)"
    )
    result = run_manage(
        "shell", "--no-imports", "-c", script, env=clean_env(tmp_path, **{variable: value})
    )
    assert expected in result.stdout.split(), result.stderr
