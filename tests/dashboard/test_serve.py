"""`make run`'s last step, for real: gunicorn and a Celery worker with beat, as processes,
on the embedded services of a fresh var/ folder."""

import http.cookiejar
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.dashboard.test_settings import ROOT, clean_env, run_manage


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {timeout} s")


@pytest.fixture
def site(tmp_path):
    env = clean_env(tmp_path)
    steps = (
        ["migrate"],
        ["collectstatic", "--noinput"],
        ["load_demo", "--password", "demo pass phrase", "--no-mlflow"],
    )
    for step in steps:
        result = run_manage(*step, env=env)
        assert result.returncode == 0, result.stderr
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "serve", "--port", str(port), "--web-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield f"http://127.0.0.1:{port}", Path(env["QUORUM_VAR_DIR"]), tmp_path / "serve.log"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("serve did not stop on SIGTERM")


def test_serve_runs_the_site_and_a_worker_that_sends_emails(site):
    url, var, log = site
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    wait_until(lambda: opener.open(f"{url}/login/").status == 200, "the login page")
    assert f"Quorum is up at {url}/" in log.read_text()

    page = opener.open(f"{url}/password-reset/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "email": "priya@example.com"})
    opener.open(urllib.request.Request(f"{url}/password-reset/", data=form.encode()))

    mail = var / "mail"
    wait_until(lambda: any(mail.glob("*.log")), "the reset email")
    email = next(mail.glob("*.log")).read_text()
    assert "priya@example.com" in email
    assert f"{url}/password-reset/" in email
