"""The profile job measures a real scikit-learn model on a labelled batch of its monitor (or
the monitor's reference), judges it by the project's metric conditions, times it natively and
as ONNX in processes of their own, recommends Kubernetes resources, and logs it all to MLflow.
"""

import io
import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from governance.access.errors import NotAllowed
from governance.approvals import errors as approvals_errors
from governance.approvals import services as approvals
from governance.approvals.gates import Outcome, check_all
from governance.audit.models import AuditEvent
from governance.delivery import profiling, runner, selectors, services
from governance.delivery.models import Job
from governance.errors import InvalidInput
from governance.monitoring import services as monitoring
from governance.registry import services as registry
from governance.registry.models import ModelVersion
from tests.factories import make_project, make_version

QUANTITY = re.compile(r"^\d+(m)?$")


def applicants(seed: int, rows: int) -> pd.DataFrame:
    """Applicants with the outcome the demo's kind of model learns: older ones default."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, rows), "income": rng.normal(50, 8, rows)})
    frame["default"] = (frame["age"] + rng.normal(0, 5, rows) > 40).astype(int)
    return frame


def _version(tracking, name: str = "credit-scoring", model: object = None) -> ModelVersion:
    data = applicants(0, 300)
    number = tracking.sklearn_version(
        name, project="credit-risk", features=data[["age", "income"]], labels=data["default"],
        model=model,
    )  # fmt: skip
    registry.sync_mlflow(trigger="test")
    return ModelVersion.objects.get(model__name=name, version=number)


def _monitor(project, scientist, version: ModelVersion, name: str = "credit inputs"):
    reference = registry.keep_table(
        actor=scientist, project=project, name=f"{name} reference",
        table=pa.Table.from_pandas(applicants(1, 400), preserve_index=False), source="ref.csv",
    )  # fmt: skip
    return monitoring.create_monitor(
        actor=scientist, project=project, name=name, reference=reference, version=version,
        task="classification", label_column="default", positive_label="1",
    )  # fmt: skip


def _batch(scientist, monitor, seed: int = 2, labelled: bool = True):
    day = applicants(seed, 250)
    batch = monitoring.add_batch(
        actor=scientist, monitor=monitor,
        content=io.BytesIO(day[["age", "income"]].to_csv(index=False).encode()),
        filename=f"day-{seed}.csv",
    )  # fmt: skip
    if labelled:
        batch = monitoring.add_labels(
            actor=scientist, batch=batch,
            content=io.BytesIO(day[["default"]].to_csv(index=False).encode()),
            filename=f"outcomes-{seed}.csv",
        )  # fmt: skip
    return batch


def _profile(engineer, project, version, **params) -> Job:
    job = services.start_job(
        actor=engineer, project=project, kind="profile", version=version, params=params
    )
    return runner.execute(job.pk)


def _log(job: Job) -> str:
    return "\n".join(job.lines.order_by("number").values_list("text", flat=True))


@pytest.fixture
def setup(project, scientist, tracking):
    version = _version(tracking)
    return {"version": version, "monitor": _monitor(project, scientist, version),
            "tracking": tracking}  # fmt: skip


def test_a_labelled_batch_profiles_the_model_natively_and_as_onnx(
    setup, project, owner, scientist, engineer
):
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1},
        gates_=[{"kind": "metric", "condition": "accuracy >= 0.7 and roc_auc >= 0.75"},
                {"kind": "metric", "condition": "log_loss < 0.5"}],
    )  # fmt: skip
    approvals.save_policy(
        actor=owner, project=project, stage="staging", required={"ml_engineer": 1},
        gates_=[{"kind": "metric", "condition": "accuracy >= 0.99"}],
    )  # fmt: skip
    batch = _batch(scientist, setup["monitor"])
    job = _profile(engineer, project, setup["version"], batch=batch.pk,
                   target_rows_per_second=500, headroom=0.25)  # fmt: skip
    assert job.state == Job.State.SUCCEEDED, job.error + _log(job)
    result = job.result

    assert result["data"]["source"] == "batch"
    assert result["data"]["batch"] == batch.pk
    assert result["data"]["rows"] == 250
    validation = result["validation"]
    assert validation["task"] == "classification"
    assert validation["rows"] == 250
    assert 0.7 < validation["metrics"]["accuracy"] <= 1
    assert validation["metrics"]["roc_auc"] is not None
    judged = {(c["stage"], c["condition"]): c["outcome"] for c in validation["conditions"]}
    assert judged == {
        ("production", "accuracy >= 0.7 and roc_auc >= 0.75"): "pass",
        ("production", "log_loss < 0.5"): "missing",
        ("staging", "accuracy >= 0.99"): "fail",
    }
    assert validation["passed"] is False
    assert validation["summary"] == "2 of 3 metric conditions do not pass"

    assert result["onnx"]["converted"] is True
    assert result["onnx"]["passed"] is True
    assert result["onnx"]["source"] == "converted by this job"
    assert set(result["runtimes"]) == {"native", "onnx"}
    for runtime in ("native", "onnx"):
        measured = result["runtimes"][runtime]
        assert set(measured["batches"]) == {"1", "32", "256"}
        for figures in measured["batches"].values():
            assert profiling.MIN_CALLS <= figures["calls"] <= profiling.MAX_CALLS
            assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
            assert figures["rows_per_second"] > 0
        assert measured["memory"]["peak_bytes"] >= measured["memory"]["after_load_bytes"] > 0
        assert measured["scoring_cpu_seconds"] > 0
    assert set(result["ratios"]) == {"1", "32", "256"}
    assert result["ratios"]["1"]["rows_per_second"] == pytest.approx(
        result["runtimes"]["onnx"]["batches"]["1"]["rows_per_second"]
        / result["runtimes"]["native"]["batches"]["1"]["rows_per_second"]
    )

    recommendation = result["recommendation"]
    assert set(recommendation) == {
        "cpu_request", "cpu_limit", "memory_request", "memory_limit", "runtime", "basis"
    }  # fmt: skip
    assert QUANTITY.match(recommendation["cpu_request"])
    assert QUANTITY.match(recommendation["cpu_limit"])
    assert re.match(r"^\d+Mi$", recommendation["memory_request"])
    peak = result["runtimes"][recommendation["runtime"]]["memory"]["peak_bytes"]
    assert int(recommendation["memory_request"][:-2]) * 2**20 >= peak * 1.25
    assert recommendation["runtime"] in {"native", "onnx"}
    assert "500 rows/s with 25% headroom" in recommendation["basis"]
    assert selectors.recommendation_of(setup["version"]) == recommendation

    client = setup["tracking"].client
    run_id = result["mlflow"]["run_id"]
    logged = {a.path for a in client.list_artifacts(run_id, f"quorum-profile-{job.pk}")}
    assert logged == {f"quorum-profile-{job.pk}/profile.json"}
    with open(client.download_artifacts(run_id, f"quorum-profile-{job.pk}/profile.json")) as f:
        assert json.load(f)["recommendation"] == recommendation
    tags = client.get_model_version("credit-scoring", str(setup["version"].version)).tags
    assert tags["quorum.profile_job"] == str(job.pk)
    assert tags["quorum.validation"] == "failed"
    assert tags["quorum.resources"].endswith(recommendation["runtime"])
    assert AuditEvent.objects.filter(action="job.succeeded", target_id=str(job.pk)).exists()


def test_a_model_without_an_onnx_form_is_profiled_natively_and_says_why(
    project, scientist, engineer, tracking
):
    from sklearn.kernel_ridge import KernelRidge

    version = _version(tracking, "ridge", model=KernelRidge())
    reference = registry.keep_table(
        actor=scientist, project=project, name="ridge reference",
        table=pa.Table.from_pandas(applicants(1, 300), preserve_index=False), source="r.csv",
    )  # fmt: skip
    monitor = monitoring.create_monitor(
        actor=scientist, project=project, name="ridge inputs", reference=reference,
        version=version, task="regression", label_column="default",
    )  # fmt: skip
    job = _profile(engineer, project, version, monitor=monitor.pk)
    assert job.state == Job.State.SUCCEEDED, job.error + _log(job)
    result = job.result
    assert result["data"]["source"] == "reference"
    assert result["validation"]["task"] == "regression"
    assert set(result["validation"]["metrics"]) == {"rmse", "mae", "r2"}
    assert result["validation"]["passed"] is True
    assert result["validation"]["summary"] == "no metric condition in the project's policies"
    assert result["onnx"]["converted"] is False
    assert "KernelRidge" in result["onnx"]["why_not"]
    assert set(result["runtimes"]) == {"native"}
    assert result["ratios"] == {}
    assert result["recommendation"]["runtime"] == "native"
    assert "(no ONNX model to compare)" in result["recommendation"]["basis"]
    assert "ONNX not measured: not convertible: skl2onnx" in _log(job)


def test_the_profiled_gate_follows_the_package_and_the_newest_profile(
    setup, project, owner, scientist, engineer
):
    version, monitor = setup["version"], setup["monitor"]
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1},
        gates_=[{"kind": "profiled"}, {"kind": "metric", "condition": "accuracy >= 0.99"}],
    )  # fmt: skip
    approval = approvals.open_request(actor=scientist, version=version, stage="production")
    profiled = approval.gate_results[0]
    assert (profiled["label"], profiled["outcome"]) == (
        "packaged and profiled, validation passed", "missing"
    )  # fmt: skip
    assert profiled["reason"] == "no succeeded package job for this version yet"

    package = services.start_job(actor=engineer, project=project, kind="package", version=version)
    package = runner.execute(package.pk)
    assert package.state == Job.State.SUCCEEDED, package.error
    (profiled, _) = approvals.recheck_gates(actor=owner, approval=approval)
    assert profiled.outcome == Outcome.MISSING
    assert profiled.reason.endswith("no succeeded profile job for this version yet")

    strict = _profile(engineer, project, version, monitor=monitor.pk)
    assert strict.state == Job.State.SUCCEEDED, strict.error + _log(strict)
    assert strict.result["onnx"]["source"] == f"package job {package.pk}"
    assert strict.result["data"]["source"] == "reference"
    assert strict.result["data"]["rows"] == 400
    (profiled, _) = approvals.recheck_gates(actor=owner, approval=approval)
    assert profiled.outcome == Outcome.FAIL
    assert f"profile job {strict.pk}: 1 of 1 metric conditions do not pass" in profiled.reason
    assert "accuracy >= 0.99 (production): accuracy = " in profiled.reason
    with pytest.raises(approvals_errors.GatesFailing):
        approvals.decide(actor=owner, approval=approval, verdict="approve")

    approvals.save_policy(
        actor=owner, project=project, stage="production", required={"product_owner": 1},
        gates_=[{"kind": "profiled"}, {"kind": "metric", "condition": "accuracy >= 0.7"}],
    )  # fmt: skip
    loose = _profile(engineer, project, version, batch=_batch(scientist, monitor).pk)
    assert loose.state == Job.State.SUCCEEDED, loose.error + _log(loose)
    judged = check_all(version, [{"kind": "profiled"}])[0]
    assert judged.outcome == Outcome.PASS
    assert judged.reason == (
        f"package job {package.pk} succeeded: ONNX parity passed; profile job {loose.pk}: "
        "the one metric condition passes"
    )


def test_data_lacking_the_models_columns_fails_the_job_with_them(
    setup, project, scientist, engineer
):
    reference = registry.keep_table(
        actor=scientist, project=project, name="ages only",
        table=pa.Table.from_pandas(applicants(1, 100)[["age", "default"]], preserve_index=False),
        source="ages.csv",
    )  # fmt: skip
    ages = monitoring.create_monitor(
        actor=scientist, project=project, name="ages", reference=reference,
        version=setup["version"], task="classification", label_column="default",
    )  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        services.start_job(
            actor=engineer, project=project, kind="profile", version=setup["version"],
            params={"monitor": ages.pk},
        )  # fmt: skip
    assert refused.value.fields == {"monitor": ["Lacks the model's columns: income."]}
    assert not Job.objects.exists()

    # A mirror that could not read the signature lets it through; the model itself refuses.
    ModelVersion.objects.filter(pk=setup["version"].pk).update(signature={})
    version = ModelVersion.objects.get(pk=setup["version"].pk)
    job = _profile(engineer, project, version, monitor=ages.pk)
    assert job.state == Job.State.FAILED
    assert job.error == (
        "ProfileFailed: the reference of the monitor ages: The model needs columns the data "
        "lacks: income."
    )
    assert job.result == {}
    assert not selectors.recommendation_of(version)


def test_labels_that_are_all_missing_fail_the_job_clearly(setup, project, scientist, engineer):
    day = applicants(3, 40)
    batch = monitoring.add_batch(
        actor=scientist, monitor=setup["monitor"],
        content=io.BytesIO(day[["age", "income"]].to_csv(index=False).encode()),
        filename="day-3.csv",
    )  # fmt: skip
    unknown = io.BytesIO()
    pq.write_table(pa.table({"default": pa.array([None] * 40, type=pa.float64())}), unknown)
    batch = monitoring.add_labels(
        actor=scientist, batch=batch, content=io.BytesIO(unknown.getvalue()),
        filename="outcomes-3.parquet",
    )  # fmt: skip
    job = _profile(engineer, project, setup["version"], batch=batch.pk)
    assert job.state == Job.State.FAILED
    assert job.error == (
        "ProfileFailed: the model could not be measured: No row has both a label and a prediction."
    )
    assert job.result == {}


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({}, {"batch": ["A batch or a monitor, one is needed."]}),
        ({"batch": 1, "monitor": 1}, {"batch": ["A batch or a monitor, not both."]}),
        ({"batch": "first"}, {"batch": ["A whole number, an id."]}),
        ({"monitor": True}, {"monitor": ["A whole number, an id."]}),
        ({"batch": 0}, {"batch": ["A whole number, an id."]}),
        ({"batch": 1, "repeats": 5}, {"repeats": ["Unknown parameter."]}),
        ({"batch": 1, "target_rows_per_second": "fast"},
         {"target_rows_per_second": ["A number, such as 100."]}),
        ({"batch": 1, "target_rows_per_second": 0},
         {"target_rows_per_second": ["Above 0 and at most 1e+07."]}),
        ({"batch": 1, "target_rows_per_second": float("nan")},
         {"target_rows_per_second": ["A number, such as 100."]}),
        ({"batch": 1, "headroom": -0.1}, {"headroom": ["From 0 and at most 10."]}),
        ({"batch": 1, "headroom": 11}, {"headroom": ["From 0 and at most 10."]}),
        ({"batch": 1, "headroom": "lots"}, {"headroom": ["A number, such as 0.5 for 50%."]}),
        ({"batch": 1, "batch_size": 64}, {"batch_size": ["One of 1, 32, 256."]}),
    ],
)  # fmt: skip
def test_bad_parameters_are_refused_naming_the_field(project, engineer, params, fields):
    version = make_version(project, "credit-scoring", 1)
    events = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as refused:
        services.start_job(
            actor=engineer, project=project, kind="profile", version=version, params=params
        )
    assert refused.value.fields == fields
    assert refused.value.message != InvalidInput.default_message
    assert not Job.objects.exists()
    assert AuditEvent.objects.count() == events


@pytest.fixture
def labelled(project, scientist):
    """A version as the mirror knows it (no MLflow), with a monitor and a labelled batch."""
    version = make_version(project, "credit-scoring", 1)
    monitor = _monitor(project, scientist, version)
    return {"version": version, "monitor": monitor, "batch": _batch(scientist, monitor)}


def _refused(engineer, project, version, params) -> InvalidInput:
    events = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as refused:
        services.start_job(
            actor=engineer, project=project, kind="profile", version=version, params=params
        )
    assert not Job.objects.exists()
    assert AuditEvent.objects.count() == events
    return refused.value


def test_an_unknown_batch_or_monitor_is_refused(labelled, project, engineer):
    refused = _refused(engineer, project, labelled["version"], {"batch": 999_999})
    assert refused.fields == {"batch": ["No such batch in this project."]}
    refused = _refused(engineer, project, labelled["version"], {"monitor": 999_999})
    assert refused.fields == {"monitor": ["No such monitor in this project."]}


def test_a_batch_of_another_project_reads_as_unknown(
    labelled, project, admin_user, owner, engineer
):
    other = make_project(admin=admin_user, owner=owner, slug="churn", name="Churn")
    version = make_version(other, "churn-predictor", 1)
    foreign = _batch(admin_user, _monitor(other, admin_user, version, name="churn inputs"))
    refused = _refused(engineer, project, labelled["version"], {"batch": foreign.pk})
    assert refused.fields == {"batch": ["No such batch in this project."]}
    refused = _refused(engineer, project, labelled["version"], {"monitor": foreign.monitor.pk})
    assert refused.fields == {"monitor": ["No such monitor in this project."]}


def test_data_of_a_monitor_on_another_model_is_refused(labelled, project, scientist, engineer):
    other = make_version(project, "fraud", 1)
    refused = _refused(engineer, project, other, {"batch": labelled["batch"].pk})
    assert refused.fields == {"batch": ["Data of a monitor on another model (credit inputs)."]}


def test_a_later_version_may_validate_on_its_models_monitor(labelled, project, engineer):
    later = make_version(project, "credit-scoring", 2)
    job = services.start_job(
        actor=engineer, project=project, kind="profile", version=later,
        params={"batch": labelled["batch"].pk},
    )  # fmt: skip
    assert job.params == {"batch": labelled["batch"].pk}


def test_a_batch_without_labels_is_refused(labelled, project, scientist, engineer):
    unlabelled = _batch(scientist, labelled["monitor"], seed=9, labelled=False)
    refused = _refused(engineer, project, labelled["version"], {"batch": unlabelled.pk})
    assert refused.fields == {"batch": ["The batch has no labels yet."]}
    assert "send its outcomes on its page first" in refused.message


def test_a_monitor_without_labels_is_refused(labelled, project, scientist, engineer):
    reference = registry.keep_table(
        actor=scientist, project=project, name="inputs only",
        table=pa.Table.from_pandas(applicants(1, 50)[["age", "income"]], preserve_index=False),
        source="inputs.csv",
    )  # fmt: skip
    watching = monitoring.create_monitor(
        actor=scientist, project=project, name="inputs only", reference=reference,
        version=labelled["version"],
    )  # fmt: skip
    refused = _refused(engineer, project, labelled["version"], {"monitor": watching.pk})
    assert refused.fields == {"monitor": ["No labels: the monitor has no task and label column."]}


def test_a_viewer_may_not_profile(labelled, project, viewer):
    with pytest.raises(NotAllowed):
        services.start_job(
            actor=viewer, project=project, kind="profile", version=labelled["version"],
            params={"batch": labelled["batch"].pk},
        )  # fmt: skip
    assert not Job.objects.exists()


# The pages


def _page(version: ModelVersion) -> str:
    return reverse("model_version", args=["credit-risk", version.model.name, version.version])


def test_an_engineer_profiles_a_version_from_its_page(login, labelled, project, engineer):
    version, batch = labelled["version"], labelled["batch"]
    client = login(engineer)
    page = client.get(_page(version)).content.decode()
    assert "Profile</button>" in page
    assert f'value="batch:{batch.pk}"' in page
    assert f'value="monitor:{labelled["monitor"].pk}"' in page
    response = client.post(
        reverse("profile_version", args=["credit-risk", "credit-scoring", 1]),
        {"data": f"batch:{batch.pk}", "target_rows_per_second": "250", "headroom": "30",
         "batch_size": "32"},
    )  # fmt: skip
    job = Job.objects.get()
    assert (job.kind, job.version, job.triggered_by) == ("profile", version, engineer)
    assert job.params == {"batch": batch.pk, "target_rows_per_second": 250.0,
                          "headroom": 0.3, "batch_size": 32}  # fmt: skip
    assert response.status_code == 302
    assert response.url == reverse("job", args=["credit-risk", job.pk])
    page = client.get(_page(version)).content.decode()
    assert f"profile job #{job.pk}" in page


def test_a_bad_profile_form_says_why_on_the_page(login, labelled, project, engineer):
    client = login(engineer)
    response = client.post(
        reverse("profile_version", args=["credit-risk", "credit-scoring", 1]),
        {"data": f"batch:{labelled['batch'].pk}", "headroom": "a lot"}, follow=True,
    )  # fmt: skip
    assert "The headroom is a number, such as 0.5 for 50%." in response.content.decode()
    assert not Job.objects.exists()


def test_a_viewer_sees_no_profile_button_and_cannot_start_one(login, labelled, viewer):
    client = login(viewer)
    assert "Profile</button>" not in client.get(_page(labelled["version"])).content.decode()
    client.post(
        reverse("profile_version", args=["credit-risk", "credit-scoring", 1]),
        {"data": f"batch:{labelled['batch'].pk}"},
    )
    assert not Job.objects.exists()


def test_the_page_and_the_card_show_the_profile_and_its_recommendation(
    setup, login, project, scientist, engineer, viewer
):
    version = setup["version"]
    job = _profile(engineer, project, version, batch=_batch(scientist, setup["monitor"]).pk)
    assert job.state == Job.State.SUCCEEDED, job.error + _log(job)
    recommendation = job.result["recommendation"]
    client = login(viewer)
    page = client.get(_page(version)).content.decode()
    assert "Validation and profile" in page
    assert "no metric condition in the project&#x27;s policies" in page
    for size in (1, 32, 256):
        for runtime in ("native", "onnx"):
            assert f'<td class="count">{size}</td><td>{runtime}</td>' in page
    assert "\u00d7" in page
    assert f"{recommendation['memory_request']} requested" in page
    assert page.count(recommendation["basis"].split(",")[0]) == 2, "in the profile and the facts"
    args = ["credit-risk", version.model.name, version.version]
    markdown = client.get(reverse("card_export", args=[*args, "md"])).content.decode()
    assert f"- Recommended resources ({recommendation['runtime']}): CPU " in markdown
    html = client.get(reverse("card_export", args=[*args, "html"])).content.decode()
    assert f"{recommendation['cpu_request']} requested" in html
    card = client.get(reverse("card_export", args=[*args, "json"])).json()
    assert card["facts"]["recommended_resources"] == recommendation


def test_the_version_page_reads_the_same_rows_however_many_profiles_and_batches(
    login, labelled, project, scientist, engineer, django_assert_max_num_queries
):
    version, monitor = labelled["version"], labelled["monitor"]
    client = login(engineer)

    def profile() -> None:
        services.start_job(actor=engineer, project=project, kind="profile", version=version,
                           params={"batch": labelled["batch"].pk})  # fmt: skip

    profile()
    with django_assert_max_num_queries(80) as few:
        client.get(_page(version))
    for seed in range(10, 16):
        _batch(scientist, monitor, seed=seed)
        profile()
    _monitor(project, scientist, version, name="second monitor")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(_page(version)).content.decode()
    assert page.count('value="batch:') == 7
