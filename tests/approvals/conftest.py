import pytest
from mlflow.entities import Metric, Param

from governance.access.roles import Role
from governance.approvals import services
from governance.registry import services as registry
from governance.registry.models import ModelVersion


@pytest.fixture
def versions(project, tracking):
    """Two versions of `credit-scoring` in the project, both from runs `sam` authored in
    MLflow: v1 (accuracy 0.93) and v2 (accuracy 0.88), mirrored."""
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    tracking.model("credit-scoring", project="credit-risk")
    for accuracy in (0.93, 0.88):
        run = tracking.client.create_run(
            experiment, run_name=f"lr-{accuracy}", tags={"mlflow.user": "sam"}
        ).info.run_id
        tracking.client.log_batch(
            run,
            params=[Param("C", "0.5")],
            metrics=[Metric("accuracy", accuracy, 1_700_000_000_000, 0)],
        )
        tracking.client.set_terminated(run)
        tracking.version("credit-scoring", run)
    registry.sync_mlflow(trigger="test")
    found = ModelVersion.objects.select_related("model__project", "run").order_by("version")
    return list(found)


@pytest.fixture
def version(versions):
    return versions[0]


@pytest.fixture
def policy(project, owner):
    """Production needs one product owner and one ML engineer, and accuracy of 0.9."""
    return services.save_policy(
        actor=owner,
        project=project,
        stage="production",
        required={Role.PRODUCT_OWNER: 1, Role.ML_ENGINEER: 1},
        gates_=[{"kind": "metric", "condition": "accuracy >= 0.9"}],
    )


@pytest.fixture
def opened(version, policy, scientist):
    """A request the data scientist opened for v1 to production."""
    return services.open_request(actor=scientist, version=version, stage="production", note="ok")


@pytest.fixture
def no_http_retries(monkeypatch):
    """MLflow's own retries wait seconds; the behaviour under test is the same without them."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
