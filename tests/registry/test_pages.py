import pytest
from django.urls import reverse

from governance.registry import services
from governance.registry.models import Experiment, MetricHistory, Run
from tests.factories import make_project


def url(name: str, *args: str) -> str:
    return reverse(name, args=["credit-risk", *args])


def test_members_see_the_projects_experiments(login, viewer, mirrored):
    page = login(viewer).get(url("experiments")).content.decode()
    assert "credit/scoring" in page
    assert "Synced with MLflow" in page


def test_runs_table_shows_chosen_columns_sorted_by_a_metric(login, viewer, mirrored):
    response = login(viewer).get(
        url("experiment", mirrored["experiment"]),
        {"column": ["metric:accuracy", "param:solver"], "sort": "-metric:accuracy"},
    )
    runs = response.context["page"].runs
    assert [run.name for run in runs] == [f"run-{n}" for n in (4, 3, 2, 1, 0)]
    assert b"lbfgs" in response.content


def test_runs_table_pages_with_a_keyset_cursor(login, viewer, mirrored, monkeypatch):
    from governance.registry import selectors

    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    client = login(viewer)
    seen, after = [], None
    while True:
        params = {"sort": "metric:accuracy", **({"after": after} if after else {})}
        page = client.get(url("experiment", mirrored["experiment"]), params).context["page"]
        seen += [run.name for run in page.runs]
        after = page.next_cursor
        if not after:
            break
    assert seen == [f"run-{n}" for n in range(5)]


def test_runs_table_queries_do_not_grow_with_runs(
    login, viewer, project, django_assert_max_num_queries
):
    experiment = Experiment.objects.create(mlflow_id="9", name="big", project=project)
    Run.objects.bulk_create(
        Run(mlflow_id=f"r{n}", experiment=experiment, status="FINISHED", metrics={"auc": n / 100})
        for n in range(3)
    )
    client = login(viewer)
    with django_assert_max_num_queries(20) as few:
        client.get(url("experiment", "9"))
    Run.objects.bulk_create(
        Run(mlflow_id=f"s{n}", experiment=experiment, status="FINISHED", metrics={"auc": n / 100})
        for n in range(120)
    )
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url("experiment", "9"))


@pytest.mark.parametrize(
    "params",
    [{"sort": "bogus:x"}, {"column": "nonsense"}, {"status": "HALFWAY"}, {"after": "x|y"}],
)
def test_bad_runs_table_options_get_a_clear_400(login, viewer, mirrored, params):
    response = login(viewer).get(url("experiment", mirrored["experiment"]), params)
    assert response.status_code == 400


def test_run_page_draws_metric_history_fetched_once_and_cached(login, viewer, mirrored):
    run_id = mirrored["runs"][2]
    client = login(viewer)
    page = client.get(url("run", run_id)).content.decode()
    assert 'class="chart"' in page
    assert "applicants" in page
    assert MetricHistory.objects.filter(run__mlflow_id=run_id, key="auc").exists()
    points = MetricHistory.objects.get(run__mlflow_id=run_id, key="auc").points
    assert [step for step, _, _ in points] == [0, 1]


def test_compare_marks_the_params_that_differ(login, viewer, mirrored):
    runs = mirrored["runs"][:3]
    response = login(viewer).get(url("compare_runs"), {"run": runs})
    assert response.status_code == 200
    differs = {key for key, _, differs in response.context["param_rows"] if differs}
    assert differs == {"C", "solver"}
    assert b'data-target="parallel"' in response.content


@pytest.mark.parametrize("count", [1, 21])
def test_compare_needs_2_to_20_runs(login, viewer, mirrored, count):
    ids = (mirrored["runs"] * 5)[:count] if count == 1 else [f"id{n}" for n in range(count)]
    response = login(viewer).get(url("compare_runs"), {"run": ids})
    assert response.status_code == 400


def test_comparing_a_run_of_another_project_is_not_found(
    login, viewer, mirrored, tracking, admin_user, outsider
):
    make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")
    foreign = tracking.run(tracking.experiment("churn/x", project="churn"))
    services.sync_mlflow(trigger="test")
    response = login(viewer).get(url("compare_runs"), {"run": [mirrored["runs"][0], foreign]})
    assert response.status_code == 404


def test_a_run_of_another_project_is_not_found(login, viewer, tracking, admin_user, outsider):
    make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")
    foreign = tracking.run(tracking.experiment("churn/x", project="churn"))
    services.sync_mlflow(trigger="test")
    assert login(viewer).get(url("run", foreign)).status_code == 404


def test_model_page_lists_versions_with_aliases_and_source_runs(login, viewer, mirrored):
    response = login(viewer).get(url("model", "credit-scoring"))
    assert response.status_code == 200
    ((version, aliases),) = response.context["versions"]
    assert (version.version, aliases) == (1, ["champion"])
    assert b"run-4" in response.content


def test_models_page_lists_the_projects_models(login, viewer, mirrored):
    assert b"champion" in login(viewer).get(url("models")).content


def test_non_members_get_not_found_for_registry_pages(login, outsider, mirrored):
    client = login(outsider)
    for path in [url("experiments"), url("models"), url("model", "credit-scoring")]:
        assert client.get(path).status_code == 404


def test_pages_warn_when_the_last_sync_failed(login, viewer, mirrored, monkeypatch):
    from governance.registry.errors import MlflowUnavailable
    from governance.registry.mlflow_client import Mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(MlflowUnavailable):
        services.sync_mlflow(trigger="test", mlflow=Mlflow("http://127.0.0.1:9"))
    page = login(viewer).get(url("experiments")).content.decode()
    assert "The last sync with MLflow failed" in page
    assert "credit/scoring" in page
