"""Bias reports of a version, judged by the project's fairness policy, and their gate."""

import numpy as np
import pyarrow as pa
import pytest

from governance.access.errors import NotAllowed
from governance.approvals import services as approvals
from governance.audit.models import AuditEvent
from governance.errors import InvalidInput
from governance.fairness import services
from governance.fairness.errors import InvalidPolicy
from governance.fairness.models import BiasReport
from governance.registry import services as registry


def evaluation(project, scientist, *, biased: bool):
    """2,000 applicants; with `biased`, women are approved at half the rate of men."""
    rng = np.random.default_rng(3)
    sex = rng.choice(["female", "male"], 2000)
    truth = rng.integers(0, 2, 2000)
    rate = np.where((sex == "female") & biased, 0.3, 0.6)
    predicted = (rng.random(2000) < rate).astype(int)
    table = pa.table({"sex": sex, "approved": truth, "predicted": predicted})
    return registry.keep_table(
        actor=scientist, project=project, name="holdout", table=table, source="holdout.parquet"
    )


def report(scientist, version, dataset, **changes):
    options = {"y_true": "approved", "y_pred": "predicted", "sensitive": ["sex"], **changes}
    return services.generate_bias_report(
        actor=scientist, version=version, dataset=dataset, **options
    )


def test_a_biased_model_fails_the_four_fifths_rule_and_the_gate(project, owner, scientist, version):
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1},
        gates_=[{"kind": "bias_report_passed"}],
    )  # fmt: skip
    opened = approvals.open_request(actor=scientist, version=version, stage="production")
    assert opened.gate_results[0]["outcome"] == "missing"

    failed = report(scientist, version, evaluation(project, scientist, biased=True))
    assert not failed.passed
    assert "demographic parity ratio" in failed.judgement["reasons"][0]
    groups = {g["label"]: g for g in failed.result["groups"]}
    assert groups["female"]["selection_rate"] < groups["male"]["selection_rate"]
    (gate,) = approvals.recheck_gates(actor=owner, approval=opened)
    assert gate.outcome == "fail"

    passed = report(scientist, version, evaluation(project, scientist, biased=False))
    assert passed.passed
    (gate,) = approvals.recheck_gates(actor=owner, approval=opened)
    assert gate.passed
    assert AuditEvent.objects.filter(action="bias_report.generated").count() == 2


def test_the_projects_policy_judges_the_report(project, owner, scientist, version):
    services.set_fairness_policy(
        actor=owner, project=project, limits={"demographic_parity_ratio_min": 0.4}
    )
    lenient = report(scientist, version, evaluation(project, scientist, biased=True))
    assert lenient.passed
    assert lenient.policy == {"demographic_parity_ratio_min": 0.4}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"y_true": "label"}, "y_true"),
        ({"y_pred": "score"}, "y_pred"),
        ({"sensitive": ["age"]}, "sensitive"),
        ({"sensitive": []}, "sensitive"),
        ({"sensitive": ["sex", "approved", "predicted"]}, "sensitive"),
        ({"pos_label": "yes"}, "pos_label"),
    ],
)
def test_bad_columns_are_refused_naming_them(project, scientist, version, changes, field):
    dataset = evaluation(project, scientist, biased=False)
    with pytest.raises(InvalidInput) as refused:
        report(scientist, version, dataset, **changes)
    assert field in refused.value.fields
    assert not BiasReport.objects.exists()


def test_a_bad_fairness_policy_is_refused(project, owner):
    with pytest.raises(InvalidPolicy):
        services.set_fairness_policy(actor=owner, project=project, limits={"ratio": 2})
    with pytest.raises(InvalidInput):
        services.set_fairness_policy(actor=owner, project=project, limits={}, min_group_size=0)


@pytest.mark.parametrize("who", ["viewer", "auditor", "owner"])
def test_roles_that_do_not_monitor_make_no_reports(project, scientist, version, request, who):
    dataset = evaluation(project, scientist, biased=False)
    with pytest.raises(NotAllowed):
        report(request.getfixturevalue(who), version, dataset)


def test_the_report_page_shows_groups_disparities_and_the_verdict(
    login, project, scientist, viewer, outsider, version
):
    from django.urls import reverse

    made = report(scientist, version, evaluation(project, scientist, biased=True))
    client = login(viewer)
    body = client.get(reverse("bias_report", args=["credit-risk", made.pk])).content.decode()
    assert "fails" in body
    assert "female" in body
    assert "demographic parity ratio" in body
    version_page = reverse("model_version", args=["credit-risk", "credit-scoring", 1])
    assert f"Report {made.pk}" in client.get(version_page).content.decode()
    url = reverse("bias_report", args=["credit-risk", made.pk])
    assert login(outsider).get(url).status_code == 404
