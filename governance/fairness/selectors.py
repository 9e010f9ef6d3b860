"""Reads of bias reports and fairness policies that pages and the API share."""

from django.db.models import Exists, OuterRef, QuerySet

from governance.access.models import Project
from governance.fairness import metrics
from governance.fairness.errors import ReportNotFound
from governance.fairness.models import BiasReport, FairnessPolicy
from governance.registry.models import DatasetVersion, ModelVersion


def reports_of(version: ModelVersion) -> QuerySet[BiasReport]:
    return BiasReport.objects.filter(version=version).select_related("dataset", "created_by")


def kept_tables_of(project: Project) -> QuerySet[DatasetVersion]:
    """Tables the project keeps, to assess versions on, newest first."""
    return DatasetVersion.objects.filter(project=project, stored=True).order_by("-created_at")


def request_choices(project: Project, chosen: str = "") -> dict:
    """For the form that asks for a report: the kept tables, the one chosen (by id as text;
    the newest by default) and its columns. One query."""
    tables = list(kept_tables_of(project))
    table = next((t for t in tables if str(t.pk) == chosen), tables[0] if tables else None)
    columns = [c["name"] for c in table.schema.get("columns", [])] if table else []
    return {"bias_tables": tables, "bias_table": table, "bias_columns": columns}


def project_reports(project: Project) -> QuerySet[BiasReport]:
    """The project's reports, newest first, with what a list shows of each."""
    return BiasReport.objects.filter(project=project).select_related(
        "version__model", "dataset", "created_by"
    )


def latest_verdict_of(version: ModelVersion) -> BiasReport | None:
    """The version's latest finished report with a verdict: the one its gate reads."""
    return (
        BiasReport.objects.filter(version=version, state=BiasReport.State.DONE)
        .select_related("dataset")
        .order_by("-created_at", "-id")
        .first()
    )


def report_of(project: Project, pk: int) -> BiasReport:
    """Raises ReportNotFound, also for a report of another project."""
    report = (
        BiasReport.objects.filter(project=project, pk=pk)
        .select_related("version__model", "dataset", "created_by")
        .first()
    )
    if report is None:
        raise ReportNotFound
    return report


def report_for(projects: QuerySet[Project], pk: int) -> BiasReport:
    """A report in one of `projects` (those the caller may see). Raises ReportNotFound."""
    report = (
        BiasReport.objects.filter(project__in=projects, pk=pk)
        .select_related("project", "version__model", "dataset", "created_by")
        .first()
    )
    if report is None:
        raise ReportNotFound
    return report


def policy_of(project: Project) -> tuple[metrics.Policy, int, FairnessPolicy | None]:
    """The limits in force (defaults filled in), the minimum group size, and the stored row
    (None while the project keeps the defaults)."""
    stored = FairnessPolicy.objects.filter(project=project).select_related("edited_by").first()
    limits = stored.limits if stored else {}
    return metrics.Policy.from_mapping(limits), stored.min_group_size if stored else 30, stored


def _latest_done() -> QuerySet[BiasReport]:
    newer = BiasReport.objects.filter(
        version=OuterRef("version"),
        state=BiasReport.State.DONE,
        created_at__gt=OuterRef("created_at"),
    )
    return BiasReport.objects.filter(state=BiasReport.State.DONE).exclude(Exists(newer))


def failing_reports_in(project_ids: list[int], limit: int = 5) -> list[BiasReport]:
    """The versions whose latest finished bias report failed, newest first."""
    return list(
        _latest_done()
        .filter(project_id__in=project_ids, passed=False)
        .select_related("version__model", "project")
        .order_by("-created_at", "-pk")[:limit]
    )


def verdicts_of(version_ids: list[int]) -> dict[int, bool]:
    """Each version's latest finished bias verdict: passed or not."""
    return dict(
        _latest_done().filter(version_id__in=version_ids).values_list("version_id", "passed")
    )
