"""The version page offers packaging to those who run pipelines and shows the latest package
job; a succeeded job's archive downloads for anyone who may see the project."""

import pytest
from django.urls import reverse

from governance.delivery import runner, services
from governance.delivery.models import Job
from governance.registry import services as registry
from governance.registry.models import ModelVersion
from tests.factories import make_version


def _page(version: ModelVersion) -> str:
    return reverse("model_version", args=["credit-risk", version.model.name, version.version])


@pytest.fixture
def packaged(project, engineer, tracking) -> Job:
    tracking.sklearn_version("credit-scoring", project="credit-risk")
    registry.sync_mlflow(trigger="test")
    version = ModelVersion.objects.get(model__name="credit-scoring", version=1)
    job = services.start_job(actor=engineer, project=project, kind="package", version=version)
    job = runner.execute(job.pk)
    assert job.state == Job.State.SUCCEEDED, job.error
    return job


def test_an_engineer_packages_a_version_from_its_page_and_follows_the_job(login, project, engineer):
    version = make_version(project, "credit-scoring", 1)
    client = login(engineer)
    assert "Package</button>" in client.get(_page(version)).content.decode()
    response = client.post(reverse("package_version", args=["credit-risk", "credit-scoring", 1]))
    job = Job.objects.get()
    assert (job.kind, job.version, job.triggered_by) == ("package", version, engineer)
    assert response.status_code == 302
    assert response.url == reverse("job", args=["credit-risk", job.pk])
    page = client.get(_page(version)).content.decode()
    assert f"package job #{job.pk}" in page
    assert "queued" in page


def test_a_viewer_sees_no_package_button_and_cannot_start_one(login, project, viewer):
    version = make_version(project, "credit-scoring", 1)
    client = login(viewer)
    assert "Package</button>" not in client.get(_page(version)).content.decode()
    client.post(reverse("package_version", args=["credit-risk", "credit-scoring", 1]))
    assert not Job.objects.exists()


def test_a_viewer_downloads_the_package_of_a_succeeded_job(login, packaged, viewer):
    client = login(viewer)
    page = client.get(reverse("job", args=["credit-risk", packaged.pk])).content.decode()
    url = reverse("job_package", args=["credit-risk", packaged.pk])
    assert url in page
    response = client.get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    with open(packaged.result["package"]["path"], "rb") as archive:
        assert body == archive.read()
    assert "attachment" in response["Content-Disposition"]
    version_page = client.get(_page(packaged.version)).content.decode()
    assert f"package job #{packaged.pk}" in version_page
    assert "serves onnx" in version_page


def test_an_outsider_cannot_download_a_package(login, packaged, outsider):
    url = reverse("job_package", args=["credit-risk", packaged.pk])
    assert login(outsider).get(url).status_code == 404


def test_a_job_that_made_no_package_has_nothing_to_download(login, project, engineer):
    job = services.start_job(
        actor=engineer, project=project, kind="package",
        version=make_version(project, "never-logged", 1),
    )  # fmt: skip
    job = runner.execute(job.pk)
    assert job.state == Job.State.FAILED
    client = login(engineer)
    assert client.get(reverse("job_package", args=["credit-risk", job.pk])).status_code == 404
    page = client.get(reverse("job", args=["credit-risk", job.pk])).content.decode()
    assert "Download the package" not in page


def test_the_version_page_reads_the_same_rows_however_many_package_jobs(
    login, project, engineer, django_assert_max_num_queries
):
    version = make_version(project, "credit-scoring", 1)
    client = login(engineer)
    services.start_job(actor=engineer, project=project, kind="package", version=version)
    with django_assert_max_num_queries(80) as few:
        client.get(_page(version))
    for _ in range(6):
        services.start_job(actor=engineer, project=project, kind="package", version=version)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(_page(version))
