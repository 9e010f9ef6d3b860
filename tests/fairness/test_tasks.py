"""Bias reports made by a real worker, once the request for them commits."""

from dashboard import charts
from governance.fairness import services
from governance.fairness.models import BiasReport
from governance.notify.models import Notification
from tests.fairness.conftest import applicants


def test_a_worker_makes_the_report_asked_for_with_its_figures(
    celery_worker, scientist, version, keep
):
    asked = services.request_bias_report(
        actor=scientist,
        version=version,
        dataset=keep(applicants(biased=True)),
        y_true="approved",
        y_pred="predicted",
        sensitive=["sex"],
    )
    celery_worker.wait_for(lambda: BiasReport.objects.get(pk=asked.pk).finished)
    report = BiasReport.objects.get(pk=asked.pk)
    assert (report.state, report.passed) == ("done", False)
    assert [g["label"] for g in report.result["groups"]] == ["female", "male"]
    assert charts.bias_selection_rates(report.result["groups"], report.judgement["policy"])
    celery_worker.wait_for(lambda: Notification.objects.filter(recipient=scientist).exists())


def test_a_worker_predicts_with_the_versions_model_from_mlflow(
    celery_worker, scientist, model_version, keep
):
    asked = services.request_bias_report(
        actor=scientist,
        version=model_version,
        dataset=keep(applicants(biased=False)),
        y_true="approved",
        sensitive=["sex"],
    )
    celery_worker.wait_for(lambda: BiasReport.objects.get(pk=asked.pk).finished, timeout=60)
    report = BiasReport.objects.get(pk=asked.pk)
    assert report.state == "done", report.error
    assert report.result["overall"]["count"] == 2000
