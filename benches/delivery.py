"""Packaging and profiling the demo model, and its packaged scoring server under load. Run with
`make bench` or

    .venv/bin/python -m benches.delivery [--seconds 10] [--clients 8] [--skip-mlflow-server]

Everything lives in a temporary folder that is removed at the end: a SQLite database made by
the migrations, an MLflow store, Quorum's data folder. It trains the model the demo's release
request is about (credit-scoring v2: gradient boosting, 120 trees of depth 3, on the generated
credit applicants, logged with its signature and input example as `load_demo` logs it), mirrors
it into a project with the demo's production policy and monitor (the held-out applicants as the
reference, the first day's applications with their outcomes as a labelled batch), then:

- runs the package job and the profile job through `runner.execute`, as a worker does, and
  times each end to end (wall and CPU);
- prints the profile's ONNX over native ratios at each batch size (latency p50/p95/p99 and
  rows per second, each runtime measured in a fresh process) and its recommendation;
- starts the packaged scoring server (`server.py` from the package's build context, serving
  ONNX) on 127.0.0.1, the same server serving the native model, and MLflow's own scoring server
  (`mlflow models serve --env-manager local`, uvicorn, one worker) for the same model folder,
  and asks each from a second process, `--clients` connections at a time for `--seconds`, one
  applicant per request on a new connection, printing requests per second and p50/p95/p99,
  and each server's p95 against MLflow's.

The figures are written to var/bench/delivery.txt.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "credit-risk"
MODEL = "credit-scoring"
START_TIMEOUT = 120


def setup_django(folder: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["QUORUM_VAR_DIR"] = str(folder / "var")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MLFLOW_ARTIFACT_ROOT"] = str(folder / "artifacts")
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ.pop("REDIS_URL", None)  # the jobs run here; the broker only hears of them
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# The demo's model and project


def train_demo_model(folder: Path) -> None:
    """credit-scoring v1 (the logistic regression) and v2 (the gradient boosting the demo's
    release is about), logged and registered as the demo logs them."""
    import mlflow
    from django.conf import settings
    from mlflow.tracking import MlflowClient
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from governance.registry import demo

    client = MlflowClient(tracking_uri=settings.MLFLOW_TRACKING_URI)
    mlflow.set_tracking_uri(settings.MLFLOW_TRACKING_URI)
    credit = demo.credit_applicants()
    experiment = demo._experiment(client, demo.SCORING, PROJECT, str(folder / "artifacts"))
    uris = []
    for model, params in (
        (make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500)),
         {"run_name": "logreg-C1.0", "model": "logistic", "C": 1.0}),
        (GradientBoostingClassifier(n_estimators=120, max_depth=3, learning_rate=0.1,
                                    random_state=1),
         {"run_name": "gbm-120-d3", "model": "gradient_boosting", "n_estimators": 120,
          "max_depth": 3, "learning_rate": 0.1}),
    ):  # fmt: skip
        _, uri = demo.train_run(
            experiment, credit, model, params, user="sam", script="train.py", log_model=True
        )
        uris.append(uri)
    demo._register(client, MODEL, PROJECT, uris, {"champion": 2})


def prepare_project() -> dict:
    """The project, its production policy, the mirrored version, a monitor with the held-out
    split as reference and the first day's applications with their outcomes."""
    import io

    import pyarrow as pa
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from governance.access import services as access
    from governance.approvals import services as approvals
    from governance.monitoring import services as monitoring
    from governance.registry import demo
    from governance.registry import services as registry
    from governance.registry.models import ModelVersion

    call_command("migrate", verbosity=0)
    people = get_user_model().objects
    admin = people.create(username="bench-admin", is_superuser=True, is_staff=True)
    owner, mei = people.create(username="bench-owner"), people.create(username="bench-mei")
    project = access.create_project(actor=admin, slug=PROJECT, name="Credit risk", owner=owner)
    access.add_member(actor=admin, project=project, user=mei, role="ml_engineer")
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1},
        gates_=[{"kind": "metric", "condition": "roc_auc >= 0.75 and accuracy >= 0.7"},
                {"kind": "profiled"}],
    )  # fmt: skip
    registry.sync_mlflow(trigger="bench")
    version = ModelVersion.objects.get(model__name=MODEL, version=2)
    credit = demo.credit_applicants()
    reference = registry.keep_table(
        actor=mei, project=project, name="credit-applicants holdout with outcomes",
        table=pa.Table.from_pandas(credit.test[[*credit.features, credit.target]],
                                   preserve_index=False),
        source="the held-out split",
    )  # fmt: skip
    monitor = monitoring.create_monitor(
        actor=mei, project=project, name="credit-scoring inputs", reference=reference,
        version=version, task="classification", label_column=credit.target, positive_label="1",
    )  # fmt: skip
    day, outcomes = demo.drifting_batches()[0]
    batch = monitoring.add_batch(
        actor=mei, monitor=monitor, content=io.BytesIO(day.to_csv(index=False).encode()),
        filename="applications-day-1.csv",
    )  # fmt: skip
    batch = monitoring.add_labels(
        actor=mei, batch=batch, content=io.BytesIO(outcomes.to_csv(index=False).encode()),
        filename="outcomes-day-1.csv",
    )  # fmt: skip
    return {"project": project, "engineer": mei, "version": version, "batch": batch,
            # As the model was trained: floats (a native model's signature refuses whole numbers).
            "row": json.loads(day.head(1).astype("float64").to_json(orient="records"))[0],
            "features": credit.features}  # fmt: skip


def run_job(site: dict, kind: str, params: dict) -> object:
    from governance.delivery import runner, services

    job = services.start_job(
        actor=site["engineer"], project=site["project"], kind=kind, version=site["version"],
        params=params,
    )  # fmt: skip
    began = time.perf_counter()
    job = runner.execute(job.pk)
    job.bench_seconds = time.perf_counter() - began
    if job.state != "succeeded":
        raise SystemExit(f"the {kind} job {job.state}: {job.error}")
    return job


# The servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], port: int, health: str, log: Path, cwd: Path) -> subprocess.Popen:
    """Start a server and wait for `health` to answer 200. Raises RuntimeError with the tail
    of its log when it exits or does not answer in time."""
    import urllib.request

    with log.open("wb") as sink:
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd,
            # MLflow starts uvicorn by name: the environment's scripts go first on the path.
            env={**os.environ, "PYTHONWARNINGS": "ignore",
                 "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"exited with {server.returncode}: {' | '.join(tail)}")
        try:
            url = f"http://127.0.0.1:{port}{health}"
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    stop(server)
    raise RuntimeError(f"did not answer {health} within {START_TIMEOUT} s")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


LOAD = r"""
import asyncio, json, sys, time
port, path, body = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
seconds, clients = float(sys.argv[4]), int(sys.argv[5])
request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
latencies, errors = [], [0]

async def answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    if length is None:
        await reader.read()
    else:
        await reader.readexactly(length)
    return status

async def client(stop):
    while time.perf_counter() < stop:
        started = time.perf_counter()
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            if await answer(reader) != 200:
                errors[0] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors[0] += 1
        finally:
            if writer is not None:
                writer.close()
        latencies.append(time.perf_counter() - started)

async def main():
    stop = time.perf_counter() + seconds
    began = time.perf_counter()
    await asyncio.gather(*(client(stop) for _ in range(clients)))
    return time.perf_counter() - began

wall = asyncio.run(main())
print(json.dumps({"latencies": latencies, "errors": errors[0], "wall": wall}))
"""


def load(port: int, path: str, body: dict, seconds: float, clients: int) -> dict[str, float]:
    """POST `body` to `path` from `clients` connections at once for `seconds`, from a second
    process (one thread of asyncio), a new connection per request."""
    arguments = [port, path, json.dumps(body), seconds, clients]
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", LOAD, *map(str, arguments)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout)
    latencies = sorted(result["latencies"]) or [float("nan")]

    def percentile(share: float) -> float:
        return latencies[min(len(latencies) - 1, max(0, round(share * len(latencies)) - 1))] * 1e3

    return {
        "requests": len(result["latencies"]),
        "errors": result["errors"],
        "rps": len(result["latencies"]) / result["wall"],
        "p50": statistics.median(latencies) * 1000,
        "p95": percentile(0.95),
        "p99": percentile(0.99),
    }


def servers(site: dict, package: object, folder: Path, skip_mlflow: bool) -> dict[str, dict]:
    """How to start and ask each server: the package's (ONNX), the same serving the native
    model, and MLflow's own, all on the model folder the package carries."""
    context = Path(package.result["package"]["path"]).parent / "context"
    native = folder / "context-native"
    shutil.copytree(context, native)
    metadata = json.loads((native / "metadata.json").read_text())
    (native / "metadata.json").write_text(json.dumps(metadata | {"serves": "native"}))
    model_dir = context / "model_dir" / "artifacts"
    row = site["row"]
    packaged = {"path": "/predict", "body": {"rows": [row]}, "health": "/health"}
    found = {
        f"packaged server, {package.result['serves']}": packaged | {
            "command": [sys.executable, str(context / "server.py"), "--root", str(context)],
            "cwd": context,
        },
        "packaged server, native": packaged | {
            "command": [sys.executable, str(native / "server.py"), "--root", str(native),
                        "--model-dir", str(model_dir)],
            "cwd": native,
        },
    }  # fmt: skip
    if not skip_mlflow:
        found["MLflow models serve (reference)"] = {
            "command": [str(Path(sys.executable).parent / "mlflow"), "models", "serve",
                        "-m", str(model_dir), "--env-manager", "local", "--workers", "1"],
            "cwd": folder,
            "path": "/invocations",
            "body": {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}},
            "health": "/ping",
        }  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--skip-mlflow-server", action="store_true")
    options = parser.parse_args()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory(prefix="quorum-bench-delivery-") as scratch:
        folder = Path(scratch)
        setup_django(folder)
        say(f"Quorum delivery benchmark: package, profile and serve the demo model, "
            f"{os.cpu_count()} cores")  # fmt: skip
        began = time.perf_counter()
        train_demo_model(folder)
        site = prepare_project()
        say(f"  the demo's credit-scoring v1 and v2 trained, logged and mirrored in "
            f"{time.perf_counter() - began:.0f} s (setup)")  # fmt: skip

        package = run_job(site, "package", {})
        profile = run_job(site, "profile", {"batch": site["batch"].pk})
        say("jobs through runner.execute, end to end (wall / CPU of the worker):")
        for job in (package, profile):
            say(f"  {job.kind:8} {job.bench_seconds:6.1f} s / {job.cpu_seconds:5.1f} CPU-s  "
                f"peak RSS {job.peak_memory_bytes / 2**20:.0f} MiB")  # fmt: skip
        result = profile.result
        say(f"  package serves {package.result['serves']}; profile on {result['data']['rows']} "
            f"rows of {result['data']['described']}: {result['validation']['summary']} "
            f"(accuracy {result['validation']['metrics']['accuracy']:.3f}, ROC AUC "
            f"{result['validation']['metrics']['roc_auc']:.3f})")  # fmt: skip
        say("ONNX vs native, each in a fresh process (ratio = ONNX / native):")
        runtimes = result["runtimes"]
        for size, ratio in result["ratios"].items():
            onnx, native = runtimes["onnx"]["batches"][size], runtimes["native"]["batches"][size]
            say(f"  batch {size:>3}: p50 {onnx['p50_ms']:7.3f} vs {native['p50_ms']:7.3f} ms "
                f"({ratio['p50_ms']:.3g}x), p95 {ratio['p95_ms']:.3g}x, p99 "
                f"{ratio['p99_ms']:.3g}x; {onnx['rows_per_second']:>12,.0f} vs "
                f"{native['rows_per_second']:>10,.0f} rows/s "
                f"({ratio['rows_per_second']:.1f}x)")  # fmt: skip
        for name, measured in runtimes.items():
            say(f"  {name:6} peak RSS {measured['memory']['peak_bytes'] / 2**20:5.0f} MiB, "
                f"load {measured['load']['wall_seconds']:.2f} s, scoring "
                f"{measured['scoring_cpu_seconds']:.2f} CPU-s")  # fmt: skip
        recommendation = result["recommendation"]
        say(f"  recommendation: cpu {recommendation['cpu_request']}/{recommendation['cpu_limit']}"
            f", memory {recommendation['memory_request']}/{recommendation['memory_limit']}, "
            f"{recommendation['runtime']}: {recommendation['basis']}")  # fmt: skip

        say(f"scoring servers on 127.0.0.1, {options.clients} clients in a second process "
            f"(asyncio), {options.seconds:g} s each, one applicant per request, a new "
            "connection per request:")  # fmt: skip
        results: dict[str, dict] = {}
        for name, server in servers(site, package, folder, options.skip_mlflow_server).items():
            port = free_port()
            command = [*server["command"], "--host", "127.0.0.1", "--port", str(port)]
            log = folder / f"server-{port}.log"
            try:
                process = start(command, port, server["health"], log, server["cwd"])
            except RuntimeError as error:
                say(f"  {name:34} did not start offline: {error}")
                continue
            try:
                load(port, server["path"], server["body"], 2, options.clients)  # warm up
                results[name] = load(
                    port, server["path"], server["body"], options.seconds, options.clients
                )
            finally:
                stop(process)
            r = results[name]
            say(f"  {name:34} {r['rps']:7.0f} req/s  p50 {r['p50']:6.1f} ms  p95 "
                f"{r['p95']:6.1f} ms  p99 {r['p99']:6.1f} ms  errors {r['errors']}")  # fmt: skip
        reference = results.get("MLflow models serve (reference)")
        if reference:
            for name, r in results.items():
                if r is not reference:
                    say(f"  {name} vs MLflow: p95 {r['p95'] / reference['p95']:.2f}x, "
                        f"throughput {r['rps'] / reference['rps']:.2f}x")  # fmt: skip
        elif not options.skip_mlflow_server:
            say("  no comparison: MLflow's scoring server did not start offline")
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "delivery.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
