"""The release gate under load, on PostgreSQL. Run with `make bench` or

    .venv/bin/python -m benches.gate [--seconds 10] [--clients 8] [--history 500]
                                     [--database postgres://…]

It uses (and creates) a database of its own, `quorum_bench_gate` by default, never the site's.
It fills a project with `--history` release requests (so the gate's cost is seen not to grow
with them), serves the site with gunicorn (2 workers of 4 threads, as `manage.py serve` does)
on a free port of 127.0.0.1, and asks it from a second process, `--clients` connections at a
time, for `--seconds` per endpoint: the gate of an approved release, the gate of an open one,
and, as the reference, `/api/v1/me/` (token authentication and DRF with no work of its own),
each with a new connection per request as a CI job's curl makes; then the approved gate again
over kept connections, as a deploy tool polling the gate would.
It prints requests per second and latency percentiles, and the gate's ratio to the reference.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benches.audit import ensure_database, setup_django

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/quorum_bench_gate"
PROJECT = "bench-gate"
MODEL = "bench-gate-model"


# The site


def prepare_site(history: int) -> dict[str, str]:
    """A project with a policy, `history` versions each with a decided request, one approved
    release and one open: what the gate is asked about. Returns tokens and the queries."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from governance.access import services as access
    from governance.access.models import Project
    from governance.approvals import services
    from governance.approvals.models import ApprovalRequest
    from governance.registry.models import ModelVersion, RegisteredModel

    call_command("migrate", verbosity=0)
    people = get_user_model().objects
    admin, _ = people.get_or_create(
        username="bench-admin", defaults={"is_superuser": True, "is_staff": True}
    )
    owner, _ = people.get_or_create(username="bench-owner")
    scientist, _ = people.get_or_create(username="bench-scientist")
    project = Project.objects.filter(slug=PROJECT).first()
    if project is None:
        project = access.create_project(actor=admin, slug=PROJECT, name="Bench gate", owner=owner)
        access.add_member(actor=admin, project=project, user=scientist, role="data_scientist")
        services.save_policy(
            actor=owner, project=project, stage="production", required={"product_owner": 1}
        )
    model, _ = RegisteredModel.objects.get_or_create(
        name=MODEL, defaults={"project": project, "linked_in_quorum": True}
    )
    have = ModelVersion.objects.filter(model=model).count()
    # Mirror rows as the sync writes them; MLflow itself is not asked by the gate.
    ModelVersion.objects.bulk_create(
        [
            ModelVersion(model=model, version=n, source=f"runs:/bench/{n}", status="READY")
            for n in range(have + 1, history + 3)
        ]
    )
    versions = {v.version: v for v in ModelVersion.objects.filter(model=model)}
    if not ApprovalRequest.objects.filter(project=project).exists():
        started = time.perf_counter()
        for number in range(1, history + 1):
            approval = services.open_request(
                actor=scientist, version=versions[number], stage="production"
            )
            services.decide(actor=owner, approval=approval, verdict="approve")
        services.open_request(actor=scientist, version=versions[history + 1], stage="production")
        print(
            f"  {history} approved releases made in {time.perf_counter() - started:.0f} s (setup)"
        )
    expires = timezone.now() + timedelta(days=1)
    _, ci = access.create_api_token(
        actor=scientist, name=f"ci-{time.time()}", expires_at=expires, project=project
    )
    _, personal = access.create_api_token(
        actor=scientist, name=f"me-{time.time()}", expires_at=expires
    )
    approved = ApprovalRequest.objects.filter(project=project, state="approved").latest("pk")
    opened = ApprovalRequest.objects.get(project=project, state="open")
    return {
        "ci": ci,
        "personal": personal,
        "approved": f"/api/v1/gate?model={MODEL}&version={approved.version.version}"
        "&stage=production",
        "open": f"/api/v1/gate?model={MODEL}&version={opened.version.version}&stage=production",
    }


def gate_queries(site: dict[str, str]) -> dict[str, int]:
    """Queries per gate answer, in-process, for the approved and the open release."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {site['ci']}")
    counts = {}
    for name in ("approved", "open"):
        client.get(site[name])
        with CaptureQueriesContext(connection) as queries:
            response = client.get(site[name])
        assert response.status_code == 200, response.content
        counts[name] = len(queries)
    return counts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(database: str, port: int, var_dir: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "QUORUM_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [
            sys.executable,
            "-m",
            "gunicorn",
            "dashboard.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("gunicorn did not start")


def server_cpu(master: int) -> float:
    """CPU seconds the gunicorn workers (the master's children) have used so far, read from
    /proc: unlike latency, what a request costs the server does not change with the load that
    other programs put on the machine."""
    tick = os.sysconf("SC_CLK_TCK")
    used = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we read
            continue
        if int(fields[1]) == master:  # ppid
            used += int(fields[11]) + int(fields[12])  # utime + stime
    return used / tick


# The load, from a second process


LOAD = r"""
import asyncio, json, sys, time
port, path, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seconds, clients, keep_alive = float(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
           + ("" if keep_alive else "Connection: close\r\n") + "\r\n").encode()
latencies, errors = [], [0]

async def answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return status

async def client(stop):
    reader = writer = None
    while time.perf_counter() < stop:
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            if await answer(reader) != 200:
                errors[0] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
            errors[0] += 1
            writer = None
        if not keep_alive and writer is not None:
            writer.close()
            writer = None
        latencies.append(time.perf_counter() - started)

async def main():
    stop = time.perf_counter() + seconds
    began = time.perf_counter()
    await asyncio.gather(*(client(stop) for _ in range(clients)))
    return time.perf_counter() - began

wall = asyncio.run(main())
print(json.dumps({"latencies": latencies, "errors": errors[0], "wall": wall}))
"""


def load(
    port: int, path: str, token: str, seconds: float, clients: int, keep_alive: bool = False
) -> dict[str, float]:
    """Ask `path` from `clients` connections at once for `seconds`, from a second process: one
    thread of asyncio, so that the client costs little of the cores it shares with the server.
    A new connection per request, as `curl` in a CI job makes, unless `keep_alive`."""
    arguments = [port, path, token, seconds, clients, int(keep_alive)]
    done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-c", LOAD, *map(str, arguments)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout)
    latencies = sorted(result["latencies"])

    def percentile(share: float) -> float:
        return latencies[min(len(latencies) - 1, round(share * len(latencies)) - 1)] * 1000

    return {
        "requests": len(latencies),
        "errors": result["errors"],
        "rps": len(latencies) / result["wall"],
        "p50": statistics.median(latencies) * 1000,
        "p95": percentile(0.95),
        "p99": percentile(0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_GATE_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--history", type=int, default=500)
    options = parser.parse_args()

    ensure_database(options.database)
    setup_django(options.database)
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    say(f"Quorum release gate benchmark, PostgreSQL, {os.cpu_count()} cores")
    site = prepare_site(options.history)
    queries = gate_queries(site)
    say(
        f"  {options.history} past releases of the model; queries per gate answer: approved "
        f"{queries['approved']}, open {queries['open']} (the token's lookup included)"
    )
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="quorum-bench-gate-") as var_dir:
        (Path(var_dir) / "static").mkdir()  # WhiteNoise looks for it at start
        server = serve(options.database, port, var_dir)
        try:
            # Warm every worker thread on every endpoint first: each opens its own database
            # connection and fills its caches on first use, which the first measured endpoint
            # would otherwise pay for alone.
            for path, token in ((site["approved"], site["ci"]), (site["open"], site["ci"]),
                                ("/api/v1/me/", site["personal"])):  # fmt: skip
                load(port, path, token, 2, options.clients)
            runs = {
                "gate, approved release": (site["approved"], site["ci"], False),
                "gate, open release": (site["open"], site["ci"], False),
                "reference /api/v1/me/": ("/api/v1/me/", site["personal"], False),
                "gate, kept connections": (site["approved"], site["ci"], True),
            }
            results = {}
            for name, (path, token, keep_alive) in runs.items():
                before = server_cpu(server.pid)
                results[name] = load(
                    port, path, token, options.seconds, options.clients, keep_alive
                )
                spent = server_cpu(server.pid) - before
                results[name]["cpu_ms"] = spent * 1000 / max(results[name]["requests"], 1)
        finally:
            server.terminate()
            server.wait(timeout=30)
    say(
        f"gunicorn 2 workers x 4 threads on 127.0.0.1, {options.clients} clients in a second "
        f"process (asyncio), {options.seconds:g} s each, a new connection per request but "
        f"the last"
    )
    for name, r in results.items():
        say(f"  {name:24} {r['rps']:7.0f} req/s  p50 {r['p50']:5.1f} ms  p95 {r['p95']:5.1f} ms  "
            f"p99 {r['p99']:5.1f} ms  server CPU {r['cpu_ms']:4.2f} ms/request  "
            f"errors {r['errors']}")  # fmt: skip
    gate, reference = results["gate, approved release"], results["reference /api/v1/me/"]
    say(f"gate vs reference: throughput {gate['rps'] / reference['rps']:.2f}x, "
        f"p95 {gate['p95'] / reference['p95']:.2f}x "
        f"(goals: p95 <= 20 ms: {'met' if gate['p95'] <= 20 else 'missed'}, "
        f">= 500 req/s: {'met' if gate['rps'] >= 500 else 'missed'})")  # fmt: skip
    cores = os.cpu_count() or 1
    say(f"server CPU per answer: gate {gate['cpu_ms']:.2f} ms, reference "
        f"{reference['cpu_ms']:.2f} ms ({gate['cpu_ms'] / reference['cpu_ms']:.2f}x); the "
        f"gate alone could answer {cores * 1000 / gate['cpu_ms']:.0f} req/s on {cores} "
        "cores")  # fmt: skip
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "gate.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
