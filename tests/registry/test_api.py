import pytest
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.registry import services
from governance.registry.errors import MlflowNotFound
from governance.registry.mlflow_client import Mlflow


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_lists_experiments_and_runs_with_a_keyset(viewer, mirrored, monkeypatch):
    from governance.registry import selectors

    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    client = api(viewer)
    (experiment,) = [
        e for e in client.get("/api/v1/projects/credit-risk/experiments/").json()["results"]
        if e["name"] == "credit/scoring"
    ]  # fmt: skip
    assert experiment["run_count"] == 5
    url = f"/api/v1/projects/credit-risk/experiments/{experiment['id']}/runs/?sort=-metric:accuracy"
    names = []
    while url:
        body = client.get(url).json()
        names += [run["name"] for run in body["results"]]
        url = body["next"]
    assert names == [f"run-{n}" for n in (4, 3, 2, 1, 0)]


def test_api_gives_a_run_with_its_data_and_history(viewer, mirrored):
    client = api(viewer)
    run_id = mirrored["runs"][1]
    run = client.get(f"/api/v1/projects/credit-risk/runs/{run_id}/").json()
    assert run["inputs"][0]["dataset"]["name"] == "applicants"
    history = client.get(f"/api/v1/projects/credit-risk/runs/{run_id}/metrics/auc/history/")
    assert [point[0] for point in history.json()["points"]] == [0, 1]


def test_api_refuses_an_unknown_metric_history(viewer, mirrored):
    run_id = mirrored["runs"][1]
    response = api(viewer).get(f"/api/v1/projects/credit-risk/runs/{run_id}/metrics/nope/history/")
    assert response.status_code == 400


def test_api_gives_models_with_versions_and_aliases(viewer, mirrored):
    client = api(viewer)
    (model,) = client.get("/api/v1/projects/credit-risk/models/").json()["results"]
    assert model["aliases"] == {"champion": 1}
    detail = client.get("/api/v1/projects/credit-risk/models/credit-scoring/").json()
    assert detail["versions"][0]["aliases"] == ["champion"]
    assert detail["versions"][0]["run"] == mirrored["runs"][4]


def test_api_lists_the_data_sets_the_projects_runs_used(viewer, mirrored):
    body = api(viewer).get("/api/v1/projects/credit-risk/datasets/").json()
    assert [d["name"] for d in body["results"]] == ["applicants"]


def test_api_hides_other_projects_registries(outsider, mirrored):
    response = api(outsider).get("/api/v1/projects/credit-risk/models/")
    assert response.status_code == 404


def test_data_scientists_ask_for_a_sync_and_it_is_recorded(
    scientist,
    mirrored,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as queued:
        response = api(scientist).post("/api/v1/projects/credit-risk/sync/", {}, format="json")
    assert response.status_code == 202
    assert len(queued) == 1
    assert AuditEvent.objects.latest("seq").action == "mlflow.sync_requested"


def test_viewers_may_not_ask_for_a_sync(viewer, mirrored):
    response = api(viewer).post("/api/v1/projects/credit-risk/sync/", {}, format="json")
    assert response.status_code == 403


# The write-back that approvals use, against MLflow itself


def test_aliases_and_tags_are_written_back_to_mlflow(project, tracking):
    run_id = tracking.run(tracking.experiment("e", project="credit-risk"))
    tracking.model("m", project="credit-risk")
    tracking.version("m", run_id)
    tracking.version("m", run_id)
    mlflow = Mlflow()
    mlflow.set_alias("m", "production", 2)
    mlflow.set_version_tag("m", 2, "quorum.release", "42")
    model = tracking.client.get_registered_model("m")
    assert {alias: int(v) for alias, v in model.aliases.items()} == {"production": 2}
    assert tracking.client.get_model_version("m", "2").tags["quorum.release"] == "42"
    mlflow.delete_alias("m", "production")
    assert tracking.client.get_registered_model("m").aliases == {}
    services.sync_mlflow(trigger="test")


def test_writing_an_alias_to_a_version_mlflow_lacks_is_not_found(project, tracking):
    tracking.model("m", project="credit-risk")
    with pytest.raises(MlflowNotFound):
        Mlflow().set_alias("m", "production", 7)
