"""Batches get a data-quality report on arrival; labels arriving later measure the model."""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from governance.access.errors import NotAllowed
from governance.audit.models import AuditEvent
from governance.errors import InvalidInput
from governance.monitoring import services
from governance.monitoring.errors import LabelsMismatch, NoModelQuality
from governance.monitoring.models import Batch, DriftAlert, Monitor
from governance.notify.models import Notification
from governance.registry import services as registry
from governance.registry.errors import SchemaMismatch, UnreadableTable
from governance.registry.models import DatasetVersion


def applicants(rows: int, seed: int = 1, wrong: float = 0.05, shift: float = 0.0) -> pd.DataFrame:
    """Applicants with the truth (`default`) and what a model predicted, `wrong` of it wrong."""
    rng = np.random.default_rng(seed)
    debt = rng.normal(0.35 + shift, 0.15, rows).round(3)
    income = rng.normal(50_000, 8_000, rows).round(0)
    truth = (debt + rng.normal(0, 0.05, rows) > 0.4).astype(int)
    flipped = rng.random(rows) < wrong
    return pd.DataFrame(
        {
            "id": [f"a{seed}-{n}" for n in range(rows)],
            "debt_ratio": debt,
            "income": income,
            "predicted": np.where(flipped, 1 - truth, truth),
            "default": truth,
        }
    )


def csv_of(data: pd.DataFrame) -> io.BytesIO:
    return io.BytesIO(data.to_csv(index=False).encode())


def keep(project, who, data: pd.DataFrame, name: str = "applicants") -> DatasetVersion:
    return registry.keep_table(
        actor=who,
        project=project,
        name=name,
        table=pa.Table.from_pandas(data, preserve_index=False),
        source="reference.csv",
    )


@pytest.fixture
def monitor(project, scientist) -> Monitor:
    """Predictions come in each batch; labels join by id."""
    reference = keep(project, scientist, applicants(600).drop(columns="id"))
    return services.create_monitor(
        actor=scientist,
        project=project,
        name="scoring",
        reference=reference,
        task="classification",
        label_column="default",
        prediction_column="predicted",
        positive_label="1",
        id_column="id",
    )


def send(monitor, who, data: pd.DataFrame) -> Batch:
    return services.add_batch(actor=who, monitor=monitor, content=csv_of(data), filename="b.csv")


def label(batch, who, data: pd.DataFrame, name: str = "labels.csv") -> Batch:
    return services.add_labels(actor=who, batch=batch, content=csv_of(data), filename=name)


# Data quality on arrival


def test_every_batch_gets_a_data_quality_report_after_its_commit(
    monitor, scientist, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        batch = send(monitor, scientist, applicants(200, seed=2).drop(columns="default"))
    assert len(queued) == 2, "the drift check and the quality report wait for the commit"
    batch = services.check_data_quality(batch_id=batch.pk)
    assert batch.quality_passed is True
    assert set(batch.quality["columns"]) == {"debt_ratio", "income", "predicted"}
    event = AuditEvent.objects.get(action="batch.quality_checked")
    assert event.data["passed"] is True
    assert not Notification.objects.exists()


def test_a_failing_report_tells_the_subscribers_once(monitor, scientist):
    data = applicants(200, seed=3).drop(columns="default")
    data.loc[:80, "income"] = np.nan
    data.loc[:30, "debt_ratio"] = 9.0
    batch = send(monitor, scientist, data)
    for _ in range(2):
        batch = services.check_data_quality(batch_id=batch.pk)
    assert batch.quality_passed is False
    problems = " ".join(batch.quality["problems"])
    assert "income: missing rate rose" in problems
    assert "debt_ratio:" in problems
    assert "outside the reference's" in problems
    note = Notification.objects.get(recipient=scientist)
    assert note.subject == f"Data quality failed in scoring: batch {batch.pk}"
    assert AuditEvent.objects.filter(action="batch.quality_checked").count() == 1


def test_quality_thresholds_of_the_monitor_decide(project, scientist, monitor):
    lenient = services.create_monitor(
        actor=scientist,
        project=project,
        name="lenient",
        reference=monitor.reference,
        thresholds={"quality": {"missing_rate_increase": 0.9, "out_of_range_share": 0.9}},
    )
    data = applicants(200, seed=3).drop(columns="id")
    data.loc[:80, "income"] = np.nan
    batch = send(lenient, scientist, data)
    assert services.check_data_quality(batch_id=batch.pk).quality_passed is True


def test_a_batch_must_carry_the_id_and_prediction_columns(monitor, scientist):
    for column in ("id", "predicted"):
        with pytest.raises(SchemaMismatch) as refused:
            send(monitor, scientist, applicants(20).drop(columns=column))
        assert column in refused.value.fields
    assert not Batch.objects.exists()


def test_the_drift_check_compares_what_the_batch_shares_without_ids(monitor, scientist):
    batch = send(monitor, scientist, applicants(300, seed=4).drop(columns="default"))
    check = services.run_drift_check(check_id=batch.checks.get().pk)
    assert check.state == "done"
    assert set(check.result["features"]) == {"debt_ratio", "income", "predicted"}


# Monitor settings


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"task": "ranking", "label_column": "default"}, "task"),
        ({"label_column": "default"}, "task"),
        ({"task": "classification"}, "label_column"),
        ({"task": "classification", "label_column": "shoe"}, "label_column"),
        ({"task": "classification", "label_column": "default"}, "prediction_column"),
        (
            {"task": "classification", "label_column": "default", "prediction_column": "default"},
            "prediction_column",
        ),
        (
            {
                "task": "regression",
                "label_column": "income",
                "prediction_column": "p",
                "positive_label": "1",
            },
            "positive_label",
        ),
        ({"task": "classification", "label_column": "x" * 300}, "label_column"),
        (
            {
                "task": "classification",
                "label_column": "default",
                "prediction_column": "predicted",
                "id_column": "predicted",
            },
            "id_column",
        ),
        ({"thresholds": {"quality": {"metric_drop": "big"}}}, "quality.metric_drop"),
    ],
)
def test_bad_quality_settings_are_refused_naming_the_field(
    monitor, project, scientist, changes, field
):
    with pytest.raises(InvalidInput) as refused:
        services.create_monitor(
            actor=scientist, project=project, name="other", reference=monitor.reference, **changes
        )
    assert field in refused.value.fields
    assert Monitor.objects.count() == 1


def test_a_monitor_keeps_its_quality_settings_on_the_trail(monitor):
    event = AuditEvent.objects.get(action="monitor.created", target_id=str(monitor.pk))
    assert event.data["after"]["task"] == "classification"
    assert event.data["after"]["id_column"] == "id"


# Labels


def test_labels_by_id_measure_the_model_against_the_reference(
    monitor, scientist, django_capture_on_commit_callbacks
):
    data = applicants(300, seed=5)
    batch = send(monitor, scientist, data.drop(columns="default"))
    shuffled = data[["id", "default"]].sample(frac=1, random_state=3).iloc[:250]
    with django_capture_on_commit_callbacks() as queued:
        batch = label(batch, scientist, shuffled)
    assert len(queued) == 1
    assert batch.model_quality_state == "queued"
    assert batch.labels.stored

    batch = services.compute_model_quality(batch_id=batch.pk)

    assert batch.model_quality_state == "done"
    result = batch.model_quality
    assert result["rows"] == 250
    joined = data.set_index("id").loc[shuffled["id"]]
    expected = (joined["predicted"] == joined["default"]).mean()
    assert result["metrics"]["accuracy"] == pytest.approx(expected)
    assert result["reference"]["accuracy"] == pytest.approx(
        Monitor.objects.get().reference_quality["metrics"]["accuracy"]
    )
    assert result["degraded"] == {}
    assert not DriftAlert.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"batch.labels_received", "batch.model_quality_measured"} <= actions
    assert "monitor.reference_quality_measured" in actions


def test_a_quality_drop_opens_one_alert_per_metric_and_tells_subscribers(monitor, scientist):
    for seed in (6, 7):
        data = applicants(300, seed=seed, wrong=0.35)
        batch = send(monitor, scientist, data.drop(columns="default"))
        label(batch, scientist, data[["id", "default"]])
        batch = services.compute_model_quality(batch_id=batch.pk)
    assert "accuracy" in batch.model_quality["degraded"]
    alerts = DriftAlert.objects.filter(feature="quality:accuracy")
    assert alerts.count() == 1, "a drop seen again updates the open alert"
    assert alerts.get().last_seen.batch == batch
    note = Notification.objects.get(recipient=scientist, subject__startswith="Model quality")
    assert "accuracy" in note.subject
    measured = AuditEvent.objects.filter(action="batch.model_quality_measured").count()
    assert measured == 2
    assert AuditEvent.objects.filter(action="monitor.reference_quality_measured").count() == 1


def test_labels_measured_once_however_often_the_task_is_delivered(monitor, scientist):
    data = applicants(100, seed=8)
    batch = send(monitor, scientist, data.drop(columns="default"))
    label(batch, scientist, data[["id", "default"]])
    for _ in range(3):
        services.compute_model_quality(batch_id=batch.pk)
    assert AuditEvent.objects.filter(action="batch.model_quality_measured").count() == 1


def test_labels_sent_again_replace_the_earlier_and_measure_again(monitor, scientist):
    data = applicants(100, seed=9)
    batch = send(monitor, scientist, data.drop(columns="default"))
    label(batch, scientist, data[["id", "default"]])
    services.compute_model_quality(batch_id=batch.pk)
    wrong = data[["id", "default"]].assign(default=1 - data["default"])
    label(batch, scientist, wrong)
    batch = services.compute_model_quality(batch_id=batch.pk)
    assert batch.model_quality["metrics"]["accuracy"] < 0.5


def test_labels_in_order_without_an_id_column(project, scientist):
    reference = keep(project, scientist, applicants(400).drop(columns="id"), name="no ids")
    monitor = services.create_monitor(
        actor=scientist,
        project=project,
        name="in order",
        reference=reference,
        task="classification",
        label_column="default",
        prediction_column="predicted",
    )
    data = applicants(120, seed=10).drop(columns="id")
    batch = send(monitor, scientist, data.drop(columns="default"))
    label(batch, scientist, data[["default"]])
    batch = services.compute_model_quality(batch_id=batch.pk)
    expected = (data["predicted"] == data["default"]).mean()
    assert batch.model_quality["metrics"]["accuracy"] == pytest.approx(expected)
    assert batch.model_quality["positive_label"] == "1"

    with pytest.raises(LabelsMismatch) as refused:
        label(batch, scientist, data[["default"]].iloc[:100])
    assert "The batch has 120 rows but the file has 100 labels" in refused.value.message


def test_a_regression_is_measured_by_its_errors(project, scientist):
    rng = np.random.default_rng(12)
    frame = pd.DataFrame({"size": rng.normal(100, 10, 300)})
    frame["price"] = frame["size"] * 3 + rng.normal(0, 5, 300)
    frame["estimate"] = frame["size"] * 3
    monitor = services.create_monitor(
        actor=scientist,
        project=project,
        name="prices",
        reference=keep(project, scientist, frame, name="houses"),
        task="regression",
        label_column="price",
        prediction_column="estimate",
    )
    later = frame.assign(price=frame["price"] + rng.normal(0, 20, 300))
    batch = send(monitor, scientist, later.drop(columns="price"))
    label(batch, scientist, later[["price"]])
    batch = services.compute_model_quality(batch_id=batch.pk)
    assert set(batch.model_quality["metrics"]) == {"rmse", "mae", "r2"}
    assert "rmse" in batch.model_quality["degraded"]
    assert DriftAlert.objects.filter(feature="quality:rmse").exists()


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda d: d[["id"]], LabelsMismatch, "need the column 'default'"),
        (lambda d: d[["default"]], LabelsMismatch, "need the column 'id'"),
        (
            lambda d: pd.concat([d, d.iloc[:3]])[["id", "default"]],
            LabelsMismatch,
            "more than once in the labels: a11-0, a11-1, a11-2",
        ),
        (
            lambda d: d[["id", "default"]].assign(id=[f"z{n}" for n in range(len(d))]),
            LabelsMismatch,
            "50 ids are not rows of batch",
        ),
        (lambda d: d.iloc[:0][["id", "default"]], UnreadableTable, "no rows"),
        (
            lambda d: d[["id", "default"]].assign(id=[None, *d["id"].iloc[1:]]),
            LabelsMismatch,
            "1 labels have no id",
        ),
    ],
)
def test_bad_labels_are_refused_and_nothing_changes(monitor, scientist, make, error, words):
    data = applicants(50, seed=11)
    batch = send(monitor, scientist, data.drop(columns="default"))
    kept = DatasetVersion.objects.count()
    events = AuditEvent.objects.count()
    with pytest.raises(error) as refused:
        label(batch, scientist, make(data))
    assert words in refused.value.message
    assert DatasetVersion.objects.count() == kept
    assert AuditEvent.objects.count() == events
    batch.refresh_from_db()
    assert batch.labels is None


def test_an_empty_labels_file_is_refused(monitor, scientist):
    batch = send(monitor, scientist, applicants(10).drop(columns="default"))
    with pytest.raises(UnreadableTable) as refused:
        services.add_labels(actor=scientist, batch=batch, content=io.BytesIO(b""), filename="l.csv")
    assert refused.value.fields == {"file": ["empty"]}


def test_a_monitor_without_a_task_takes_no_labels(monitor, project, scientist):
    plain = services.create_monitor(
        actor=scientist, project=project, name="plain", reference=monitor.reference
    )
    data = applicants(10).drop(columns="id")
    batch = send(plain, scientist, data)
    with pytest.raises(NoModelQuality):
        label(batch, scientist, data[["default"]])


@pytest.mark.parametrize("who", ["viewer", "auditor", "owner"])
def test_roles_that_do_not_monitor_may_not_send_labels(monitor, scientist, request, who):
    data = applicants(10)
    batch = send(monitor, scientist, data.drop(columns="default"))
    with pytest.raises(NotAllowed):
        label(batch, request.getfixturevalue(who), data[["id", "default"]])


def test_predictions_missing_from_the_batch_and_no_model_fail_the_reference(project, scientist):
    """A reference without predictions and a monitor without a model: the batch is measured,
    the comparison says why it cannot be made."""
    reference = keep(project, scientist, applicants(200).drop(columns=["id", "predicted"]), "r")
    monitor = services.create_monitor(
        actor=scientist,
        project=project,
        name="no model",
        reference=reference,
        task="classification",
        label_column="default",
        prediction_column="predicted",
    )
    data = applicants(50, seed=13).drop(columns="id")
    batch = send(monitor, scientist, data.drop(columns="default"))
    label(batch, scientist, data[["default"]])
    batch = services.compute_model_quality(batch_id=batch.pk)
    assert batch.model_quality_state == "done"
    assert batch.model_quality["reference"] is None
    monitor.refresh_from_db()
    assert "no model version" in monitor.reference_quality["error"]


def test_labels_that_cannot_be_measured_fail_the_measure_with_the_reason(project, scientist):
    rng = np.random.default_rng(14)
    frame = pd.DataFrame({"size": rng.normal(100, 10, 50), "estimate": 1.0, "price": 2.0})
    monitor = services.create_monitor(
        actor=scientist,
        project=project,
        name="prices",
        reference=keep(project, scientist, frame, name="houses"),
        task="regression",
        label_column="price",
        prediction_column="estimate",
    )
    batch = send(monitor, scientist, frame.drop(columns="price"))
    label(batch, scientist, frame[["price"]].assign(price=np.nan))
    batch = services.compute_model_quality(batch_id=batch.pk)
    assert batch.model_quality_state == "failed"
    assert "No row has both a label and a prediction" in batch.model_quality_error
    assert AuditEvent.objects.filter(action="batch.model_quality_failed").exists()


def test_a_categorical_label_column_the_batch_lacks_leaves_drift_and_quality_alone(
    project, scientist
):
    frame = applicants(300, seed=15).drop(columns="id")
    frame["outcome"] = np.where(frame.pop("default") == 1, "default", "repaid")
    frame["predicted"] = np.where(frame["predicted"] == 1, "default", "repaid")
    monitor = services.create_monitor(
        actor=scientist,
        project=project,
        name="text labels",
        reference=keep(project, scientist, frame, name="text"),
        categorical=["outcome", "predicted"],
        task="classification",
        label_column="outcome",
        prediction_column="predicted",
        positive_label="default",
    )
    batch = send(monitor, scientist, frame.drop(columns="outcome"))
    assert services.run_drift_check(check_id=batch.checks.get().pk).state == "done"
    assert services.check_data_quality(batch_id=batch.pk).quality_passed is True
    label(batch, scientist, frame[["outcome"]])
    batch = services.compute_model_quality(batch_id=batch.pk)
    assert batch.model_quality["positive_label"] == "default"
    assert batch.model_quality["metrics"]["accuracy"] == pytest.approx(
        (frame["outcome"] == frame["predicted"]).mean()
    )


def test_a_regression_of_a_text_column_is_refused(project, scientist):
    reference = keep(project, scientist, applicants(50), name="with ids")
    with pytest.raises(InvalidInput) as refused:
        services.create_monitor(
            actor=scientist,
            project=project,
            name="prices",
            reference=reference,
            task="regression",
            label_column="id",
            prediction_column="predicted",
        )
    assert "A regression needs numbers" in refused.value.fields["label_column"][0]
