import pytest
from django.urls import reverse

from governance.access import services as access
from governance.access.roles import Role
from governance.approvals import services
from governance.approvals.models import ApprovalPolicy, ApprovalRequest, Comment
from governance.notify.models import Notification
from tests.factories import UserFactory


def page(approval) -> str:
    return reverse("approval", args=[approval.project.slug, approval.pk])


def test_the_request_page_shows_evidence_gates_and_slots(login, viewer, opened):
    response = login(viewer).get(page(opened))
    body = response.content.decode()
    assert response.status_code == 200
    assert "accuracy &gt;= 0.9" in body
    assert "1 product owner" in body
    assert opened.evidence_hash[:16] in body
    assert "You cannot decide on this request: your role does not approve releases." in body
    assert 'value="approve"' not in body


def test_an_approver_sees_the_buttons_and_approves(login, owner, opened):
    client = login(owner)
    assert 'value="approve"' in client.get(page(opened)).content.decode()

    response = client.post(reverse("decide", args=["credit-risk", opened.pk]),
                           {"verdict": "approve"}, follow=True)  # fmt: skip

    assert response.status_code == 200
    assert "Approved." in response.content.decode()
    assert opened.decisions.get().approver == owner


def test_the_requester_is_told_why_they_cannot_approve(login, scientist, version, policy, engineer):
    approval = services.open_request(actor=engineer, version=version, stage="production")
    body = login(engineer).get(page(approval)).content.decode()
    assert "You cannot decide on this request: you requested this release." in body


def test_a_refused_decision_shows_the_reason_and_changes_nothing(login, owner, opened):
    response = login(owner).post(
        reverse("decide", args=["credit-risk", opened.pk]), {"verdict": "reject", "comment": ""}
    )
    assert response.status_code == 400
    assert "a rejection needs a comment" in response.content.decode()
    assert not opened.decisions.exists()


def test_a_viewer_posting_a_decision_gets_403(login, viewer, opened):
    response = login(viewer).post(
        reverse("decide", args=["credit-risk", opened.pk]), {"verdict": "approve"}
    )
    assert response.status_code == 403
    assert not opened.decisions.exists()


def test_a_request_of_another_project_is_not_found(login, outsider, opened):
    assert login(outsider).get(page(opened)).status_code == 404


def test_waiting_for_me_lists_what_i_can_decide(login, owner, engineer, scientist, opened):
    assert f"#{opened.pk}" in login(owner).get(reverse("waiting")).content.decode()
    assert f"#{opened.pk}" not in login(scientist).get(reverse("waiting")).content.decode()
    services.decide(actor=owner, approval=opened, verdict="approve")
    assert f"#{opened.pk}" not in login(owner).get(reverse("waiting")).content.decode()


def test_a_data_scientist_opens_a_request_from_the_version_page(login, scientist, version, policy):
    client = login(scientist)
    url = reverse("approval_open", args=["credit-risk", "credit-scoring", 1])
    response = client.post(url, {"stage": "production", "note": "ready"})
    approval = ApprovalRequest.objects.get()
    assert response.url == page(approval)


def test_opening_for_a_stage_without_policy_says_so(login, scientist, version, policy):
    url = reverse("approval_open", args=["credit-risk", "credit-scoring", 1])
    response = login(scientist).post(url, {"stage": "staging"}, follow=True)
    assert "no release policy for &#x27;staging&#x27;" in response.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_comments_render_markdown_safely_and_mention_members(login, viewer, owner, opened):
    client = login(viewer)
    body = "**Looks good** <script>alert(1)</script> [x](javascript:alert(1)) @olivia"
    client.post(reverse("approval_comment", args=["credit-risk", opened.pk]), {"body": body})

    html = client.get(page(opened)).content.decode()
    assert "<strong>Looks good</strong>" in html
    assert "<script>alert(1)" not in html
    assert "javascript:" not in html
    assert Notification.objects.filter(recipient=owner, kind="mention").count() == 1


def test_answers_join_their_thread_and_a_foreign_parent_is_refused(login, viewer, opened):
    client = login(viewer)
    url = reverse("approval_comment", args=["credit-risk", opened.pk])
    client.post(url, {"body": "First"})
    first = Comment.objects.get()
    client.post(url, {"body": "Answer", "parent": first.pk})
    assert Comment.objects.get(body="Answer").parent == first

    assert client.post(url, {"body": "Lost", "parent": 999}).status_code == 404
    assert client.post(url, {"body": "Lost", "parent": "x"}).status_code == 404
    assert client.post(url, {"body": " "}).status_code == 400
    assert not Comment.objects.filter(body="Lost").exists()


def test_product_owner_writes_a_policy_in_the_editor(login, owner, project):
    response = login(owner).post(
        reverse("policy_new", args=["credit-risk"]),
        {
            "stage": "staging",
            "required_product_owner": "1",
            "required_ml_engineer": "1",
            "conditions": "auc > 0.8\naccuracy >= 0.9",
            "gate_kind": ["card_complete"],
            "open_days": "7",
            "guard": "on",
        },
    )
    assert response.status_code == 302
    version = ApprovalPolicy.objects.get(stage="staging").current
    assert version.required == {"product_owner": 1, "ml_engineer": 1}
    assert [g["kind"] for g in version.gates] == ["metric", "metric", "card_complete"]
    assert version.guard


def test_the_editor_shows_where_a_condition_fails_to_parse(login, owner, project):
    response = login(owner).post(
        reverse("policy_new", args=["credit-risk"]),
        {"stage": "staging", "required_product_owner": "1", "conditions": "auc >> 0.8"},
    )
    assert response.status_code == 400
    assert "(character 6)" in response.content.decode()
    assert not ApprovalPolicy.objects.exists()


def test_the_editor_refuses_a_count_that_is_not_a_number(login, owner, project):
    response = login(owner).post(
        reverse("policy_new", args=["credit-risk"]),
        {"stage": "staging", "required_product_owner": "one"},
    )
    assert response.status_code == 400
    assert "a whole number" in response.content.decode()


def test_only_policy_editors_get_the_editor(login, scientist, policy):
    assert login(scientist).get(reverse("policy_new", args=["credit-risk"])).status_code == 403
    body = login(scientist).get(reverse("policies", args=["credit-risk"])).content.decode()
    assert "accuracy &gt;= 0.9" in body


@pytest.mark.parametrize("count", [1, 12])
def test_release_pages_keep_their_query_count(
    login, owner, project, policy, versions, admin_user, count, django_assert_max_num_queries
):
    requesters = []
    for n in range(count):
        person = UserFactory(username=f"ds{n}")
        access.add_member(actor=admin_user, project=project, user=person, role=Role.DATA_SCIENTIST)
        requesters.append(person)
    for n, person in enumerate(requesters):
        version = versions[n % 2]
        stage = f"s{n}"
        services.save_policy(
            actor=owner, project=project, stage=stage, required={"product_owner": 1}
        )
        services.open_request(actor=person, version=version, stage=stage)
    client = login(owner)
    for url in (reverse("approvals", args=["credit-risk"]), reverse("waiting")):
        with django_assert_max_num_queries(14):
            assert client.get(url).status_code == 200


@pytest.mark.parametrize("count", [1, 12])
def test_the_request_page_keeps_its_query_count(
    login, owner, viewer, opened, count, django_assert_max_num_queries
):
    services.decide(actor=owner, approval=opened, verdict="approve")
    for n in range(count):
        top = services.add_comment(actor=viewer, approval=opened, body=f"Question {n} @olivia")
        services.add_comment(actor=owner, approval=opened, body="Answer", parent=top)
    client = login(owner)
    with django_assert_max_num_queries(15):  # the same at 1 and at 12 threads
        response = client.get(page(opened))
    assert response.content.decode().count('class="comment reply"') == count


def test_members_comment_on_a_version_and_mentions_are_told(login, viewer, owner, version):
    client = login(viewer)
    url = reverse("version_comment", args=["credit-risk", "credit-scoring", 1])
    response = client.post(url, {"body": "Is the *holdout* recent? @olivia"})
    assert response.status_code == 302
    page_html = client.get(response.url).content.decode()
    assert "<em>holdout</em>" in page_html
    assert Notification.objects.filter(recipient=owner, kind="mention").exists()
    refused = client.post(url, {"body": ""}, follow=True)
    assert "Write something." in refused.content.decode()
    assert Comment.objects.count() == 1


def test_the_model_page_flags_an_alias_moved_outside_quorum(
    login, viewer, opened, owner, engineer, tracking
):
    from governance.registry import services as registry

    services.decide(actor=owner, approval=opened, verdict="approve")
    services.decide(actor=engineer, approval=opened, verdict="approve")
    services.move_alias(approval_id=opened.pk)
    tracking.client.set_registered_model_alias("credit-scoring", "production", "2")
    registry.sync_mlflow(trigger="test")

    body = login(viewer).get(reverse("model", args=["credit-risk", "credit-scoring"])).content
    assert "alias moved outside Quorum: v2" in body.decode()
