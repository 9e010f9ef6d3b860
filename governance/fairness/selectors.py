"""Reads of bias reports that pages and the API share."""

from django.db.models import QuerySet

from governance.access.models import Project
from governance.errors import NotFound
from governance.fairness.models import BiasReport
from governance.registry.models import ModelVersion


class ReportNotFound(NotFound):
    code = "bias_report_not_found"
    default_message = "No such bias report in this project."


def reports_of(version: ModelVersion) -> QuerySet[BiasReport]:
    return BiasReport.objects.filter(version=version).select_related("dataset", "created_by")


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
