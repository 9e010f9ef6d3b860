"""Deployment targets and deployments: only approved versions deploy; a webhook target gets a
signed request and answers with a signed callback; Kubernetes targets get manifests; bad
settings, callbacks and unreachable targets are refused with the reason and change nothing."""

import json
import os
import socket
import time
from pathlib import Path

import pytest
import yaml

from governance.access.errors import NotAllowed
from governance.approvals import services as approvals
from governance.audit.models import AuditEvent
from governance.delivery import deploying, runner, services
from governance.delivery.errors import (
    DeploymentBusy,
    InvalidTarget,
    NotApproved,
    NothingToRollBackTo,
    NotPackaged,
    TransientJobError,
)
from governance.delivery.models import Deployment, Job, Target
from governance.errors import Conflict
from tests.delivery.receiver import Receiver
from tests.factories import make_version


def approve(version, stage, *, scientist, owner):
    """A release of `version` to `stage` approved through the approvals services."""
    approval = approvals.open_request(actor=scientist, version=version, stage=stage)
    approvals.decide(actor=owner, approval=approval, verdict="approve")
    return approval


@pytest.fixture
def policy(project, owner):
    return approvals.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1}
    )


@pytest.fixture
def approved(project, policy, scientist, owner):
    version = make_version(project, "credit-scoring", 1)
    approve(version, "production", scientist=scientist, owner=owner)
    return version


@pytest.fixture
def hook_key(project, admin_user):
    services.set_secret(actor=admin_user, project=project, name="HOOK_KEY", value="k3y-value")
    return "k3y-value"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _webhook(project, engineer, url: str) -> Target:
    return services.create_target(
        actor=engineer, project=project, name="argo", kind="webhook", stage="production",
        settings={"url": url, "hmac_secret": "HOOK_KEY"},
    )  # fmt: skip


def _events(after: int) -> list[str]:
    return list(
        AuditEvent.objects.filter(seq__gt=after).order_by("seq").values_list("action", flat=True)
    )


def _last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# Refusals.


def test_an_unapproved_version_is_refused_with_the_reason(project, engineer, policy):
    target = services.create_target(
        actor=engineer, project=project, name="local", kind="local", stage="production"
    )
    version = make_version(project, "credit-scoring", 1)
    seq = _last_seq()
    with pytest.raises(NotApproved) as refused:
        services.deploy(actor=engineer, target=target, version=version)
    assert "no approval request was opened for production" in refused.value.message
    assert not Deployment.objects.exists()
    assert not Job.objects.exists()
    assert _events(seq) == []


def test_a_rejected_version_is_refused_naming_its_request(
    project, engineer, policy, scientist, owner
):
    target = services.create_target(
        actor=engineer, project=project, name="local", kind="local", stage="production"
    )
    version = make_version(project, "credit-scoring", 1)
    approval = approvals.open_request(actor=scientist, version=version, stage="production")
    approvals.decide(actor=owner, approval=approval, verdict="reject", comment="not yet")
    with pytest.raises(NotApproved) as refused:
        services.deploy(actor=engineer, target=target, version=version)
    assert f"(#{approval.pk}) is rejected" in refused.value.message
    assert not Deployment.objects.exists()


def test_a_version_approved_for_another_stage_is_refused(project, engineer, approved):
    target = services.create_target(
        actor=engineer, project=project, name="stg", kind="local", stage="staging"
    )
    with pytest.raises(NotApproved):
        services.deploy(actor=engineer, target=target, version=approved)


def test_a_local_deploy_of_an_unpackaged_version_says_package_it_first(project, engineer, approved):
    target = services.create_target(
        actor=engineer, project=project, name="local", kind="local", stage="production"
    )
    with pytest.raises(NotPackaged) as refused:
        services.deploy(actor=engineer, target=target, version=approved)
    assert "package it first" in refused.value.message
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("person", ["scientist", "viewer", "auditor"])
def test_only_ml_engineers_and_admins_manage_targets_and_deploy(
    request, project, engineer, approved, hook_key, person
):
    actor = request.getfixturevalue(person)
    with pytest.raises(NotAllowed):
        services.create_target(
            actor=actor, project=project, name="x", kind="local", stage="production"
        )
    target = _webhook(project, engineer, "http://127.0.0.1:9/")
    seq = _last_seq()
    with pytest.raises(NotAllowed):
        services.deploy(actor=actor, target=target, version=approved)
    with pytest.raises(NotAllowed):
        services.rollback(actor=actor, target=target)
    with pytest.raises(NotAllowed):
        services.delete_target(actor=actor, target=target)
    assert _events(seq) == []
    assert not Deployment.objects.exists()


@pytest.mark.parametrize(
    ("kind", "settings", "field"),
    [
        ("webhook", {}, "url"),
        ("webhook", {"url": "ftp://cd.example/deploy", "hmac_secret": "HOOK_KEY"}, "url"),
        ("webhook", {"url": "https://cd.example/deploy"}, "hmac_secret"),
        ("webhook", {"url": "https://cd.example/deploy", "hmac_secret": "NOPE"}, "hmac_secret"),
        ("kubernetes", {"namespace": "Not_A_Namespace"}, "namespace"),
        ("kubernetes", {"namespace": "ml", "replicas": 0}, "replicas"),
        ("kubernetes", {"namespace": "ml", "image_prefix": "has space"}, "image_prefix"),
        ("kubernetes", {"namespace": "ml", "kubeconfig_secret": "lower"}, "kubeconfig_secret"),
        ("local", {"port": 80}, "port"),
        ("local", "not an object", "settings"),
        ("ftp", {}, "kind"),
    ],
)
def test_invalid_target_settings_are_refused_naming_the_field(
    project, engineer, hook_key, kind, settings, field
):
    seq = _last_seq()
    with pytest.raises(InvalidTarget) as refused:
        services.create_target(
            actor=engineer, project=project, name="t", kind=kind, stage="production",
            settings=settings,
        )  # fmt: skip
    assert field in refused.value.fields
    assert not Target.objects.exists()
    assert _events(seq) == []


def test_a_target_name_is_unique_in_its_project_and_secrets_must_exist(project, engineer):
    services.create_target(
        actor=engineer, project=project, name="local", kind="local", stage="production"
    )
    with pytest.raises(InvalidTarget) as taken:
        services.create_target(
            actor=engineer, project=project, name="local", kind="local", stage="production"
        )
    assert "name" in taken.value.fields
    with pytest.raises(InvalidTarget) as unknown:
        services.create_target(
            actor=engineer, project=project, name="other", kind="local", stage="production",
            secrets=["DB_PASSWORD"],
        )  # fmt: skip
    assert unknown.value.fields == {"secrets": ["The project has no secret DB_PASSWORD."]}
    assert Target.objects.count() == 1


def test_rollback_without_an_earlier_healthy_deployment_says_so(project, engineer):
    target = services.create_target(
        actor=engineer, project=project, name="local", kind="local", stage="production"
    )
    with pytest.raises(NothingToRollBackTo):
        services.rollback(actor=engineer, target=target)


# Webhook targets.


def test_a_webhook_target_that_does_not_answer_fails_the_deployment_with_the_reason(
    project, engineer, approved, hook_key
):
    target = _webhook(project, engineer, f"http://127.0.0.1:{_closed_port()}/deploy")
    deployment = services.deploy(actor=engineer, target=target, version=approved)
    for _ in range(runner.MAX_ATTEMPTS - 1):
        with pytest.raises(TransientJobError):
            runner.execute(deployment.job_id)
    job = runner.execute(deployment.job_id)
    deployment.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert "the CD system did not answer" in job.error
    assert deployment.state == Deployment.State.FAILED
    assert "did not answer" in deployment.detail
    assert AuditEvent.objects.filter(action="deployment.failed").count() == 1


def test_a_webhook_target_answering_4xx_fails_at_once(project, engineer, approved, hook_key):
    with Receiver(status=403) as cd:
        target = _webhook(project, engineer, cd.url + "/deploy")
        deployment = services.deploy(actor=engineer, target=target, version=approved)
        job = runner.execute(deployment.job_id)
    deployment.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert deployment.state == Deployment.State.FAILED
    assert "refused the request: 403" in deployment.detail


def test_a_webhook_deploy_is_signed_and_a_signed_callback_makes_it_live(
    project, engineer, approved, hook_key, client
):
    with Receiver() as cd:
        target = _webhook(project, engineer, cd.url + "/deploy")
        deployment = services.deploy(actor=engineer, target=target, version=approved)
        job = runner.execute(deployment.job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    (sent,) = cd.requests
    stamp, given = sent["headers"]["X-Quorum-Timestamp"], sent["headers"]["X-Quorum-Signature"]
    assert deploying.signature_matches(hook_key, stamp, sent["body"], given)
    body = json.loads(sent["body"])
    assert body["deployment"] == deployment.pk
    assert (body["model"], body["version"], body["stage"]) == ("credit-scoring", 1, "production")
    assert body["callback_url"].endswith(f"/api/v1/deployments/{deployment.pk}/callback/")
    assert body["package"] is None
    assert hook_key not in "\n".join(job.lines.values_list("text", flat=True))
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.DEPLOYING

    answer = json.dumps({"state": "live", "endpoint": "https://models.example/credit"}).encode()
    stamp = str(int(time.time()))
    response = client.post(
        f"/api/v1/deployments/{deployment.pk}/callback/", answer,
        content_type="application/json",
        headers={"X-Quorum-Timestamp": stamp,
                 "X-Quorum-Signature": deploying.signature(hook_key, stamp, answer)},
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.LIVE
    assert deployment.endpoint == "https://models.example/credit"
    event = AuditEvent.objects.get(action="deployment.live")
    assert event.actor_name == "webhook argo"


def _deploying_webhook(project, engineer, approved) -> Deployment:
    with Receiver() as cd:
        target = _webhook(project, engineer, cd.url + "/deploy")
        deployment = services.deploy(actor=engineer, target=target, version=approved)
        runner.execute(deployment.job_id)
    return deployment


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("bad signature", 401, "bad_signature"),
        ("missing signature", 401, "bad_signature"),
        ("stale timestamp", 401, "stale_callback"),
        ("unknown deployment", 404, "deployment_not_found"),
    ],
)
def test_a_bad_callback_is_refused_and_changes_nothing(
    project, engineer, approved, hook_key, client, case, status, code
):
    deployment = _deploying_webhook(project, engineer, approved)
    answer = json.dumps({"state": "live", "endpoint": "https://models.example/x"}).encode()
    stamp = str(int(time.time()) - (3600 if case == "stale timestamp" else 0))
    key = "wrong key" if case == "bad signature" else hook_key
    headers = {"X-Quorum-Timestamp": stamp}
    if case != "missing signature":
        headers["X-Quorum-Signature"] = deploying.signature(key, stamp, answer)
    pk = deployment.pk + 1000 if case == "unknown deployment" else deployment.pk
    seq = _last_seq()
    response = client.post(
        f"/api/v1/deployments/{pk}/callback/", answer, content_type="application/json",
        headers=headers,
    )  # fmt: skip
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.DEPLOYING
    assert _events(seq) == []


def test_a_second_callback_for_a_finished_deployment_conflicts(
    project, engineer, approved, hook_key
):
    deployment = _deploying_webhook(project, engineer, approved)
    answer = json.dumps({"state": "failed", "detail": "image pull failed"}).encode()
    stamp = str(int(time.time()))
    signed = deploying.signature(hook_key, stamp, answer)
    done = services.accept_deployment_callback(
        deployment_id=deployment.pk, timestamp=stamp, signature=signed, body=answer
    )
    assert (done.state, done.detail) == ("failed", "image pull failed")
    with pytest.raises(Exception, match="failed already"):
        services.accept_deployment_callback(
            deployment_id=deployment.pk, timestamp=stamp, signature=signed, body=answer
        )


def test_probes_record_health_changes_audit_and_notify(
    project, engineer, approved, hook_key, owner
):
    from governance.notify.models import Notification

    deployment = _deploying_webhook(project, engineer, approved)
    with Receiver() as model:
        answer = json.dumps({"state": "live", "endpoint": model.url}).encode()
        stamp = str(int(time.time()))
        services.accept_deployment_callback(
            deployment_id=deployment.pk, timestamp=stamp,
            signature=deploying.signature(hook_key, stamp, answer), body=answer,
        )  # fmt: skip
        assert services.probe_deployments() == 1
        deployment.refresh_from_db()
        assert deployment.health == Deployment.Health.HEALTHY
        assert deployment.healthy_at is not None
        model.health = 503
        services.probe_deployments()
    deployment.refresh_from_db()
    assert deployment.health == Deployment.Health.UNHEALTHY
    assert "503" in deployment.probe_detail
    changes = AuditEvent.objects.filter(action="deployment.health_changed")
    assert changes.count() == 2
    told = Notification.objects.filter(kind="deployment.health")
    assert {n.recipient.username for n in told} == {"olivia", "mei"}
    services.probe_deployments()  # the server is gone now: still unhealthy, no news
    assert AuditEvent.objects.filter(action="deployment.health_changed").count() == 2


# Kubernetes targets.


@pytest.fixture
def profile_kind(project, approved):
    """The version's profile as a finished profile job leaves it: its recommended resources
    (the job itself is tested in test_profiling.py)."""
    recommendation = {"cpu_request": "500m", "cpu_limit": "2", "memory_request": "300Mi",
                      "memory_limit": "600Mi"}  # fmt: skip
    Job.objects.create(
        project=project, kind="profile", version=approved, state=Job.State.SUCCEEDED,
        result={"recommendation": recommendation},
    )  # fmt: skip
    return recommendation


def _kubernetes(project, engineer, admin_user) -> Target:
    services.set_secret(actor=admin_user, project=project, name="API_KEY", value="s3cret-value")
    return services.create_target(
        actor=engineer, project=project, name="k8s", kind="kubernetes", stage="production",
        settings={"namespace": "ml", "replicas": 3, "image_prefix": "ghcr.io/risk/"},
        secrets=["API_KEY"],
    )  # fmt: skip


def test_kubernetes_manifests_carry_the_recommended_resources_and_no_secret_values(
    project, engineer, admin_user, approved, profile_kind, login
):
    target = _kubernetes(project, engineer, admin_user)
    deployment = services.deploy(actor=engineer, target=target, version=approved)
    job = runner.execute(deployment.job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.MANIFESTS_READY
    assert "kubectl apply" in deployment.detail
    rendered = deployment.runtime["manifests"]
    assert "s3cret-value" not in rendered
    apps, service = yaml.safe_load_all(rendered)
    assert (apps["kind"], service["kind"]) == ("Deployment", "Service")
    assert apps["metadata"]["namespace"] == "ml"
    assert apps["spec"]["replicas"] == 3
    (container,) = apps["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/risk/credit-scoring:1"
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "300Mi"},
        "limits": {"cpu": "2", "memory": "600Mi"},
    }
    assert container["env"] == [
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {
            "name": "credit-scoring-k8s-secrets", "key": "API_KEY"}}}
    ]  # fmt: skip
    page = login(engineer).get(f"/projects/credit-risk/targets/{target.pk}/")
    assert "Download the manifests" in page.content.decode()
    download = login(engineer).get(
        f"/projects/credit-risk/targets/{target.pk}/deployments/{deployment.pk}/manifests.yaml"
    )
    assert download.status_code == 200
    assert download.content.decode() == rendered


def test_kubernetes_manifests_fall_back_to_default_resources_and_say_so(
    project, engineer, admin_user, approved
):
    target = _kubernetes(project, engineer, admin_user)
    deployment = services.deploy(actor=engineer, target=target, version=approved)
    runner.execute(deployment.job_id)
    deployment.refresh_from_db()
    apps, _ = yaml.safe_load_all(deployment.runtime["manifests"])
    resources = apps["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "250m", "memory": "256Mi"}
    assert "no profile of this version yet: default resources" in deployment.runtime["notes"]


def test_a_kubernetes_target_without_a_registry_needs_a_package(project, engineer, approved):
    target = services.create_target(
        actor=engineer, project=project, name="k8s", kind="kubernetes", stage="production",
        settings={"namespace": "ml"},
    )  # fmt: skip
    with pytest.raises(NotPackaged):
        services.deploy(actor=engineer, target=target, version=approved)


def _kubeconfig(server: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "cluster-t0ken"}}],
        "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}],
    })  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "methods"), [(201, ["POST", "POST"]), (409, ["POST", "PATCH", "POST", "PATCH"])]
)
def test_kubernetes_manifests_are_applied_when_the_target_has_a_kubeconfig(
    project, engineer, admin_user, approved, answer, methods
):
    # A cluster cannot run here: a local server answers as the Kubernetes API would.
    with Receiver(status=answer, body={"kind": "Status"}) as cluster:
        services.set_secret(actor=admin_user, project=project, name="KUBECONFIG",
                            value=_kubeconfig(cluster.url))  # fmt: skip
        target = _kubernetes(project, engineer, admin_user)
        services.update_target(
            actor=engineer, target=target,
            changes={"settings": {**target.settings, "kubeconfig_secret": "KUBECONFIG"}},
        )  # fmt: skip
        deployment = services.deploy(actor=engineer, target=target, version=approved)
        job = runner.execute(deployment.job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.LIVE
    assert deployment.endpoint == "http://credit-scoring-k8s.ml.svc.cluster.local"
    assert [r["method"] for r in cluster.requests] == methods
    assert cluster.requests[0]["path"] == "/apis/apps/v1/namespaces/ml/deployments"
    assert cluster.requests[-1]["path"].startswith("/api/v1/namespaces/ml/services")
    headers = {k.lower(): v for k, v in cluster.requests[0]["headers"].items()}
    assert headers["authorization"] == "Bearer cluster-t0ken", headers
    sent = b"".join(r["body"] for r in cluster.requests)
    assert b"s3cret-value" not in sent
    log = "\n".join(job.lines.values_list("text", flat=True))
    assert "cluster-t0ken" not in log


def test_a_deploy_while_another_is_under_way_is_refused(project, engineer, approved, hook_key):
    target = _webhook(project, engineer, "http://127.0.0.1:9/")
    services.deploy(actor=engineer, target=target, version=approved)
    with pytest.raises(DeploymentBusy):
        services.deploy(actor=engineer, target=target, version=approved)
    assert Deployment.objects.count() == 1


def test_a_target_serving_a_deployment_cannot_be_deleted_and_its_kind_cannot_change(
    project, engineer, approved, hook_key
):
    target = _webhook(project, engineer, "http://127.0.0.1:9/")
    services.deploy(actor=engineer, target=target, version=approved)
    with pytest.raises(Conflict):
        services.delete_target(actor=engineer, target=target)
    with pytest.raises(InvalidTarget) as refused:
        services.update_target(actor=engineer, target=target, changes={"kind": "local"})
    assert refused.value.fields == {"kind": ["Cannot be changed."]}
    assert Target.objects.get().kind == "webhook"


def test_stopping_leaves_a_process_that_is_not_the_deployments_alone():
    assert "no server" in deploying.terminate({"pid": os.getpid()}, 424242)
    assert deploying.alive(os.getpid())


def test_beat_probes_live_deployments_every_minute(db):
    from django_celery_beat.models import PeriodicTask

    from dashboard.celery import app
    from governance.delivery import tasks  # noqa: F401 (registers them, as the worker does)

    task = PeriodicTask.objects.get(task="delivery.probe_deployments")
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (1, "minutes")
    assert "delivery.probe_deployments" in app.tasks


def test_a_person_checks_now_and_the_check_is_on_the_trail(
    project, engineer, approved, hook_key, login
):
    deployment = _deploying_webhook(project, engineer, approved)
    with Receiver() as model:
        answer = json.dumps({"state": "live", "endpoint": model.url}).encode()
        stamp = str(int(time.time()))
        services.accept_deployment_callback(
            deployment_id=deployment.pk, timestamp=stamp,
            signature=deploying.signature(hook_key, stamp, answer), body=answer,
        )  # fmt: skip
        target = deployment.target
        page = login(engineer).post(f"/projects/credit-risk/targets/{target.pk}/check/",
                                    follow=True)  # fmt: skip
    assert "Healthy: 200" in page.content.decode()
    event = AuditEvent.objects.filter(action="deployment.health_changed").get()
    assert event.actor_name == "mei"


def test_a_server_of_another_deployment_is_not_taken_for_ours(settings, tmp_path):
    import subprocess
    import sys

    settings.DATA_DIR = tmp_path
    folder = deploying.deployment_folder(12)
    folder.mkdir(parents=True)
    script = folder / "server.py"
    script.write_text("import time\ntime.sleep(60)\n")
    other = subprocess.Popen([sys.executable, str(script)])  # noqa: S603 - the test's own
    try:
        started = Path(f"/proc/{other.pid}/cmdline")
        for _ in range(100):  # until the child runs its own command line
            if str(script).encode() in started.read_bytes():
                break
            time.sleep(0.05)
        assert deploying.is_ours(other.pid, 12)
        assert not deploying.is_ours(other.pid, 1)
        assert "no server" in deploying.terminate({"pid": other.pid}, 1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
