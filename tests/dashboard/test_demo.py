import json

from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance.access.models import Membership, Project
from governance.access.permissions import capabilities_of
from governance.access.roles import ROLE_CAPABILITIES, Role
from governance.approvals.models import ApprovalPolicy, ApprovalRequest
from governance.approvals.selectors import waiting_for
from governance.delivery.models import RetrainingPolicy, Target
from governance.fairness.gates import BIAS_REPORT_PASSED
from governance.fairness.models import BiasReport
from governance.monitoring.models import Monitor
from governance.registry.models import (
    DatasetVersion,
    Experiment,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInput,
)


def test_demo_gives_one_person_per_role_and_two_projects(db, settings, capsys):
    call_command("load_demo", no_mlflow=True)
    output = capsys.readouterr().out
    users = get_user_model().objects.in_bulk(field_name="username")
    assert set(users) == {"admin", "priya", "sam", "mei", "alex", "val"}
    assert users["admin"].is_superuser
    assert set(Project.objects.values_list("slug", flat=True)) == {"credit-risk", "churn"}
    credit = Project.objects.get(slug="credit-risk")
    assert capabilities_of(users["mei"], credit) == ROLE_CAPABILITIES[Role.ML_ENGINEER]
    assert not Membership.objects.filter(user__username="val", project__slug="churn").exists()
    for username in users:
        assert username in output
    assert "priya" in (settings.VAR_DIR / "demo-people.txt").read_text()


def test_demo_loads_twice_without_changing_anything(db, capsys):
    call_command("load_demo", password="demo pass phrase", no_mlflow=True)
    before = set(Membership.objects.values_list("project__slug", "user__username", "role"))
    call_command("load_demo", no_mlflow=True)
    after = set(Membership.objects.values_list("project__slug", "user__username", "role"))
    assert before == after
    assert "already set up" in capsys.readouterr().out
    assert get_user_model().objects.get(username="sam").check_password("demo pass phrase")


def test_demo_trains_real_models_that_the_mirror_shows_in_the_demo_projects(db, mlflow_uri):
    call_command("load_demo", password="demo pass phrase")
    experiments = Experiment.objects.select_related("project")
    assert {(e.name, e.project.slug) for e in experiments if e.name != "Default"} == {
        ("credit-risk/scoring", "credit-risk"),
        ("credit-risk/feature-selection", "credit-risk"),
        ("churn/prediction", "churn"),
    }
    assert Run.objects.count() >= 28
    scoring = Run.objects.filter(experiment__name="credit-risk/scoring")
    assert all(run.metrics["roc_auc"] > 0.6 for run in scoring)
    assert all(run.code_version for run in scoring)
    assert {run.user for run in scoring} == {"sam", "mei"}
    models = {m.name: m for m in RegisteredModel.objects.select_related("project")}
    assert models["credit-scoring"].aliases == {"champion": 2, "challenger": 3}
    assert models["churn-predictor"].project.slug == "churn"
    assert ModelVersion.objects.filter(model__name="credit-scoring").count() == 3
    version = ModelVersion.objects.get(model__name="credit-scoring", version=2)
    assert version.run is not None
    assert version.signature["inputs"]
    applicants = DatasetVersion.objects.get(name="credit-applicants")
    assert "sex" in json.dumps(applicants.schema)  # the sensitive column, for bias reports
    assert RunInput.objects.filter(context="evaluation").exists()

    (waiting,) = ApprovalRequest.objects.filter(state="open")
    assert (waiting.version, waiting.stage) == (version, "production")
    assert {a.pk for a in waiting_for(get_user_model().objects.get(username="priya"))} == {
        waiting.pk
    }
    assert ApprovalPolicy.objects.filter(project__slug="credit-risk").count() == 2

    monitor = Monitor.objects.get(project__slug="credit-risk")
    assert monitor.batches.count() == 3
    drifted = [check.drifted for check in monitor.checks.order_by("created_at")]
    assert drifted == [False, False, True]
    assert {a.feature for a in monitor.alerts.all()} >= {"income", "late_payments"}
    # The outcomes came later: the model held on the first two days and fell on the third.
    batches = list(monitor.batches.order_by("received_at", "pk"))
    assert [b.model_quality_state for b in batches] == ["done", "done", "done"]
    assert [bool(b.model_quality["degraded"]) for b in batches] == [False, False, True]
    assert monitor.alerts.filter(feature="quality:accuracy", opened_by__batch=batches[2]).exists()
    passing = BiasReport.objects.get(version=version)
    assert (passing.state, passing.passed, passing.y_pred) == ("done", True, "")
    assert passing.result["groups"]
    first = ModelVersion.objects.get(model__name="credit-scoring", version=1)
    failing = BiasReport.objects.get(version=first)
    assert (failing.state, failing.passed) == ("done", False)
    assert BIAS_REPORT_PASSED.check(first, {})[0] == "fail"
    assert [g["outcome"] for g in waiting.gate_results] == ["pass", "pass"]

    policy = RetrainingPolicy.objects.get(model__name="credit-scoring")
    assert (policy.on_drift, policy.enabled, policy.open_approval_for_stage) == (
        True,
        True,
        "staging",
    )
    assert policy.schedule.enabled

    # Ready to deploy: a local target for staging, and v1 approved for it by the ML engineer.
    target = Target.objects.get(project__slug="credit-risk")
    assert (target.name, target.kind, target.stage) == ("local staging", "local", "staging")
    staging = ApprovalRequest.objects.get(stage="staging")
    assert (staging.version, staging.state) == (first, "approved")
    assert staging.decisions.get().approver.username == "mei"

    call_command("load_demo")  # again: nothing is trained twice
    assert ModelVersion.objects.filter(model__name="credit-scoring").count() == 3
    assert ApprovalRequest.objects.count() == 2
    assert Target.objects.count() == 1
