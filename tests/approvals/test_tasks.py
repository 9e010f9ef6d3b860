"""The alias move as the worker runs it: MLflow down is retried, then shown as failed."""

from governance.approvals import services, tasks
from governance.approvals.models import ApprovalRequest
from governance.audit.models import AuditEvent

AliasState = ApprovalRequest.AliasState


def test_mlflow_down_is_retried_then_the_move_fails_visibly(
    opened, owner, engineer, settings, no_http_retries
):
    services.decide(actor=owner, approval=opened, verdict="approve")
    services.decide(actor=engineer, approval=opened, verdict="approve")
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"  # nothing listens on the discard port

    # Run eagerly: each retry runs at once instead of after its backoff.
    tasks.move_alias.apply(kwargs={"approval_id": opened.pk})

    opened.refresh_from_db()
    assert opened.state == ApprovalRequest.State.APPROVED  # the decision stands
    assert opened.alias_state == AliasState.FAILED
    assert opened.alias_attempts == tasks.move_alias.max_retries + 1
    assert "unreachable" in opened.alias_error.lower()
    assert AuditEvent.objects.filter(action="approval.alias_failed").count() == 1


def test_the_move_runs_once_however_often_it_is_delivered(opened, owner, engineer, tracking):
    services.decide(actor=owner, approval=opened, verdict="approve")
    services.decide(actor=engineer, approval=opened, verdict="approve")
    for _ in range(3):
        tasks.move_alias.apply(kwargs={"approval_id": opened.pk})
    assert AuditEvent.objects.filter(action="approval.alias_moved").count() == 1
    assert tracking.client.get_registered_model("credit-scoring").aliases == {"production": 1}
