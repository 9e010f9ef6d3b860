"""The approved version reaches MLflow's alias; a guarded alias moved outside Quorum comes back."""

import pytest

from governance.approvals import selectors, services
from governance.approvals.errors import NothingToRetry
from governance.approvals.models import ApprovalRequest
from governance.audit.models import AuditEvent
from governance.registry import services as registry
from governance.registry.errors import MlflowUnavailable
from governance.registry.mlflow_client import Mlflow
from governance.registry.models import RegisteredModel

State, AliasState = ApprovalRequest.State, ApprovalRequest.AliasState


def approve(approval, owner, engineer):
    services.decide(actor=owner, approval=approval, verdict="approve")
    services.decide(actor=engineer, approval=approval, verdict="approve")
    approval.refresh_from_db()
    return approval


def test_the_approved_version_becomes_the_stage_alias_in_mlflow(opened, owner, engineer, tracking):
    approve(opened, owner, engineer)
    services.move_alias(approval_id=opened.pk)

    opened.refresh_from_db()
    assert opened.alias_state == AliasState.MOVED
    model = tracking.client.get_registered_model("credit-scoring")
    assert model.aliases == {"production": 1}
    tags = tracking.client.get_model_version("credit-scoring", "1").tags
    assert tags["quorum.release"] == str(opened.pk)
    # The mirror knows already, so the next sync sees no move made outside Quorum.
    assert RegisteredModel.objects.get(name="credit-scoring").aliases == {"production": 1}
    registry.sync_mlflow(trigger="test")
    assert not AuditEvent.objects.filter(action="model.alias_moved").exists()


def test_moving_twice_changes_nothing_more(opened, owner, engineer, tracking):
    approve(opened, owner, engineer)
    services.move_alias(approval_id=opened.pk)
    events = AuditEvent.objects.count()
    services.move_alias(approval_id=opened.pk)
    assert AuditEvent.objects.count() == events


def test_mlflow_down_keeps_the_move_pending_then_failed_and_a_retry_finishes_it(
    opened, owner, engineer, tracking, django_capture_on_commit_callbacks, no_http_retries
):
    approve(opened, owner, engineer)
    unreachable = Mlflow("http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(MlflowUnavailable) as failed:
        services.move_alias(approval_id=opened.pk, mlflow=unreachable)
    services.note_alias_failure(approval_id=opened.pk, error=str(failed.value), final=False)
    opened.refresh_from_db()
    assert (opened.alias_state, opened.alias_attempts) == (AliasState.PENDING, 1)

    services.note_alias_failure(approval_id=opened.pk, error="still down", final=True)
    opened.refresh_from_db()
    assert opened.alias_state == AliasState.FAILED
    assert selectors.gate(
        [opened.project_id], model="credit-scoring", version=1, stage="production"
    ).allowed

    with django_capture_on_commit_callbacks() as queued:
        services.retry_alias_move(actor=owner, approval=opened)
    assert len(queued) == 1
    services.move_alias(approval_id=opened.pk)
    opened.refresh_from_db()
    assert opened.alias_state == AliasState.MOVED
    with pytest.raises(NothingToRetry):
        services.retry_alias_move(actor=owner, approval=opened)


def test_a_later_approval_supersedes_the_stage_holder(
    versions, policy, scientist, owner, engineer, project, tracking
):
    first = services.open_request(actor=scientist, version=versions[0], stage="production")
    approve(first, owner, engineer)
    run = versions[1].run
    run.metrics = {"accuracy": 0.95}
    run.save()
    second = services.open_request(actor=scientist, version=versions[1], stage="production")
    approve(second, owner, engineer)

    first.refresh_from_db()
    assert first.state == State.SUPERSEDED
    services.move_alias(approval_id=second.pk)
    # The first move never ran: it must not undo the second.
    services.move_alias(approval_id=first.pk)
    assert tracking.client.get_registered_model("credit-scoring").aliases == {"production": 2}


def test_a_guarded_alias_moved_in_mlflow_is_moved_back_and_owners_told(
    version, project, owner, engineer, scientist, tracking, django_capture_on_commit_callbacks
):
    services.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1},
        guard=True,
    )  # fmt: skip
    approval = services.open_request(actor=scientist, version=version, stage="production")
    services.decide(actor=owner, approval=approval, verdict="approve")
    services.move_alias(approval_id=approval.pk)

    tracking.client.set_registered_model_alias("credit-scoring", "production", "2")
    with django_capture_on_commit_callbacks() as queued:
        registry.sync_mlflow(trigger="test")
    assert queued, "the sync queues the guard"
    model = RegisteredModel.objects.get(name="credit-scoring")
    assert services.enforce_guard(model_id=model.pk, stage="production")

    assert tracking.client.get_registered_model("credit-scoring").aliases == {"production": 1}
    (event,) = AuditEvent.objects.filter(action="approval.alias_reverted")
    assert (event.data["before"], event.data["after"]) == ({"version": 2}, {"version": 1})
    assert owner.notifications.filter(kind="release.outcome", subject__contains="put back")
    assert not services.enforce_guard(model_id=model.pk, stage="production")


def test_an_unguarded_alias_moved_outside_is_flagged_not_moved(opened, owner, engineer, tracking):
    approve(opened, owner, engineer)
    services.move_alias(approval_id=opened.pk)
    tracking.client.set_registered_model_alias("credit-scoring", "production", "2")
    registry.sync_mlflow(trigger="test")

    model = RegisteredModel.objects.get(name="credit-scoring")
    assert not services.enforce_guard(model_id=model.pk, stage="production")
    (holder,) = selectors.stage_holders(model)
    assert (holder.approved, holder.alias, holder.moved_outside) == (1, 2, True)
