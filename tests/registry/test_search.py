import pytest
from django.urls import reverse

from tests.factories import make_project


def test_search_finds_models_experiments_and_runs_of_ones_projects(login, viewer, mirrored):
    response = login(viewer).get(reverse("search"), {"q": "credit"})
    results = response.context["results"]
    assert [m.name for m in results.models] == ["credit-scoring"]
    assert [e.name for e in results.experiments] == ["credit/scoring"]
    run = login(viewer).get(reverse("search"), {"q": mirrored["runs"][0]}).context["results"]
    assert [r.mlflow_id for r in run.runs] == [mirrored["runs"][0]]


def test_search_never_shows_other_projects(login, outsider, admin_user, mirrored):
    make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")
    response = login(outsider).get(reverse("search"), {"q": "credit"})
    assert not response.context["results"]
    assert b"Nothing in your projects" in response.content


@pytest.mark.parametrize("text", ["x", "y" * 201])
def test_search_refuses_too_short_or_too_long_text(login, viewer, text):
    response = login(viewer).get(reverse("search"), {"q": text})
    assert response.status_code == 400


def test_search_queries_do_not_grow_with_matches(
    login, viewer, mirrored, django_assert_max_num_queries
):
    client = login(viewer)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("search"), {"q": "run"})
    assert len(response.context["results"].runs) == 5
