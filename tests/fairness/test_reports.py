"""Bias reports asked for, made by the worker's function, judged by the policy, and the gate."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from governance.access.errors import NotAllowed, ProjectNotFound
from governance.approvals.gates import Outcome
from governance.audit.models import AuditEvent
from governance.errors import InvalidInput
from governance.fairness import services
from governance.fairness.errors import InvalidPolicy
from governance.fairness.gates import BIAS_REPORT_PASSED
from governance.fairness.models import BiasReport
from governance.notify.models import Notification
from tests.factories import make_project
from tests.fairness.conftest import applicants


def ask(actor, version, dataset, **changes):
    options = {"y_true": "approved", "y_pred": "predicted", "sensitive": ["sex"], **changes}
    return services.request_bias_report(actor=actor, version=version, dataset=dataset, **options)


def made(actor, version, dataset, **changes):
    return services.generate_bias_report(report_id=ask(actor, version, dataset, **changes).pk)


def test_a_report_asked_for_is_queued_audited_and_enqueued_on_commit(
    scientist, version, keep, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        report = ask(scientist, version, keep(applicants(biased=True)))
    assert (report.state, report.passed, report.result) == ("queued", None, {})
    assert len(callbacks) == 1
    event = AuditEvent.objects.get(action="bias_report.requested")
    assert event.data["sensitive"] == ["sex"]


def test_a_biased_model_fails_the_four_fifths_rule_and_the_requester_hears_of_it(
    scientist, version, keep
):
    report = made(scientist, version, keep(applicants(biased=True)))
    assert (report.state, report.passed) == ("done", False)
    assert report.started_at <= report.finished_at
    assert "demographic parity ratio" in report.judgement["reasons"][0]
    groups = {g["label"]: g for g in report.result["groups"]}
    assert groups["female"]["selection_rate"] < groups["male"]["selection_rate"]
    assert report.result["disparities"]["demographic_parity_ratio"]["lowest"] == "female"
    (note,) = Notification.objects.filter(recipient=scientist)
    assert "fails" in note.subject
    assert note.url.endswith(f"/bias-reports/{report.pk}/")
    assert AuditEvent.objects.filter(action="bias_report.generated").count() == 1


def test_a_finished_report_is_left_alone(scientist, version, keep):
    report = made(scientist, version, keep(applicants(biased=False)))
    again = services.generate_bias_report(report_id=report.pk)
    assert (again.state, again.finished_at) == ("done", report.finished_at)
    assert AuditEvent.objects.filter(action="bias_report.generated").count() == 1
    assert Notification.objects.filter(recipient=scientist).count() == 1


def test_the_projects_policy_at_the_time_of_the_run_judges_the_report(
    owner, scientist, version, keep
):
    asked = ask(scientist, version, keep(applicants(biased=True)))
    services.set_fairness_policy(
        actor=owner, project=version.model.project, limits={"demographic_parity_ratio_min": 0.4}
    )
    lenient = services.generate_bias_report(report_id=asked.pk)
    assert lenient.passed
    assert lenient.policy == {"demographic_parity_ratio_min": 0.4}


def two_by_three():
    """Sex by region where nobody is a woman in the south and one man is: groups of none
    and of one member."""
    sex = ["female"] * 60 + ["male"] * 61
    region = ["north"] * 30 + ["east"] * 30 + ["north"] * 30 + ["east"] * 30 + ["south"]
    labels = [0, 1] * 60 + [1]
    return {"sex": sex, "region": region, "approved": labels, "predicted": labels}


def test_groups_of_one_or_no_members_are_flagged_and_left_out_of_the_disparities(
    scientist, version, keep
):
    report = made(scientist, version, keep(two_by_three()), sensitive=["sex", "region"])
    groups = {g["label"]: g for g in report.result["groups"]}
    assert groups["sex=female, region=south"]["count"] == 0
    assert groups["sex=male, region=south"]["count"] == 1
    assert groups["sex=male, region=south"]["too_small"]
    assert report.result["disparities"]["demographic_parity_ratio"]["groups_compared"] == 4
    assert any("too small to judge" in reason for reason in report.judgement["reasons"])


def table_of_another_project(admin_user, owner, scientist, keep):
    other = make_project(admin=admin_user, owner=owner, slug="fraud", name="Fraud")
    return keep(applicants(biased=False), in_project=(other, admin_user))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"y_true": "label"}, "y_true"),
        ({"y_true": ""}, "y_true"),
        ({"y_pred": "score"}, "y_pred"),
        ({"sensitive": ["age"]}, "sensitive"),
        ({"sensitive": []}, "sensitive"),
        ({"sensitive": ["sex", "approved", "predicted"]}, "sensitive"),
        ({"sensitive": ["constant"]}, "sensitive"),
        ({"pos_label": "yes"}, "pos_label"),
        ({"pos_label": "7"}, "pos_label"),
        ({"y_true": "grade"}, "y_true"),
        ({"y_pred": "grade"}, "y_pred"),
        ({"y_true": "gappy"}, "y_true"),
        ({"y_pred": ""}, "y_pred"),  # the model has no signature to predict with
    ],
)
def test_bad_input_is_refused_naming_the_field(scientist, version, keep, changes, field):
    data = applicants(biased=False)
    data["constant"] = "everyone"
    data["grade"] = np.arange(len(data)) % 3  # three labels: not a binary classification
    data["gappy"] = data["approved"].where(data.index % 10 > 0)
    dataset = keep(data)
    with pytest.raises(InvalidInput) as refused:
        ask(scientist, version, dataset, **changes)
    assert field in refused.value.fields
    assert not BiasReport.objects.exists()
    assert not AuditEvent.objects.filter(action="bias_report.requested").exists()


def test_every_problem_is_named_at_once(scientist, version, keep):
    with pytest.raises(InvalidInput) as refused:
        ask(scientist, version, keep(applicants(biased=False)), y_true="label", sensitive=["age"])
    assert set(refused.value.fields) == {"y_true", "sensitive"}


def test_a_table_of_another_project_is_refused(admin_user, owner, scientist, version, keep):
    dataset = table_of_another_project(admin_user, owner, scientist, keep)
    with pytest.raises(InvalidInput) as refused:
        ask(scientist, version, dataset)
    assert "dataset" in refused.value.fields
    assert not BiasReport.objects.exists()


@pytest.mark.parametrize(
    ("who", "error"),
    [("viewer", NotAllowed), ("auditor", NotAllowed), ("owner", NotAllowed),
     ("outsider", ProjectNotFound)],
)  # fmt: skip
def test_roles_that_do_not_monitor_ask_for_no_reports(version, keep, request, who, error):
    dataset = keep(applicants(biased=False))
    with pytest.raises(error):
        ask(request.getfixturevalue(who), version, dataset)
    assert not BiasReport.objects.exists()


def test_a_table_whose_file_is_gone_fails_the_report_with_the_reason(
    scientist, version, keep, settings
):
    report = ask(scientist, version, keep(applicants(biased=False)))
    shutil.rmtree(Path(settings.DATA_DIR) / report.dataset.sha256[:2])
    failed = services.generate_bias_report(report_id=report.pk)
    assert (failed.state, failed.passed) == ("failed", None)
    assert "could not be read" in failed.error
    assert AuditEvent.objects.filter(action="bias_report.failed").count() == 1
    assert "failed" in Notification.objects.get(recipient=scientist).subject


def test_the_versions_mlflow_model_predicts_when_no_column_is_named(scientist, model_version, keep):
    report = made(scientist, model_version, keep(applicants(biased=False)), y_pred="")
    assert report.state == "done", report.error
    assert report.y_pred == ""
    overall = report.result["overall"]
    # The model approves incomes above 50: about half the applicants.
    assert 0.3 < overall["selection_rate"] < 0.7
    assert AuditEvent.objects.get(action="bias_report.generated").data["predicted_by_model"]


def test_a_table_without_the_models_columns_is_refused(scientist, model_version, keep):
    data = applicants(biased=False).drop(columns=["years"])
    with pytest.raises(InvalidInput) as refused:
        ask(scientist, model_version, keep(data), y_pred="")
    assert "years" in refused.value.fields["y_pred"][0]


def test_a_model_that_cannot_be_loaded_fails_the_report(
    scientist, model_version, keep, mlflow_uri, tmp_path
):
    report = ask(scientist, model_version, keep(applicants(biased=False)), y_pred="")
    shutil.rmtree(tmp_path / "artifacts")  # the model's files are gone from the store
    failed = services.generate_bias_report(report_id=report.pk)
    assert failed.state == "failed"
    assert "could not be loaded" in failed.error
    assert failed.passed is None


def test_the_gate_reads_only_finished_reports(scientist, version, keep, settings):
    assert BIAS_REPORT_PASSED.check(version, {})[0] == Outcome.MISSING
    queued = ask(scientist, version, keep(applicants(biased=False), name="fair"))
    assert BIAS_REPORT_PASSED.check(version, {})[0] == Outcome.MISSING
    biased = made(scientist, version, keep(applicants(biased=True), name="biased"))
    outcome, reason = BIAS_REPORT_PASSED.check(version, {})
    assert (outcome, str(biased.pk) in reason) == (Outcome.FAIL, True)
    # A report that could not be made has no verdict: the gate keeps reading the last one.
    broken = ask(scientist, version, keep(applicants(biased=False, seed=9), name="gone"))
    shutil.rmtree(Path(settings.DATA_DIR) / broken.dataset.sha256[:2])
    assert services.generate_bias_report(report_id=broken.pk).state == "failed"
    assert BIAS_REPORT_PASSED.check(version, {})[0] == Outcome.FAIL
    services.generate_bias_report(report_id=queued.pk)  # older, but finished last
    assert BIAS_REPORT_PASSED.check(version, {})[0] == Outcome.FAIL
    made(scientist, version, keep(applicants(biased=False, seed=5), name="fair again"))
    assert BIAS_REPORT_PASSED.check(version, {})[0] == Outcome.PASS


def test_a_bad_fairness_policy_is_refused(project, owner):
    with pytest.raises(InvalidPolicy):
        services.set_fairness_policy(actor=owner, project=project, limits={"ratio": 2})
    with pytest.raises(InvalidInput):
        services.set_fairness_policy(actor=owner, project=project, limits={}, min_group_size=0)


def test_mlflow_out_of_reach_requeues_the_report_until_the_last_attempt(
    scientist, model_version, keep, settings, monkeypatch
):
    from governance.registry.errors import MlflowUnavailable

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # its own retries wait seconds
    report = ask(scientist, model_version, keep(applicants(biased=False)), y_pred="")
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(MlflowUnavailable):
        services.generate_bias_report(report_id=report.pk, last_attempt=False)
    assert BiasReport.objects.get(pk=report.pk).state == "queued"
    failed = services.generate_bias_report(report_id=report.pk, last_attempt=True)
    assert failed.state == "failed"
    assert "unreachable" in failed.error
