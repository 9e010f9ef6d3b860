"""The package job builds a real scikit-learn model into an archive that serves it: ONNX where
the model converts and predicts as the original, natively otherwise, checked by starting the
packaged server, and logged back to MLflow."""

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from governance.access.roles import Role
from governance.audit.models import AuditEvent
from governance.delivery import conversion, packaging, runner, services
from governance.delivery.models import Job
from governance.errors import InvalidInput
from governance.registry import services as registry
from governance.registry.models import ModelVersion
from tests.factories import AdminFactory, UserFactory, make_project


@pytest.fixture
def mlflow_project(transactional_db, tracking):
    admin = AdminFactory(username="ada")
    mei = UserFactory(username="mei")
    project = make_project(
        admin=admin, owner=UserFactory(username="olivia"), members={mei: Role.ML_ENGINEER}
    )
    return {"project": project, "mei": mei, "tracking": tracking}


def _version(setup: dict, name: str, **options: object) -> ModelVersion:
    number = setup["tracking"].sklearn_version(name, project="credit-risk", **options)
    registry.sync_mlflow(trigger="test")
    return ModelVersion.objects.get(model__name=name, version=number)


def _package(setup: dict, version: ModelVersion, params: dict | None = None) -> Job:
    job = services.start_job(
        actor=setup["mei"], project=setup["project"], kind="package", version=version,
        params=params or {},
    )  # fmt: skip
    return runner.execute(job.pk)


def _log(job: Job) -> str:
    return "\n".join(job.lines.order_by("number").values_list("text", flat=True))


def test_a_worker_packages_a_scikit_learn_model_as_onnx_and_serves_it(
    mlflow_project, celery_worker
):
    version = _version(mlflow_project, "credit-scoring")
    job = services.start_job(
        actor=mlflow_project["mei"], project=mlflow_project["project"], kind="package",
        version=version,
    )  # fmt: skip
    celery_worker.wait_for(lambda: Job.objects.get(pk=job.pk).finished, timeout=240)
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error + _log(job)
    result = job.result
    assert result["onnx"]["converted"] is True
    assert result["onnx"]["passed"] is True
    assert result["onnx"]["max_abs_diff"] <= 1e-4
    assert "probabilities_max_abs_diff" in result["onnx"]
    assert result["serves"] == "onnx"

    archive = Path(result["package"]["path"])
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        dockerfile = tar.extractfile("context/Dockerfile").read().decode()
        requirements = tar.extractfile("context/requirements-server.txt").read().decode()
    assert {"context/Dockerfile", "context/server.py", "context/model.onnx"} <= names
    assert "context/model_dir/artifacts/MLmodel" in names
    assert "/opt/quorum/server.py" in dockerfile
    assert all("==" in line for line in requirements.split()), requirements
    assert result["package"]["size_bytes"] == archive.stat().st_size
    assert result["package"]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()

    assert result["docker"] == {
        "built": False, "why_not": "no Docker engine here: the context is ready to build"
    }  # fmt: skip
    answers = result["debug"]["answers"]
    assert answers["health"]["body"] == {"status": "ok"}
    assert answers["metadata"]["body"]["serves"] == "onnx"
    assert answers["metadata"]["body"]["model"] == "credit-scoring"
    assert len(answers["predict"]["body"]["predictions"]) == answers["predict"]["rows"]
    assert answers["bad_request"]["status"] == 400
    assert result["debug"]["predict_latency_seconds"] > 0

    client = mlflow_project["tracking"].client
    run_id = result["mlflow"]["run_id"]
    logged = {a.path for a in client.list_artifacts(run_id, f"quorum-package-{job.pk}")}
    assert logged == {
        f"quorum-package-{job.pk}/package.tar.gz",
        f"quorum-package-{job.pk}/model.onnx",
    }
    tags = client.get_model_version("credit-scoring", str(version.version)).tags
    assert tags["quorum.package_job"] == str(job.pk)
    assert tags["quorum.onnx"] == "true"


def test_a_model_skl2onnx_cannot_convert_is_packaged_natively_with_the_reason(mlflow_project):
    from sklearn.kernel_ridge import KernelRidge

    version = _version(mlflow_project, "ridge", model=KernelRidge())
    job = _package(mlflow_project, version)
    assert job.state == Job.State.SUCCEEDED, job.error + _log(job)
    assert job.result["onnx"]["converted"] is False
    assert job.result["onnx"]["why_not"].startswith("not convertible: skl2onnx")
    assert "KernelRidge" in job.result["onnx"]["why_not"]
    assert job.result["serves"] == "native"
    assert job.result["debug"]["answers"]["metadata"]["body"]["serves"] == "native"
    assert "context/model.onnx" not in job.result["package"]["files"]
    tags = mlflow_project["tracking"].client.get_model_version("ridge", "1").tags
    assert tags["quorum.onnx"] == "false"


def test_onnx_that_differs_from_the_native_model_fails_parity_with_the_figure(mlflow_project):
    version = _version(mlflow_project, "credit-scoring")
    job = _package(mlflow_project, version, {"tolerance": 0})
    assert job.state == Job.State.SUCCEEDED, job.error + _log(job)
    onnx = job.result["onnx"]
    assert onnx["converted"] is True
    assert onnx["passed"] is False
    assert onnx["max_abs_diff"] > 0
    assert f"{onnx['max_abs_diff']:.3g}" in onnx["why_not"]
    assert job.result["serves"] == "native", "a model that failed parity is served natively"


def test_a_scoring_server_that_does_not_start_fails_the_job_with_its_log(mlflow_project):
    version = _version(mlflow_project, "credit-scoring")
    client = mlflow_project["tracking"].client
    source = client.get_model_version("credit-scoring", "1").source
    logged = client.get_logged_model(source.removeprefix("models:/"))
    folder = Path(logged.artifact_location.removeprefix("file://"))
    for saved in [*folder.glob("model.pkl"), *folder.glob("model.skops")]:
        saved.write_bytes(b"not a model")

    job = _package(mlflow_project, version)
    assert job.state == Job.State.FAILED
    assert "the scoring server did not start" in job.error
    log = _log(job)
    assert "scoring server log:" in log
    assert "Traceback" in log
    assert job.result == {}


@pytest.mark.parametrize(
    ("tolerance", "why"), [(-1, "Zero or more."), ("tiny", "A number, such as 0.0001."),
                           (True, "A number, such as 0.0001."), (float("nan"), "Zero or more.")]
)  # fmt: skip
def test_a_bad_tolerance_is_refused_naming_the_field(project, engineer, tolerance, why):
    from tests.factories import make_version

    version = make_version(project, "credit-scoring", 1)
    with pytest.raises(InvalidInput) as refused:
        services.start_job(
            actor=engineer, project=project, kind="package", version=version,
            params={"tolerance": tolerance},
        )  # fmt: skip
    assert refused.value.fields == {"tolerance": [why]}
    assert not Job.objects.exists()


def test_the_sample_rows_follow_the_signature_when_no_example_was_logged():
    from mlflow.models import Model

    rows = conversion.sample_rows(
        Model(), Path("/nonexistent"),
        [{"name": "age", "type": "double"}, {"name": "n", "type": "long"},
         {"name": "city", "type": "string"}],
    )  # fmt: skip
    assert list(rows.columns) == ["age", "n", "city"]
    assert len(rows) == conversion.SAMPLE_ROWS
    assert rows["n"].dtype.kind == "i"
    again = conversion.sample_rows(
        Model(), Path("/nonexistent"), [{"name": "age", "type": "double"}]
    )
    assert json.dumps(list(again["age"])) == json.dumps(list(rows["age"])), "seeded"


def test_the_packaged_gate_follows_the_package_jobs_of_a_version(mlflow_project):
    from governance.approvals.gates import Outcome, check_all

    version = _version(mlflow_project, "credit-scoring")
    gate = [{"kind": "packaged"}]
    assert check_all(version, gate)[0].outcome == Outcome.MISSING

    failed_parity = _package(mlflow_project, version, {"tolerance": 0})
    judged = check_all(version, gate)[0]
    assert judged.outcome == Outcome.FAIL
    assert f"package job {failed_parity.pk}: parity failed" in judged.reason

    passed = _package(mlflow_project, version)
    judged = check_all(version, gate)[0]
    assert judged.outcome == Outcome.PASS
    assert judged.reason == f"package job {passed.pk} succeeded: ONNX parity passed"


def test_the_packaged_gate_passes_a_model_packaged_natively(mlflow_project):
    from sklearn.kernel_ridge import KernelRidge

    from governance.approvals.gates import Outcome, check_all

    version = _version(mlflow_project, "ridge", model=KernelRidge())
    _package(mlflow_project, version)
    judged = check_all(version, [{"kind": "packaged"}])[0]
    assert judged.outcome == Outcome.PASS
    assert "not convertible" in judged.reason


# Where a Docker engine is configured, the package is built into an image and pushed to the
# configured registry; a stand-in engine on 127.0.0.1 answers the Docker SDK.


def test_with_a_docker_engine_the_image_is_built_and_pushed_with_the_projects_login(
    mlflow_project, monkeypatch, settings
):
    from tests.delivery.docker_engine import DIGEST, IMAGE_ID, Engine

    settings.QUORUM_IMAGE_REGISTRY = "registry.example.test/ml/"
    for name, value in [("DOCKER_REGISTRY_USERNAME", "robot"),
                        ("DOCKER_REGISTRY_PASSWORD", "s3cret-push-token")]:  # fmt: skip
        services.set_secret(
            actor=mlflow_project["mei"], project=mlflow_project["project"], name=name, value=value
        )
    version = _version(mlflow_project, "credit-scoring")
    with Engine() as engine:
        monkeypatch.setenv("DOCKER_HOST", engine.host)
        job = _package(mlflow_project, version)
    assert job.state == Job.State.SUCCEEDED, job.error + _log(job)
    tag = f"1-job{job.pk}"
    repository = "registry.example.test/ml/quorum-credit-scoring"
    assert job.result["docker"] == {
        "built": True, "image": f"{repository}:{tag}", "id": IMAGE_ID, "pushed": True,
        "repository": repository, "digest": DIGEST,
    }  # fmt: skip
    [build] = engine.builds
    assert build["tag"] == f"{repository}:{tag}"
    assert {"Dockerfile", "server.py", "metadata.json"} <= set(build["files"])
    login = {"username": "robot", "password": "s3cret-push-token"}
    assert engine.pushes == [{"repository": repository, "tag": tag, "auth": login}]
    log = _log(job)
    assert f"pushed {repository}:{tag} {DIGEST}" in log
    assert "s3cret-push-token" not in log
    used = AuditEvent.objects.filter(action="secret.used")
    assert sorted(event.data["name"] for event in used) == [
        "DOCKER_REGISTRY_PASSWORD",
        "DOCKER_REGISTRY_USERNAME",
    ]


def test_without_a_registry_the_built_image_stays_on_the_engine(mlflow_project, monkeypatch):
    from tests.delivery.docker_engine import Engine

    version = _version(mlflow_project, "credit-scoring")
    with Engine() as engine:
        monkeypatch.setenv("DOCKER_HOST", engine.host)
        job = _package(mlflow_project, version)
    assert job.state == Job.State.SUCCEEDED, job.error + _log(job)
    assert job.result["docker"]["image"] == f"quorum/credit-scoring:1-job{job.pk}"
    assert job.result["docker"]["pushed"] is False
    assert "QUORUM_IMAGE_REGISTRY" in job.result["docker"]["why_not_pushed"]
    assert engine.pushes == []


@pytest.mark.parametrize(
    ("engine_options", "why"),
    [({"fail_build": "pip could not find onnxruntime"}, "the image did not build: pip could not"),
     ({"fail_push": "denied: requested access to the resource is denied"},
      "the registry refused the image: denied")],
)  # fmt: skip
def test_a_build_or_push_the_engine_refuses_fails_the_package_with_its_reason(
    mlflow_project, monkeypatch, settings, engine_options, why
):
    from tests.delivery.docker_engine import Engine

    settings.QUORUM_IMAGE_REGISTRY = "registry.example.test/ml"
    version = _version(mlflow_project, "credit-scoring")
    with Engine(**engine_options) as engine:
        monkeypatch.setenv("DOCKER_HOST", engine.host)
        job = _package(mlflow_project, version)
    assert job.state == Job.State.FAILED
    assert why in job.error
    assert engine.builds, "the engine was asked"


def test_a_docker_engine_that_does_not_answer_is_tried_again_later(mlflow_project, monkeypatch):
    from governance.delivery.errors import TransientJobError

    version = _version(mlflow_project, "credit-scoring")
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{packaging._free_port()}")
    job = services.start_job(
        actor=mlflow_project["mei"], project=mlflow_project["project"], kind="package",
        version=version,
    )  # fmt: skip
    with pytest.raises(TransientJobError, match="the Docker engine did not answer"):
        runner.execute(job.pk)
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED, "queued again for the task's retry"
