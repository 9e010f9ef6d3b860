"""The world the authorization matrix and the API fuzzing run in: the credit-risk project with
its whole cast, an outsider, and one object of every kind a URL names."""

import io
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa
import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from governance.access import services as access
from governance.access.models import Membership
from governance.approvals import services as approvals
from governance.audit import services as audit
from governance.delivery import packaging
from governance.delivery import services as delivery
from governance.delivery.models import Deployment, Job
from governance.fairness import services as fairness
from governance.monitoring import services as monitoring
from governance.monitoring.models import DriftAlert
from governance.notify import services as notify
from governance.notify.kinds import Kind
from governance.registry import services as registry
from governance.registry.models import Experiment, ModelVersion, Run
from tests.factories import UserFactory


@dataclass
class World:
    users: dict[str, object]
    ids: dict[str, object]
    tokens: dict[str, str]


@pytest.fixture
def world(
    project, admin_user, owner, scientist, engineer, auditor, viewer, outsider, tracking,
    settings, tmp_path,
):  # fmt: skip
    """The credit-risk project with its cast and one object of every kind the URLs name."""
    # Files of its own: ids repeat between tests, and a package left under a job's id would
    # show in another test's job of the same id.
    settings.DATA_DIR = tmp_path / "data"
    tracking.model("credit-scoring", project="credit-risk")
    experiment = tracking.experiment("training", project="credit-risk")
    run = tracking.run(experiment, metrics={"auc": [0.8, 0.9]}, dataset=("applicants", "d1"))
    tracking.run(experiment, name="other", metrics={"auc": [0.7]})
    tracking.version("credit-scoring", run)
    tracking.version("credit-scoring", run)
    tracking.experiment("untagged")
    registry.sync_mlflow(trigger="test")
    version = ModelVersion.objects.get(model__name="credit-scoring", version=1)
    second = ModelVersion.objects.get(model__name="credit-scoring", version=2)
    registry.edit_model_card(
        actor=scientist, version=version, sections={"intended_use": "Scoring applications."}
    )
    for stage in ("production", "staging"):
        approvals.save_policy(
            actor=owner, project=project, stage=stage, required={"product_owner": 1}
        )
    approval = approvals.open_request(actor=scientist, version=version, stage="production")
    failed = approvals.open_request(actor=scientist, version=second, stage="production")
    approvals.decide(actor=owner, approval=failed, verdict="approve")
    approvals.note_alias_failure(approval_id=failed.pk, error="MLflow is down", final=True)

    job = delivery.start_job(actor=admin_user, project=project, kind="inspect", version=version)
    # A package job as a worker leaves it, without building an image here.
    package = delivery.start_job(actor=admin_user, project=project, kind="package", version=version)
    Job.objects.filter(pk=package.pk).update(state=Job.State.SUCCEEDED)
    packaging.package_folder(package).mkdir(parents=True)
    (packaging.package_folder(package) / packaging.ARCHIVE).write_bytes(b"not really a tar")
    cancelled = delivery.cancel_job(
        actor=admin_user,
        job=delivery.start_job(actor=admin_user, project=project, kind="inspect", version=second),
    )
    secret = delivery.set_secret(actor=admin_user, project=project, name="KEY", value="v")
    target = delivery.create_target(
        actor=engineer, project=project, name="local", kind="local", stage="production"
    )
    cluster = delivery.create_target(
        actor=engineer, project=project, name="cluster", kind="kubernetes", stage="production",
        settings={"namespace": "ml"},
    )  # fmt: skip
    # Manifests as a deploy job leaves them for a cluster Quorum may not reach.
    manifests = Deployment.objects.create(
        target=cluster, version=second, state=Deployment.State.MANIFESTS_READY,
        runtime={"manifests": "apiVersion: apps/v1\nkind: Deployment\n"}, deployed_by=engineer,
    )  # fmt: skip
    retraining = delivery.save_retraining_policy(
        actor=engineer, model=version.model,
        entry_point="governance.delivery.demo_pipeline:CREDIT_SCORING",
    )  # fmt: skip
    retrained = delivery.trigger_retraining(policy=retraining, trigger="manual", actor=engineer)

    reference = registry.keep_table(
        actor=admin_user,
        project=project,
        name="reference",
        table=pa.table({"age": [float(n % 50) for n in range(400)]}),
        source="r.parquet",
    )
    monitor = monitoring.create_monitor(
        actor=admin_user, project=project, name="inputs", reference=reference
    )
    shifted = "age\n" + "".join(f"{60 + n % 50}\n" for n in range(400))
    batch = monitoring.add_batch(
        actor=admin_user, monitor=monitor, content=io.BytesIO(shifted.encode()), filename="b.csv"
    )
    check = batch.checks.get()
    monitoring.run_drift_check(check_id=check.pk)
    alert = DriftAlert.objects.get(monitor=monitor)
    labelled = registry.keep_table(
        actor=admin_user,
        project=project,
        name="labelled",
        table=pa.table(
            {"age": [float(n) for n in range(100)], "y": [n % 2 for n in range(100)],
             "p": [n % 2 for n in range(100)]}
        ),
        source="l.parquet",
    )  # fmt: skip
    scored = monitoring.create_monitor(
        actor=admin_user, project=project, name="scored", reference=labelled,
        task="classification", label_column="y", prediction_column="p",
    )  # fmt: skip
    scored_batch = monitoring.add_batch(
        actor=admin_user, monitor=scored, content=io.BytesIO(b"age,p\n1,1\n2,0\n"),
        filename="b.csv",
    )  # fmt: skip

    holdout = registry.keep_table(
        actor=admin_user,
        project=project,
        name="holdout",
        table=pa.table({"sex": ["f", "m"] * 50, "y": [0, 1] * 50, "p": [1, 1] * 50}),
        source="h.parquet",
    )
    report = fairness.request_bias_report(
        actor=admin_user, version=version, dataset=holdout, y_true="y", y_pred="p",
        sensitive=["sex"],
    )  # fmt: skip

    (notification,) = notify.notify(
        recipients=[owner],
        kind=Kind.RELEASE_REQUESTED,
        subject="credit-scoring v1 waits for your decision",
        url="/projects/credit-risk/approvals/",
        key="matrix",
        project=project,
    )
    expires = timezone.now() + timedelta(days=1)
    owner_token, _ = access.create_api_token(actor=owner, name="laptop", expires_at=expires)
    exported = audit.export_trail(actor=auditor, fmt="jsonl", criteria={}, destination=io.BytesIO())
    verification = audit.request_verification(actor=auditor)
    forgetful = UserFactory(username="rita")

    users = {
        "admin": admin_user,
        "owner": owner,
        "scientist": scientist,
        "engineer": engineer,
        "auditor": auditor,
        "viewer": viewer,
        "outsider": outsider,
    }
    tokens = {
        role: access.create_api_token(actor=user, name="matrix", expires_at=expires)[1]
        for role, user in users.items()
    }
    ids = {
        "slug": project.slug,
        "model": "credit-scoring",
        "number": 1,
        "experiment": Experiment.objects.get(name="training").mlflow_id,
        "run": run,
        "runs": ",".join(Run.objects.values_list("mlflow_id", flat=True)),
        "metric": "auc",
        "membership": Membership.objects.get(project=project, user=viewer).pk,
        "member": viewer.username,
        "token": owner_token.pk,
        "notification": notification.pk,
        "approval": approval.pk,
        "failed_approval": failed.pk,
        "stage": "production",
        "job": job.pk,
        "cancelled_job": cancelled.pk,
        "package_job": package.pk,
        "scored_monitor": scored.pk,
        "scored_batch": scored_batch.pk,
        "secret": secret.name,
        "target": target.pk,
        "cluster": cluster.pk,
        "manifests": manifests.pk,
        "retraining_run": retrained.pk,
        "reference": reference.pk,
        "holdout": holdout.pk,
        "monitor": monitor.pk,
        "batch": batch.pk,
        "check": check.pk,
        "alert": alert.pk,
        "bias_report": report.pk,
        "export": exported.seq,
        "verification": verification.pk,
        "md": "md",
        # Someone who never signs in here: signing in would change the reset token.
        "uidb64": urlsafe_base64_encode(force_bytes(forgetful.pk)),
        "reset_token": default_token_generator.make_token(forgetful),
    }
    return World(users=users, ids=ids, tokens=tokens)
