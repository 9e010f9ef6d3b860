"""Retraining: a policy per registered model runs the team's pipeline through the job runner,
records what makes the run reproducible in MLflow, registers and mirrors the new version, and
opens its approval request; drift alerts, new batches and a schedule start it, one at a time
and not before the cooldown; a rerun says whether the metrics came out the same."""

import json
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from governance.access.errors import NotAllowed
from governance.access.roles import Role
from governance.approvals import services as approvals
from governance.approvals.models import ApprovalRequest
from governance.audit.models import AuditEvent
from governance.delivery import runner, services, tasks
from governance.delivery import services as job_services
from governance.delivery.errors import (
    InvalidCron,
    InvalidPipeline,
    RetrainingBusy,
    RetrainingDataGone,
)
from governance.delivery.models import Job, RetrainingPolicy, RetrainingRun
from governance.errors import DomainError, InvalidInput
from governance.monitoring import services as monitoring
from governance.registry import demo, tables
from governance.registry import services as registry
from governance.registry.models import ModelVersion, RegisteredModel
from tests.factories import make_version
from tests.monitoring.test_monitors import csv_of, frame

SMALL = "tests.delivery.retraining_pipelines:SMALL"
BROKEN = "tests.delivery.retraining_pipelines:BROKEN"
DEMO = "governance.delivery.demo_pipeline:CREDIT_SCORING"


@pytest.fixture
def model(project, tracking) -> RegisteredModel:
    """credit-scoring v1 in MLflow and the mirror, with a staging release policy."""
    tracking.sklearn_version("credit-scoring", project="credit-risk")
    registry.sync_mlflow(trigger="test")
    return RegisteredModel.objects.get(name="credit-scoring")


@pytest.fixture
def staging(project, owner) -> None:
    approvals.save_policy(
        actor=owner, project=project, stage="staging", required={Role.PRODUCT_OWNER: 1}
    )


def policy_of(model, engineer, **changes) -> RetrainingPolicy:
    settings_ = {"entry_point": SMALL, "params": {"C": 0.5}, "seed": 7, "cooldown_minutes": 0}
    settings_.update(changes)
    return services.save_retraining_policy(actor=engineer, model=model, **settings_)


def run_now(policy, engineer) -> RetrainingRun:
    """A person's "run now", carried out by the runner as a worker would."""
    run = services.trigger_retraining(policy=policy, trigger="manual", actor=engineer)
    runner.execute(run.job_id)
    run.refresh_from_db()
    run.job.refresh_from_db()
    return run


def log_of(job: Job) -> str:
    return "\n".join(job.lines.order_by("number").values_list("text", flat=True))


def actions_since(seq: int) -> list[str]:
    return list(
        AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("action", flat=True)
    )


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# A real run


def test_a_run_records_its_inputs_in_mlflow_registers_mirrors_and_opens_an_approval(
    model, engineer, staging, tracking
):
    policy = policy_of(model, engineer, open_approval_for_stage="staging")
    run = run_now(policy, engineer)

    assert run.job.state == Job.State.SUCCEEDED, log_of(run.job)
    assert run.registered_number == 2
    assert run.registered_version == ModelVersion.objects.get(model=model, version=2)
    assert run.registered_version.run_mlflow_id == run.mlflow_run_id

    logged = tracking.client.get_run(run.mlflow_run_id).data
    assert logged.params == {"C": "0.5", "seed": "7"}
    assert logged.tags["quorum.entry_point"] == SMALL
    assert logged.tags["quorum.trigger"] == "manual"
    assert logged.tags["quorum.seed"] == "7"
    assert logged.tags["quorum.code_version"] == run.code_version != ""
    assert len(logged.tags["quorum.env_hash"]) == 64 == len(run.env_hash)
    assert logged.metrics["accuracy"] == pytest.approx(run.metrics["accuracy"])
    assert run.metrics["rows"] == 200
    assert "environment.json" in {a.path for a in tracking.client.list_artifacts(run.mlflow_run_id)}

    approval = run.approval
    assert (approval.version, approval.stage, approval.requested_by) == (
        run.registered_version,
        "staging",
        engineer,
    )
    assert "Retrained by Quorum" in approval.note
    log = log_of(run.job)
    for step in ("preparing the data", "building the features", "training", "evaluating",
                 "registering the new version", "mirroring and asking for approval"):  # fmt: skip
        assert f"== {step}" in log
    assert "registered credit-scoring v2" in log


def test_a_run_trains_on_the_kept_batches_and_records_their_digests(
    model, engineer, scientist, tracking
):
    monitor = _monitor_of(model, scientist)
    batch = monitoring.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(frame(50, seed=4)), filename="b.csv"
    )
    run = run_now(policy_of(model, engineer), engineer)

    assert run.job.state == Job.State.SUCCEEDED, log_of(run.job)
    name = f"{monitor.name} batch {batch.pk}"
    assert run.inputs == [
        {"name": name, "batch": batch.pk, "sha256": batch.dataset.sha256, "labels_sha256": ""}
    ]
    assert run.data_digests == {name: batch.dataset.sha256}
    assert run.metrics["rows"] == 250
    tags = tracking.client.get_run(run.mlflow_run_id).data.tags
    assert tags[f"quorum.data.{name}"] == batch.dataset.sha256


def test_a_step_that_raises_fails_the_job_with_its_traceback_and_registers_nothing(
    model, engineer, staging
):
    policy = policy_of(model, engineer, entry_point=BROKEN, open_approval_for_stage="staging")
    seq = last_seq()
    run = run_now(policy, engineer)

    assert run.job.state == Job.State.FAILED
    assert run.job.error == "ValueError: the training data has no positive labels"
    log = log_of(run.job)
    assert "Traceback (most recent call last)" in log
    assert "broken_train" in log
    assert run.registered_number is None
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert not ApprovalRequest.objects.exists()
    assert "job.failed" in actions_since(seq)
    assert "retraining.registered" not in actions_since(seq)


# The policy and its bad inputs


def test_saving_a_policy_plans_its_schedule_and_is_audited(model, engineer):
    seq = last_seq()
    policy = policy_of(model, engineer, cron="30 2 * * mon-fri", on_drift=True)
    task = PeriodicTask.objects.get(pk=policy.schedule_id)
    assert task.task == "delivery.retrain_on_schedule"
    assert json.loads(task.kwargs) == {"policy_id": policy.pk}
    assert task.enabled
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("30", "2", "mon-fri")
    event = AuditEvent.objects.get(seq__gt=seq, action="retraining.policy_saved")
    assert event.data["before"] is None
    assert event.data["after"]["cron"] == "30 2 * * mon-fri"

    policy = policy_of(model, engineer, cron="0 4 * * *", on_drift=True)
    task.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour) == ("0", "4")
    policy = policy_of(model, engineer, cron="")
    task.refresh_from_db()
    assert not task.enabled
    assert RetrainingPolicy.objects.count() == 1
    assert policy.auto_deploy is False


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("0 3 * *", "Five fields are needed"),
        ("0 3 * * * *", "not 6"),
        ("61 3 * * *", "minute: 61 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 3 0 * *", "day of month: 0 is out of range 1-31"),
        ("0 3 * 13 *", "month: 13 is out of range 1-12"),
        ("0 3 * * funday", "day of week: 'funday' is not a value"),
        ("*/0 3 * * *", "minute: the step in '*/0' must be 1 or more"),
        ("0 5-2 * * *", "hour: the range '5-2' runs backwards"),
        ("0 3 ? * *", "day of month: '?' is not a number"),
        ("every day", "Five fields are needed"),
    ],
)
def test_an_invalid_cron_expression_is_refused_naming_the_field(model, engineer, cron, says):
    seq = last_seq()
    with pytest.raises(InvalidCron) as refused:
        policy_of(model, engineer, cron=cron)
    assert any(says in message for message in refused.value.fields["cron"]), refused.value.fields
    assert not RetrainingPolicy.objects.exists()
    assert not PeriodicTask.objects.filter(task="delivery.retrain_on_schedule").exists()
    assert actions_since(seq) == []


@pytest.mark.parametrize(
    ("entry_point", "says"),
    [
        ("tests.delivery.retraining_pipelines", "package.module:attribute"),
        ("no.such.module:PIPELINE", "cannot be imported"),
        ("tests.delivery.retraining_pipelines:MISSING", "has no 'MISSING'"),
        ("tests.delivery.retraining_pipelines:NOT_A_PIPELINE", "is a dict, not a"),
        ("tests.delivery.retraining pipelines:SMALL", "not a dotted Python name"),
    ],
)
def test_an_invalid_entry_point_is_refused_clearly(model, engineer, entry_point, says):
    with pytest.raises(InvalidPipeline) as refused:
        policy_of(model, engineer, entry_point=entry_point)
    assert says in refused.value.fields["entry_point"][0]
    assert not RetrainingPolicy.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"params": ["C"]}, "params"),
        ({"seed": -1}, "seed"),
        ({"cooldown_minutes": "soon"}, "cooldown_minutes"),
        ({"open_approval_for_stage": "Prod Stage!"}, "open_approval_for_stage"),
    ],
)
def test_other_bad_policy_settings_are_refused_naming_the_field(model, engineer, changes, field):
    with pytest.raises(InvalidInput) as refused:
        policy_of(model, engineer, **changes)
    assert field in refused.value.fields
    assert not RetrainingPolicy.objects.exists()


def test_only_ml_engineers_and_admins_set_policies_and_run_them(
    model, engineer, scientist, owner, viewer, outsider, admin_user
):
    for person in (scientist, owner, viewer, outsider):
        with pytest.raises(DomainError):
            policy_of(model, person)
    policy = policy_of(model, admin_user)
    for person in (scientist, owner, viewer):
        with pytest.raises(NotAllowed):
            services.trigger_retraining(policy=policy, trigger="manual", actor=person)
    run = run_now(policy, admin_user)
    with pytest.raises(NotAllowed):
        services.rerun(actor=scientist, run=run)
    assert RetrainingRun.objects.count() == 1


# When runs start, and when they are skipped


def test_one_run_at_a_time_per_model_later_triggers_are_skipped_and_audited(model, engineer):
    policy = policy_of(model, engineer, on_drift=True)
    first = services.trigger_retraining(policy=policy, trigger="drift", cause={"alert": 1})
    assert first.job.state == Job.State.QUEUED
    seq = last_seq()
    assert services.trigger_retraining(policy=policy, trigger="drift", cause={"alert": 2}) is None
    event = AuditEvent.objects.get(seq__gt=seq)
    assert event.action == "retraining.skipped"
    assert event.data["why"] == f"run {first.pk} is queued (one run at a time per model)"
    assert event.data["cause"] == {"alert": 2}
    with pytest.raises(RetrainingBusy):
        services.trigger_retraining(policy=policy, trigger="manual", actor=engineer)
    assert RetrainingRun.objects.count() == 1


def test_automatic_triggers_wait_for_the_cooldown_but_a_person_does_not(model, engineer):
    policy = policy_of(model, engineer, cooldown_minutes=90)
    run = run_now(policy, engineer)
    assert run.job.state == Job.State.SUCCEEDED, log_of(run.job)
    seq = last_seq()
    assert services.trigger_retraining(policy=policy, trigger="schedule") is None
    (event,) = AuditEvent.objects.filter(seq__gt=seq)
    assert event.data["why"] == "cooling down: 90 min left of 90 min"

    RetrainingRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(minutes=89, seconds=30)
    )
    assert services.trigger_retraining(policy=policy, trigger="schedule") is None
    assert "1 min left" in AuditEvent.objects.filter(seq__gt=seq).order_by("seq").last().data["why"]

    again = run_now(policy, engineer)
    assert again.trigger == "manual"
    assert again.job.state == Job.State.SUCCEEDED

    RetrainingRun.objects.update(created_at=timezone.now() - timedelta(minutes=91))
    later = services.trigger_retraining(policy=policy, trigger="schedule")
    assert later.trigger == "schedule"
    assert later.requested_by is None


def test_the_schedule_task_starts_a_run_as_quorum_and_not_when_disabled(model, engineer):
    policy = policy_of(model, engineer, cron="0 3 * * *", enabled=False)
    tasks.retrain_on_schedule(policy_id=policy.pk)
    assert not RetrainingRun.objects.exists()
    policy = policy_of(model, engineer, cron="0 3 * * *")
    tasks.retrain_on_schedule(policy_id=policy.pk)
    (run,) = RetrainingRun.objects.all()
    assert (run.trigger, run.job.trigger, run.job.triggered_by) == ("schedule", "schedule", None)
    event = AuditEvent.objects.get(action="retraining.started")
    assert event.actor_name == "retraining (schedule)"


def _monitor_of(model, scientist):
    reference = registry.keep_table(
        actor=scientist,
        project=model.project,
        name="applicants",
        table=pa.Table.from_pandas(frame(2000), preserve_index=False),
        source="reference.csv",
    )
    return monitoring.create_monitor(
        actor=scientist,
        project=model.project,
        name="credit inputs",
        reference=reference,
        version=model.versions.get(version=1),
    )


def test_a_drifted_batch_opens_an_alert_that_starts_a_run_registering_a_version(
    model, engineer, scientist, staging, django_capture_on_commit_callbacks
):
    policy = policy_of(model, engineer, on_drift=True, open_approval_for_stage="staging")
    monitor = _monitor_of(model, scientist)
    with django_capture_on_commit_callbacks(execute=True):
        batch = monitoring.add_batch(
            actor=scientist,
            monitor=monitor,
            content=csv_of(frame(2000, shift=1.5, seed=2)),
            filename="drifted.csv",
        )
    assert not RetrainingRun.objects.exists(), "new data alone does not start it"
    with django_capture_on_commit_callbacks(execute=True):
        monitoring.run_drift_check(check_id=batch.checks.get().pk)
    alerts = list(monitor.alerts.order_by("pk"))
    assert alerts
    (run,) = RetrainingRun.objects.filter(policy=policy)
    assert run.trigger == "drift"
    assert run.cause["alert"] == alerts[0].pk
    assert run.inputs[0]["batch"] == batch.pk
    skipped = AuditEvent.objects.filter(action="retraining.skipped")
    assert skipped.count() == len(alerts) - 1, "one run for the alerts of one check"

    runner.execute(run.job_id)
    run.refresh_from_db()
    assert run.job.state == Job.State.SUCCEEDED, log_of(run.job)
    assert run.registered_version.version == 2
    assert run.approval.stage == "staging"
    started = AuditEvent.objects.get(action="retraining.started")
    assert started.actor_name == "retraining (drift)"
    assert {"retraining.registered", "retraining.approval_opened", "approval.opened"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )


def test_a_new_batch_starts_a_run_when_the_policy_asks(
    model, engineer, scientist, django_capture_on_commit_callbacks
):
    policy_of(model, engineer, on_new_data=True)
    monitor = _monitor_of(model, scientist)
    with django_capture_on_commit_callbacks(execute=True):
        batch = monitoring.add_batch(
            actor=scientist, monitor=monitor, content=csv_of(frame(30)), filename="day.csv"
        )
    (run,) = RetrainingRun.objects.all()
    assert (run.trigger, run.cause) == ("new_data", {"batch": batch.pk, "monitor": monitor.pk})
    with django_capture_on_commit_callbacks(execute=True):
        monitoring.add_batch(
            actor=scientist, monitor=monitor, content=csv_of(frame(30)), filename="day.csv"
        )
    assert RetrainingRun.objects.count() == 1, "the same data twice is not new data"


def test_triggers_the_policy_does_not_ask_for_start_nothing(
    model, engineer, scientist, django_capture_on_commit_callbacks
):
    policy_of(model, engineer)
    monitor = _monitor_of(model, scientist)
    with django_capture_on_commit_callbacks(execute=True):
        batch = monitoring.add_batch(
            actor=scientist, monitor=monitor, content=csv_of(frame(2000, shift=1.5, seed=2)),
            filename="drifted.csv",
        )  # fmt: skip
        monitoring.run_drift_check(check_id=batch.checks.get().pk)
    assert monitor.alerts.exists()
    assert not RetrainingRun.objects.exists()


# Reruns


def _run_on_a_batch(model, engineer, scientist):
    monitor = _monitor_of(model, scientist)
    batch = monitoring.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(frame(80, seed=9)), filename="b.csv"
    )
    run = run_now(policy_of(model, engineer), engineer)
    assert run.job.state == Job.State.SUCCEEDED, log_of(run.job)
    return run, batch


def _rerun(engineer, run) -> RetrainingRun:
    again = services.rerun(actor=engineer, run=run)
    runner.execute(again.job_id)
    again.refresh_from_db()
    assert again.job.state == Job.State.SUCCEEDED, log_of(again.job)
    return again


def test_a_rerun_with_the_same_seed_and_data_reports_matching_metrics(
    model, engineer, scientist, tracking
):
    run, _ = _run_on_a_batch(model, engineer, scientist)
    policy_of(model, engineer, params={"C": 100}, seed=1)  # the policy moved on since
    seq = last_seq()
    again = _rerun(engineer, run)

    assert (again.trigger, again.rerun_of, again.params, again.seed) == (
        "rerun",
        run,
        run.params,
        7,
    )
    assert again.metrics == run.metrics
    assert again.metrics_match is True
    assert again.differences == {}
    assert again.registered_number is None, "a rerun registers nothing"
    assert ModelVersion.objects.filter(model=model).count() == 2
    tags = tracking.client.get_run(again.mlflow_run_id).data.tags
    assert tags["quorum.rerun_of"] == run.mlflow_run_id
    event = AuditEvent.objects.get(seq__gt=seq, action="retraining.rerun_compared")
    assert event.data["metrics_match"] is True


def test_a_rerun_on_changed_data_reports_what_differed(model, engineer, scientist):
    run, batch = _run_on_a_batch(model, engineer, scientist)
    path = tables.path_of(settings.DATA_DIR, batch.dataset.sha256)
    pq.write_table(pa.Table.from_pandas(frame(400, shift=3, seed=5), preserve_index=False), path)
    again = _rerun(engineer, run)

    assert again.metrics_match is False
    name = run.inputs[0]["name"]
    assert again.differences["data"][name][0] == batch.dataset.sha256
    assert again.differences["data"][name][1] != batch.dataset.sha256
    assert again.differences["metrics"]["rows"] == [280.0, 600.0]


def test_a_rerun_is_refused_when_its_data_is_gone(model, engineer, scientist):
    run, batch = _run_on_a_batch(model, engineer, scientist)
    tables.path_of(settings.DATA_DIR, batch.dataset.sha256).unlink()
    seq = last_seq()
    with pytest.raises(RetrainingDataGone) as refused:
        services.rerun(actor=engineer, run=run)
    assert batch.dataset.sha256[:12] in refused.value.message
    assert RetrainingRun.objects.count() == 1
    assert actions_since(seq) == []


def test_a_run_whose_data_vanished_before_it_started_fails_clearly(model, engineer, scientist):
    monitor = _monitor_of(model, scientist)
    batch = monitoring.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(frame(5)), filename="b.csv"
    )
    policy = policy_of(model, engineer)
    run = services.trigger_retraining(policy=policy, trigger="manual", actor=engineer)
    tables.path_of(settings.DATA_DIR, batch.dataset.sha256).unlink()
    job = runner.execute(run.job_id)
    assert job.state == Job.State.FAILED
    assert "is no longer kept" in job.error
    assert ModelVersion.objects.filter(model=model).count() == 1


# The demo's pipeline


def test_the_demo_pipeline_retrains_on_labelled_batches_with_the_demo_signature(
    project, engineer, scientist, tracking
):
    credit = demo.credit_applicants()
    tracking.sklearn_version(
        "credit-scoring",
        project="credit-risk",
        features=credit.train[credit.features].astype("float64"),
        labels=credit.train[credit.target],
    )
    registry.sync_mlflow(trigger="test")
    model = RegisteredModel.objects.get(name="credit-scoring")
    reference = registry.keep_table(
        actor=scientist,
        project=project,
        name="holdout",
        table=pa.Table.from_pandas(credit.test[[*credit.features, credit.target]]),
        source="demo",
    )
    monitor = monitoring.create_monitor(
        actor=scientist, project=project, name="inputs", reference=reference,
        version=model.versions.get(), task="classification", label_column=credit.target,
    )  # fmt: skip
    (rows, outcomes), (unlabelled, _) = demo.drifting_batches()[2], demo.drifting_batches()[0]
    labelled = monitoring.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(rows), filename="day-3.csv"
    )
    monitoring.add_labels(
        actor=scientist, batch=labelled, content=csv_of(outcomes), filename="outcomes.csv"
    )
    monitoring.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(unlabelled), filename="day-1.csv"
    )
    policy = policy_of(model, engineer, entry_point=DEMO, params={"n_estimators": 20}, seed=1)
    run = run_now(policy, engineer)

    assert run.job.state == Job.State.SUCCEEDED, log_of(run.job)
    log = log_of(run.job)
    assert f"{len(credit.train) + len(rows)} training rows, {len(rows)} of them from" in log
    assert "no outcomes yet, left out" in log
    assert len(run.data_digests) == 3, "two batches and one set of labels"
    new = run.registered_version
    assert new.version == 2
    assert new.signature["inputs"] == model.versions.get(version=1).signature["inputs"]
    assert run.metrics["roc_auc"] > 0.7


# Pages


def _runs(policy, engineer, count: int) -> None:
    """Runs that were started and cancelled, as rows for a page to show."""
    for _ in range(count):
        run = services.trigger_retraining(policy=policy, trigger="manual", actor=engineer)
        job_services.cancel_job(actor=engineer, job=run.job)


def test_the_model_page_shows_the_policy_and_runs_in_the_same_queries_however_many(
    login, project, engineer, viewer, django_assert_max_num_queries
):
    model = make_version(project, "credit-scoring", 1).model
    policy = policy_of(model, engineer, cron="0 3 * * *", on_drift=True)
    _runs(policy, engineer, 1)
    client = login(viewer)
    url = reverse("model", args=["credit-risk", "credit-scoring"])
    with django_assert_max_num_queries(60) as few:
        page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Retraining" in body
    assert "0 3 * * *" in body
    assert "on a drift alert" in body
    assert "Run now</button>" not in body, "a viewer may not run it"
    _runs(policy, engineer, 12)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(url)
    assert page.content.decode().count("Rerun run") == 0


def test_an_engineer_sets_a_policy_on_the_page_and_a_bad_cron_comes_back_named(
    login, project, engineer
):
    model = make_version(project, "credit-scoring", 1).model
    client = login(engineer)
    url = reverse("retraining_save", args=["credit-risk", "credit-scoring"])
    form = {
        "entry_point": SMALL,
        "params": '{"C": 2}',
        "seed": "3",
        "cron": "0 25 * * *",
        "cooldown_minutes": "30",
        "on_drift": "on",
        "enabled": "on",
    }
    refused = client.post(url, form)
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "hour: 25 is out of range 0-23" in body
    assert 'value="0 25 * * *"' in body
    assert not RetrainingPolicy.objects.exists()

    saved = client.post(url, {**form, "cron": "0 2 * * *"})
    assert saved.status_code == 302
    policy = RetrainingPolicy.objects.get(model=model)
    assert (policy.params, policy.seed, policy.cron, policy.on_drift, policy.on_new_data) == (
        {"C": 2},
        3,
        "0 2 * * *",
        True,
        False,
    )
    bad_json = client.post(url, {**form, "params": "{C: 2}"})
    assert bad_json.status_code == 400
    assert "Not JSON" in bad_json.content.decode()


def test_run_now_and_rerun_on_the_page_follow_the_job(login, model, engineer, scientist):
    policy_of(model, engineer)
    client = login(engineer)
    started = client.post(reverse("retraining_run_now", args=["credit-risk", "credit-scoring"]))
    run = RetrainingRun.objects.get()
    assert started["Location"] == reverse("job", args=["credit-risk", run.job_id])
    busy = client.post(
        reverse("retraining_run_now", args=["credit-risk", "credit-scoring"]), follow=True
    )
    assert "queued or running" in busy.content.decode() or "is queued" in busy.content.decode()
    runner.execute(run.job_id)
    page = client.get(reverse("model", args=["credit-risk", "credit-scoring"]))
    assert "v2" in page.content.decode()
    assert f"Rerun run {run.pk}" in page.content.decode()
    again = client.post(reverse("retraining_rerun", args=["credit-risk", "credit-scoring", run.pk]))
    rerun_row = RetrainingRun.objects.get(rerun_of=run)
    assert again["Location"] == reverse("job", args=["credit-risk", rerun_row.job_id])
    refused = login(scientist).post(
        reverse("retraining_run_now", args=["credit-risk", "credit-scoring"]), follow=True
    )
    assert "does not allow" in refused.content.decode()
    assert RetrainingRun.objects.count() == 2


# The API


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_sets_the_policy_lists_runs_and_runs_now_by_id_or_name(
    project, engineer, viewer, scientist, outsider
):
    model = make_version(project, "credit-scoring", 1).model
    by_name = reverse("api-retraining", args=["credit-scoring"])
    by_id = reverse("api-retraining", args=[str(model.pk)])
    missing = api(viewer).get(by_name)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "no_retraining_policy")

    body = {"entry_point": SMALL, "cron": "0 3 * * 7", "on_drift": True, "seed": 5}
    saved = api(engineer).put(by_id, body, format="json")
    assert saved.status_code == 200, saved.json()
    assert saved.json()["cron"] == "0 3 * * 7"
    assert saved.json()["updated_by"] == "mei"
    assert api(viewer).get(by_name).json()["seed"] == 5

    bad = api(engineer).put(by_name, {**body, "cron": "0 3 * * 8"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_cron"
    assert bad.json()["error"]["fields"]["cron"] == ["day of week: 8 is out of range 0-7."]
    wrong = api(engineer).put(by_name, {**body, "entry_point": "os:path"}, format="json")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "invalid_pipeline")
    assert api(scientist).put(by_name, body, format="json").status_code == 403
    assert api(outsider).get(by_name).status_code == 404
    assert RetrainingPolicy.objects.get().seed == 5

    runs = reverse("api-retraining-runs", args=["credit-scoring"])
    started = api(engineer).post(runs)
    assert started.status_code == 201
    assert (started.json()["trigger"], started.json()["state"]) == ("manual", "queued")
    busy = api(engineer).post(runs)
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "retraining_busy")
    assert api(viewer).post(runs).status_code == 403
    listed = api(viewer).get(runs).json()
    assert [run["id"] for run in listed["results"]] == [started.json()["id"]]


# End to end, on a real worker


def test_on_a_worker_a_drifted_batch_retrains_registers_and_asks_for_approval(
    model, engineer, scientist, staging, celery_worker
):
    policy = policy_of(model, engineer, on_drift=True, open_approval_for_stage="staging")
    monitor = _monitor_of(model, scientist)
    monitoring.add_batch(
        actor=scientist,
        monitor=monitor,
        content=csv_of(frame(2000, shift=1.5, seed=2)),
        filename="drifted.csv",
    )
    celery_worker.wait_for(
        lambda: RetrainingRun.objects.filter(policy=policy, job__state="succeeded").exists(),
        timeout=180,
    )
    run = RetrainingRun.objects.select_related("job", "approval").get(policy=policy)
    assert run.trigger == "drift"
    assert run.registered_number == 2
    assert run.approval.stage == "staging"
    trail = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    expected = [
        "monitor.batch_received",
        "drift_alert.opened",
        "job.queued",
        "retraining.started",
        "retraining.registered",
        "approval.opened",
        "retraining.approval_opened",
        "job.succeeded",
    ]
    positions = [trail.index(action) for action in expected]
    assert positions == sorted(positions), trail
