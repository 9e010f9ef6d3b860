"""The main pages' and API lists' server time at scale, on PostgreSQL. Run with `make bench` or

    .venv/bin/python -m benches.pages [--scale 1] [--rounds 30] [--database postgres://…]

It uses (and creates) a database of its own, `quorum_bench_pages` by default (or
BENCH_PAGES_DATABASE_URL), never the site's, and fills it once with a generated site: 10
projects with the cast of roles as members, 100,000 runs over 50 experiments, 10,000 model
versions over 100 registered models (aliases, cards), open approval requests, monitors with
checks, feature statistics and alerts, bias reports, jobs with their logs, deployment targets
with their histories, retraining runs, notifications and 1,000,000 audit events forming one
valid chain. A second run finds the site complete (a marker table records the scale it was
made for, and its name the generator's version) and starts at once; `--scale 0.1` makes (and
keeps) a smaller site in a database of its own.

Pages are asked in-process with Django's test `Client`, logged in per role: what is measured
is the server's own time (URL resolution, middleware, view, queries, template) and the queries
each answer makes, with no network or worker scheduling in between. `gate.py` already measures
a served gunicorn; here the figure compared to the 100 ms goal is the page's own work. The
reference rows (`/healthz`, `/api/v1/me/`) are measured the same way in the same run, and each
page's p50 is printed as a ratio to `/api/v1/me/`'s.
"""

import argparse
import os
import random
import statistics
import time
from datetime import timedelta
from pathlib import Path

from benches.audit import bulk_load, ensure_database, setup_django
from benches.sync import analyze, copy_runs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/quorum_bench_pages"
GOAL_MS = 100
PROJECTS = 10
EXPERIMENTS = 5  # per project
MODELS = 10  # per project
CAST = {
    "bench-owner": "product_owner",
    "bench-scientist": "data_scientist",
    "bench-engineer": "ml_engineer",
    "bench-auditor": "auditor",
    "bench-viewer": "viewer",
}
FEATURES = 10
# Names the generator's version: a site made by an earlier generator is made again.
MARKER = "bench_pages_marker_2"


def sizes(scale: float) -> dict[str, int]:
    def of(count: int) -> int:
        return max(1, round(count * scale))

    return {
        "runs": of(100_000),
        "versions": of(10_000),
        "events": of(1_000_000),
        "requests": of(5),  # open approval requests per project
        "monitors": 3,  # per project
        "checks": of(200),  # per monitor
        "reports": of(20),  # bias reports per project
        "jobs": of(300),  # per project
        "targets": 5,  # per project, each with a history of deployments
        "deployments": of(40),  # per target
        "retrainings": of(200),  # retraining runs per project, over its first ten models
        "lines": 20,  # per job
        "notifications": of(5_000),  # per person
    }


# The database, made once


def site_ready(database: str, scale: float) -> bool:
    """Whether the database holds a complete site of this scale; one that does not (a run
    stopped half way, another scale) is dropped so that it is made again from nothing."""
    import psycopg

    ensure_database(database)
    with psycopg.connect(database, autocommit=True) as conn:
        found = conn.execute(f"SELECT to_regclass('{MARKER}')").fetchone()[0]
        made_for = f"SELECT scale FROM {MARKER}"  # noqa: S608 (a constant of this module)
        if found and conn.execute(made_for).fetchone()[0] == scale:
            return True
    name = database.rsplit("/", 1)[1]
    server = database.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return False


def generate(scale: float, say: object) -> None:
    from django.core.management import call_command
    from django.db import connection

    count = sizes(scale)
    began = time.perf_counter()
    call_command("migrate", verbosity=0)
    people, projects = make_people_and_projects()
    rng = random.Random(5)
    experiments = make_experiments(projects)
    # The trail of a year's work, older than what follows (the services append theirs now).
    bulk_load(count["events"], projects, spread=timedelta(days=365))
    # The data scientist made one run in twenty; the rest are made-up MLflow users'.
    authors = ["bench-scientist", *(f"user{n}" for n in range(1, 20))]
    copy_runs([e.pk for e in experiments], count["runs"], rng, users=authors)
    analyze("registry_run")
    versions = make_versions(projects, count["versions"])
    open_requests(people, projects, versions, count["requests"])
    make_monitors(people, projects, versions, count["monitors"], count["checks"])
    make_bias_reports(people, projects, versions, count["reports"])
    make_jobs(people, projects, versions, count["jobs"], count["lines"])
    make_deployments(people, projects, versions, count["targets"], count["deployments"])
    make_retraining_runs(people, projects, versions, count["retrainings"])
    make_notifications(people, projects, count["notifications"])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(f"CREATE TABLE {MARKER} (scale double precision)")
        cursor.execute(f"INSERT INTO {MARKER} VALUES (%s)", [scale])  # noqa: S608
    say(f"generated the site in {time.perf_counter() - began:.0f} s (setup, not a measure)")


def make_people_and_projects() -> tuple[dict[str, object], list[object]]:
    from django.contrib.auth import get_user_model

    from governance.access import services

    user_model = get_user_model()
    admin = user_model.objects.create(username="bench-admin", is_superuser=True, is_staff=True)
    people = {"admin": admin}
    for username, role in CAST.items():
        people[role] = user_model.objects.create(username=username, email=f"{username}@bench")
    projects = []
    for n in range(PROJECTS):
        project = services.create_project(
            actor=admin, slug=f"bench-{n}", name=f"Bench {n}", owner=people["product_owner"]
        )
        for role in CAST.values():
            if role != "product_owner":
                services.add_member(actor=admin, project=project, user=people[role], role=role)
        projects.append(project)
    return people, projects


def make_experiments(projects: list[object]) -> list[object]:
    """The mirror as the sync leaves it: rows written directly, MLflow is not involved."""
    from governance.registry.models import Experiment

    return Experiment.objects.bulk_create(
        Experiment(
            mlflow_id=f"{p.pk}{n:03}", name=f"{p.slug}/experiment-{n}", project=p,
            linked_in_quorum=True,
        )
        for p in projects
        for n in range(EXPERIMENTS)
    )  # fmt: skip


def make_versions(projects: list[object], total: int) -> dict[int, list[object]]:
    """`total` versions dealt over MODELS models per project, each from one of the project's
    runs; every model has `production` and `staging` aliases, its ten newest versions a card."""
    from django.utils import timezone

    from governance.registry.models import ModelCard, ModelVersion, RegisteredModel, Run

    now = timezone.now()
    per_model = max(1, total // (PROJECTS * MODELS))
    by_project = {}
    for project in projects:
        runs = list(
            Run.objects.filter(experiment__project=project)
            .order_by("-id")
            .values_list("pk", "mlflow_id")[:per_model]
        )
        models = RegisteredModel.objects.bulk_create(
            RegisteredModel(
                name=f"{project.slug}-model-{m}", project=project, linked_in_quorum=True,
                description="A model of the pages benchmark.", created_at=now, updated_at=now,
                aliases={"production": max(1, per_model - 1), "staging": per_model},
                tags={"team": "bench"},
            )
            for m in range(MODELS)
        )  # fmt: skip
        versions = ModelVersion.objects.bulk_create(
            ModelVersion(
                model=model, version=v + 1, run_id=runs[v % len(runs)][0],
                run_mlflow_id=runs[v % len(runs)][1], source=f"runs:/{runs[v % len(runs)][1]}/m",
                status="READY", user="bench-scientist" if v % 20 == 0 else "user1",
                tags={"team": "bench"},
                created_at=now - timedelta(minutes=per_model - v), updated_at=now,
            )
            for model in models
            for v in range(per_model)
        )  # fmt: skip
        ModelCard.objects.bulk_create(
            ModelCard(
                version=version, revision=1, complete=True,
                sections={"intended_use": "Scoring bench applicants.", "limitations": "None."},
            )
            for version in versions
            if version.version > per_model - 10
        )  # fmt: skip
        by_project[project.pk] = [v for v in versions if v.version == per_model]  # the newest
    return by_project


def open_requests(people: dict, projects: list, versions: dict, each: int) -> None:
    """Open requests through the services, as people make them: their events and the
    approvers' notifications come with them."""
    from governance.access.roles import Role
    from governance.approvals import services

    for project in projects:
        services.save_policy(
            actor=people["product_owner"], project=project, stage="production",
            required={Role.PRODUCT_OWNER: 1, Role.ML_ENGINEER: 1}, gates_=[],
        )  # fmt: skip
        for version in versions[project.pk][:each]:
            services.open_request(
                actor=people["data_scientist"], version=version, stage="production", note="ok"
            )


def make_monitors(people: dict, projects: list, versions: dict, each: int, checks: int) -> None:
    """Monitors as the worker leaves them: `checks` finished drift checks each, every check
    with its FEATURES statistics, and an open alert on two features."""
    from django.utils import timezone

    from governance.monitoring.models import DriftAlert, DriftCheck, FeatureDrift, Monitor
    from governance.registry.models import DatasetVersion

    now = timezone.now()
    for project in projects:
        reference = DatasetVersion.objects.create(
            name=f"{project.slug}-reference", digest=f"{project.pk:064x}", project=project
        )
        for m, version in enumerate(versions[project.pk][:each]):
            monitor = Monitor.objects.create(
                project=project, name=f"monitor {m}", version=version, reference=reference,
                created_by=people["ml_engineer"],
            )  # fmt: skip
            monitor.subscribers.add(people["ml_engineer"], people["product_owner"])
            made = DriftCheck.objects.bulk_create(
                DriftCheck(
                    monitor=monitor, trigger="schedule", state="done", drifted=c % 7 == 0,
                    drifted_share=0.2 if c % 7 == 0 else 0.0,
                    created_at=now - timedelta(hours=checks - c),
                    started_at=now - timedelta(hours=checks - c),
                    finished_at=now - timedelta(hours=checks - c),
                )
                for c in range(checks)
            )  # fmt: skip
            FeatureDrift.objects.bulk_create(
                FeatureDrift(
                    drift_check=check, monitor=monitor, feature=f"feature_{f}", kind="numeric",
                    psi=0.05 * f, p_value=0.5, statistic=0.1, js_distance=0.05,
                    drifted=check.drifted and f < 2, at=check.finished_at,
                )
                for check in made
                for f in range(FEATURES)
            )  # fmt: skip
            DriftAlert.objects.bulk_create(
                DriftAlert(
                    monitor=monitor, feature=f"feature_{f}", opened_by=made[-1],
                    last_seen=made[-1], reasons=["psi"],
                )
                for f in range(2)
            )  # fmt: skip


def make_bias_reports(people: dict, projects: list, versions: dict, each: int) -> None:
    from django.utils import timezone

    from governance.fairness.models import BiasReport
    from governance.registry.models import DatasetVersion

    now = timezone.now()
    for project in projects:
        table = DatasetVersion.objects.create(
            name=f"{project.slug}-applicants", digest=f"{project.pk + 1000:064x}", project=project
        )
        newest = versions[project.pk]
        BiasReport.objects.bulk_create(
            BiasReport(
                project=project, version=newest[r % len(newest)], dataset=table,
                y_true="default", sensitive=["sex"], state="done", passed=r % 4 != 0,
                created_by=people["data_scientist"], created_at=now - timedelta(hours=r),
                finished_at=now - timedelta(hours=r),
            )
            for r in range(each)
        )  # fmt: skip


def make_jobs(people: dict, projects: list, versions: dict, each: int, lines: int) -> None:
    from django.utils import timezone

    from governance.delivery.models import Job, JobLine

    now = timezone.now()
    for project in projects:
        newest = versions[project.pk]
        jobs = Job.objects.bulk_create(
            Job(
                project=project, kind="package", version=newest[j % len(newest)],
                state="succeeded" if j % 10 else "failed", progress=100, step="done",
                triggered_by=people["ml_engineer"], attempts=1,
                created_at=now - timedelta(minutes=10 * (each - j)),
                enqueued_at=now - timedelta(minutes=10 * (each - j)),
                started_at=now - timedelta(minutes=10 * (each - j)),
                finished_at=now - timedelta(minutes=10 * (each - j) - 5),
                wall_seconds=300, cpu_seconds=120,
            )
            for j in range(each)
        )  # fmt: skip
        JobLine.objects.bulk_create(
            JobLine(job=job, number=n + 1, text=f"step {n + 1} of {lines}")
            for job in jobs
            for n in range(lines)
        )


def make_deployments(people: dict, projects: list, versions: dict, targets: int, each: int) -> None:
    """Targets whose history holds `each` deployments: the newest live (one target in five
    unhealthy), the one before rolled back, the rest superseded."""
    from django.utils import timezone

    from governance.delivery.models import Deployment, Target

    now = timezone.now()
    for project in projects:
        newest = versions[project.pk]
        made = Target.objects.bulk_create(
            Target(project=project, name=f"target-{t}", kind="webhook", stage="staging",
                   settings={"url": f"https://cd.example.com/{t}"},
                   created_by=people["ml_engineer"])
            for t in range(targets)
        )  # fmt: skip
        Deployment.objects.bulk_create(
            Deployment(
                target=target, version=newest[(t + d) % len(newest)],
                state="live" if d == each - 1 else "rolled_back" if d == each - 2 else "superseded",
                health="unhealthy" if t == 0 and d == each - 1 else "healthy",
                probed_at=now, deployed_by=people["ml_engineer"],
                created_at=now - timedelta(hours=each - d),
                endpoint=f"https://cd.example.com/{t}/serving",
            )
            for t, target in enumerate(made)
            for d in range(each)
        )  # fmt: skip


def make_retraining_runs(people: dict, projects: list, versions: dict, each: int) -> None:
    """Retraining policies on ten models per project, and `each` finished runs among them,
    each with its job and the version it registered."""
    from django.utils import timezone

    from governance.delivery.models import Job, RetrainingPolicy, RetrainingRun

    now = timezone.now()
    for project in projects:
        newest = versions[project.pk][:10]
        policies = RetrainingPolicy.objects.bulk_create(
            RetrainingPolicy(model=version.model, project=project, on_drift=True,
                             entry_point="pipelines.credit:PIPELINE",
                             updated_by=people["ml_engineer"])
            for version in newest
        )  # fmt: skip
        jobs = Job.objects.bulk_create(
            Job(project=project, kind="retrain", version=newest[r % len(newest)],
                state="succeeded", progress=100, step="done", trigger="drift",
                created_at=now - timedelta(hours=each - r), attempts=1)
            for r in range(each)
        )  # fmt: skip
        RetrainingRun.objects.bulk_create(
            RetrainingRun(policy=policies[r % len(policies)], job=job, trigger="drift",
                          entry_point="pipelines.credit:PIPELINE", cause={"alert": r},
                          metrics={"roc_auc": 0.8}, registered_version=newest[r % len(newest)],
                          created_at=job.created_at)
            for r, job in enumerate(jobs)
        )  # fmt: skip


def make_notifications(people: dict, projects: list, each: int) -> None:
    from django.utils import timezone

    from governance.notify.models import Notification

    now = timezone.now()
    for person in people.values():
        Notification.objects.bulk_create(
            (
                Notification(
                    recipient=person, project=projects[n % len(projects)], kind="job.finished",
                    subject=f"Job {n} finished", body="The package is ready.",
                    url=f"/projects/{projects[n % len(projects)].slug}/jobs/",
                    key=f"bench-{n}", created_at=now - timedelta(minutes=each - n),
                    read_at=None if n > each - 20 else now, email_state="not_wanted",
                )
                for n in range(each)
            ),
            batch_size=2000,
        )  # fmt: skip


# Measures


def pages(people: dict) -> list[tuple[str, str, str]]:
    """(name, who asks, URL) of each page and API list measured, on the site's first project."""
    from django.urls import reverse

    from governance.approvals.models import ApprovalRequest
    from governance.delivery.models import Target
    from governance.monitoring.models import Monitor
    from governance.registry.models import Experiment, ModelVersion, Run

    slug = "bench-0"
    experiment = Experiment.objects.filter(project__slug=slug).order_by("pk").first()
    run = Run.objects.filter(experiment=experiment).order_by("-id").first()
    version = (
        ModelVersion.objects.filter(model__project__slug=slug)
        .select_related("model")
        .order_by("-version", "model__name")
        .first()
    )
    model = version.model.name
    approval = ApprovalRequest.objects.filter(project__slug=slug).order_by("pk").first()
    monitor = Monitor.objects.filter(project__slug=slug).order_by("pk").first()
    target = Target.objects.filter(project__slug=slug).order_by("pk").first()
    exp = experiment.mlflow_id
    home = [(f"home, {role.replace('_', ' ')}", role, "/") for role in people]
    return [
        ("reference /healthz", "viewer", "/healthz"),
        ("reference /api/v1/me/", "viewer", "/api/v1/me/"),
        *home,
        ("project overview", "viewer", reverse("project_overview", args=[slug])),
        ("experiments", "data_scientist", reverse("experiments", args=[slug])),
        ("an experiment's runs", "data_scientist", reverse("experiment", args=[slug, exp])),
        ("a run", "data_scientist", reverse("run", args=[slug, run.mlflow_id])),
        ("models", "viewer", reverse("models", args=[slug])),
        ("a model", "viewer", reverse("model", args=[slug, model])),
        ("a version", "viewer", reverse("model_version", args=[slug, model, version.version])),
        ("approvals", "product_owner", reverse("approvals", args=[slug])),
        ("an approval", "product_owner", reverse("approval", args=[slug, approval.pk])),
        ("waiting for me", "product_owner", reverse("waiting")),
        ("audit trail", "auditor", reverse("audit_trail")),
        ("project activity", "auditor", reverse("project_activity", args=[slug])),
        ("monitors", "ml_engineer", reverse("monitors", args=[slug])),
        ("a monitor", "ml_engineer", reverse("monitor", args=[slug, monitor.pk])),
        ("jobs", "ml_engineer", reverse("jobs", args=[slug])),
        ("deployments", "ml_engineer", reverse("deployments", args=[slug])),
        ("a target", "ml_engineer", reverse("target", args=[slug, target.pk])),
        ("notifications", "ml_engineer", reverse("notifications")),
        ("API projects", "viewer", "/api/v1/projects/"),
        ("API experiments", "data_scientist", f"/api/v1/projects/{slug}/experiments/"),
        ("API runs", "data_scientist", f"/api/v1/projects/{slug}/experiments/{exp}/runs/"),
        ("API models", "viewer", f"/api/v1/projects/{slug}/models/"),
        ("API audit events", "auditor", "/api/v1/audit/events/"),
        ("API monitors", "ml_engineer", f"/api/v1/projects/{slug}/monitors/"),
        ("API monitor checks", "ml_engineer", f"/api/v1/monitors/{monitor.pk}/checks/"),
        ("API bias reports", "viewer", f"/api/v1/projects/{slug}/bias-reports/"),
        ("API notifications", "ml_engineer", "/api/v1/notifications/"),
    ]  # fmt: skip


def measure(people: dict, rounds: int) -> list[tuple]:
    from django.test.utils import override_settings

    # Static file names as the finders give them: the bench has no collectstatic manifest.
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        return _measure(people, rounds)


def percentile(timings: list[float], share: float) -> float:
    ordered = sorted(timings)
    return ordered[max(0, round(share * len(ordered)) - 1)]


def _measure(people: dict, rounds: int) -> list[tuple]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients = {}
    for role, person in people.items():
        clients[role] = Client()
        clients[role].force_login(person)
    results = []
    for name, role, url in pages(people):
        client = clients[role]
        for _ in range(3):  # warm: templates, caches, the connection
            client.get(url)
        timings, queries = [], 0
        for _ in range(rounds):
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            queries = len(captured)
        results.append(
            (
                name,
                url,
                statistics.median(timings),
                percentile(timings, 0.95),
                percentile(timings, 0.99),
                queries,
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Not BENCH_DATABASE_URL: audit.py empties the trail of the database that names.
    parser.add_argument("--database", default=os.environ.get("BENCH_PAGES_DATABASE_URL"))
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the site, e.g. 0.1")
    parser.add_argument("--rounds", type=int, default=30, help="requests per page, after warm-up")
    options = parser.parse_args()
    database = options.database or DEFAULT_DATABASE
    if not options.database and options.scale != 1:
        database += f"_{str(options.scale).replace('.', '_')}"

    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    began = time.perf_counter()
    ready = site_ready(database, options.scale)
    setup_django(database)
    count = sizes(options.scale)
    say(
        f"Quorum main pages, PostgreSQL, {os.cpu_count()} cores, in-process test Client; site: "
        f"{PROJECTS} projects, {count['runs']:,} runs, {count['versions']:,} versions, "
        f"{count['events']:,} audit events"
    )
    if not ready:
        generate(options.scale, say)
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # the site as the code now wants it
        say("site already generated: reused")

    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.filter(username__startswith="bench")}
    people = {"admin": users["bench-admin"]}
    people.update({role: users[username] for username, role in CAST.items()})

    results = measure(people, options.rounds)
    reference = next(r for r in results if r[0] == "reference /api/v1/me/")[2]
    say(
        f"{options.rounds} requests each after 3 warm-up; goal p95 <= {GOAL_MS} ms; "
        "ratio = p50 / p50 of /api/v1/me/"
    )
    say(f"{'page':24} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'ratio':>6} {'queries':>7}  goal")
    for name, _url, p50, p95, p99, queries in results:
        verdict = "ok" if p95 <= GOAL_MS else "MISSED"
        say(
            f"{name:24} {p50:7.1f} {p95:7.1f} {p99:7.1f} {p50 / reference:6.1f} {queries:7}  "
            f"{verdict}"
        )
    missed = [r[0] for r in results if r[3] > GOAL_MS]
    say(f"missed the goal: {', '.join(missed) if missed else 'none'}")
    say(f"whole benchmark: {time.perf_counter() - began:.0f} s")

    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    name = "pages.txt" if options.scale == 1 else f"pages-{options.scale}.txt"
    (out / name).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
