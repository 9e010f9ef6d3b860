from datetime import timedelta

import pytest
from django.utils import timezone

from governance.access.errors import NotAllowed, ProjectNotFound
from governance.access.roles import Role
from governance.approvals import selectors, services
from governance.approvals.errors import (
    AlreadyDecided,
    CommentRequired,
    GatesFailing,
    NoPolicy,
    NotAnApprover,
    RequestAlreadyOpen,
    RequestClosed,
    SeparationOfDuties,
)
from governance.approvals.evidence import evidence_hash
from governance.approvals.models import ApprovalRequest, Decision
from governance.audit.models import AuditEvent
from governance.errors import InvalidInput
from governance.notify.models import Notification
from governance.registry import services as registry
from governance.registry.models import Lifecycle
from tests.factories import UserFactory

State = ApprovalRequest.State


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_opening_freezes_the_evidence_and_puts_its_hash_on_the_trail(opened, version):
    assert opened.state == State.OPEN
    evidence = opened.evidence
    assert evidence["run"]["metrics"] == {"accuracy": 0.93}
    assert evidence["run"]["user"] == "sam"
    assert evidence["policy"]["version"] == 1
    assert evidence["gates"][0]["outcome"] == "pass"
    assert opened.evidence_hash == evidence_hash(evidence)
    (event,) = events("approval.opened")
    assert event.data["evidence_sha256"] == opened.evidence_hash
    assert event.actor_name == "sam"


def test_opening_tells_the_eligible_approvers_only(opened, owner, engineer, scientist, viewer):
    told = set(
        Notification.objects.filter(kind="release.requested").values_list(
            "recipient__username", flat=True
        )
    )
    assert told == {"olivia", "mei"}


def test_a_stage_without_a_policy_is_refused(version, scientist, policy):
    with pytest.raises(NoPolicy):
        services.open_request(actor=scientist, version=version, stage="staging")
    assert not ApprovalRequest.objects.exists()


@pytest.mark.parametrize("stage", ["Prod!", "", "latest", 7])
def test_a_bad_stage_is_refused(version, scientist, policy, stage):
    with pytest.raises(InvalidInput):
        services.open_request(actor=scientist, version=version, stage=stage)
    assert not ApprovalRequest.objects.exists()


def test_a_second_open_request_for_the_same_stage_is_refused(opened, version, engineer):
    with pytest.raises(RequestAlreadyOpen):
        services.open_request(actor=engineer, version=version, stage="production")
    assert ApprovalRequest.objects.count() == 1


@pytest.mark.parametrize("who", ["viewer", "auditor", "owner"])
def test_roles_without_the_right_may_not_open_requests(version, policy, request, who):
    with pytest.raises(NotAllowed):
        services.open_request(
            actor=request.getfixturevalue(who), version=version, stage="production"
        )


def test_outsiders_are_told_the_project_does_not_exist(version, policy, outsider):
    with pytest.raises(ProjectNotFound):
        services.open_request(actor=outsider, version=version, stage="production")


def test_a_version_deleted_in_mlflow_cannot_be_released(version, policy, scientist):
    version.lifecycle = Lifecycle.DELETED
    version.save()
    with pytest.raises(InvalidInput):
        services.open_request(actor=scientist, version=version, stage="production")


def test_a_note_too_long_is_refused(version, policy, scientist):
    with pytest.raises(InvalidInput):
        services.open_request(actor=scientist, version=version, stage="production", note="x" * 5001)


def test_product_owner_and_engineer_approve_and_the_alias_move_is_queued(
    opened, owner, engineer, django_capture_on_commit_callbacks
):
    services.decide(actor=owner, approval=opened, verdict="approve")
    with django_capture_on_commit_callbacks() as callbacks:
        services.decide(actor=engineer, approval=opened, verdict="approve", comment="fine")

    opened.refresh_from_db()
    assert opened.state == State.APPROVED
    assert opened.alias_state == ApprovalRequest.AliasState.PENDING
    assert [e.data["approvals"] for e in events("approval.decided")] == [1, 2]
    assert len(events("approval.approved")) == 1
    assert callbacks, "the alias move waits for the commit"


def test_one_approval_of_two_leaves_the_request_open(opened, owner):
    services.decide(actor=owner, approval=opened, verdict="approve")
    opened.refresh_from_db()
    assert opened.state == State.OPEN
    standing = selectors.progress_of(opened)
    assert standing.waiting_for() == ["1 ML engineer"]


def test_requester_cannot_approve_own_release(version, policy, engineer):
    approval = services.open_request(actor=engineer, version=version, stage="production")
    with pytest.raises(SeparationOfDuties) as refused:
        services.decide(actor=engineer, approval=approval, verdict="approve")
    assert "you requested this release" in refused.value.message
    assert not Decision.objects.exists()


def test_the_author_of_the_source_run_cannot_approve(
    project, version, policy, engineer, admin_user
):
    from governance.access import services as access

    author = UserFactory(username="sam2", email="SAM@example.com")
    access.add_member(actor=admin_user, project=project, user=author, role=Role.ML_ENGINEER)
    run = version.run
    run.user = "sam@example.com"  # MLflow knows people by whatever name they ran as
    run.save()
    approval = services.open_request(actor=engineer, version=version, stage="production")

    with pytest.raises(SeparationOfDuties) as refused:
        services.decide(actor=author, approval=approval, verdict="approve")
    assert "authored the source run" in refused.value.message


def test_the_last_editor_of_the_card_cannot_approve(opened, owner, version):
    registry.edit_model_card(
        actor=owner,
        version=version,
        sections={"intended_use": "Scoring applications."},
        based_on=0,
    )
    with pytest.raises(SeparationOfDuties) as refused:
        services.decide(actor=owner, approval=opened, verdict="approve")
    assert "last edited the model card" in refused.value.message


def test_a_role_the_policy_does_not_ask_for_cannot_decide(opened, project, admin_user):
    from governance.access import services as access

    other = UserFactory(username="dana")
    access.add_member(actor=admin_user, project=project, user=other, role=Role.DATA_SCIENTIST)
    with pytest.raises(NotAnApprover):
        services.decide(actor=other, approval=opened, verdict="approve")


@pytest.mark.parametrize("who", ["viewer", "auditor"])
def test_roles_that_do_not_approve_are_refused(opened, request, who):
    with pytest.raises(NotAllowed):
        services.decide(actor=request.getfixturevalue(who), approval=opened, verdict="approve")


def test_one_decision_per_person(opened, owner):
    services.decide(actor=owner, approval=opened, verdict="approve")
    with pytest.raises(AlreadyDecided):
        services.decide(actor=owner, approval=opened, verdict="reject", comment="changed my mind")
    assert Decision.objects.count() == 1


def test_a_rejection_needs_a_comment(opened, owner):
    with pytest.raises(CommentRequired):
        services.decide(actor=owner, approval=opened, verdict="reject", comment="   ")
    assert not Decision.objects.exists()


def test_an_unknown_verdict_is_refused(opened, owner):
    with pytest.raises(InvalidInput):
        services.decide(actor=owner, approval=opened, verdict="maybe")


def test_one_rejection_rejects_the_request_and_tells_the_requester(opened, owner, scientist):
    services.decide(actor=owner, approval=opened, verdict="reject", comment="bias unexplained")

    opened.refresh_from_db()
    assert opened.state == State.REJECTED
    assert opened.outcome_note == "bias unexplained"
    assert Notification.objects.filter(
        recipient=scientist, kind="release.outcome", key=f"outcome-{opened.pk}-rejected"
    ).exists()


def test_a_closed_request_takes_no_decision(opened, owner, engineer):
    services.decide(actor=owner, approval=opened, verdict="reject", comment="no")
    with pytest.raises(RequestClosed):
        services.decide(actor=engineer, approval=opened, verdict="approve")


def test_an_expired_request_is_closed_when_someone_decides(opened, owner):
    ApprovalRequest.objects.filter(pk=opened.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    with pytest.raises(RequestClosed) as refused:
        services.decide(actor=owner, approval=opened, verdict="approve")

    assert "expired" in refused.value.message
    opened.refresh_from_db()
    assert opened.state == State.EXPIRED
    assert not Decision.objects.exists()


def test_the_sweep_expires_requests_whose_time_ran_out(opened, version, policy, engineer):
    later = opened.expires_at + timedelta(seconds=1)
    assert services.expire_requests(now=later) == 1
    assert services.expire_requests(now=later) == 0
    opened.refresh_from_db()
    assert opened.state == State.EXPIRED
    assert events("approval.expired")[0].actor_name == "quorum"


def test_a_failing_gate_blocks_approval_with_its_reason(versions, policy, scientist, owner):
    approval = services.open_request(actor=scientist, version=versions[1], stage="production")
    assert approval.gate_results[0]["outcome"] == "fail"

    with pytest.raises(GatesFailing) as refused:
        services.decide(actor=owner, approval=approval, verdict="approve")

    assert "accuracy = 0.88, not >= 0.9" in refused.value.message
    assert not Decision.objects.exists()


def test_a_rejection_is_possible_while_a_gate_fails(versions, policy, scientist, owner):
    approval = services.open_request(actor=scientist, version=versions[1], stage="production")
    services.decide(actor=owner, approval=approval, verdict="reject", comment="too weak")
    approval.refresh_from_db()
    assert approval.state == State.REJECTED


def test_a_request_is_judged_by_the_policy_it_opened_under(opened, owner, engineer, project):
    services.save_policy(
        actor=owner,
        project=project,
        stage="production",
        required={Role.PRODUCT_OWNER: 1, Role.ML_ENGINEER: 2},
    )
    services.decide(actor=owner, approval=opened, verdict="approve")
    services.decide(actor=engineer, approval=opened, verdict="approve")
    opened.refresh_from_db()
    assert opened.state == State.APPROVED


def test_the_quorum_asks_for_more_than_the_slots(version, project, owner, engineer, admin_user):
    from governance.access import services as access

    services.save_policy(
        actor=owner,
        project=project,
        stage="production",
        required={Role.PRODUCT_OWNER: 1, Role.ML_ENGINEER: 1},
        quorum=3,
    )
    second = UserFactory(username="ming")
    access.add_member(actor=admin_user, project=project, user=second, role=Role.ML_ENGINEER)
    requester = UserFactory(username="rita")
    access.add_member(actor=admin_user, project=project, user=requester, role=Role.DATA_SCIENTIST)
    approval = services.open_request(actor=requester, version=version, stage="production")

    services.decide(actor=owner, approval=approval, verdict="approve")
    services.decide(actor=engineer, approval=approval, verdict="approve")
    approval.refresh_from_db()
    assert approval.state == State.OPEN
    assert selectors.progress_of(approval).waiting_for() == ["1 more approval"]

    services.decide(actor=second, approval=approval, verdict="approve")
    approval.refresh_from_db()
    assert approval.state == State.APPROVED


def test_the_requester_or_a_product_owner_withdraws(opened, scientist, engineer, owner):
    with pytest.raises(NotAllowed):
        services.withdraw_request(actor=engineer, approval=opened)
    services.withdraw_request(actor=scientist, approval=opened, note="wrong version")
    opened.refresh_from_db()
    assert opened.state == State.WITHDRAWN
    with pytest.raises(RequestClosed):
        services.withdraw_request(actor=owner, approval=opened)


def test_gates_are_checked_again_on_demand(opened, viewer, version):
    run = version.run
    run.metrics = {"accuracy": 0.5}
    run.save()
    results = services.recheck_gates(actor=viewer, approval=opened)
    opened.refresh_from_db()
    assert [r.outcome for r in results] == ["fail"]
    assert opened.gate_results[0]["outcome"] == "fail"
    assert events("approval.gates_checked")[0].data["after"] == {"accuracy >= 0.9": "fail"}
