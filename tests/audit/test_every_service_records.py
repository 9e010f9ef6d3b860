"""Every service that changes state writes its event: this test walks them all.

A new service without a scenario here fails `test_every_service_has_a_scenario`.
"""

import importlib
import inspect
import io
import json
import pkgutil
import time
from datetime import timedelta

import pyarrow as pa
import pytest
from django.utils import timezone

import governance
from governance.access import services as access
from governance.access.models import ApiToken, Membership
from governance.approvals import services as approvals
from governance.approvals.models import ApprovalRequest
from governance.audit import services as audit
from governance.audit.models import AuditEvent, VerificationRun
from governance.delivery import deploying
from governance.delivery import services as delivery
from governance.fairness import services as fairness
from governance.monitoring import services as monitoring
from governance.monitoring.models import DriftAlert
from governance.notify import services as notify
from governance.registry import services as registry
from governance.registry.mirror import webhook_signature
from governance.registry.models import ModelVersion
from tests.delivery.receiver import Receiver
from tests.factories import make_version

# Functions in services modules that change nothing anyone could want on the trail.
NOT_CHANGES = {
    "governance.access.services.find_user": "a read",
    "governance.access.services.authenticate_api_token": "notes a token's last use only",
    "governance.access.services.send_password_reset_email": "sends what the request recorded",
    "governance.audit.services.record": "the door itself",
    "governance.audit.services.fields_of": "a read",
    "governance.audit.services.send_checkpoint_email": "sends what the verdict recorded",
    "governance.registry.services.metric_histories": "caches what MLflow holds",
    "governance.registry.services.version_target": "names a version on the trail",
    "governance.registry.services.open_dataset_uri": "opens a stream to read",
    "governance.approvals.services.watch": "a personal subscription to a request's news",
    "governance.monitoring.services.watch_monitor": "a personal subscription to drift alerts",
    "governance.notify.services.notify": "the caller's own change is the audited event",
    "governance.delivery.services.enqueue": "hands a queued job to the broker",
    "governance.delivery.services.sweep_jobs": "hands queued jobs to the broker again",
    "governance.notify.services.mark_read": "a person's own read state",
    "governance.notify.services.mark_all_read": "a person's own read state",
    "governance.notify.services.send_email": "sends what the caller's change recorded",
    "governance.notify.services.send_digests": "sends what the callers' changes recorded",
    "governance.notify.services.sweep_pending_emails": "queues again what was queued before",
    "governance.monitoring.services.poll_sources": "claims due polls; poll_source records",
    "governance.monitoring.services.check_source": "a check of a URI that reads nothing",
}


def discovered_services() -> set[str]:
    names = set()
    for area in pkgutil.iter_modules(governance.__path__):
        try:
            module = importlib.import_module(f"governance.{area.name}.services")
        except ModuleNotFoundError:
            continue
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                names.add(f"{module.__name__}.{name}")
    return names


def _membership(project, user) -> Membership:
    return Membership.objects.get(project=project, user=user)


def _token(user) -> ApiToken:
    token, _ = access.create_api_token(
        actor=user, name="ci", expires_at=timezone.now() + timedelta(days=1)
    )
    return token


def _version(c) -> ModelVersion:
    c.tracking.model("credit-scoring", project="credit-risk")
    run = c.tracking.run(c.tracking.experiment("e", project="credit-risk"), metrics={"auc": 0.9})
    c.tracking.version("credit-scoring", run)
    registry.sync_mlflow(trigger="test")
    return ModelVersion.objects.get(model__name="credit-scoring")


def _policy(c, guard: bool = False) -> None:
    approvals.save_policy(
        actor=c.owner, project=c.project, stage="production", required={"product_owner": 1},
        guard=guard,
    )  # fmt: skip


def _opened(c) -> ApprovalRequest:
    version = _version(c)
    _policy(c)
    scientist = Membership.objects.get(project=c.project, role="data_scientist").user
    return approvals.open_request(actor=scientist, version=version, stage="production")


def _approved(c) -> ApprovalRequest:
    approval = _opened(c)
    approvals.decide(actor=c.owner, approval=approval, verdict="approve")
    return approval


def _failed_move(c) -> ApprovalRequest:
    approval = _approved(c)
    approvals.note_alias_failure(approval_id=approval.pk, error="MLflow is down", final=True)
    return approval


def _moved_outside(c) -> int:
    version = _version(c)
    _policy(c, guard=True)
    c.tracking.client.set_registered_model_alias("credit-scoring", "production", "1")
    registry.sync_mlflow(trigger="test")
    return version.model_id


def _monitor(c):
    reference = registry.keep_table(
        actor=c.admin,
        project=c.project,
        name="reference",
        table=pa.table({"age": [float(n % 50) for n in range(400)]}),
        source="r.parquet",
    )
    return monitoring.create_monitor(
        actor=c.admin, project=c.project, name="inputs", reference=reference
    )


def _made_version(c) -> ModelVersion:
    return make_version(c.project, "credit-scoring", 1)


def _secret(c):
    return delivery.set_secret(actor=c.admin, project=c.project, name="KEY", value="v")


def _job(c):
    return delivery.start_job(
        actor=c.admin, project=c.project, kind="inspect", version=_made_version(c)
    )


def _retraining_policy(c):
    return delivery.save_retraining_policy(
        actor=c.admin, model=_made_version(c).model,
        entry_point="governance.delivery.demo_pipeline:CREDIT_SCORING",
    )  # fmt: skip


def _cancelled_retraining(c):
    run = delivery.trigger_retraining(policy=_retraining_policy(c), trigger="schedule")
    delivery.cancel_job(actor=c.admin, job=run.job)
    return run


def _checked(c):
    monitor = _monitor(c)
    shifted = "age\n" + "".join(f"{60 + n % 50}\n" for n in range(400))
    batch = monitoring.add_batch(
        actor=c.admin, monitor=monitor, content=io.BytesIO(shifted.encode()), filename="b.csv"
    )
    monitoring.run_drift_check(check_id=batch.checks.get().pk)
    return DriftAlert.objects.get(monitor=monitor)


def _labelled(c):
    reference = registry.keep_table(
        actor=c.admin,
        project=c.project,
        name="labelled",
        table=pa.table(
            {"age": [float(n) for n in range(100)], "y": [n % 2 for n in range(100)]}
        ).append_column("p", pa.array([n % 2 for n in range(100)])),
        source="r.parquet",
    )
    monitor = monitoring.create_monitor(
        actor=c.admin, project=c.project, name="scored", reference=reference,
        task="classification", label_column="y", prediction_column="p",
    )  # fmt: skip
    return monitoring.add_batch(
        actor=c.admin, monitor=monitor, content=io.BytesIO(b"age,p\n1,1\n2,0\n"), filename="b.csv"
    )


def _labels(c):
    return monitoring.add_labels(
        actor=c.admin, batch=_labelled(c), content=io.BytesIO(b"y\n0\n0\n"), filename="l.csv"
    )


def _unreachable_source(c):
    monitor = _monitor(c)
    changes = {"source_uri": "http://127.0.0.1:9/batch.csv", "poll_minutes": 1}
    return monitoring.update_monitor(actor=c.admin, monitor=monitor, changes=changes)


def _bias_report(c):
    version = _version(c)
    dataset = registry.keep_table(
        actor=c.admin,
        project=c.project,
        name="holdout",
        table=pa.table({"sex": ["f", "m"] * 50, "y": [0, 1] * 50, "p": [1, 1] * 50}),
        source="h.parquet",
    )
    return fairness.request_bias_report(
        actor=c.admin, version=version, dataset=dataset, y_true="y", y_pred="p",
        sensitive=["sex"],
    )  # fmt: skip


# name -> (run(cast), expected action)
def _target(c):
    delivery.set_secret(actor=c.admin, project=c.project, name="HOOK_KEY", value="k")
    return delivery.create_target(
        actor=c.admin, project=c.project, name="argo", kind="webhook", stage="production",
        settings={"url": "http://127.0.0.1:9/", "hmac_secret": "HOOK_KEY"},
    )  # fmt: skip


def _deploying(c):
    return delivery.deploy(actor=c.admin, target=_target(c), version=_approved(c).version)


def _called_back(c, deployment, endpoint: str = "http://127.0.0.1:9"):
    body = json.dumps({"state": "live", "endpoint": endpoint}).encode()
    stamp = str(int(time.time()))
    return delivery.accept_deployment_callback(
        deployment_id=deployment.pk, timestamp=stamp,
        signature=deploying.signature("k", stamp, body), body=body,
    )  # fmt: skip


def _rolled_back(c):
    with Receiver() as model:
        deployment = _called_back(c, _deploying(c), model.url)
        delivery.probe_deployments()
    delivery.stop_deployment(actor=c.admin, deployment=deployment)
    return delivery.rollback(actor=c.admin, target=deployment.target)


SCENARIOS = {
    "governance.access.services.create_project": (
        lambda c: access.create_project(actor=c.admin, slug="fraud", name="Fraud"),
        "project.created",
    ),
    "governance.access.services.rename_project": (
        lambda c: access.rename_project(actor=c.admin, project=c.project, name="New name"),
        "project.renamed",
    ),
    "governance.access.services.archive_project": (
        lambda c: access.archive_project(actor=c.admin, project=c.project),
        "project.archived",
    ),
    "governance.access.services.restore_project": (
        lambda c: (
            access.archive_project(actor=c.admin, project=c.project),
            access.restore_project(actor=c.admin, project=c.project),
        ),
        "project.restored",
    ),
    "governance.access.services.add_member": (
        lambda c: access.add_member(
            actor=c.owner, project=c.project, user=c.outsider, role="viewer"
        ),
        "membership.added",
    ),
    "governance.access.services.change_role": (
        lambda c: access.change_role(
            actor=c.owner, membership=_membership(c.project, c.viewer), role="auditor"
        ),
        "membership.role_changed",
    ),
    "governance.access.services.remove_member": (
        lambda c: access.remove_member(actor=c.owner, membership=_membership(c.project, c.viewer)),
        "membership.removed",
    ),
    "governance.access.services.create_api_token": (
        lambda c: _token(c.owner),
        "api_token.created",
    ),
    "governance.access.services.revoke_api_token": (
        lambda c: access.revoke_api_token(actor=c.owner, token=_token(c.owner)),
        "api_token.revoked",
    ),
    "governance.access.services.note_sign_in": (
        lambda c: access.note_sign_in(user=c.owner),
        "session.login",
    ),
    "governance.access.services.note_sign_out": (
        lambda c: access.note_sign_out(user=c.owner),
        "session.logout",
    ),
    "governance.access.services.note_failed_sign_in": (
        lambda c: access.note_failed_sign_in(username="olivia"),
        "session.login_failed",
    ),
    "governance.access.services.note_lockout": (
        lambda c: access.note_lockout(username="olivia"),
        "session.locked_out",
    ),
    "governance.access.services.set_password": (
        lambda c: access.set_password(
            actor=c.owner, user=c.owner, password="another long one", reason="changed"
        ),
        "user.password_changed",
    ),
    "governance.access.services.request_password_reset": (
        lambda c: access.request_password_reset(
            email=c.owner.email, domain="testserver", use_https=False
        ),
        "user.password_reset_requested",
    ),
    "governance.audit.services.request_verification": (
        lambda c: audit.request_verification(actor=c.auditor),
        "audit.verification_requested",
    ),
    "governance.audit.services.verify_now": (
        lambda c: audit.verify_now(actor=c.auditor, trigger="page"),
        "audit.verified",
    ),
    "governance.audit.services.run_verification": (
        lambda c: audit.run_verification(
            run_id=VerificationRun.objects.create(requested_by=c.auditor, trigger="api").pk
        ),
        "audit.verified",
    ),
    "governance.audit.services.fail_verification": (
        lambda c: audit.fail_verification(
            run_id=VerificationRun.objects.create(trigger="schedule").pk, error="disk full"
        ),
        "audit.verification_errored",
    ),
    "governance.audit.services.export_trail": (
        lambda c: audit.export_trail(
            actor=c.auditor, fmt="jsonl", criteria={}, destination=io.BytesIO()
        ),
        "audit.exported",
    ),
    "governance.registry.services.sync_mlflow": (
        lambda c: (
            c.tracking.model("credit-scoring", project="credit-risk"),
            registry.sync_mlflow(trigger="test"),
        ),
        "model.registered",
    ),
    "governance.registry.services.request_sync": (
        lambda c: registry.request_sync(actor=c.admin, project=c.project),
        "mlflow.sync_requested",
    ),
    "governance.registry.services.sync_model": (
        lambda c: (
            c.tracking.model("credit-scoring", project="credit-risk"),
            registry.sync_model(name="credit-scoring"),
        ),
        "model.registered",
    ),
    "governance.registry.services.accept_webhook": (
        lambda c: accept_a_webhook(),
        "mlflow.webhook_received",
    ),
    "governance.registry.services.edit_model_card": (
        lambda c: (
            c.tracking.model("credit-scoring", project="credit-risk"),
            c.tracking.version(
                "credit-scoring", c.tracking.run(c.tracking.experiment("e", project="credit-risk"))
            ),
            registry.sync_mlflow(trigger="test"),
            registry.edit_model_card(
                actor=c.owner,
                version=ModelVersion.objects.get(model__name="credit-scoring"),
                sections={"caveats": "Watch the income drift."},
            ),
        ),
        "model_card.edited",
    ),
    "governance.registry.services.link_to_project": (
        lambda c: (
            c.tracking.experiment("untagged"),
            registry.sync_mlflow(trigger="test"),
            registry.link_to_project(
                actor=c.owner, kind="experiment", name="untagged", project=c.project
            ),
        ),
        "experiment.linked",
    ),
    "governance.registry.services.unlink_from_project": (
        lambda c: (
            c.tracking.experiment("untagged"),
            registry.sync_mlflow(trigger="test"),
            registry.link_to_project(
                actor=c.owner, kind="experiment", name="untagged", project=c.project
            ),
            registry.unlink_from_project(
                actor=c.owner, kind="experiment", name="untagged", project=c.project
            ),
        ),
        "experiment.unlinked",
    ),
    "governance.notify.services.set_preferences": (
        lambda c: notify.set_preferences(actor=c.viewer, choices={"mention": "daily"}),
        "notify.preferences_changed",
    ),
    "governance.registry.services.keep_table": (
        lambda c: registry.keep_table(
            actor=c.admin,
            project=c.project,
            name="applicants",
            table=pa.table({"age": [34, 51]}),
            source="a.parquet",
        ),
        "dataset.stored",
    ),
    "governance.registry.services.register_dataset": (
        lambda c: registry.register_dataset(
            actor=c.admin,
            project=c.project,
            name="applicants",
            content=io.BytesIO(b"a,b\n1,2\n"),
            source="a.csv",
            kind="upload",
        ),
        "dataset.registered",
    ),
    "governance.approvals.services.save_policy": (_policy, "policy.saved"),
    "governance.approvals.services.open_request": (_opened, "approval.opened"),
    "governance.approvals.services.recheck_gates": (
        lambda c: approvals.recheck_gates(actor=c.viewer, approval=_opened(c)),
        "approval.gates_checked",
    ),
    "governance.approvals.services.decide": (_approved, "approval.decided"),
    "governance.approvals.services.withdraw_request": (
        lambda c: approvals.withdraw_request(actor=c.owner, approval=_opened(c)),
        "approval.withdrawn",
    ),
    "governance.approvals.services.expire_requests": (
        lambda c: approvals.expire_requests(now=_opened(c).expires_at),
        "approval.expired",
    ),
    "governance.approvals.services.move_alias": (
        lambda c: approvals.move_alias(approval_id=_approved(c).pk),
        "approval.alias_moved",
    ),
    "governance.approvals.services.note_alias_failure": (_failed_move, "approval.alias_failed"),
    "governance.approvals.services.retry_alias_move": (
        lambda c: approvals.retry_alias_move(actor=c.owner, approval=_failed_move(c)),
        "approval.alias_retried",
    ),
    "governance.approvals.services.enforce_guard": (
        lambda c: approvals.enforce_guard(model_id=_moved_outside(c), stage="production"),
        "approval.alias_reverted",
    ),
    "governance.approvals.services.export_bundle": (
        lambda c: approvals.export_bundle(actor=c.auditor, approval=_approved(c)),
        "approval.bundle_exported",
    ),
    "governance.approvals.services.add_comment": (
        lambda c: approvals.add_comment(actor=c.viewer, approval=_opened(c), body="Why now?"),
        "comment.added",
    ),
    "governance.monitoring.services.create_monitor": (_monitor, "monitor.created"),
    "governance.monitoring.services.add_batch": (
        lambda c: monitoring.add_batch(
            actor=c.admin, monitor=_monitor(c), content=io.BytesIO(b"age\n1\n"), filename="b.csv"
        ),
        "monitor.batch_received",
    ),
    "governance.monitoring.services.run_drift_check": (_checked, "drift_alert.opened"),
    "governance.delivery.services.start_job": (
        lambda c: delivery.start_job(
            actor=c.admin, project=c.project, kind="inspect", version=_made_version(c)
        ),
        "job.queued",
    ),
    "governance.delivery.services.set_secret": (
        lambda c: delivery.set_secret(actor=c.admin, project=c.project, name="KEY", value="v"),
        "secret.set",
    ),
    "governance.delivery.services.delete_secret": (
        lambda c: delivery.delete_secret(actor=c.admin, project=c.project, name=_secret(c).name),
        "secret.deleted",
    ),
    "governance.delivery.services.use_secret": (
        lambda c: delivery.use_secret(project=c.project, name=_secret(c).name, user="job 1"),
        "secret.used",
    ),
    "governance.delivery.services.rotate_secrets": (
        lambda c: (_secret(c), delivery.rotate_secrets()),
        "secret.rotated",
    ),
    "governance.delivery.services.create_target": (_target, "target.created"),
    "governance.delivery.services.update_target": (
        lambda c: delivery.update_target(
            actor=c.admin, target=_target(c), changes={"stage": "staging"}
        ),
        "target.updated",
    ),
    "governance.delivery.services.delete_target": (
        lambda c: delivery.delete_target(actor=c.admin, target=_target(c)),
        "target.deleted",
    ),
    "governance.delivery.services.deploy": (_deploying, "deployment.started"),
    "governance.delivery.services.finish_deployment": (
        lambda c: delivery.finish_deployment(
            deployment_id=_deploying(c).pk, state="failed", detail="refused"
        ),
        "deployment.failed",
    ),
    "governance.delivery.services.accept_deployment_callback": (
        lambda c: _called_back(c, _deploying(c)),
        "deployment.live",
    ),
    "governance.delivery.services.stop_deployment": (
        lambda c: delivery.stop_deployment(actor=c.admin, deployment=_deploying(c)),
        "deployment.stopped",
    ),
    "governance.delivery.services.probe_deployments": (
        lambda c: (_called_back(c, _deploying(c)), delivery.probe_deployments()),
        "deployment.health_changed",
    ),
    "governance.delivery.services.check_target_health": (
        lambda c: delivery.check_target_health(
            actor=c.admin, target=_called_back(c, _deploying(c)).target
        ),
        "deployment.health_changed",
    ),
    "governance.delivery.services.rollback": (_rolled_back, "deployment.rollback_started"),
    "governance.delivery.services.cancel_job": (
        lambda c: delivery.cancel_job(actor=c.admin, job=_job(c)),
        "job.cancel_requested",
    ),
    "governance.delivery.services.retry_job": (
        lambda c: delivery.retry_job(
            actor=c.admin, job=delivery.cancel_job(actor=c.admin, job=_job(c))
        ),
        "job.retried",
    ),
    "governance.delivery.services.save_retraining_policy": (
        _retraining_policy,
        "retraining.policy_saved",
    ),
    "governance.delivery.services.trigger_retraining": (
        lambda c: delivery.trigger_retraining(policy=_retraining_policy(c), trigger="drift"),
        "retraining.started",
    ),
    "governance.delivery.services.rerun": (
        lambda c: delivery.rerun(actor=c.admin, run=_cancelled_retraining(c)),
        "retraining.started",
    ),
    "governance.monitoring.services.check_data_quality": (
        lambda c: monitoring.check_data_quality(batch_id=_labelled(c).pk),
        "batch.quality_checked",
    ),
    "governance.monitoring.services.add_labels": (_labels, "batch.labels_received"),
    "governance.monitoring.services.compute_model_quality": (
        lambda c: monitoring.compute_model_quality(batch_id=_labels(c).pk),
        "batch.model_quality_measured",
    ),
    "governance.monitoring.services.acknowledge_alert": (
        lambda c: monitoring.acknowledge_alert(actor=c.owner, alert=_checked(c), comment="seen"),
        "drift_alert.acknowledged",
    ),
    "governance.monitoring.services.resolve_alert": (
        lambda c: monitoring.resolve_alert(actor=c.owner, alert=_checked(c), comment="fixed"),
        "drift_alert.resolved",
    ),
    "governance.monitoring.services.update_monitor": (
        lambda c: monitoring.update_monitor(
            actor=c.admin, monitor=_monitor(c), changes={"window_hours": 6}
        ),
        "monitor.updated",
    ),
    "governance.monitoring.services.request_check": (
        lambda c: monitoring.request_check(actor=c.admin, monitor=_checked(c).monitor),
        "monitor.check_queued",
    ),
    "governance.monitoring.services.run_scheduled_checks": (
        lambda c: (
            monitoring.update_monitor(
                actor=c.admin, monitor=_checked(c).monitor, changes={"check_minutes": 5}
            ),
            monitoring.run_scheduled_checks(now=timezone.now() + timedelta(minutes=5)),
        ),
        "monitor.check_queued",
    ),
    "governance.monitoring.services.poll_source": (
        lambda c: monitoring.poll_source(monitor_id=_unreachable_source(c).pk),
        "monitor.poll_failed",
    ),
    "governance.fairness.services.set_fairness_policy": (
        lambda c: fairness.set_fairness_policy(
            actor=c.owner, project=c.project, limits={"demographic_parity_ratio_min": 0.9}
        ),
        "fairness.policy_saved",
    ),
    "governance.fairness.services.request_bias_report": (_bias_report, "bias_report.requested"),
    "governance.fairness.services.generate_bias_report": (
        lambda c: fairness.generate_bias_report(report_id=_bias_report(c).pk),
        "bias_report.generated",
    ),
}


def accept_a_webhook() -> None:
    from django.test import override_settings

    body = b'{"entity": "registered_model", "action": "created", "data": {"name": "m"}}'
    stamp = str(int(time.time()))
    with override_settings(MLFLOW_WEBHOOK_SECRET="s"):
        registry.accept_webhook(
            delivery_id="d1",
            timestamp=stamp,
            signature=webhook_signature("s", "d1", stamp, body),
            body=body,
        )


class Cast:
    def __init__(self, **people):
        self.__dict__.update(people)


@pytest.fixture
def cast(project, admin_user, owner, viewer, outsider, auditor, tracking):
    return Cast(
        tracking=tracking,
        project=project,
        admin=admin_user,
        owner=owner,
        viewer=viewer,
        outsider=outsider,
        auditor=auditor,
    )


def test_every_service_has_a_scenario():
    assert discovered_services() - set(NOT_CHANGES) == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_service_writes_its_event(cast, name, django_capture_on_commit_callbacks):
    run, action = SCENARIOS[name]
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    with django_capture_on_commit_callbacks():
        run(cast)
    actions = list(
        AuditEvent.objects.filter(seq__gt=last).order_by("seq").values_list("action", flat=True)
    )
    assert action in actions
