import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from governance.access import services
from governance.access.models import ApiToken, Membership, Project
from governance.access.roles import Role
from tests.factories import make_project


def bearer(user, **token_options) -> tuple[APIClient, str]:
    expires_at = token_options.pop("expires_at", timezone.now() + timedelta(days=7))
    _, secret = services.create_api_token(actor=user, name="tests", expires_at=expires_at)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client, secret


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


# Authentication


def test_token_holder_reads_who_they_are(project, scientist):
    client, _ = bearer(scientist)
    body = client.get("/api/v1/me/").json()
    assert body["username"] == "sam"
    assert body["projects"] == [
        {"slug": "credit-risk", "name": "Credit risk", "role": "data_scientist"}
    ]


def test_token_use_is_noted(project, scientist):
    client, _ = bearer(scientist)
    client.get("/api/v1/me/")
    assert ApiToken.objects.get(user=scientist).last_used_at is not None


def test_no_credentials_get_401_with_the_scheme_to_use(db):
    response = APIClient().get("/api/v1/me/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_token_gets_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer qrm_not-a-real-token")
    assert_error(client.get("/api/v1/me/"), 401, "invalid_token")


def test_malformed_authorization_header_gets_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two words")
    assert_error(client.get("/api/v1/me/"), 401, "authentication_failed")


def test_expired_token_gets_401(project, scientist):
    client, _ = bearer(scientist)
    now = timezone.now()  # a week passes
    ApiToken.objects.update(created_at=now - timedelta(days=8), expires_at=now - timedelta(days=1))
    error = assert_error(client.get("/api/v1/me/"), 401, "invalid_token")
    assert "expired" in error["message"]


def test_revoked_token_gets_401(project, scientist):
    client, _ = bearer(scientist)
    services.revoke_api_token(actor=scientist, token=ApiToken.objects.get(user=scientist))
    error = assert_error(client.get("/api/v1/me/"), 401, "invalid_token")
    assert "revoked" in error["message"]


def test_token_of_a_deactivated_person_gets_401(project, scientist):
    client, _ = bearer(scientist)
    scientist.is_active = False
    scientist.save()
    assert_error(client.get("/api/v1/me/"), 401, "invalid_token")


@pytest.mark.parametrize("days", [-1, 400])
def test_token_expiry_outside_a_year_is_refused(scientist, days):
    with pytest.raises(services.InvalidInput) as error:
        services.create_api_token(
            actor=scientist, name="x", expires_at=timezone.now() + timedelta(days=days)
        )
    assert "expires_at" in error.value.fields
    assert not ApiToken.objects.exists()


def test_session_write_without_csrf_token_is_refused(project, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(
        "/api/v1/projects/", {"slug": "fraud", "name": "Fraud"}, content_type="application/json"
    )
    assert_error(response, 403, "csrf_failed")
    assert not Project.objects.filter(slug="fraud").exists()


def test_token_writes_need_no_csrf_token(admin_user):
    _, secret = bearer(admin_user)
    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post(
        "/api/v1/projects/",
        {"slug": "fraud", "name": "Fraud"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 201


# Projects


def test_projects_list_shows_only_the_callers_projects(project, admin_user, outsider):
    make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")
    body = as_user(outsider).get("/api/v1/projects/").json()
    assert [p["slug"] for p in body["results"]] == ["churn"]
    assert body["results"][0]["my_role"] == "product_owner"


def test_projects_list_pages_with_a_cursor(admin_user, owner):
    for n in range(5):
        make_project(admin=admin_user, owner=owner, slug=f"p{n}", name=f"P{n}")
    client = as_user(owner)
    first = client.get("/api/v1/projects/?page_size=2").json()
    second = client.get(first["next"]).json()
    assert [p["slug"] for p in first["results"]] == ["p0", "p1"]
    assert [p["slug"] for p in second["results"]] == ["p2", "p3"]


def test_projects_list_queries_do_not_grow_with_projects(
    admin_user, owner, django_assert_max_num_queries
):
    client = as_user(owner)
    make_project(admin=admin_user, owner=owner, slug="p0", name="P0")
    with django_assert_max_num_queries(5) as few:
        client.get("/api/v1/projects/")
    for n in range(1, 20):
        make_project(admin=admin_user, owner=owner, slug=f"p{n}", name=f"P{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get("/api/v1/projects/").json()
    assert len(body["results"]) == 20


def test_admin_creates_a_project_through_the_api(admin_user, owner):
    response = as_user(admin_user).post(
        "/api/v1/projects/", {"slug": "fraud", "name": "Fraud", "owner": "olivia"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["member_count"] == 1
    assert Membership.objects.get(project__slug="fraud").user == owner


def test_member_cannot_create_a_project(project, owner):
    response = as_user(owner).post(
        "/api/v1/projects/", {"slug": "fraud", "name": "Fraud"}, format="json"
    )
    assert_error(response, 403, "permission_denied")
    assert not Project.objects.filter(slug="fraud").exists()


def test_taken_slug_gets_409(project, admin_user):
    response = as_user(admin_user).post(
        "/api/v1/projects/", {"slug": "credit-risk", "name": "Again"}, format="json"
    )
    error = assert_error(response, 409, "slug_taken")
    assert "slug" in error["fields"]
    assert Project.objects.count() == 1


@pytest.mark.parametrize("slug", ["Credit Risk", "credit_risk", "x", "new"])
def test_malformed_slug_gets_400(admin_user, slug):
    response = as_user(admin_user).post(
        "/api/v1/projects/", {"slug": slug, "name": "Credit"}, format="json"
    )
    error = assert_error(response, 400, "invalid_slug")
    assert "slug" in error["fields"]
    assert not Project.objects.exists()


def test_missing_fields_get_400_naming_them(admin_user):
    response = as_user(admin_user).post("/api/v1/projects/", {}, format="json")
    error = assert_error(response, 400, "invalid")
    assert set(error["fields"]) == {"slug", "name"}


def test_malformed_json_gets_400(admin_user):
    response = as_user(admin_user).post(
        "/api/v1/projects/", "{not json", content_type="application/json"
    )
    assert_error(response, 400, "parse_error")


def test_unknown_owner_gets_400(admin_user):
    response = as_user(admin_user).post(
        "/api/v1/projects/", {"slug": "fraud", "name": "F", "owner": "ghost"}, format="json"
    )
    assert_error(response, 400, "unknown_user")
    assert not Project.objects.exists()


def test_admin_renames_and_archives_through_the_api(project, admin_user):
    client = as_user(admin_user)
    renamed = client.patch("/api/v1/projects/credit-risk/", {"name": "Credit"}, format="json")
    assert renamed.json()["name"] == "Credit"
    archived = client.post("/api/v1/projects/credit-risk/archive/")
    assert archived.json()["archived_at"] is not None
    again = client.patch("/api/v1/projects/credit-risk/", {"name": "X"}, format="json")
    assert_error(again, 409, "project_archived")
    restored = client.post("/api/v1/projects/credit-risk/restore/")
    assert restored.json()["archived_at"] is None


def test_product_owner_cannot_rename_through_the_api(project, owner):
    response = as_user(owner).patch("/api/v1/projects/credit-risk/", {"name": "X"}, format="json")
    assert_error(response, 403, "permission_denied")


def test_non_member_gets_404_for_a_project(project, outsider):
    for url in ["/api/v1/projects/credit-risk/", "/api/v1/projects/credit-risk/members/"]:
        hidden = as_user(outsider).get(url)
        missing = as_user(outsider).get(url.replace("credit-risk", "nope"))
        assert assert_error(hidden, 404, "project_not_found") == assert_error(
            missing, 404, "project_not_found"
        )


# Members


def test_members_are_listed_by_username(project, viewer):
    body = as_user(viewer).get("/api/v1/projects/credit-risk/members/").json()
    assert [m["username"] for m in body["results"]] == ["alex", "mei", "olivia", "sam", "val"]


def test_members_list_queries_do_not_grow_with_members(
    project, owner, django_assert_max_num_queries
):
    from tests.factories import UserFactory

    client = as_user(owner)
    with django_assert_max_num_queries(6) as few:
        client.get("/api/v1/projects/credit-risk/members/")
    for _ in range(20):
        Membership.objects.create(project=project, user=UserFactory(), role=Role.VIEWER)
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get("/api/v1/projects/credit-risk/members/").json()
    assert len(body["results"]) == 25


def test_product_owner_adds_changes_and_removes_a_member(project, owner, outsider):
    client = as_user(owner)
    added = client.post(
        "/api/v1/projects/credit-risk/members/",
        {"username": "oscar", "role": "viewer"},
        format="json",
    )
    assert added.status_code == 201
    changed = client.patch(
        "/api/v1/projects/credit-risk/members/oscar/", {"role": "auditor"}, format="json"
    )
    assert changed.json()["role"] == "auditor"
    removed = client.delete("/api/v1/projects/credit-risk/members/oscar/")
    assert removed.status_code == 204
    assert not Membership.objects.filter(user=outsider).exists()


def test_role_that_does_not_exist_gets_400(project, owner, outsider):
    response = as_user(owner).post(
        "/api/v1/projects/credit-risk/members/",
        {"username": "oscar", "role": "wizard"},
        format="json",
    )
    error = assert_error(response, 400, "invalid")
    assert "role" in error["fields"]
    assert not Membership.objects.filter(user=outsider).exists()


def test_adding_an_existing_member_gets_409(project, owner):
    response = as_user(owner).post(
        "/api/v1/projects/credit-risk/members/",
        {"username": "sam", "role": "viewer"},
        format="json",
    )
    assert_error(response, 409, "already_member")
    assert Membership.objects.get(project=project, user__username="sam").role == "data_scientist"


def test_removing_the_last_product_owner_gets_409_with_a_message(project, owner):
    response = as_user(owner).delete("/api/v1/projects/credit-risk/members/olivia/")
    error = assert_error(response, 409, "last_product_owner")
    assert "at least one product owner" in error["message"]
    assert Membership.objects.filter(project=project, user=owner).exists()


def test_viewer_trying_to_change_members_gets_403(project, viewer):
    client = as_user(viewer)
    response = client.patch(
        "/api/v1/projects/credit-risk/members/sam/", {"role": "viewer"}, format="json"
    )
    assert_error(response, 403, "permission_denied")
    assert Membership.objects.get(project=project, user__username="sam").role == "data_scientist"


def test_unknown_member_gets_404(project, owner):
    response = as_user(owner).get("/api/v1/projects/credit-risk/members/ghost/")
    assert_error(response, 404, "member_not_found")


# The API's edges


def test_unknown_api_url_gets_the_error_body(db):
    assert_error(Client().get("/api/v1/nothing-here/"), 404, "not_found")


def test_method_not_allowed_gets_the_error_body(project, owner):
    response = as_user(owner).put("/api/v1/projects/", {}, format="json")
    assert_error(response, 405, "method_not_allowed")


def test_schema_describes_the_endpoints_and_bearer_auth(admin_user):
    response = as_user(admin_user).get("/api/v1/schema/?format=json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/projects/{slug}/members/{username}/" in schema["paths"]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_docs_are_served_without_a_cdn(login, owner):
    response = login(owner).get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in response.content
    # Nothing is fetched from elsewhere (a random token may spell "cdn": look at addresses).
    assert not re.search(rb'(src|href)="(https?:)?//', response.content)
