"""The MLflow sync's benchmarks, on PostgreSQL. Run with `make bench` or

    .venv/bin/python -m benches.sync [--runs 10000] [--versions 500] [--table-runs 100000]
                                     [--database postgres://…]

It uses (and creates) a database of its own, `quorum_bench_sync` by default, never the site's,
and builds a throwaway MLflow store (SQLite) of `--runs` runs with 100 params and 100 metrics
each and `--versions` model versions. It measures a full sync into an empty mirror against
reading the same store with the bare MLflow client, printed as a ratio, then an idle
incremental sync, then the runs table page of an experiment of `--table-runs` runs.
"""

import argparse
import html
import os
import random
import re
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from benches.audit import ensure_database, setup_django

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/quorum_bench_sync"
PROJECT = "bench-0"
EXPERIMENTS = 3
PARAMS = 100
METRICS = 100
TABLE_KEYS = 10
TABLE_EXPERIMENT = "bench-table"
DAY_MS = 24 * 3600 * 1000


# The MLflow store


def build_store(directory: Path, runs: int, versions: int, models: int) -> tuple[str, float]:
    """Create an MLflow store with MLflow's own migrations, then fill its tables directly:
    through the API, a million params and metrics would take many minutes. Returns the
    tracking URI and the seconds taken."""
    from mlflow.tracking import MlflowClient

    started = time.perf_counter()
    path = directory / "mlflow.db"
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri)
    experiment_ids = [
        client.create_experiment(
            f"bench-experiment-{n}",
            artifact_location=f"file://{directory}/artifacts/{n}",
            tags={"quorum.project": PROJECT} if n == 0 else {"team": "bench"},
        )
        for n in range(EXPERIMENTS)
    ]
    with sqlite3.connect(path) as db:
        # A throwaway file: durability buys nothing here.
        db.execute("PRAGMA synchronous = OFF")
        run_ids = _fill_runs(db, runs, [int(i) for i in experiment_ids], directory)
        _fill_models(db, run_ids, versions, models, directory)
    return uri, time.perf_counter() - started


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def _insert(db: sqlite3.Connection, table: str, rows: list[dict]) -> None:
    """Insert rows naming their columns; a column MLflow no longer has fails loudly here."""
    columns = list(rows[0])
    unknown = set(columns) - set(_columns(db, table))
    assert not unknown, f"MLflow's {table} has no columns {unknown}"
    marks = ", ".join("?" * len(columns))
    db.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
        [tuple(row[c] for c in columns) for row in rows],
    )


def _fill_runs(
    db: sqlite3.Connection, count: int, experiment_ids: list[int], directory: Path
) -> list[str]:
    rng = random.Random(7)
    # Every run ended an hour ago or more: the incremental sync rereads runs that ended in
    # the last five minutes, and an idle sync should find nothing.
    first = int(time.time() * 1000) - 30 * DAY_MS
    step = (29 * DAY_MS) // max(1, count)
    run_ids, runs, params, metrics, tags = [], [], [], [], []
    for n in range(count):
        run_id = uuid.uuid4().hex
        run_ids.append(run_id)
        experiment = experiment_ids[n % len(experiment_ids)]
        start = first + n * step
        end = start + 60_000
        runs.append(
            {
                "run_uuid": run_id,
                "name": f"run-{n}",
                "source_type": "LOCAL",
                "source_name": "train.py",
                "entry_point_name": "",
                "user_id": f"user{n % 20}",
                "status": "FINISHED",
                "start_time": start,
                "end_time": end,
                "source_version": f"{n:040x}",
                "lifecycle_stage": "active",
                "artifact_uri": f"file://{directory}/artifacts/{experiment}/{run_id}/artifacts",
                "experiment_id": experiment,
                "deleted_time": None,
            }
        )
        params.extend(
            {"key": f"param_{k:03}", "value": str(rng.randint(1, 1000)), "run_uuid": run_id}
            for k in range(PARAMS)
        )
        metrics.extend(
            {
                "key": f"metric_{k:03}",
                "value": rng.random(),
                "timestamp": end,
                "step": 0,
                "is_nan": 0,
                "run_uuid": run_id,
            }
            for k in range(METRICS)
        )
        tags.extend(
            {"key": key, "value": value, "run_uuid": run_id}
            for key, value in (
                ("mlflow.runName", f"run-{n}"),
                ("mlflow.user", f"user{n % 20}"),
                ("mlflow.source.name", "train.py"),
                ("mlflow.source.git.commit", f"{n:040x}"),
                ("team", "bench"),
            )
        )
        if len(params) >= 200_000 or n == count - 1:
            _insert(db, "runs", runs)
            _insert(db, "params", params)
            _insert(db, "metrics", metrics)
            _insert(db, "latest_metrics", metrics)
            _insert(db, "tags", tags)
            runs, params, metrics, tags = [], [], [], []
    return run_ids


def _fill_models(
    db: sqlite3.Connection, run_ids: list[str], count: int, models: int, directory: Path
) -> None:
    now = int(time.time() * 1000) - 3600 * 1000
    names = [f"bench-model-{m}" for m in range(models)]
    _insert(
        db,
        "registered_models",
        [
            {
                "name": name,
                "creation_time": now,
                "last_updated_time": now,
                "description": "A model of the sync benchmark.",
                "workspace": "default",
            }
            for name in names
        ],
    )
    _insert(
        db,
        "registered_model_tags",
        [
            {"key": "quorum.project", "value": PROJECT, "name": n, "workspace": "default"}
            for n in names
        ],
    )
    versions, version_tags, latest = [], [], {}
    for n in range(count):
        name, number = names[n % models], n // models + 1
        run_id = run_ids[(n * 17) % len(run_ids)]
        # Each version its own timestamp, as versions registered one by one have: the
        # incremental sync resumes after the newest one it saw.
        moment = now - (count - n) * 1000
        versions.append(
            {
                "name": name,
                "version": number,
                "creation_time": moment,
                "last_updated_time": moment,
                "description": "",
                "user_id": "bench",
                "current_stage": "None",
                "source": f"runs:/{run_id}/model",
                "run_id": run_id,
                "status": "READY",
                "status_message": "",
                "run_link": "",
                "storage_location": f"file://{directory}/artifacts/{run_id}/artifacts/model",
                "workspace": "default",
            }
        )
        version_tags.append(
            {"key": "validated", "value": "yes", "name": name, "version": number,
             "workspace": "default"}
        )  # fmt: skip
        latest[name] = number
    _insert(db, "model_versions", versions)
    _insert(db, "model_version_tags", version_tags)
    _insert(
        db,
        "registered_model_aliases",
        [
            {"alias": "champion", "version": number, "name": name, "workspace": "default"}
            for name, number in latest.items()
        ],
    )


def check_store(uri: str, versions: int, models: int) -> None:
    """Read the store back through MLflow: the rows inserted by hand must make whole runs,
    versions and models. (That every run is there, the reference's own count shows.)"""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    sample = client.search_runs(ids, max_results=5)
    assert len(sample) == 5, sample
    for run in sample:
        assert len(run.data.params) == PARAMS, (run.info.run_id, len(run.data.params))
        assert len(run.data.metrics) == METRICS, (run.info.run_id, len(run.data.metrics))
        assert run.data.tags["team"] == "bench"
    assert _count(client.search_model_versions) == versions
    model = client.get_registered_model("bench-model-0")
    assert model.tags == {"quorum.project": PROJECT}, model.tags
    assert model.aliases == {"champion": versions // models}, model.aliases
    assert len(client.search_registered_models()) == models


def _count(search: Callable[..., list], *args: object, **options: object) -> int:
    return sum(1 for _ in _paged(search, *args, max_results=1000, **options))


def _paged(search: Callable[..., list], *args: object, **options: object) -> list:
    token, found = None, []
    while True:
        page = search(*args, page_token=token, **options)
        found.extend(page)
        token = page.token
        if not token:
            return found


# The sync and its reference


def bare_read(uri: str) -> tuple[float, int, int]:
    """The reference: every run and version read with MLflow's own client, in the pages and
    order Quorum reads them, with each run's params and metrics copied out."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    started = time.perf_counter()
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = touched = 0
    token = None
    while True:
        page = client.search_runs(
            ids,
            run_view_type=ViewType.ALL,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        for run in page:
            touched += len(dict(run.data.params)) + len(dict(run.data.metrics))
        runs += len(page)
        token = page.token
        if not token:
            break
    versions = len(
        _paged(
            client.search_model_versions,
            max_results=1000,
            order_by=["last_updated_timestamp DESC"],
        )
    )
    seconds = time.perf_counter() - started
    assert touched == runs * (PARAMS + METRICS)
    return seconds, runs, versions


def timed_mlflow(uri: str) -> object:
    """Quorum's client, unchanged, with the time of each call to MLflow added up by what was
    called: a few clock readings per page, nothing against a sync of seconds."""
    from governance.registry.mlflow_client import Mlflow

    class Timed(Mlflow):
        def __post_init__(self) -> None:
            super().__post_init__()
            self.spent: dict[str, float] = defaultdict(float)
            self.calls: dict[str, int] = defaultdict(int)

        def _call(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
            # signature_of calls _call with its inner `read`: that is the artifact lookup.
            name = getattr(function, "__name__", "other")
            started = time.perf_counter()
            try:
                return super()._call(function, *args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - started
                self.calls[name] += 1

    return Timed(uri)


def reset_mirror() -> None:
    """Empty the mirror as if Quorum had never synced. The audit trail stays: it is
    append-only, and what the syncs add to it does not change what is measured."""
    from django.db import connection

    from governance.approvals.models import ApprovalRequest, Comment, Decision, Watcher
    from governance.registry.models import (
        DatasetVersion,
        Experiment,
        MetricHistory,
        ModelCard,
        ModelCardRevision,
        ModelVersion,
        RegisteredModel,
        Run,
        RunInput,
        SyncRun,
        SyncState,
    )

    # TRUNCATE rather than delete(): Django would load every run to delete it. No CASCADE:
    # a table of another app referring to these should stop the bench, not be emptied. The
    # bench opens no release request; the tables that hang on versions go with them.
    tables = [
        m._meta.db_table
        for m in (
            Watcher, Decision, Comment, ApprovalRequest,
            ModelCardRevision, ModelCard, ModelVersion, RegisteredModel, MetricHistory,
            RunInput, DatasetVersion, Run, Experiment, SyncRun,
        )
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)}")
    SyncState.objects.update_or_create(
        pk=1,
        defaults={
            "runs_started_after": 0,
            "runs_checked_at": 0,
            "versions_updated_after": 0,
            "lease_until": None,
            "lease_owner": "",
        },
    )


def quorum_sync(uri: str, full: bool) -> tuple[float, object, object]:
    from governance.registry.services import sync_mlflow

    mlflow = timed_mlflow(uri)
    started = time.perf_counter()
    job = sync_mlflow(trigger="bench", full=full, mlflow=mlflow)
    return time.perf_counter() - started, job, mlflow


def profile_sync(uri: str, top: int) -> None:
    """--profile: a full sync again under cProfile, its heaviest functions by cumulative time."""
    import cProfile
    import pstats

    from governance.registry.services import sync_mlflow

    reset_mirror()
    profiler = cProfile.Profile()
    profiler.runcall(sync_mlflow, trigger="bench", full=True, mlflow=timed_mlflow(uri))
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


# The runs table


def prepare_site() -> tuple[object, object]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from governance.access import services
    from governance.access.models import Project

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    admin, _ = user_model.objects.get_or_create(
        username="bench-admin", defaults={"is_superuser": True, "is_staff": True}
    )
    viewer, _ = user_model.objects.get_or_create(username="bench-viewer")
    project = Project.objects.filter(slug=PROJECT).first()
    if project is None:
        project = services.create_project(actor=admin, slug=PROJECT, name="Bench 0")
        services.add_member(actor=admin, project=project, user=viewer, role="viewer")
    return project, viewer


def fill_table(project: object, count: int) -> float:
    """An experiment of `count` runs written straight into the mirror with COPY, each with
    TABLE_KEYS metrics and params, started a minute apart."""
    from governance.registry.models import Experiment, Run

    started = time.perf_counter()
    experiment = Experiment.objects.create(
        mlflow_id=TABLE_EXPERIMENT, name="Bench table", project=project, linked_in_quorum=True
    )
    copy_runs([experiment.pk], count, random.Random(11))
    analyze(Run._meta.db_table)
    assert Run.objects.filter(experiment=experiment).count() == count
    return time.perf_counter() - started


def copy_runs(
    experiment_ids: list[int],
    count: int,
    rng: random.Random,
    keys: int = TABLE_KEYS,
    users: list[str] | None = None,
) -> list[str]:
    """`count` runs written straight into the mirror with COPY, dealt round the experiments,
    each with `keys` metrics and params, started a minute apart (the last a minute ago), their
    MLflow user dealt round `users` (20 made-up ones by default). Returns their MLflow ids in
    the order written."""
    import json
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from governance.registry.models import Run

    users = users or [f"user{n}" for n in range(20)]
    now = timezone.now()
    columns = [
        "mlflow_id", "experiment_id", "name", "status", "user", "start_time", "end_time",
        "lifecycle", "params", "metrics", "tags", "code_version", "source_name", "artifact_uri",
        "synced_at",
    ]  # fmt: skip
    names = ", ".join(connection.ops.quote_name(c) for c in columns)  # "user" is a keyword
    copy_sql = f"COPY {Run._meta.db_table} ({names}) FROM STDIN"
    mlflow_ids = []
    with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
        for n in range(count):
            start = now - timedelta(minutes=count - n)
            metrics = {f"metric_{k:03}": rng.random() for k in range(keys)}
            params = {f"param_{k:03}": str(rng.randint(1, 1000)) for k in range(keys)}
            mlflow_id = uuid.uuid4().hex
            mlflow_ids.append(mlflow_id)
            copy.write_row(
                [
                    mlflow_id, experiment_ids[n % len(experiment_ids)], f"table-run-{n}",
                    "FINISHED", users[n % len(users)], start, start + timedelta(seconds=60),
                    "active",
                    json.dumps(params), json.dumps(metrics), "{}", "", "train.py", "", now,
                ]
            )  # fmt: skip
    return mlflow_ids


def analyze(table: str) -> None:
    """VACUUM ANALYZE a freshly loaded table, as autovacuum would have."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")


def time_table(viewer: object, rounds: int) -> list[tuple]:
    from django.test.utils import override_settings

    # Static file names as the finders give them: the bench has no collectstatic manifest.
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        return _time_table(viewer, rounds)


NEXT_LINK = re.compile(r'href="(\?[^"]*after=[^"]*)"')


def _time_table(viewer: object, rounds: int) -> list[tuple]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client = Client()
    client.force_login(viewer)
    base = reverse("experiment", args=[PROJECT, TABLE_EXPERIMENT])

    def third_page(url: str) -> str:
        """Follow the page's own "Next runs" link twice, as a person reading on would."""
        for _ in range(2):
            link = NEXT_LINK.search(client.get(url).content.decode())
            assert link, f"no next link on {url}"
            url = base + html.unescape(link.group(1))
        return url

    by_metric = f"{base}?sort=-metric:metric_003"
    pages = [
        ("newest first", base),
        ("by a metric", by_metric),
        ("3rd page, newest first", third_page(base)),
        ("3rd page, by a metric", third_page(by_metric)),
    ]
    results = []
    for name, url in pages:
        client.get(url)  # warm
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            assert response.content.count(b'name="run" value=') == 50, url
        timings.sort()
        p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
        results.append((name, statistics.median(timings), p95, len(queries)))
    return results


def time_reference(rounds: int) -> tuple[float, float]:
    """The reference: the first page's 51 runs alone, newest first, read along the index the
    runs table has for this order."""
    from django.db.models import Value
    from django.db.models.functions import Coalesce

    from governance.registry.models import EPOCH, Experiment, Run

    experiment = Experiment.objects.get(mlflow_id=TABLE_EXPERIMENT)
    runs = Run.objects.filter(experiment=experiment, lifecycle="active")
    newest = Coalesce("start_time", Value(EPOCH)).desc()
    timings = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        page = list(runs.order_by(newest, "-id")[:51])
        timings.append((time.perf_counter() - started) * 1000)
        assert len(page) == 51
    timings = sorted(timings[1:])  # the first warms
    return statistics.median(timings), timings[max(0, round(0.95 * len(timings)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_SYNC_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=500)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--table-runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N",
        help="also profile a full sync and print its N heaviest functions",
    )  # fmt: skip
    options = parser.parse_args()

    began = time.perf_counter()
    ensure_database(options.database)
    setup_django(options.database)
    project, viewer = prepare_site()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    say(f"Quorum MLflow sync benchmarks, PostgreSQL, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="quorum-bench-sync-") as directory:
        uri, built = build_store(Path(directory), options.runs, options.versions, options.models)
        check_store(uri, options.versions, options.models)
        size = (Path(directory) / "mlflow.db").stat().st_size / 2**20
        say(
            f"MLflow store: {options.runs} runs x {PARAMS} params and {METRICS} metrics, "
            f"{options.versions} versions of {options.models} models, {size:.0f} MB SQLite, "
            f"built in {built:.1f} s (setup, not a measure)"
        )

        bare, runs, versions = bare_read(uri)
        assert (runs, versions) == (options.runs, options.versions), (runs, versions)
        say(
            f"  reference, bare MlflowClient reading {runs} runs and {versions} versions: "
            f"{bare:.1f} s"
        )
        reset_mirror()
        seconds, job, mlflow = quorum_sync(uri, full=True)
        signatures = mlflow.spent["read"]
        reads = sum(v for k, v in mlflow.spent.items() if k != "read")
        say(
            f"full sync into an empty mirror: {seconds:6.1f} s, ratio to bare "
            f"{seconds / bare:.2f}x (goal <= 1.5x); {job.state}, counts {job.counts}"
        )
        say(
            f"  of which MLflow reads {reads:.1f} s, signature lookups "
            f"{signatures:.1f} s ({mlflow.calls['read']} calls, "
            f"{signatures / max(1, mlflow.calls['read']) * 1000:.0f} ms each), "
            f"the rest (conversion, PostgreSQL, audit trail) {seconds - reads - signatures:.1f} s"
        )
        say(
            f"  without the signature lookups: {seconds - signatures:.1f} s, ratio to bare "
            f"{(seconds - signatures) / bare:.2f}x"
        )

        seconds, job, mlflow = quorum_sync(uri, full=False)
        calls = ", ".join(
            f"{name} {mlflow.calls[name]}x {spent:.2f} s" for name, spent in mlflow.spent.items()
        )
        say(
            f"idle incremental sync:         {seconds:6.2f} s (goal <= 1 s); {job.state}, "
            f"counts {job.counts}; MLflow calls: {calls}"
        )
        if options.profile:
            profile_sync(uri, options.profile)

    loaded = fill_table(project, options.table_runs)
    say(
        f"runs table: {options.table_runs} runs in one experiment, loaded in {loaded:.1f} s (setup)"
    )
    for name, p50, p95, queries in time_table(viewer, options.rounds):
        say(f"page runs, {name:23} p50 {p50:7.1f} ms, p95 {p95:7.1f} ms, {queries} queries")
    p50, p95 = time_reference(options.rounds)
    say(
        f"  reference, newest 51 runs by the index, query alone: p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    )
    say(f"whole benchmark: {time.perf_counter() - began:.0f} s")

    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sync.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
