"""The audit trail's benchmarks, on PostgreSQL. Run with `make bench` or

    .venv/bin/python -m benches.audit [--events 1000000] [--database postgres://…]

It uses (and creates) a database of its own, `quorum_bench` by default, never the site's. It
measures appends through `record` (one writer, then eight), verification of the whole chain,
streamed exports and their peak memory, and the trail and feed pages; each against a plain
reference measured in the same run, printed as a ratio.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/quorum_bench"
PROJECTS = 20
ACTORS = 50


def setup_django(database: str) -> None:
    os.environ["DATABASE_URL"] = database
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ.setdefault("QUORUM_VAR_DIR", str(ROOT / "var" / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ensure_database(database: str) -> None:
    import psycopg

    name = database.rsplit("/", 1)[1]
    server = database.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


# The site


def prepare_site() -> tuple[object, object, list[object]]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from governance.access import services
    from governance.access.models import Project

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    admin, _ = user_model.objects.get_or_create(
        username="bench-admin", defaults={"is_superuser": True, "is_staff": True}
    )
    auditor, _ = user_model.objects.get_or_create(username="bench-auditor")
    projects = []
    for n in range(PROJECTS):
        project = Project.objects.filter(slug=f"bench-{n}").first()
        if project is None:
            project = services.create_project(actor=admin, slug=f"bench-{n}", name=f"Bench {n}")
            services.add_member(actor=admin, project=project, user=auditor, role="auditor")
        projects.append(project)
    return admin, auditor, projects


def reset_trail() -> None:
    from django.db import connection

    from governance.audit.chain import GENESIS
    from governance.audit.db import protect_sql, unprotect_sql
    from governance.audit.models import ChainHead, VerificationRun

    with connection.cursor() as cursor:
        for statement in unprotect_sql("postgresql"):
            cursor.execute(statement)
        cursor.execute("TRUNCATE audit_auditevent")
        for statement in protect_sql("postgresql"):
            cursor.execute(statement)
    ChainHead.objects.update(seq=0, hash=GENESIS)
    VerificationRun.objects.all().delete()


# Appends


def append(count: int, project: object) -> float:
    from django.db import transaction

    from governance.audit.services import SystemActor, record

    actor = SystemActor("bench")
    started = time.perf_counter()
    for n in range(count):
        with transaction.atomic():
            record(actor=actor, action="bench.appended", project=project, payload={"n": n})
    return count / (time.perf_counter() - started)


def append_batched(count: int, project: object, per_transaction: int = 10) -> float:
    """record() as services call it: a few events in each transaction."""
    from django.db import transaction

    from governance.audit.services import SystemActor, record

    actor = SystemActor("bench")
    started = time.perf_counter()
    for start in range(0, count, per_transaction):
        with transaction.atomic():
            for n in range(start, min(count, start + per_transaction)):
                record(actor=actor, action="bench.appended", project=project, payload={"n": n})
    return count / (time.perf_counter() - started)


def append_unchained(count: int, project: object) -> float:
    """The reference: the same row, inserted with no chain to take part in."""
    import secrets

    from django.db import transaction
    from django.utils import timezone

    from governance.audit.models import AuditEvent

    base = 10**12  # far from the chain's sequence numbers; deleted afterwards
    started = time.perf_counter()
    for n in range(count):
        with transaction.atomic():
            AuditEvent.objects.create(
                seq=base + n,
                at=timezone.now(),
                actor_kind="system",
                actor_name="bench",
                action="bench.unchained",
                project=project,
                payload=json.dumps({"n": n}),
                prev_hash="0" * 64,
                hash=secrets.token_hex(32),
            )
    rate = count / (time.perf_counter() - started)
    return rate


def append_concurrently(writers: int, each: int, project: object) -> float:
    from django.db import connection

    barrier = threading.Barrier(writers + 1)

    def work() -> None:
        try:
            barrier.wait()
            append(each, project)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return writers * each / (time.perf_counter() - started)


def drop_unchained() -> None:
    from django.db import connection

    from governance.audit.db import protect_sql, unprotect_sql

    with connection.cursor() as cursor:
        for statement in unprotect_sql("postgresql"):
            cursor.execute(statement)
        cursor.execute("DELETE FROM audit_auditevent WHERE action = 'bench.unchained'")
        for statement in protect_sql("postgresql"):
            cursor.execute(statement)


# A million events


def bulk_load(total: int, projects: list[object], spread: timedelta | None = None) -> float:
    """Grow the chain to `total` events with COPY, each hashed and linked as record() does.
    All at one moment (now), or with `spread`, evenly over that long up to an hour ago."""
    from django.db import connection
    from django.utils import timezone

    from governance.audit.chain import event_hash, format_time
    from governance.audit.models import ChainHead
    from governance.audit.verification import COLUMNS

    head = ChainHead.objects.get()
    seq, previous = head.seq, head.hash
    started = time.perf_counter()
    moment = timezone.now()
    step = timedelta(0)
    if spread is not None:
        step = spread / max(1, total - seq)
        moment -= spread + timedelta(hours=1)
    at = format_time(moment)
    project_ids = [project.pk for project in projects]
    columns = list(COLUMNS)
    copy_sql = f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
        while seq < total:
            seq += 1
            if step:
                moment += step
                at = format_time(moment)
            actor = seq % ACTORS
            fields = {
                "action": "membership.role_changed",
                "actor_id": actor,
                "actor_kind": "user",
                "actor_name": f"user{actor}",
                "actor_token": "",
                "at": at,
                "ip": "10.1.2.3",
                "payload": '{"after":{"role":"viewer","username":"sam"},'
                '"before":{"role":"auditor","username":"sam"}}',
                "prev_hash": previous,
                "project_id": project_ids[seq % len(project_ids)],
                "request_id": f"req{seq}",
                "seq": seq,
                "target_id": str(seq),
                "target_kind": "membership",
                "target_label": "sam in Bench",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156",
            }
            previous = event_hash(fields)
            copy.write_row([*(fields[c] if c != "at" else moment for c in columns[:-1]), previous])
    ChainHead.objects.update(seq=seq, hash=previous)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")  # as autovacuum would have
    return time.perf_counter() - started


# Verification


def verify_in_database() -> tuple[float, int, bool]:
    from governance.audit.verification import walk_chain

    started = time.perf_counter()
    outcome = walk_chain()
    return time.perf_counter() - started, outcome.checked, outcome.intact


def verify_in_python() -> tuple[float, int, bool]:
    """The reference: the same rule, every event fetched and hashed in Python."""
    from governance.audit.verification import ChainWalker, _rows

    walker = ChainWalker()
    started = time.perf_counter()
    intact = True
    while rows := _rows(walker.seq, 20_000):
        for row in rows:
            if walker.feed(row) is not None:
                intact = False
                break
        if not intact:
            break
    return time.perf_counter() - started, walker.checked, intact


# Exports, each in a process of its own so that its peak memory is its own


def export_child(fmt: str, naive: bool) -> dict[str, float]:
    """Export 1/20 of the trail first, then all of it: memory that grows with the size of the
    export shows as the second peak above the first."""
    import csv

    from django.contrib.auth import get_user_model

    from governance.access.models import Project
    from governance.audit import selectors, services
    from governance.audit.exports import COLUMNS

    admin = get_user_model().objects.get(username="bench-admin")
    before = rss_mb()

    def export(criteria: dict) -> tuple[int, int, float]:
        started = time.perf_counter()
        with tempfile.TemporaryFile() as sink:
            if naive:
                events = selectors.filter_trail(selectors.trail_for(admin), **criteria)
                rows = list(events.order_by("seq").values_list(*COLUMNS))
                text = open(sink.fileno(), "w", closefd=False, newline="")  # noqa: SIM115
                csv.writer(text).writerows(rows)
                text.flush()
                count = len(rows)
            else:
                event = services.export_trail(
                    actor=admin, fmt=fmt, criteria=criteria, destination=sink
                )
                count = event.data["rows"]
            return count, sink.seek(0, 2), time.perf_counter() - started

    export({"project": Project.objects.get(slug="bench-0")})
    small_peak = max_rss_mb()
    count, size, seconds = export({})
    return {
        "seconds": seconds,
        "rows": count,
        "megabytes": size / 2**20,
        "growth_mb": max_rss_mb() - small_peak,
        "from_start_mb": max_rss_mb() - before,
    }


def run_export(database: str, fmt: str, naive: bool = False) -> dict[str, float]:
    command = [sys.executable, "-m", "benches.audit", "--database", database, "--export", fmt]
    if naive:
        command.append("--naive")
    result = subprocess.run(  # noqa: S603
        command, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# Pages


def time_pages(admin: object, auditor: object, project: object, rounds: int) -> list[tuple]:
    from django.test.utils import override_settings

    # Static file names as the finders give them: the bench has no collectstatic manifest.
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        return _time_pages(admin, auditor, project, rounds)


def _time_pages(admin: object, auditor: object, project: object, rounds: int) -> list[tuple]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    pages = [
        ("trail, admin", admin, "/audit/"),
        ("trail, auditor", auditor, "/audit/"),
        ("trail, one actor", auditor, "/audit/?actor=user7"),
        ("trail, deep page", auditor, "/audit/?before=500000"),
        ("project feed", auditor, f"/projects/{project.slug}/activity/"),
        ("events API", auditor, "/api/v1/audit/events/"),
    ]
    results = []
    for name, user, url in pages:
        client = Client()
        client.force_login(user)
        client.get(url)  # warm
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        timings.sort()
        p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
        results.append((name, statistics.median(timings), p95, len(queries)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=4_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.export:
        setup_django(options.database)
        print(json.dumps(export_child(options.export, options.naive)))
        return

    ensure_database(options.database)
    setup_django(options.database)
    from governance.audit.verification import walk_chain

    admin, auditor, projects = prepare_site()
    reset_trail()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    say(f"Quorum audit benchmarks, PostgreSQL, {os.cpu_count()} cores")

    one = append(options.appends, projects[0])
    plain = append_unchained(options.appends, projects[0])
    drop_unchained()
    batched = append_batched(options.appends, projects[0])
    many = append_concurrently(options.writers, options.appends // options.writers, projects[1])
    outcome = walk_chain()
    gapless = outcome.intact and outcome.checked == outcome.head_seq
    say(
        f"append, 1 writer:        {one:8.0f} events/s (goal >= 2000); "
        f"unchained insert {plain:.0f}/s, ratio {one / plain:.2f}"
    )
    say(f"append, 1 writer, 10 per transaction: {batched:6.0f} events/s")
    say(
        f"append, {options.writers} writers:       {many:8.0f} events/s; "
        f"chain intact without gaps: {gapless} ({outcome.checked} events)"
    )

    loaded = bulk_load(options.events, projects)
    say(f"bulk load to {options.events} events: {loaded:.1f} s (setup, not a measure)")

    seconds, checked, intact = verify_in_database()
    py_seconds, py_checked, _ = verify_in_python()
    say(
        f"verify {checked} events:   {seconds:8.2f} s, {checked / seconds:,.0f} rows/s "
        f"(goal <= 5 s), intact: {intact}"
    )
    say(
        f"  reference, Python walk: {py_seconds:.2f} s, {py_checked / py_seconds:,.0f} rows/s; "
        f"database/Python speed ratio {py_seconds / seconds * checked / py_checked:.1f}x"
    )

    for fmt in ("csv", "jsonl"):
        result = run_export(options.database, fmt)
        say(
            f"export {fmt:5} {result['rows']} rows: {result['seconds']:6.1f} s, "
            f"{result['rows'] / result['seconds']:,.0f} rows/s, {result['megabytes']:.0f} MB, "
            f"memory growth beyond a 1/20 export {result['growth_mb']:.1f} MB (goal <= 50), "
            f"{result['from_start_mb']:.0f} MB from start"
        )
    naive = run_export(options.database, "csv", naive=True)
    say(
        f"  reference, all rows in memory then csv: {naive['seconds']:.1f} s, "
        f"growth beyond a 1/20 export {naive['growth_mb']:.0f} MB"
    )

    for name, p50, p95, queries in time_pages(admin, auditor, projects[3], options.rounds):
        say(f"page {name:17} p50 {p50:7.1f} ms, p95 {p95:7.1f} ms, {queries} queries")

    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
