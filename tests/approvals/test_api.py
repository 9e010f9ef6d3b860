from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from governance.access import services as access
from governance.approvals import services
from governance.approvals.models import ApprovalRequest
from tests.factories import make_project

GATE = "/api/v1/gate"
REQUESTS = "/api/v1/approval-requests/"
ASK = {"model": "credit-scoring", "version": 1, "stage": "production"}


def bearer(user, project=None) -> APIClient:
    _, secret = access.create_api_token(
        actor=user,
        name=f"ci-{project.slug if project else 'all'}",
        expires_at=timezone.now() + timedelta(days=1),
        project=project,
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def error_of(response) -> str:
    return response.json()["error"]["code"]


def test_the_gate_turns_from_false_to_true_as_the_release_is_approved(
    scientist, owner, engineer, project, version, policy
):
    ci = bearer(scientist, project)
    first = ci.get(GATE, ASK)
    assert first.status_code == 200
    assert first.json()["allowed"] is False
    assert first.json()["reasons"] == [
        "no release of credit-scoring v1 to production was requested"
    ]

    opened = ci.post(REQUESTS, {**ASK, "note": "from CI"}, format="json")
    assert opened.status_code == 201, opened.content
    pk = opened.json()["id"]
    waiting = ci.get(GATE, ASK).json()
    assert (waiting["allowed"], waiting["request"]) == (False, pk)
    assert waiting["reasons"] == ["waiting for 1 product owner", "waiting for 1 ML engineer"]

    approval = ApprovalRequest.objects.get(pk=pk)
    services.decide(actor=owner, approval=approval, verdict="approve")
    services.decide(actor=engineer, approval=approval, verdict="approve")
    answer = ci.get(GATE, ASK).json()
    assert answer["allowed"] is True
    assert answer["state"] == "approved"


def test_a_rejected_release_is_not_allowed_and_says_why(scientist, owner, opened):
    services.decide(actor=owner, approval=opened, verdict="reject", comment="drift unexplained")
    answer = bearer(scientist).get(GATE, ASK).json()
    assert answer["allowed"] is False
    assert answer["reasons"] == [f"request #{opened.pk} is rejected", "drift unexplained"]


def test_the_gate_hides_models_the_caller_cannot_see(outsider, opened):
    response = bearer(outsider).get(GATE, ASK)
    assert response.status_code == 404
    assert error_of(response) == "version_not_found"


def test_a_ci_token_sees_only_its_project(scientist, admin_user, owner, opened):
    other = make_project(admin=admin_user, owner=owner, slug="fraud", name="Fraud",
                         members={scientist: "data_scientist"})  # fmt: skip
    response = bearer(scientist, other).get(GATE, ASK)
    assert response.status_code == 404


def test_a_ci_token_may_not_use_the_rest_of_the_api(scientist, project):
    ci = bearer(scientist, project)
    for url in ("/api/v1/projects/", "/api/v1/me/", "/api/v1/notifications/"):
        response = ci.get(url)
        assert response.status_code == 403, url
        assert "CI token" in response.json()["error"]["message"]


def test_an_unknown_token_is_refused(version, policy):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer qrm_not-a-token")
    response = client.get(GATE, ASK)
    assert response.status_code == 401
    assert "error" in response.json()


def test_a_ci_token_for_a_project_one_cannot_see_is_not_made(scientist, admin_user, owner):
    other = make_project(admin=admin_user, owner=owner, slug="fraud", name="Fraud")
    from governance.access.errors import ProjectNotFound

    with pytest.raises(ProjectNotFound):
        bearer(scientist, other)


@pytest.mark.parametrize(
    "query",
    [{}, {"model": "credit-scoring", "stage": "production"}, {**ASK, "version": "one"}],
)
def test_the_gate_needs_model_version_and_stage(scientist, opened, query):
    response = bearer(scientist).get(GATE, query)
    assert response.status_code == 400
    assert error_of(response) == "invalid"


def test_opening_for_a_stage_without_policy_is_400(scientist, version, policy):
    response = bearer(scientist).post(REQUESTS, {**ASK, "stage": "staging"}, format="json")
    assert response.status_code == 400
    assert error_of(response) == "no_policy"
    assert not ApprovalRequest.objects.exists()


@pytest.mark.parametrize(
    "body", [{}, {**ASK, "version": 0}, {**ASK, "version": "x"}, {**ASK, "stage": "s" * 40}]
)
def test_a_bad_request_body_is_400(scientist, version, policy, body):
    response = bearer(scientist).post(REQUESTS, body, format="json")
    assert response.status_code == 400
    assert not ApprovalRequest.objects.exists()


def test_a_version_that_does_not_exist_is_404(scientist, version, policy):
    response = bearer(scientist).post(REQUESTS, {**ASK, "version": 9}, format="json")
    assert response.status_code == 404


def test_the_requester_approving_over_the_api_gets_409(engineer, version, policy):
    client = bearer(engineer)
    pk = client.post(REQUESTS, ASK, format="json").json()["id"]
    response = client.post(f"{REQUESTS}{pk}/decisions/", {"verdict": "approve"}, format="json")
    assert response.status_code == 409
    assert error_of(response) == "separation_of_duties"


def test_an_approver_decides_over_the_api(owner, opened):
    response = bearer(owner).post(
        f"{REQUESTS}{opened.pk}/decisions/", {"verdict": "approve"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["slots"][0] == {
        "role": "product_owner", "needed": 1, "approvers": ["olivia"],
    }  # fmt: skip


def test_a_ci_token_cannot_decide(owner, project, opened):
    response = bearer(owner, project).post(
        f"{REQUESTS}{opened.pk}/decisions/", {"verdict": "approve"}, format="json"
    )
    assert response.status_code == 403
    assert not opened.decisions.exists()


def test_a_request_of_another_project_is_404(outsider, opened):
    assert bearer(outsider).get(f"{REQUESTS}{opened.pk}/").status_code == 404


def test_a_ci_token_is_made_on_the_profile_page(login, scientist, project):
    response = login(scientist).post(
        "/account/tokens/", {"name": "deploy", "lifetime": "30", "project": "credit-risk"}
    )
    assert response.status_code == 201
    token = scientist.api_tokens.get()
    assert token.project == project
    assert "CI: credit-risk" in response.content.decode()


def test_a_ci_token_for_an_unknown_project_is_refused_on_the_page(login, scientist, project):
    response = login(scientist).post(
        "/account/tokens/", {"name": "deploy", "lifetime": "30", "project": "nope"}
    )
    assert response.status_code == 400
    assert not scientist.api_tokens.exists()


@pytest.mark.parametrize("history", [1, 15])
def test_the_gate_asks_the_database_three_times_whatever_the_history(
    scientist, owner, project, versions, history, django_assert_num_queries
):
    services.save_policy(
        actor=owner, project=project, stage="staging", required={"product_owner": 1}
    )
    for _ in range(history):
        approval = services.open_request(actor=scientist, version=versions[0], stage="staging")
        services.decide(actor=owner, approval=approval, verdict="reject", comment="not yet")
    approval = services.open_request(actor=scientist, version=versions[0], stage="staging")
    services.decide(actor=owner, approval=approval, verdict="approve")
    ci = bearer(scientist, project)
    ask = {**ASK, "stage": "staging"}
    ci.get(GATE, ask)  # the token's last use is noted once a minute
    with django_assert_num_queries(3):  # the token, the visible projects, the latest request
        assert ci.get(GATE, ask).json()["allowed"] is True
