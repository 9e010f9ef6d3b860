"""The inspect job reads a real MLflow model in a real worker; the pages follow jobs, add up
their cost, and let those who run pipelines cancel and retry."""

import pytest
from django.urls import reverse

from governance.access.roles import Role
from governance.delivery import runner, services
from governance.delivery.models import Job
from governance.registry import services as registry
from governance.registry.models import ModelVersion
from tests.factories import AdminFactory, UserFactory, make_project, make_version


@pytest.fixture
def live(transactional_db, tracking, celery_worker):
    admin = AdminFactory(username="ada")
    mei = UserFactory(username="mei")
    project = make_project(
        admin=admin, owner=UserFactory(username="olivia"), members={mei: Role.ML_ENGINEER}
    )
    tracking.sklearn_version("credit-scoring", project="credit-risk")
    registry.sync_mlflow(trigger="test")
    return {"project": project, "mei": mei, "worker": celery_worker}


def test_a_worker_inspects_a_real_model_version(live):
    version = ModelVersion.objects.get(model__name="credit-scoring", version=1)
    job = services.start_job(
        actor=live["mei"], project=live["project"], kind="inspect", version=version
    )
    live["worker"].wait_for(lambda: Job.objects.get(pk=job.pk).finished, timeout=60)
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert {"python_function", "sklearn"} <= set(job.result["flavors"])
    assert job.result["loader_module"] == "mlflow.sklearn"
    assert [c["name"] for c in _inputs(job.result["signature"])] == ["age", "income"]
    assert "scikit-learn" in job.result["requirements"]
    assert "MLmodel" in job.result["files"]
    assert job.result["size_bytes"] > 0


def _inputs(signature: dict) -> list:
    import json

    return json.loads(signature["inputs"])


def test_a_version_whose_files_are_gone_fails_with_the_reason(project, engineer, settings):
    job = services.start_job(
        actor=engineer,
        project=project,
        kind="inspect",
        version=make_version(project, "never-logged", 1),
    )
    job = runner.execute(job.pk)
    assert job.state == Job.State.FAILED
    assert "never-logged" in job.error


@pytest.fixture
def jobs(project, engineer):
    version = make_version(project, "credit-scoring", 1)
    made = [
        services.start_job(actor=engineer, project=project, kind="inspect", version=version)
        for _ in range(3)
    ]
    for job in made:
        runner.execute(job.pk)  # nothing to fetch: they fail, with a cost all the same
    return made


def test_the_jobs_page_lists_jobs_and_adds_up_their_cost(login, jobs, viewer):
    response = login(viewer).get(reverse("jobs", args=["credit-risk"]))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Inspect the model files #" in text
    costs = response.context["costs"]
    assert costs["total"]["jobs"] == 3
    assert costs["models"][0]["version__model__name"] == "credit-scoring"
    assert costs["models"][0]["wall_seconds"] == pytest.approx(
        sum(Job.objects.values_list("wall_seconds", flat=True))
    )


def test_the_jobs_page_reads_the_same_rows_however_many_jobs(
    login, project, engineer, viewer, django_assert_max_num_queries
):
    version = make_version(project, "credit-scoring", 1)
    client = login(viewer)
    services.start_job(actor=engineer, project=project, kind="inspect", version=version)
    with django_assert_max_num_queries(50) as few:
        client.get(reverse("jobs", args=["credit-risk"]))
    for _ in range(6):
        services.start_job(actor=engineer, project=project, kind="inspect", version=version)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("jobs", args=["credit-risk"]))


def test_a_job_page_shows_progress_and_log_and_refreshes_while_it_runs(login, project, engineer):
    job = services.start_job(
        actor=engineer,
        project=project,
        kind="inspect",
        version=make_version(project, "credit-scoring", 1),
    )
    client = login(engineer)
    url = reverse("job", args=["credit-risk", job.pk])
    page = client.get(url).content.decode()
    assert 'hx-trigger="every 1s"' in page, "a queued job is followed"
    assert "Cancel" in page

    runner.execute(job.pk)
    partial = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial
    assert "hx-trigger" not in partial, "a finished job is not asked again"
    assert "Try again" in partial
    assert "attempt 1 started" in partial


def test_an_engineer_cancels_then_retries_from_the_page(login, project, engineer):
    job = services.start_job(
        actor=engineer,
        project=project,
        kind="inspect",
        version=make_version(project, "credit-scoring", 1),
    )
    client = login(engineer)
    client.post(reverse("job_cancel", args=["credit-risk", job.pk]))
    assert Job.objects.get(pk=job.pk).state == Job.State.CANCELLED
    response = client.post(reverse("job_cancel", args=["credit-risk", job.pk]), follow=True)
    assert "finished" in response.content.decode() or "cancelled" in response.content.decode()
    client.post(reverse("job_retry", args=["credit-risk", job.pk]))
    assert Job.objects.get(pk=job.pk).state == Job.State.QUEUED


def test_a_viewer_may_not_cancel_and_an_outsider_sees_no_job(login, jobs, viewer, outsider):
    url = reverse("job_retry", args=["credit-risk", jobs[0].pk])
    login(viewer).post(url)
    assert Job.objects.get(pk=jobs[0].pk).state == Job.State.FAILED
    page = reverse("job", args=["credit-risk", jobs[0].pk])
    assert login(outsider).get(page).status_code == 404


def test_a_job_of_another_project_is_not_found(login, jobs, engineer, admin_user):
    make_project(admin=admin_user, owner=engineer, slug="other")
    url = reverse("job", args=["other", jobs[0].pk])
    assert login(engineer).get(url).status_code == 404
