"""A page POST by someone whose role may not make the change answers 403 and changes nothing.

These views show other failures as a message on the page the person came from (a redirect);
a refused permission used to take the same way, so the answer was a 302 as if it had worked.
"""

import pytest
from django.urls import reverse

from governance.audit.models import AuditEvent, VerificationRun
from governance.delivery import services as delivery
from governance.delivery.models import Job, Secret
from tests.factories import make_version


@pytest.fixture
def job(project, admin_user):
    version = make_version(project, "credit-scoring", 1)
    return delivery.start_job(actor=admin_user, project=project, kind="inspect", version=version)


def test_a_viewer_cancelling_a_job_gets_403_and_the_job_keeps_running(login, viewer, job):
    client = login(viewer)
    before = AuditEvent.objects.count()
    response = client.post(reverse("job_cancel", args=["credit-risk", job.pk]))
    assert response.status_code == 403
    assert Job.objects.get(pk=job.pk).state == Job.State.QUEUED
    assert AuditEvent.objects.count() == before


def test_a_product_owner_deleting_a_secret_gets_403_and_it_stays(login, owner, project, admin_user):
    delivery.set_secret(actor=admin_user, project=project, name="KEY", value="v")
    response = login(owner).post(reverse("secret_delete", args=["credit-risk", "KEY"]))
    assert response.status_code == 403
    assert Secret.objects.filter(project=project, name="KEY").exists()


def test_a_viewer_asking_to_package_a_version_gets_403_and_no_job(login, viewer, project):
    make_version(project, "credit-scoring", 1)
    url = reverse("package_version", args=["credit-risk", "credit-scoring", 1])
    response = login(viewer).post(url)
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_a_data_scientist_asking_to_verify_the_trail_gets_403_and_no_run(login, scientist, project):
    response = login(scientist).post(reverse("audit_verify"))
    assert response.status_code == 403
    assert not VerificationRun.objects.exists()


def test_a_failure_that_is_not_a_refusal_still_shows_on_the_page(login, engineer, job):
    """Retrying a queued job is a conflict, not a refusal: the person goes back to the job's
    page with the reason."""
    response = login(engineer).post(reverse("job_retry", args=["credit-risk", job.pk]))
    assert response.status_code == 302
    assert response.url == reverse("job", args=["credit-risk", job.pk])
