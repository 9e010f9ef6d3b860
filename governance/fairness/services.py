"""Every change to fairness: the project's policy, and bias reports of model versions.

A report is asked for (`request_bias_report`, which checks all it can at once) and made by a
worker (`generate_bias_report`): it loads the kept table, has the version's MLflow model
predict when no prediction column is named, and keeps `metrics.py`'s figures with the verdict
of the project's policy.
"""

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance.access.models import Project
from governance.access.permissions import require
from governance.access.roles import Capability
from governance.audit.services import SystemActor, record
from governance.errors import DomainError, InvalidInput
from governance.fairness import metrics
from governance.fairness.errors import ModelNotLoadable
from governance.fairness.metrics import label_for
from governance.fairness.models import BiasReport, FairnessPolicy
from governance.notify.kinds import Kind
from governance.notify.services import notify
from governance.plain import json_safe
from governance.registry import tables
from governance.registry.errors import MlflowUnavailable
from governance.registry.models import DatasetVersion, ModelVersion
from governance.registry.scoring import MissingInputs, Scorer, Unusable

FAIRNESS = SystemActor("fairness")
MAX_GROUP_SIZE = 1_000_000
MAX_LABEL = 100
SHOWN = 5  # labels named in an error before "…"


def set_fairness_policy(
    *, actor: AbstractBaseUser, project: Project, limits: dict, min_group_size: int = 30
) -> FairnessPolicy:
    """The limits the project's bias reports must keep (product owners and admins).

    Raises NotAllowed, InvalidPolicy naming the limit, InvalidInput.
    """
    require(actor, Capability.EDIT_POLICIES, project)
    metrics.Policy.from_mapping(limits)
    _check_group_size(min_group_size)
    with transaction.atomic():
        policy, _ = FairnessPolicy.objects.select_for_update().get_or_create(project=project)
        before = {"limits": policy.limits, "min_group_size": policy.min_group_size}
        after = {"limits": limits, "min_group_size": min_group_size}
        if before == after and policy.edited_by_id is not None:
            return policy
        policy.limits, policy.min_group_size = limits, min_group_size
        policy.edited_by, policy.edited_at = actor, timezone.now()
        policy.save()
        record(
            actor=actor,
            action="fairness.policy_saved",
            target=policy,
            project=project,
            payload={"before": before, "after": after},
        )
    return policy


def _check_group_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_GROUP_SIZE:
        raise InvalidInput(
            fields={"min_group_size": [f"A whole number from 1 to {MAX_GROUP_SIZE:,}."]}
        )


def request_bias_report(
    *,
    actor: AbstractBaseUser,
    version: ModelVersion,
    dataset: DatasetVersion,
    y_true: str,
    y_pred: str = "",
    sensitive: list[str],
    pos_label: str = "1",
) -> BiasReport:
    """Ask a worker to assess a model version on a table the project keeps, per group of one or
    two sensitive columns: by the predictions in `y_pred`, or with `y_pred` empty by what the
    version's MLflow model predicts on the columns of its signature.

    Everything that can be checked now is, at once: the table, the columns, labels that are
    binary with `pos_label` among them, sensitive columns of two groups or more. Reads those
    columns of the table. Raises NotAllowed, InvalidInput naming every field at fault.
    """
    project = version.model.project
    if project is None:
        raise InvalidInput("The model version belongs to no project.")
    require(actor, Capability.MANAGE_MONITORING, project)
    sensitive = list(dict.fromkeys(name.strip() for name in sensitive if name.strip()))
    y_true, y_pred, pos_label = y_true.strip(), y_pred.strip(), str(pos_label).strip()
    problems = _problems(project, version, dataset, y_true, y_pred, sensitive, pos_label)
    if problems:
        first = next(iter(problems.values()))[0]
        raise InvalidInput(first[:1].upper() + first[1:] + ".", fields=problems)
    with transaction.atomic():
        report = BiasReport.objects.create(
            project=project,
            version=version,
            dataset=dataset,
            y_true=y_true,
            y_pred=y_pred,
            sensitive=sensitive,
            pos_label=pos_label,
            created_by=actor,
        )
        record(
            actor=actor,
            action="bias_report.requested",
            target=report,
            project=project,
            payload={
                "version": str(version),
                "dataset": str(dataset),
                "y_true": y_true,
                "y_pred": y_pred or None,
                "sensitive": sensitive,
                "pos_label": pos_label,
            },
        )
        report_id = report.pk
        transaction.on_commit(lambda: _enqueue(report_id))
    return report


def _enqueue(report_id: int) -> None:
    from governance.fairness.tasks import generate_bias_report  # the task imports this module

    generate_bias_report.delay(report_id=report_id)


def _problems(
    project: Project,
    version: ModelVersion,
    dataset: DatasetVersion,
    y_true: str,
    y_pred: str,
    sensitive: list[str],
    pos_label: str,
) -> dict[str, list[str]]:
    """What is wrong with a report asked for, per field; empty when nothing is."""
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if not 1 <= len(sensitive) <= 2:
        add("sensitive", "name one or two sensitive columns")
    if not pos_label or len(pos_label) > MAX_LABEL:
        add("pos_label", f"give the positive label, at most {MAX_LABEL} characters")
    if not y_true:
        add("y_true", "name the label column")
    if dataset.project_id != project.pk or not dataset.stored:
        add("dataset", "not a table kept in this project: keep one on the Data page")
        return problems
    columns = [c["name"] for c in dataset.schema.get("columns", [])]
    named = {"y_true": [y_true] if y_true else [], "y_pred": [y_pred] if y_pred else []}
    named["sensitive"] = sensitive
    for field, names in named.items():
        for name in names:
            if name not in columns:
                add(field, f"the table has no column {name!r}")
    if not y_pred:
        inputs = [c.get("name") for c in version.signature.get("inputs") or []]
        if not inputs or not all(inputs):
            add("y_pred", "this version's model has no input signature: name a prediction column")
        elif lacking := [name for name in inputs if name not in columns]:
            add("y_pred", f"the table lacks columns the model takes: {', '.join(lacking)}")
    wanted = [name for names in named.values() for name in names if name in columns]
    if not wanted:
        return problems
    try:
        table = pq.read_table(
            tables.path_of(settings.DATA_DIR, dataset.sha256), columns=list(dict.fromkeys(wanted))
        )
    except FileNotFoundError:
        add("dataset", "the kept file of this table is gone")
        return problems
    # Binary across labels and predictions together, as the engine wants: the column that
    # brings the third label is the one named.
    labels: list[Any] = []
    for field in ("y_true", "y_pred"):
        for name in named[field]:
            if name not in columns:
                continue
            column = table.column(name)
            if column.null_count:
                add(field, f"{name!r} has {column.null_count} missing values")
            before = len(labels)
            labels += [v for v in pc.unique(column.drop_null()).to_pylist() if v not in labels]
            if before <= 2 < len(labels):
                add(field, f"the labels are not binary: {_shown(labels)}")
    if len(labels) <= 2 and labels and y_true in columns and pos_label:
        try:
            label = label_for(pos_label, table.column(y_true).to_numpy(zero_copy_only=False))
        except metrics.InvalidParameter as error:
            problems.setdefault("pos_label", []).extend(error.fields["pos_label"])
        else:
            if len(labels) == 2 and label not in labels:
                add("pos_label", f"{pos_label!r} is not among the labels {_shown(labels)}")
    for name in sensitive:
        if name not in columns:
            continue
        column = table.column(name)
        if column.null_count:
            add("sensitive", f"{name!r} has {column.null_count} missing values")
            continue
        groups = pc.unique(column).to_pylist()
        if len(groups) < 2:
            shown = f"only {_shown(groups)}" if groups else "no values"
            add("sensitive", f"{name!r} holds {shown}: there are no groups to compare")
    return problems


def _shown(values: list) -> str:
    text = ", ".join(map(str, sorted(values, key=str)[:SHOWN]))
    return text + ", …" if len(values) > SHOWN else text


def generate_bias_report(*, report_id: int, last_attempt: bool = True) -> BiasReport:
    """Make a report asked for: load its table, predict with the version's model when it names
    no prediction column, compute the figures and judge them by the project's policy, then tell
    the person who asked. Idempotent: a finished report is returned as it is.

    Bad input fails the report with the reason. MLflow out of reach puts it back in the queue
    and raises MlflowUnavailable for the task to retry, unless `last_attempt`.
    """
    with transaction.atomic():
        report = BiasReport.objects.select_for_update().get(pk=report_id)
        if report.finished:
            return report
        report.state, report.started_at = BiasReport.State.RUNNING, timezone.now()
        report.save(update_fields=["state", "started_at"])
    report = BiasReport.objects.select_related(
        "version__model", "dataset", "project", "created_by"
    ).get(pk=report_id)
    stored = FairnessPolicy.objects.filter(project=report.project).first()
    limits = stored.limits if stored else {}
    min_group_size = stored.min_group_size if stored else 30
    try:
        table = tables.load(settings.DATA_DIR, report.dataset.sha256)
        truth = table.column(report.y_true).to_numpy(zero_copy_only=False)
        if report.y_pred:
            predicted = table.column(report.y_pred).to_numpy(zero_copy_only=False)
        else:
            predicted = _predictions(report.version, table)
        result = metrics.group_metrics(
            truth,
            predicted,
            {name: table.column(name).to_numpy(zero_copy_only=False) for name in report.sensitive},
            pos_label=label_for(report.pos_label, truth),
            min_group_size=min_group_size,
        )
        judgement = metrics.judge(result, limits)
    except MlflowUnavailable as error:
        if not last_attempt:
            _back_in_queue(report)
            raise
        return _fail(report, error.message)
    except DomainError as error:
        return _fail(report, error.message)
    except (FileNotFoundError, KeyError) as error:
        return _fail(report, f"The table could not be read: {error}")
    return _done(report, result, judgement, limits, min_group_size)


def _predictions(version: ModelVersion, table: pa.Table) -> np.ndarray:
    """What the version's MLflow model predicts for each row of `table`, given the columns of
    its input signature. Raises ModelNotLoadable, InvalidInput naming missing columns,
    MlflowUnavailable."""
    try:
        scorer = Scorer.load(version)
        return scorer.predict(scorer.inputs(table.to_pandas()))
    except MissingInputs as error:
        raise InvalidInput(
            f"The table lacks columns the model takes: {', '.join(error.missing)}.",
            fields={"dataset": [f"no column {name!r}" for name in error.missing]},
        ) from error
    except Unusable as error:
        raise ModelNotLoadable(
            error.message, fields={"y_pred": ["the version's model cannot predict on it"]}
        ) from error


def _back_in_queue(report: BiasReport) -> None:
    with transaction.atomic():
        BiasReport.objects.filter(pk=report.pk, state=BiasReport.State.RUNNING).update(
            state=BiasReport.State.QUEUED
        )


def _fail(report: BiasReport, reason: str) -> BiasReport:
    with transaction.atomic():
        fresh = BiasReport.objects.select_for_update().get(pk=report.pk)
        if fresh.finished:
            return fresh
        report.state, report.error = BiasReport.State.FAILED, reason[:2000]
        report.finished_at = timezone.now()
        report.save(update_fields=["state", "error", "finished_at"])
        record(
            actor=FAIRNESS,
            action="bias_report.failed",
            target=report,
            project=report.project,
            payload={"version": str(report.version), "reason": reason[:500]},
        )
        _tell(report, f"Bias report {report.pk} of {report.version} failed", reason)
    return report


def _done(
    report: BiasReport,
    result: metrics.FairnessResult,
    judgement: metrics.Judgement,
    limits: dict,
    min_group_size: int,
) -> BiasReport:
    with transaction.atomic():
        fresh = BiasReport.objects.select_for_update().get(pk=report.pk)
        if fresh.finished:
            return fresh
        report.state, report.finished_at = BiasReport.State.DONE, timezone.now()
        report.passed = judgement.passed
        report.policy, report.min_group_size = limits, min_group_size
        report.result = json_safe(result.as_dict())
        report.judgement = json_safe(judgement.as_dict())
        report.save()
        record(
            actor=FAIRNESS,
            action="bias_report.generated",
            target=report,
            project=report.project,
            payload={
                "version": str(report.version),
                "dataset": str(report.dataset),
                "sensitive": report.sensitive,
                "predicted_by_model": report.predicted_by_model,
                "passed": judgement.passed,
                "reasons": judgement.reasons,
            },
        )
        verdict = "passes" if judgement.passed else "fails"
        _tell(
            report,
            f"Bias report {report.pk} of {report.version} {verdict} the fairness policy",
            "\n".join(judgement.reasons),
        )
    return report


def _tell(report: BiasReport, subject: str, body: str) -> None:
    if report.created_by is None:
        return
    notify(
        recipients=[report.created_by],
        kind=Kind.JOB_FINISHED,
        subject=subject,
        body=body,
        url=reverse("bias_report", args=[report.project.slug, report.pk]),
        key=f"bias-report-{report.pk}",
        project=report.project,
    )
