"""The `retrain` job, and what starts it when monitoring sees drift or new data.

The job runs the team's pipeline (see pipelines.py) step by step inside one MLflow run, which
records what makes it reproducible: parameters, seed, the SHA-256 of each data file, the code
version, a hash of the environment, the entry point and the trigger. Quorum's own register step
logs the model and registers the version; then the version is mirrored and its approval request
opened (services._finish_retraining). A failing step fails the job before anything is registered.
"""

import logging
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from governance.delivery import pipelines, services
from governance.delivery.kinds import JobKind
from governance.delivery.models import RetrainingPolicy, RetrainingRun
from governance.delivery.runner import JobContext
from governance.errors import DomainError
from governance.registry import tables

log = logging.getLogger(__name__)

PROJECT_TAG = "quorum.project"


class RetrainingFailed(Exception):
    """The run cannot go on: the job fails with this reason."""


def retrain(context: JobContext) -> dict:
    run = RetrainingRun.objects.select_related("policy__model", "policy__project", "rerun_of").get(
        job=context.job
    )
    model, project = run.policy.model, run.policy.project
    context.step("checking the pipeline and its data", 2)
    pipeline = pipelines.load(run.entry_point)
    inputs, digests = _inputs(run)
    code = pipelines.code_version(run.entry_point)
    environment = pipelines.environment()
    env_hash = pipelines.environment_hash(environment)
    context.log(f"entry point {run.entry_point}, code {code}, environment {env_hash[:12]}")
    for name, digest in digests.items():
        context.log(f"data {name}: sha256 {digest}")
    services._note_retraining(run.pk, data_digests=digests, code_version=code, env_hash=env_hash)
    run.data_digests = digests

    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(settings.MLFLOW_TRACKING_URI)
    try:
        experiment = _experiment(model.name, project.slug)
        tags = {
            "quorum.retraining.run": str(run.pk),
            "quorum.trigger": run.trigger,
            "quorum.entry_point": run.entry_point,
            "quorum.code_version": code,
            "quorum.env_hash": env_hash,
            "quorum.seed": str(run.seed),
            "quorum.python": environment["python"],
            "mlflow.source.name": run.entry_point,
        }
        if not code.startswith("sha256:"):
            tags["mlflow.source.git.commit"] = code.removesuffix("+dirty")
        if run.rerun_of_id:
            tags["quorum.rerun_of"] = run.rerun_of.mlflow_run_id or str(run.rerun_of_id)
        tags.update({f"quorum.data.{name}": digest for name, digest in digests.items()})
        with mlflow.start_run(
            experiment_id=experiment, run_name=f"retrain-{run.pk}-{run.trigger}", tags=tags
        ) as active:
            services._note_retraining(run.pk, mlflow_run_id=active.info.run_id)
            mlflow.log_params({**{k: _param(v) for k, v in run.params.items()}, "seed": run.seed})
            mlflow.log_dict(environment, "environment.json")
            mlflow.log_dict({"inputs": run.inputs, "digests": digests}, "data_inputs.json")
            metrics, fitted, step_context = _steps(context, pipeline, run, inputs)
            mlflow.log_metrics(metrics)
            number = None
            if run.rerun_of_id is None:
                context.step(pipelines.LABELS["register"], 85)
                number = _register(pipeline, fitted, step_context, model.name)
                context.log(f"registered {model.name} v{number}")
    finally:
        mlflow.set_tracking_uri(previous)
    context.step("mirroring and asking for approval" if number else "comparing", 92)
    finished = services._finish_retraining(run.pk, metrics=metrics, number=number)
    if finished.approval_note:
        context.log(finished.approval_note)
    if finished.approval_id:
        context.log(f"approval request #{finished.approval_id} opened")
    if finished.metrics_match is not None:
        context.log(
            "metrics match the original run"
            if finished.metrics_match
            else f"metrics differ: {finished.differences}"
        )
    return {
        "model": model.name,
        "version": number,
        "mlflow_run_id": active.info.run_id,
        "metrics": metrics,
        "approval": finished.approval_id,
        "metrics_match": finished.metrics_match,
    }


def _inputs(run: RetrainingRun) -> tuple[list[pipelines.DataInput], dict[str, str]]:
    """The run's data files and their SHA-256 as read now. Raises RetrainingFailed when one
    is gone."""
    root = Path(settings.DATA_DIR)
    inputs, digests = [], {}
    for given in run.inputs:
        path = tables.path_of(root, given["sha256"])
        labels = given.get("labels_sha256") or ""
        labels_path = tables.path_of(root, labels) if labels else None
        try:
            digests[given["name"]] = pipelines.sha256_of(path)
            if labels_path is not None:
                digests[f"{given['name']} labels"] = pipelines.sha256_of(labels_path)
        except FileNotFoundError as error:
            raise RetrainingFailed(f"The data {given['name']} is no longer kept: {error}") from None
        inputs.append(
            pipelines.DataInput(
                name=given["name"],
                sha256=given["sha256"],
                path=path,
                labels_sha256=labels,
                labels_path=labels_path,
            )
        )
    return inputs, digests


def _steps(
    context: JobContext, pipeline: pipelines.Pipeline, run: RetrainingRun, inputs: list
) -> tuple[dict, object, pipelines.StepContext]:
    """Run the team's steps in order, seeded, timed, each reported; returns the metrics, the
    fitted model and the steps' context."""
    pipelines.seed_everything(run.seed)
    step_context = pipelines.StepContext(
        params=dict(run.params),
        seed=run.seed,
        inputs=inputs,
        log=context.log,
        secret=context.secret,
    )
    steps = pipeline.steps()
    for position, (name, function) in enumerate(steps):
        context.step(pipelines.LABELS[name], 10 + position * 70 // len(steps))
        started = time.perf_counter()
        step_context.artifacts[name] = function(step_context)
        context.log(f"{name} took {time.perf_counter() - started:.2f} s")
    fitted = step_context.artifacts["train"]
    if fitted is None:
        raise RetrainingFailed("The train step returned no model.")
    metrics = step_context.artifacts["evaluate"]
    if not isinstance(metrics, dict) or not all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in metrics.values()
    ):
        raise RetrainingFailed("The evaluate step must return a dict of metric names to numbers.")
    metrics = {str(name): float(value) for name, value in metrics.items()}
    context.log("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    return metrics, fitted, step_context


def _register(
    pipeline: pipelines.Pipeline, fitted: object, step_context: pipelines.StepContext, name: str
) -> int:
    import mlflow
    import sklearn
    from mlflow.models import infer_signature

    signature, example = None, step_context.input_example
    if example is not None:
        output = step_context.output_example
        if output is None:
            output = fitted.predict(example)
        signature = infer_signature(example, output)
    info = mlflow.sklearn.log_model(
        fitted,
        name="model",
        signature=signature,
        input_example=example,
        pip_requirements=list(pipeline.pip_requirements)
        or [f"scikit-learn=={sklearn.__version__}"],
        registered_model_name=name,
        **pipeline.log_options,
    )
    return int(info.registered_model_version)


def _experiment(model: str, project: str) -> str:
    import mlflow

    name = f"{model} retraining"
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = Path(settings.MLFLOW_ARTIFACT_ROOT) / name.replace("/", "-").replace(" ", "-")
    return mlflow.create_experiment(
        name, artifact_location=location.as_uri(), tags={PROJECT_TAG: project}
    )


def _param(value: object) -> str:
    return str(value)[:6000]


RETRAIN = JobKind(name=services.RETRAIN, label="Retraining", run=retrain, needs_version=False)


# Monitoring's hooks: run inside the transaction that opened the alert or received the batch,
# so they only note which policies to trigger, once it commits.


def on_alert_opened(alert: object) -> None:
    version = alert.monitor.version
    if version is None:
        return
    policies = list(
        RetrainingPolicy.objects.filter(model_id=version.model_id, on_drift=True, enabled=True)
        .values_list("pk", flat=True)
    )  # fmt: skip
    cause = {"alert": alert.pk, "feature": alert.feature, "monitor": alert.monitor_id}
    for pk in policies:
        transaction.on_commit(lambda pk=pk: _trigger(pk, RetrainingRun.Trigger.DRIFT, cause))


def on_batch_received(batch: object) -> None:
    version = batch.monitor.version
    if version is None:
        return
    policies = list(
        RetrainingPolicy.objects.filter(model_id=version.model_id, on_new_data=True, enabled=True)
        .values_list("pk", flat=True)
    )  # fmt: skip
    cause = {"batch": batch.pk, "monitor": batch.monitor_id}
    for pk in policies:
        transaction.on_commit(lambda pk=pk: _trigger(pk, RetrainingRun.Trigger.NEW_DATA, cause))


def _trigger(policy_id: int, trigger: str, cause: dict) -> None:
    """After monitoring's change committed: start (or skip) the run. A failure here is logged,
    never raised into monitoring's work."""
    policy = RetrainingPolicy.objects.filter(pk=policy_id).first()
    if policy is None:
        return
    try:
        services.trigger_retraining(policy=policy, trigger=trigger, cause=cause)
    except DomainError as error:
        log.warning("retraining of policy %s not started: %s", policy_id, error.message)
