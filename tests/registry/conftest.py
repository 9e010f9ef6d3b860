import pytest

from governance.registry import services


@pytest.fixture
def mirrored(project, tracking):
    """A small MLflow history, synced: two experiments of the project, one of another."""
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    runs = [
        tracking.run(
            experiment,
            f"run-{n}",
            params={"C": n, "solver": "lbfgs" if n % 2 else "saga"},
            metrics={"auc": [0.5, 0.6 + n / 100], "accuracy": 0.7 + n / 100},
            dataset=("applicants", "digest1"),
        )
        for n in range(5)
    ]
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", runs[4])
    tracking.client.set_registered_model_alias("credit-scoring", "champion", "1")
    services.sync_mlflow(trigger="test")
    return {"experiment": experiment, "runs": runs}
