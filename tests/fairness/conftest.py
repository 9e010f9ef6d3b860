"""Model versions to assess, and the evaluation tables a project keeps for bias reports."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from governance.registry import services as registry
from governance.registry.models import ModelVersion


@pytest.fixture
def version(project, tracking):
    """credit-scoring v1, registered from a run that logged no model: reports name their
    prediction column."""
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", tracking.run(experiment))
    registry.sync_mlflow(trigger="test")
    return ModelVersion.objects.select_related("model__project").get()


def applicants(rows: int = 2000, *, biased: bool, seed: int = 3) -> pd.DataFrame:
    """Applicants with a label, a prediction and their sex; with `biased`, women are approved
    at half the rate of men. `income` (float) and `years` (int) are what a model reads."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], rows)
    rate = np.where((sex == "female") & biased, 0.3, 0.6)
    return pd.DataFrame(
        {
            "sex": sex,
            "income": rng.normal(50, 10, rows).round(1),
            "years": rng.integers(0, 30, rows),
            "approved": rng.integers(0, 2, rows),
            "predicted": (rng.random(rows) < rate).astype(int),
        }
    )


@pytest.fixture
def keep(project, scientist):
    """Keep a table (a DataFrame or a dict of columns) in the project, as the Data page does."""

    def _keep(data, name: str = "holdout", in_project=None):
        table = (
            pa.Table.from_pandas(data, preserve_index=False)
            if isinstance(data, pd.DataFrame)
            else pa.table(data)
        )
        return registry.keep_table(
            actor=scientist if in_project is None else in_project[1],
            project=project if in_project is None else in_project[0],
            name=name,
            table=table,
            source=f"{name}.parquet",
        )

    return _keep


@pytest.fixture
def model_version(project, tracking):
    """credit-scoring v1 as a real logged scikit-learn model that approves by `income` and
    `years` (a float and a whole number in its signature)."""
    data = applicants(400, biased=False)
    tracking.sklearn_version(
        "credit-scoring",
        project="credit-risk",
        features=data[["income", "years"]].astype("float64"),
        labels=(data["income"] > 50).astype(int),
    )
    registry.sync_mlflow(trigger="test")
    return ModelVersion.objects.select_related("model__project").get()
