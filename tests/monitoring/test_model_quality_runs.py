"""Model quality as it runs for real: a worker measures labelled batches, and a monitor
without a prediction column loads its model version from MLflow to predict."""

import io

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from governance.monitoring import services
from governance.monitoring.models import Batch, Monitor
from governance.registry import demo
from governance.registry import services as registry
from governance.registry.models import ModelVersion
from tests.factories import UserFactory, make_project

FEATURES = demo.credit_applicants().features


def csv_of(data: pd.DataFrame) -> io.BytesIO:
    return io.BytesIO(data.to_csv(index=False).encode())


@pytest.fixture
def scoring_version(tracking, project) -> ModelVersion:
    """A logistic regression on the demo's applicants, logged and registered in MLflow and
    mirrored into the project, as a data scientist would publish it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = demo.credit_applicants()
    tracking.sklearn_version(
        "credit-scoring",
        project="credit-risk",
        features=data.train[FEATURES].astype("float64"),
        labels=data.train[data.target],
        model=make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    )
    registry.sync_mlflow(trigger="test")
    return ModelVersion.objects.get(model__name="credit-scoring", version=1)


def test_a_monitor_without_predictions_loads_its_model_from_mlflow(
    project, scientist, scoring_version, mlflow_uri
):
    data = demo.credit_applicants()
    reference = registry.keep_table(
        actor=scientist,
        project=project,
        name="training",
        table=pa.Table.from_pandas(data.train[[*FEATURES, data.target]], preserve_index=False),
        source="train.parquet",
    )
    monitor = services.create_monitor(
        actor=scientist,
        project=project,
        name="scoring v1",
        reference=reference,
        version=scoring_version,
        task="classification",
        label_column=data.target,
    )
    held_out = data.test[[*FEATURES, data.target]]
    batch = services.add_batch(
        actor=scientist,
        monitor=monitor,
        content=csv_of(held_out[FEATURES]),
        filename="today.csv",
    )
    services.add_labels(
        actor=scientist,
        batch=batch,
        content=csv_of(held_out[[data.target]]),
        filename="labels.csv",
    )

    batch = services.compute_model_quality(batch_id=batch.pk)

    assert batch.model_quality_state == "done", batch.model_quality_error
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_uri)
    try:
        loaded = mlflow.sklearn.load_model("models:/credit-scoring/1")
    finally:
        mlflow.set_tracking_uri(previous)
    expected = loaded.predict(held_out[FEATURES].astype("float64"))
    scores = loaded.predict_proba(held_out[FEATURES].astype("float64"))[:, 1]
    truth = held_out[data.target]
    measured = batch.model_quality["metrics"]
    assert measured["accuracy"] == pytest.approx(skm.accuracy_score(truth, expected))
    assert measured["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, scores))
    assert measured["roc_auc"] > 0.7
    monitor = Monitor.objects.get(pk=monitor.pk)
    assert monitor.reference_quality["rows"] == len(data.train)
    assert monitor.reference_quality["metrics"]["roc_auc"] > 0.7


def test_a_model_whose_inputs_the_data_lacks_fails_the_measure_naming_them(
    project, scientist, scoring_version
):
    data = demo.credit_applicants()
    columns = [c for c in [*FEATURES, data.target] if c != "open_accounts"]
    reference = registry.keep_table(
        actor=scientist,
        project=project,
        name="fewer columns",
        table=pa.Table.from_pandas(data.train[columns], preserve_index=False),
        source="train.parquet",
    )
    monitor = services.create_monitor(
        actor=scientist,
        project=project,
        name="short of inputs",
        reference=reference,
        version=scoring_version,
        task="classification",
        label_column=data.target,
    )
    rows = data.test[columns].iloc[:50]
    batch = services.add_batch(
        actor=scientist,
        monitor=monitor,
        content=csv_of(rows.drop(columns=data.target)),
        filename="b.csv",
    )
    services.add_labels(
        actor=scientist, batch=batch, content=csv_of(rows[[data.target]]), filename="l.csv"
    )
    batch = services.compute_model_quality(batch_id=batch.pk)
    assert batch.model_quality_state == "failed"
    assert "The model needs columns the data lacks: open_accounts" in batch.model_quality_error


def test_labels_for_a_batch_end_in_metrics_measured_by_the_worker(celery_worker):
    admin = UserFactory(username="ada", is_superuser=True, is_staff=True)
    project = make_project(admin=admin, owner=UserFactory(username="olivia"))
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 300)})
    frame["y"] = (frame["x"] > 0).astype(int)
    frame["p"] = np.where(rng.random(300) < 0.1, 1 - frame["y"], frame["y"])
    reference = registry.keep_table(
        actor=admin,
        project=project,
        name="reference",
        table=pa.Table.from_pandas(frame, preserve_index=False),
        source="r.csv",
    )
    monitor = services.create_monitor(
        actor=admin,
        project=project,
        name="worker",
        reference=reference,
        task="classification",
        label_column="y",
        prediction_column="p",
    )
    batch = services.add_batch(
        actor=admin, monitor=monitor, content=csv_of(frame[["x", "p"]]), filename="b.csv"
    )
    services.add_labels(actor=admin, batch=batch, content=csv_of(frame[["y"]]), filename="l.csv")

    def measured() -> bool:
        return Batch.objects.get(pk=batch.pk).model_quality_state == "done"

    celery_worker.wait_for(measured)
    celery_worker.wait_for(lambda: Batch.objects.get(pk=batch.pk).quality_passed is not None)
    batch = Batch.objects.get(pk=batch.pk)
    expected = skm.accuracy_score(frame["y"], frame["p"])
    assert batch.model_quality["metrics"]["accuracy"] == pytest.approx(expected)
    assert batch.model_quality["reference"]["accuracy"] == pytest.approx(expected)
    assert batch.quality_passed is True
