"""/api/v1/projects/{slug}/bias-reports/, /api/v1/bias-reports/{id}/ and
/api/v1/projects/{slug}/fairness-policy/."""

import pytest
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.fairness import services
from governance.fairness.models import BiasReport, FairnessPolicy
from tests.factories import make_project
from tests.fairness.conftest import applicants

REPORTS = "/api/v1/projects/credit-risk/bias-reports/"
POLICY = "/api/v1/projects/credit-risk/fairness-policy/"


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def body_for(table, **changes) -> dict:
    return {"model": "credit-scoring", "version": 1, "dataset": table.pk, "y_true": "approved",
            "y_pred": "predicted", "sensitive": ["sex"], **changes}  # fmt: skip


def test_asking_for_a_report_answers_202_with_its_url_to_poll(scientist, version, keep):
    dataset = keep(applicants(biased=True))
    client = client_of(scientist)
    response = client.post(REPORTS, body_for(dataset), format="json")
    assert response.status_code == 202, response.content
    queued = response.json()
    assert queued["state"] == "queued"
    assert response["Location"] == queued["url"]
    assert queued["url"].endswith(f"/api/v1/bias-reports/{queued['id']}/")
    polled = client.get(queued["url"]).json()
    assert (polled["state"], polled["passed"], polled["result"]) == ("queued", None, {})

    services.generate_bias_report(report_id=queued["id"])
    done = client.get(queued["url"]).json()
    assert (done["state"], done["passed"]) == ("done", False)
    assert done["result"]["disparities"]["demographic_parity_ratio"]["lowest"] == "female"
    assert done["page"].endswith(f"/projects/credit-risk/bias-reports/{queued['id']}/")
    listed = client.get(REPORTS, {"model": "credit-scoring", "version": 1}).json()
    assert [r["id"] for r in listed["results"]] == [queued["id"]]
    assert client.get(REPORTS, {"version": 2}).json()["results"] == []


def test_without_a_prediction_column_the_versions_model_is_asked_for(
    scientist, model_version, keep
):
    body = body_for(keep(applicants(biased=False)))
    del body["y_pred"]
    response = client_of(scientist).post(REPORTS, body, format="json")
    assert response.status_code == 202, response.content
    assert BiasReport.objects.get().y_pred == ""


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"y_true": "label"}, "y_true"),
        ({"sensitive": ["sex", "approved", "predicted"]}, "sensitive"),
        ({"sensitive": []}, "sensitive"),
        ({"sensitive": "sex"}, "sensitive"),
        ({"pos_label": "yes"}, "pos_label"),
        ({"version": 7}, "version"),
        ({"version": "one"}, "version"),
        ({"dataset": 999}, "dataset"),
        ({"y_pred": ""}, "y_pred"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(scientist, version, keep, changes, field):
    response = client_of(scientist).post(
        REPORTS, body_for(keep(applicants(biased=False)), **changes), format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not BiasReport.objects.exists()
    assert not AuditEvent.objects.filter(action="bias_report.requested").exists()


def test_a_table_of_another_project_is_refused(admin_user, owner, scientist, version, keep):
    other = make_project(admin=admin_user, owner=owner, slug="fraud", name="Fraud")
    dataset = keep(applicants(biased=False), in_project=(other, admin_user))
    response = client_of(scientist).post(REPORTS, body_for(dataset), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["dataset"]
    assert not BiasReport.objects.exists()


def test_a_bad_filter_is_refused(scientist, project):
    response = client_of(scientist).get(REPORTS, {"version": "latest"})
    assert response.status_code == 400
    assert "version" in response.json()["error"]["fields"]


def test_roles_and_outsiders_get_403_and_404(viewer, outsider, scientist, version, keep):
    dataset = keep(applicants(biased=False))
    refused = client_of(viewer).post(REPORTS, body_for(dataset), format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"]
    report = services.request_bias_report(
        actor=scientist, version=version, dataset=dataset, y_true="approved",
        y_pred="predicted", sensitive=["sex"],
    )  # fmt: skip
    assert client_of(viewer).get(f"/api/v1/bias-reports/{report.pk}/").status_code == 200
    hidden = client_of(outsider).get(f"/api/v1/bias-reports/{report.pk}/")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "bias_report_not_found"
    assert client_of(outsider).get(REPORTS).status_code == 404
    assert APIClient().get(REPORTS).status_code in (401, 403)
    assert not BiasReport.objects.exclude(pk=report.pk).exists()


def test_the_policy_is_read_by_members_and_set_by_product_owners(owner, viewer, project):
    default = client_of(viewer).get(POLICY).json()
    assert default["limits"]["demographic_parity_ratio_min"] == 0.8
    assert (default["min_group_size"], default["edited_by"]) == (30, None)
    refused = client_of(viewer).put(POLICY, {"limits": {}}, format="json")
    assert refused.status_code == 403
    body = {"limits": {"demographic_parity_ratio_min": 0.9}, "min_group_size": 50}
    saved = client_of(owner).put(POLICY, body, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["limits"]["demographic_parity_ratio_min"] == 0.9
    assert (saved.json()["min_group_size"], saved.json()["edited_by"]) == (50, "olivia")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limits": {"demographic_parity_ratio_min": 1.5}}, "demographic_parity_ratio_min"),
        ({"limits": {"ratio": 0.5}}, "ratio"),
        ({"limits": {"equalized_odds_ratio_min": "high"}}, "equalized_odds_ratio_min"),
        ({"limits": {}, "min_group_size": 0}, "min_group_size"),
        ({"limits": "strict"}, "limits"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(owner, project, body, field):
    response = client_of(owner).put(POLICY, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not FairnessPolicy.objects.exists()


def test_the_endpoints_are_in_the_openapi_schema(tmp_path):
    from django.core.management import call_command

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(path))
    schema = path.read_text()
    for url in ("/api/v1/projects/{slug}/bias-reports/:", "/api/v1/bias-reports/{id}/:",
                "/api/v1/projects/{slug}/fairness-policy/:"):  # fmt: skip
        assert url in schema
    assert "'202':" in schema.split("/api/v1/projects/{slug}/bias-reports/:", 1)[1][:4000]
