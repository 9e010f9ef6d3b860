"""Approvers racing on PostgreSQL: decisions on one request are serialised by its row lock."""

import threading

import pytest
from django.db import connection

from governance.access.roles import Role
from governance.approvals import services
from governance.approvals.errors import RequestClosed
from governance.approvals.models import ApprovalRequest, Decision
from governance.audit.models import AuditEvent
from governance.registry import services as registry
from governance.registry.models import ModelVersion
from tests.factories import UserFactory, make_project

APPROVERS = 50
NEEDED = 10


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_approvals_end_in_one_outcome_with_the_right_count(
    needs_postgres, tracking, celery_worker
):
    admin = UserFactory(username="root-admin", is_superuser=True, is_staff=True)
    owner, requester = UserFactory(username="po"), UserFactory(username="ds")
    engineers = [UserFactory(username=f"mle{n}") for n in range(APPROVERS)]
    project = make_project(
        admin=admin,
        owner=owner,
        members={requester: Role.DATA_SCIENTIST} | dict.fromkeys(engineers, Role.ML_ENGINEER),
    )
    experiment = tracking.experiment("race", project=project.slug)
    tracking.model("racer", project=project.slug)
    tracking.version("racer", tracking.run(experiment, metrics={"auc": 0.9}))
    registry.sync_mlflow(trigger="test")
    services.save_policy(
        actor=owner, project=project, stage="production", required={Role.ML_ENGINEER: NEEDED}
    )
    approval = services.open_request(
        actor=requester, version=ModelVersion.objects.get(), stage="production"
    )
    barrier = threading.Barrier(APPROVERS)
    outcomes: list[str] = []

    def approve(engineer) -> None:
        try:
            barrier.wait()
            services.decide(actor=engineer, approval=approval, verdict="approve")
            outcomes.append("counted")
        except RequestClosed:
            outcomes.append("closed")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(e,)) for e in engineers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("counted") == NEEDED
    assert outcomes.count("closed") == APPROVERS - NEEDED
    assert Decision.objects.filter(approval=approval).count() == NEEDED
    assert AuditEvent.objects.filter(action="approval.approved").count() == 1
    approval.refresh_from_db()
    assert approval.state == ApprovalRequest.State.APPROVED
    celery_worker.wait_for(
        lambda: ApprovalRequest.objects.get(pk=approval.pk).alias_state == "moved"
    )
    assert tracking.client.get_registered_model("racer").aliases == {"production": 1}
    assert AuditEvent.objects.filter(action="approval.alias_moved").count() == 1
