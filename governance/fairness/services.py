"""Every change to fairness: the project's policy, and bias reports of model versions. The
figures are `metrics.py`'s; this module keeps them and judges them by the policy."""

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from governance.access.models import Project
from governance.access.permissions import require
from governance.access.roles import Capability
from governance.audit.services import record
from governance.errors import InvalidInput
from governance.fairness import metrics
from governance.fairness.metrics import label_for
from governance.fairness.models import BiasReport, FairnessPolicy
from governance.plain import json_safe
from governance.registry import tables
from governance.registry.models import DatasetVersion, ModelVersion

MAX_GROUP_SIZE = 1_000_000


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


def generate_bias_report(
    *,
    actor: AbstractBaseUser,
    version: ModelVersion,
    dataset: DatasetVersion,
    y_true: str,
    y_pred: str,
    sensitive: list[str],
    pos_label: str = "1",
) -> BiasReport:
    """Assess a model version's predictions on an evaluation table the project keeps, per
    group of one or two sensitive columns, and judge them by the project's fairness policy.

    Raises NotAllowed, InvalidInput naming the column, and the engine's errors (labels that are
    not binary, groups of no one, ...).
    """
    project = version.model.project
    if project is None:
        raise InvalidInput("The model version belongs to no project.")
    require(actor, Capability.MANAGE_MONITORING, project)
    if dataset.project_id != project.pk or not dataset.stored:
        raise InvalidInput(
            "Evaluate on a table kept in this project: keep one on the Data page.",
            fields={"dataset": ["not a kept table of this project"]},
        )
    sensitive = list(dict.fromkeys(sensitive))
    if not 1 <= len(sensitive) <= 2:
        raise InvalidInput(fields={"sensitive": ["Name one or two sensitive columns."]})
    columns = {c["name"] for c in dataset.schema.get("columns", [])}
    wanted = {"y_true": [y_true], "y_pred": [y_pred], "sensitive": sensitive}
    problems = {
        field: [f"the table has no column {name!r}"]
        for field, names in wanted.items()
        for name in names
        if name not in columns
    }
    if problems:
        raise InvalidInput(next(iter(problems.values()))[0].capitalize() + ".", fields=problems)
    stored = FairnessPolicy.objects.filter(project=project).first()
    limits = stored.limits if stored else {}
    min_group_size = stored.min_group_size if stored else 30
    table = tables.load(settings.DATA_DIR, dataset.sha256)
    truth, predicted = table.column(y_true).to_numpy(), table.column(y_pred).to_numpy()
    label = label_for(pos_label, truth)
    result = metrics.group_metrics(
        truth,
        predicted,
        {name: table.column(name).to_numpy(zero_copy_only=False) for name in sensitive},
        pos_label=label,
        min_group_size=min_group_size,
    )
    judgement = metrics.judge(result, limits)
    with transaction.atomic():
        report = BiasReport.objects.create(
            project=project,
            version=version,
            dataset=dataset,
            y_true=y_true,
            y_pred=y_pred,
            sensitive=sensitive,
            pos_label=str(pos_label),
            min_group_size=min_group_size,
            policy=limits,
            result=json_safe(result.as_dict()),
            judgement=json_safe(judgement.as_dict()),
            passed=judgement.passed,
            created_by=actor,
        )
        record(
            actor=actor,
            action="bias_report.generated",
            target=report,
            project=project,
            payload={
                "version": str(version),
                "dataset": str(dataset),
                "sensitive": sensitive,
                "passed": judgement.passed,
                "reasons": judgement.reasons,
            },
        )
    return report
