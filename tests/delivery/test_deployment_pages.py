"""The Deployments pages and /api/v1/projects/{slug}/targets: what each person sees and may do,
the refusals in the one error body, and query counts that do not grow with the rows."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from governance.approvals import services as approvals
from governance.audit.models import AuditEvent
from governance.delivery import services
from governance.delivery.models import Deployment, Target
from tests.factories import make_version


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def approved(project, owner, scientist):
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1}
    )
    version = make_version(project, "credit-scoring", 1)
    approval = approvals.open_request(actor=scientist, version=version, stage="production")
    approvals.decide(actor=owner, approval=approval, verdict="approve")
    return version


@pytest.fixture
def hook(project, admin_user):
    services.set_secret(actor=admin_user, project=project, name="HOOK_KEY", value="k3y")


def _webhook(project, engineer, name: str = "argo") -> Target:
    return services.create_target(
        actor=engineer, project=project, name=name, kind="webhook", stage="production",
        settings={"url": "http://127.0.0.1:9/deploy", "hmac_secret": "HOOK_KEY"},
    )  # fmt: skip


# API.


def test_an_engineer_creates_lists_and_changes_a_target_over_the_api(project, engineer, hook):
    api = as_user(engineer)
    made = api.post(
        "/api/v1/projects/credit-risk/targets/",
        {"name": "argo", "kind": "webhook", "stage": "production",
         "settings": {"url": "https://cd.example/hook", "hmac_secret": "HOOK_KEY"}},
        format="json",
    )  # fmt: skip
    assert made.status_code == 201, made.json()
    pk = made.json()["id"]
    listed = api.get("/api/v1/projects/credit-risk/targets/").json()
    assert [t["name"] for t in listed] == ["argo"]
    changed = api.patch(f"/api/v1/projects/credit-risk/targets/{pk}/", {"stage": "staging"},
                        format="json")  # fmt: skip
    assert changed.json()["stage"] == "staging"
    detail = api.get(f"/api/v1/projects/credit-risk/targets/{pk}/").json()
    assert detail["current"] is None
    assert api.delete(f"/api/v1/projects/credit-risk/targets/{pk}/").status_code == 204
    assert not Target.objects.exists()


def test_invalid_settings_over_the_api_get_the_error_body_naming_the_field(project, engineer):
    response = as_user(engineer).post(
        "/api/v1/projects/credit-risk/targets/",
        {"name": "argo", "kind": "webhook", "stage": "production", "settings": {"url": "nope"}},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_target"
    assert "url" in error["fields"]
    assert not Target.objects.exists()


def test_deploying_an_unapproved_version_over_the_api_is_refused_with_the_reason(
    project, engineer, hook
):
    target = _webhook(project, engineer)
    make_version(project, "credit-scoring", 1)
    response = as_user(engineer).post(
        f"/api/v1/projects/credit-risk/targets/{target.pk}/deployments/",
        {"model": "credit-scoring", "version": 1}, format="json",
    )  # fmt: skip
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_approved"
    assert "no approval request was opened for production" in error["message"]
    assert not Deployment.objects.exists()


def test_an_engineer_deploys_over_the_api_and_reads_the_history(project, engineer, hook, approved):
    target = _webhook(project, engineer)
    api = as_user(engineer)
    started = api.post(
        f"/api/v1/projects/credit-risk/targets/{target.pk}/deployments/",
        {"model": "credit-scoring", "version": 1}, format="json",
    )  # fmt: skip
    assert started.status_code == 202, started.json()
    assert started.json()["state"] == "deploying"
    history = api.get(f"/api/v1/projects/credit-risk/targets/{target.pk}/deployments/").json()
    assert [d["id"] for d in history] == [started.json()["id"]]
    refused = api.post(f"/api/v1/projects/credit-risk/targets/{target.pk}/rollback/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "nothing_to_roll_back_to"


@pytest.mark.parametrize("person", ["viewer", "scientist"])
def test_viewers_and_data_scientists_cannot_deploy_or_roll_back_over_the_api(
    request, project, engineer, hook, approved, person
):
    target = _webhook(project, engineer)
    api = as_user(request.getfixturevalue(person))
    seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    base = f"/api/v1/projects/credit-risk/targets/{target.pk}"
    deploy = api.post(f"{base}/deployments/", {"model": "credit-scoring", "version": 1},
                      format="json")  # fmt: skip
    assert deploy.status_code == 403
    assert api.post(f"{base}/rollback/").status_code == 403
    assert api.delete(f"{base}/").status_code == 403
    assert api.get(f"{base}/").status_code == 200  # they may look
    assert not Deployment.objects.exists()
    assert not AuditEvent.objects.filter(seq__gt=seq).exists()


def test_an_outsider_is_told_the_project_does_not_exist(project, engineer, hook, outsider):
    target = _webhook(project, engineer)
    response = as_user(outsider).get(f"/api/v1/projects/credit-risk/targets/{target.pk}/")
    assert response.status_code == 404


def test_the_schema_describes_the_deployment_endpoints(admin_user):
    schema = as_user(admin_user).get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    assert "/api/v1/projects/{slug}/targets/" in paths
    assert "/api/v1/projects/{slug}/targets/{id}/deployments/" in paths
    assert "/api/v1/projects/{slug}/targets/{id}/rollback/" in paths
    assert "/api/v1/deployments/{id}/callback/" in paths
    assert {"TargetOut", "TargetInRequest", "DeploymentOut", "DeployInRequest",
            "CallbackInRequest", "TargetKindEnum", "DeploymentStateEnum"} <= set(
        schema["components"]["schemas"]
    )  # fmt: skip


# Pages.


def test_an_engineer_adds_a_target_from_the_form(login, project, engineer):
    client = login(engineer)
    assert client.get("/projects/credit-risk/targets/new/").status_code == 200
    response = client.post(
        "/projects/credit-risk/targets/new/",
        {"name": "local", "kind": "local", "stage": "production", "port": ""},
    )
    target = Target.objects.get()
    assert response.status_code == 302
    assert response.url == f"/projects/credit-risk/targets/{target.pk}/"


def test_the_form_shows_what_is_wrong_and_saves_nothing(login, project, engineer):
    response = login(engineer).post(
        "/projects/credit-risk/targets/new/",
        {"name": "k8s", "kind": "kubernetes", "stage": "production", "namespace": "Bad NS"},
    )
    assert response.status_code == 400
    assert "A Kubernetes namespace" in response.content.decode()
    assert not Target.objects.exists()


def test_the_target_page_offers_approved_versions_and_a_deploy_starts_a_job(
    login, project, engineer, hook, approved
):
    target = _webhook(project, engineer)
    client = login(engineer)
    page = client.get(f"/projects/credit-risk/targets/{target.pk}/").content.decode()
    assert 'value="credit-scoring:1"' in page
    assert "Roll back" in page
    assert "Check now" in page
    response = client.post(
        f"/projects/credit-risk/targets/{target.pk}/deploy/", {"version": "credit-scoring:1"}
    )
    deployment = Deployment.objects.get()
    assert response.url == f"/projects/credit-risk/jobs/{deployment.job_id}/"
    page_of_version = reverse("model_version", args=["credit-risk", "credit-scoring", 1])
    version_page = client.get(page_of_version).content.decode()
    assert "Deploy to argo" in version_page


def test_a_refused_deploy_from_the_page_says_why(login, project, engineer):
    target = services.create_target(
        actor=engineer, project=project, name="local", kind="local", stage="production"
    )
    make_version(project, "credit-scoring", 1)
    client = login(engineer)
    response = client.post(
        f"/projects/credit-risk/targets/{target.pk}/deploy/", {"version": "credit-scoring:1"},
        follow=True,
    )  # fmt: skip
    assert "cannot be deployed to a production target" in response.content.decode()
    assert not Deployment.objects.exists()


def test_a_viewer_sees_the_deployments_but_no_buttons(login, project, engineer, hook, viewer):
    target = _webhook(project, engineer)
    client = login(viewer)
    listing = client.get("/projects/credit-risk/deployments/").content.decode()
    assert "argo" in listing
    assert "Add a target" not in listing
    page = client.get(f"/projects/credit-risk/targets/{target.pk}/").content.decode()
    assert "Roll back" not in page
    assert "Check now" not in page
    refused = client.post(f"/projects/credit-risk/targets/{target.pk}/rollback/", follow=True)
    assert "does not allow this" in refused.content.decode()


def test_the_jobs_page_links_to_the_deployments(login, project, engineer):
    page = login(engineer).get("/projects/credit-risk/jobs/").content.decode()
    assert "/projects/credit-risk/deployments/" in page


def test_the_deployments_page_reads_the_same_rows_however_many_targets(
    login, project, engineer, hook, approved, django_assert_max_num_queries
):
    client = login(engineer)
    services.deploy(actor=engineer, target=_webhook(project, engineer, "t0"), version=approved)
    with django_assert_max_num_queries(60) as few:
        assert client.get("/projects/credit-risk/deployments/").status_code == 200
    for n in range(1, 8):
        services.deploy(
            actor=engineer, target=_webhook(project, engineer, f"t{n}"), version=approved
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/projects/credit-risk/deployments/")


def test_the_target_page_reads_the_same_rows_however_long_the_history(
    login, project, engineer, admin_user, hook, approved, django_assert_max_num_queries
):
    target = _webhook(project, engineer)
    client = login(engineer)

    def deploy_and_stop() -> None:
        deployment = services.deploy(actor=engineer, target=target, version=approved)
        services.stop_deployment(actor=engineer, deployment=deployment)

    deploy_and_stop()
    with django_assert_max_num_queries(60) as few:
        assert client.get(f"/projects/credit-risk/targets/{target.pk}/").status_code == 200
    for _ in range(8):
        deploy_and_stop()
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(f"/projects/credit-risk/targets/{target.pk}/")
