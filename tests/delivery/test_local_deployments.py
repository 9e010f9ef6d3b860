"""Local targets, for real: a packaged scikit-learn model is started as a scoring server of its
own, answers /predict, is probed healthy, is replaced by a new version without a gap, and
rolled back; a server that does not start fails its deployment with its log kept."""

import json
import socket
import urllib.request

import pytest

from governance.approvals import services as approvals
from governance.audit.models import AuditEvent
from governance.delivery import deploying, runner, selectors, services
from governance.delivery.models import Deployment, Job
from governance.registry import services as registry
from governance.registry.models import ModelVersion


@pytest.fixture
def setup(transactional_db, tracking, project, owner, scientist, engineer, admin_user):
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1}
    )
    yield {"project": project, "tracking": tracking, "owner": owner, "scientist": scientist,
           "engineer": engineer, "admin": admin_user}  # fmt: skip
    # Whatever a test started, it stops: no scoring server outlives its test.
    for deployment in Deployment.objects.all():
        deploying.terminate(deployment.runtime, deployment.pk)


def _packaged_and_approved(setup: dict) -> ModelVersion:
    number = setup["tracking"].sklearn_version("credit-scoring", project="credit-risk")
    registry.sync_mlflow(trigger="test")
    version = ModelVersion.objects.get(model__name="credit-scoring", version=number)
    job = services.start_job(actor=setup["engineer"], project=setup["project"], kind="package",
                             version=version)  # fmt: skip
    assert runner.execute(job.pk).state == Job.State.SUCCEEDED
    approval = approvals.open_request(actor=setup["scientist"], version=version,
                                      stage="production")  # fmt: skip
    approvals.decide(actor=setup["owner"], approval=approval, verdict="approve")
    return version


def _deployed(setup: dict, deployment: Deployment) -> Deployment:
    job = runner.execute(deployment.job_id)
    deployment.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error + _log(job)
    return deployment


def _log(job: Job) -> str:
    return "\n".join(job.lines.order_by("number").values_list("text", flat=True))


def _predict(endpoint: str) -> dict:
    body = json.dumps({"rows": [{"age": 30.0, "income": 50.0}, {"age": 60.0, "income": 40.0}]})
    asked = urllib.request.Request(
        endpoint + "/predict", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(asked, timeout=10) as answer:
        return json.loads(answer.read())


def _metadata(endpoint: str) -> dict:
    with urllib.request.urlopen(endpoint + "/metadata", timeout=10) as answer:
        return json.loads(answer.read())


def test_a_local_deployment_serves_is_replaced_and_rolled_back(setup):
    engineer = setup["engineer"]
    services.set_secret(actor=setup["admin"], project=setup["project"], name="API_KEY",
                        value="s3cret-value")  # fmt: skip
    target = services.create_target(
        actor=engineer, project=setup["project"], name="local", kind="local",
        stage="production", secrets=["API_KEY"],
    )  # fmt: skip
    first = _packaged_and_approved(setup)

    one = _deployed(setup, services.deploy(actor=engineer, target=target, version=first))
    assert one.state == Deployment.State.LIVE
    assert one.health == Deployment.Health.HEALTHY
    pid = one.runtime["pid"]
    assert deploying.is_ours(pid, one.pk)
    assert len(_predict(one.endpoint)["predictions"]) == 2
    assert _metadata(one.endpoint)["version"] == first.version
    environment = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")  # noqa: SIM115
    assert b"API_KEY=s3cret-value" in environment
    assert "s3cret-value" not in _log(one.job)
    assert AuditEvent.objects.filter(action="secret.used", actor_name=f"job {one.job_id}").exists()

    assert services.probe_deployments() == 1
    one.refresh_from_db()
    assert (one.health, one.probe_detail.startswith("200")) == ("healthy", True)

    second = _packaged_and_approved(setup)
    two = _deployed(setup, services.deploy(actor=engineer, target=target, version=second))
    one.refresh_from_db()
    assert (two.state, two.replaced_id) == (Deployment.State.LIVE, one.pk)
    assert one.state == Deployment.State.SUPERSEDED
    assert not deploying.alive(pid), "the replaced server still runs"
    assert _metadata(two.endpoint)["version"] == second.version

    three = _deployed(setup, services.rollback(actor=engineer, target=target))
    two.refresh_from_db()
    assert three.version == first
    assert (three.rollback_of_id, three.state) == (two.pk, Deployment.State.LIVE)
    assert two.state == Deployment.State.ROLLED_BACK
    assert not deploying.alive(two.runtime["pid"])
    assert _metadata(three.endpoint)["version"] == first.version
    assert len(_predict(three.endpoint)["predictions"]) == 2
    assert [d.pk for d in selectors.history_of(target)] == [three.pk, two.pk, one.pk]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"deployment.started", "deployment.live", "deployment.superseded",
            "deployment.rollback_started", "deployment.rolled_back"} <= actions  # fmt: skip

    services.stop_deployment(actor=engineer, deployment=three)
    three.refresh_from_db()
    assert three.state == Deployment.State.STOPPED
    assert not deploying.alive(three.runtime["pid"])


def test_a_scoring_server_that_does_not_start_fails_the_deployment_with_its_log(setup):
    engineer = setup["engineer"]
    version = _packaged_and_approved(setup)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        target = services.create_target(
            actor=engineer, project=setup["project"], name="fixed", kind="local",
            stage="production", settings={"port": port},
        )  # fmt: skip
        deployment = services.deploy(actor=engineer, target=target, version=version)
        job = runner.execute(deployment.job_id)
    deployment.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert deployment.state == Deployment.State.FAILED
    assert "did not start" in deployment.detail
    log = _log(job)
    assert "scoring server log:" in log
    assert "Address already in use" in log
