"""The batch page, the batches on the monitor page, and quality settings on the form."""

import io

import pytest
from django.urls import reverse

from governance.monitoring import services
from governance.monitoring.models import Batch, Monitor
from tests.monitoring.test_labels import applicants, csv_of, keep


@pytest.fixture
def monitor(project, scientist) -> Monitor:
    return services.create_monitor(
        actor=scientist,
        project=project,
        name="scoring",
        reference=keep(project, scientist, applicants(400).drop(columns="id")),
        task="classification",
        label_column="default",
        prediction_column="predicted",
        id_column="id",
    )


def measured(monitor, who, seed: int, wrong: float = 0.05) -> Batch:
    data = applicants(100, seed=seed, wrong=wrong)
    batch = services.add_batch(
        actor=who, monitor=monitor, content=csv_of(data.drop(columns="default")), filename="b.csv"
    )
    services.check_data_quality(batch_id=batch.pk)
    services.add_labels(
        actor=who, batch=batch, content=csv_of(data[["id", "default"]]), filename="l.csv"
    )
    return services.compute_model_quality(batch_id=batch.pk)


def page(monitor, batch=None) -> str:
    if batch is None:
        return reverse("monitor", args=["credit-risk", monitor.pk])
    return reverse("monitor_batch", args=["credit-risk", monitor.pk, batch.pk])


def test_the_batch_page_shows_the_report_and_the_quality_against_the_reference(
    login, monitor, scientist, viewer
):
    batch = measured(monitor, scientist, seed=2, wrong=0.4)
    text = login(viewer).get(page(monitor, batch)).content.decode()
    assert "Data quality" in text
    assert "debt_ratio" in text
    assert "accuracy fell from" in text
    assert "dropped" in text
    assert "Send labels" not in text
    assert "Replace the labels" not in text


def test_those_who_monitor_send_labels_from_the_batch_page(login, monitor, scientist):
    data = applicants(30, seed=3)
    batch = services.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(data.drop(columns="default")),
        filename="b.csv",
    )  # fmt: skip
    client = login(scientist)
    assert "Send labels" in client.get(page(monitor, batch)).content.decode()
    upload = csv_of(data[["id", "default"]])
    upload.name = "labels.csv"
    response = client.post(page(monitor, batch), {"file": upload})
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.model_quality_state == "queued"


def test_bad_labels_on_the_page_say_why_and_change_nothing(login, monitor, scientist):
    data = applicants(30, seed=4)
    batch = services.add_batch(
        actor=scientist, monitor=monitor, content=csv_of(data.drop(columns="default")),
        filename="b.csv",
    )  # fmt: skip
    upload = csv_of(data[["default"]])
    upload.name = "labels.csv"
    response = login(scientist).post(page(monitor, batch), {"file": upload})
    assert response.status_code == 400
    assert "need the column" in response.content.decode()
    batch.refresh_from_db()
    assert batch.labels is None


def test_no_file_on_the_batch_page_is_refused(login, monitor, scientist):
    batch = measured(monitor, scientist, seed=5)
    response = login(scientist).post(page(monitor, batch), {})
    assert response.status_code == 400
    assert "Choose a CSV or Parquet file of labels" in response.content.decode()


def test_a_batch_of_another_monitor_or_none_is_not_found(login, monitor, project, scientist):
    batch = measured(monitor, scientist, seed=6)
    other = services.create_monitor(
        actor=scientist, project=project, name="other", reference=monitor.reference
    )
    client = login(scientist)
    assert client.get(page(other, batch)).status_code == 404
    missing = reverse("monitor_batch", args=["credit-risk", monitor.pk, batch.pk + 100])
    assert client.get(missing).status_code == 404


def test_outsiders_do_not_see_batches(login, monitor, scientist, outsider):
    batch = measured(monitor, scientist, seed=7)
    assert login(outsider).get(page(monitor, batch)).status_code == 404


def test_the_monitor_page_lists_batches_with_badges_and_a_quality_chart(
    login, monitor, scientist, viewer
):
    good = measured(monitor, scientist, seed=8)
    bad = measured(monitor, scientist, seed=9, wrong=0.4)
    text = login(viewer).get(page(monitor)).content.decode()
    assert reverse("monitor_batch", args=["credit-risk", monitor.pk, good.pk]) in text
    assert reverse("monitor_batch", args=["credit-risk", monitor.pk, bad.pk]) in text
    assert "holding" in text
    assert "dropped" in text
    assert 'id="quality-chart"' in text
    assert "accuracy (reference)" in text
    assert "<script>" not in text  # the chart is data, drawn by static/js/charts.js


def test_the_quality_chart_has_a_line_per_metric_and_the_reference(monitor, scientist):
    from dashboard import charts

    batches = [measured(monitor, scientist, seed=s) for s in (10, 11)]
    monitor.refresh_from_db()
    figure = charts.quality_over_time(batches, monitor.reference_quality["metrics"])
    names = [trace["name"] for trace in figure["data"]]
    assert "accuracy" in names
    assert "accuracy (reference)" in names
    accuracy = next(t for t in figure["data"] if t["name"] == "accuracy")
    assert len(accuracy["y"]) == 2
    assert charts.quality_over_time([], {}) is None


def test_pages_do_not_grow_their_queries_with_batches(
    login, monitor, scientist, django_assert_max_num_queries
):
    first = measured(monitor, scientist, seed=12)
    client = login(scientist)
    with django_assert_max_num_queries(40) as few:
        client.get(page(monitor))
    with django_assert_max_num_queries(40) as one:
        client.get(page(monitor, first))
    for seed in range(13, 19):
        measured(monitor, scientist, seed=seed, wrong=0.3)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(page(monitor)).status_code == 200
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert client.get(page(monitor, first)).status_code == 200


def test_quality_settings_are_set_on_the_form_and_shown(login, monitor, scientist):
    client = login(scientist)
    response = client.post(
        reverse("monitors", args=["credit-risk"]),
        {
            "name": "from the form",
            "reference": monitor.reference.pk,
            "version": "",
            "task": "classification",
            "label_column": "default",
            "prediction_column": "predicted",
            "positive_label": "1",
            "id_column": "",
        },
    )
    assert response.status_code == 302
    made = Monitor.objects.get(name="from the form")
    assert (made.task, made.label_column, made.positive_label) == ("classification", "default", "1")
    text = client.get(page(made)).content.decode()
    assert "Classification of default" in text


def test_a_bad_quality_setting_on_the_form_says_why(login, monitor, scientist):
    response = login(scientist).post(
        reverse("monitors", args=["credit-risk"]),
        {"name": "bad", "reference": monitor.reference.pk, "task": "classification"},
    )
    assert response.status_code == 400
    assert not Monitor.objects.filter(name="bad").exists()


def test_the_upload_field_names_what_labels_need(login, monitor, scientist):
    data = applicants(10, seed=20)
    batch = services.add_batch(
        actor=scientist, monitor=monitor, content=io.BytesIO(
            data.drop(columns="default").to_csv(index=False).encode()
        ), filename="b.csv",
    )  # fmt: skip
    text = login(scientist).get(page(monitor, batch)).content.decode()
    assert "with the column default and the id column id" in text
