import http.server
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.audit.models import AuditEvent
from governance.registry import services
from governance.registry.errors import MlflowUnavailable, SyncBusy
from governance.registry.mlflow_client import Mlflow
from governance.registry.models import (
    DatasetVersion,
    Experiment,
    ModelVersion,
    RegisteredModel,
    Run,
    SyncRun,
    SyncState,
)


def sync(full: bool = False) -> SyncRun:
    return services.sync_mlflow(trigger="test", full=full)


def test_first_sync_mirrors_experiments_runs_data_and_models(project, tracking):
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    run_id = tracking.run(
        experiment,
        "logreg",
        params={"C": 0.5, "penalty": "l2"},
        metrics={"auc": [0.71, 0.78, 0.83], "accuracy": 0.9},
        dataset=("applicants", "a1b2c3d4"),
    )
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", run_id)
    tracking.client.set_registered_model_alias("credit-scoring", "champion", "1")

    job = sync()

    assert job.state == SyncRun.State.SUCCEEDED
    mirrored = Experiment.objects.get(name="credit/scoring")
    assert mirrored.project == project
    run = Run.objects.get(mlflow_id=run_id)
    assert run.experiment == mirrored
    assert run.params == {"C": "0.5", "penalty": "l2"}
    assert run.metrics == {"auc": 0.83, "accuracy": 0.9}
    assert run.code_version == "9f2c1e7a" * 5
    assert run.status == "FINISHED"
    (used,) = run.inputs.select_related("dataset")
    assert (used.dataset.name, used.dataset.digest, used.context) == (
        "applicants",
        "a1b2c3d4",
        "training",
    )
    assert used.dataset.profile == {"num_rows": 1000}
    model = RegisteredModel.objects.get(name="credit-scoring")
    assert (model.project, model.aliases) == (project, {"champion": 1})
    version = ModelVersion.objects.get(model=model, version=1)
    assert (version.run, version.run_mlflow_id) == (run, run_id)


def test_registry_changes_become_audit_events_by_mlflow_sync(project, tracking):
    run_id = tracking.run(tracking.experiment("e", project="credit-risk"))
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", run_id)
    sync()
    actions = set(
        AuditEvent.objects.filter(actor_name="mlflow-sync").values_list("action", flat=True)
    )
    assert {"model.registered", "model_version.registered", "mlflow.synced"} <= actions
    registered = AuditEvent.objects.get(action="model_version.registered")
    assert registered.project == project


def test_an_alias_moved_outside_quorum_is_recorded(project, tracking):
    run_id = tracking.run(tracking.experiment("e", project="credit-risk"))
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", run_id)
    tracking.version("credit-scoring", run_id)
    tracking.client.set_registered_model_alias("credit-scoring", "production", "1")
    sync()
    tracking.client.set_registered_model_alias("credit-scoring", "production", "2")
    sync()
    moved = AuditEvent.objects.get(action="model.alias_moved")
    assert moved.data == {"alias": "production", "before": {"version": 1}, "after": {"version": 2}}


def test_incremental_sync_picks_up_new_and_finished_runs(project, tracking):
    experiment = tracking.experiment("e", project="credit-risk")
    running = tracking.run(experiment, "long", finish=False)
    sync()
    assert Run.objects.get(mlflow_id=running).status == "RUNNING"
    tracking.client.set_terminated(running)
    newer = tracking.run(experiment, "newer")
    job = sync()
    assert Run.objects.get(mlflow_id=running).status == "FINISHED"
    assert Run.objects.filter(mlflow_id=newer).exists()
    assert job.counts["runs_new"] == 1


def test_an_idle_sync_changes_nothing_and_records_nothing(project, tracking):
    tracking.run(tracking.experiment("e", project="credit-risk"))
    sync()
    events = AuditEvent.objects.count()
    job = sync()
    assert job.counts.get("runs_new", 0) == 0
    assert AuditEvent.objects.count() == events


def test_odd_values_survive_the_mirror(project, tracking):
    experiment = tracking.experiment("données — 実験 🧪", project="credit-risk")
    params = {f"p{n:04d}": n for n in range(1500)}
    run_id = tracking.run(
        experiment,
        "ünïcode run",
        params=params,
        metrics={"nan": float("nan"), "up": float("inf"), "down": float("-inf")},
    )
    sync()
    run = Run.objects.get(mlflow_id=run_id)
    assert run.experiment.name == "données — 実験 🧪"
    assert len(run.params) == 1500
    # MLflow's SQL store keeps infinities as the largest floats; NaN stays NaN.
    assert run.metrics["nan"] == "NaN"
    assert run.metrics["up"] > 1e308
    assert run.metrics["down"] < -1e308


@pytest.mark.parametrize(
    ("value", "kept"),
    [(float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity"), (0.5, 0.5)],
)
def test_metrics_json_cannot_hold_are_kept_by_name(value, kept):
    from governance.registry.mirror import metric_value

    assert metric_value(value) == kept


def test_deleted_and_restored_experiments_and_runs_follow_mlflow(project, tracking):
    experiment = tracking.experiment("e", project="credit-risk")
    run_id = tracking.run(experiment)
    sync()
    tracking.client.delete_experiment(experiment)
    tracking.client.delete_run(run_id)
    sync(full=True)
    assert Experiment.objects.get(mlflow_id=experiment).lifecycle == "deleted"
    assert Run.objects.get(mlflow_id=run_id).lifecycle == "deleted"
    tracking.client.restore_experiment(experiment)
    tracking.client.restore_run(run_id)
    sync(full=True)
    assert Experiment.objects.get(mlflow_id=experiment).lifecycle == "active"
    assert Run.objects.get(mlflow_id=run_id).lifecycle == "active"


def test_a_version_keeps_its_source_run_id_when_the_run_is_deleted(project, tracking):
    run_id = tracking.run(tracking.experiment("e", project="credit-risk"))
    tracking.model("m", project="credit-risk")
    tracking.version("m", run_id)
    tracking.client.delete_run(run_id)
    sync(full=True)
    version = ModelVersion.objects.get(model__name="m")
    assert version.run_mlflow_id == run_id
    assert version.run.lifecycle == "deleted"


def test_full_sync_marks_versions_mlflow_deleted(project, tracking):
    run_id = tracking.run(tracking.experiment("e", project="credit-risk"))
    tracking.model("m", project="credit-risk")
    tracking.version("m", run_id)
    sync()
    tracking.client.delete_model_version("m", "1")
    sync(full=True)
    assert ModelVersion.objects.get(model__name="m").lifecycle == "deleted"
    assert AuditEvent.objects.filter(action="model_version.deleted").exists()


def test_objects_without_a_project_tag_wait_unclaimed(project, tracking):
    tracking.experiment("orphan")
    tracking.model("orphan-model")
    sync()
    assert Experiment.objects.get(name="orphan").project is None
    assert RegisteredModel.objects.get(name="orphan-model").project is None


def test_a_dataset_seen_twice_is_one_version(project, tracking):
    experiment = tracking.experiment("e", project="credit-risk")
    tracking.run(experiment, dataset=("applicants", "d1"))
    tracking.run(experiment, dataset=("applicants", "d1"))
    sync()
    assert DatasetVersion.objects.filter(name="applicants").count() == 1


# Faults


@pytest.fixture
def no_http_retries(monkeypatch):
    """MLflow's own retries wait seconds; the behaviour under test is the same without them."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def test_unreachable_mlflow_fails_the_sync_with_the_reason_and_changes_nothing(db, no_http_retries):
    with pytest.raises(MlflowUnavailable):
        services.sync_mlflow(trigger="test", mlflow=Mlflow("http://127.0.0.1:9"))
    job = SyncRun.objects.get()
    assert job.state == SyncRun.State.FAILED
    assert "unreachable" in job.error
    assert not Experiment.objects.exists()
    assert SyncState.objects.get().lease_owner == ""


@pytest.fixture
def failing_server(no_http_retries):
    """A real HTTP server that answers 500 to everything, as a broken MLflow would."""

    class Broken(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error_code": "INTERNAL_ERROR", "message": "database is down"}')

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_mlflow_answering_500_fails_the_sync_clearly(db, failing_server):
    with pytest.raises(MlflowUnavailable) as error:
        services.sync_mlflow(trigger="test", mlflow=Mlflow(failing_server))
    assert "database is down" in error.value.message or "500" in error.value.message
    assert SyncRun.objects.get().state == SyncRun.State.FAILED


def test_two_syncs_never_run_at_once(db, tracking):
    SyncState.objects.get_or_create(pk=1)
    assert services._take_lease("other")
    with pytest.raises(SyncBusy):
        sync()
    assert not SyncRun.objects.exists()


def test_the_task_retries_only_when_mlflow_is_unavailable():
    from governance.registry.tasks import sync_mlflow

    assert sync_mlflow.autoretry_for == (MlflowUnavailable,)
    assert sync_mlflow.retry_backoff


def test_command_reports_counts(project, tracking, capsys):
    tracking.run(tracking.experiment("e", project="credit-risk"))
    call_command("sync_mlflow")
    assert "runs_new 1" in capsys.readouterr().out


def test_command_fails_clearly_when_mlflow_is_unreachable(db, no_http_retries):
    with pytest.raises(CommandError, match="unreachable"):
        call_command("sync_mlflow", "--tracking-uri", "http://127.0.0.1:9")
