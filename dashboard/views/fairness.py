"""Bias reports (asking for one on a version's page, following it until done, reading it) and
the project's fairness policy."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from dashboard import charts
from dashboard.views.common import project_page
from governance.access.errors import NotAllowed
from governance.access.roles import Capability
from governance.errors import DomainError, InvalidInput
from governance.fairness import metrics, selectors, services
from governance.fairness.models import BiasReport
from governance.registry import selectors as registry
from governance.registry.models import DatasetVersion

# htmx stops polling when a response has this status.
STOP_POLLING = 286
LIMITS = [
    ("demographic_parity_ratio_min", "Demographic parity ratio, at least",
     "Each group's selection rate over the highest; 0.8 is the four-fifths rule."),
    ("demographic_parity_difference_max", "Demographic parity difference, at most",
     "Highest selection rate less the lowest."),
    ("equalized_odds_ratio_min", "Equalized odds ratio, at least",
     "The worse of the true and false positive rate ratios."),
    ("equalized_odds_difference_max", "Equalized odds difference, at most",
     "The worse of the true and false positive rate differences."),
    ("equal_opportunity_difference_max", "Equal opportunity difference, at most",
     "Highest true positive rate less the lowest."),
]  # fmt: skip


def report_context(report: BiasReport) -> dict:
    """What the report's page and its polled body show."""
    if report.state != BiasReport.State.DONE:
        return {"report": report}
    policy = report.judgement.get("policy") or {}
    groups = report.result.get("groups", [])
    return {
        "report": report,
        "groups": groups,
        "small": [g["label"] for g in groups if g.get("too_small")],
        "disparities": [
            (name.replace("_", " "), figure)
            for name, figure in report.result.get("disparities", {}).items()
        ],
        "checks": report.judgement.get("checks", []),
        "selection_chart": charts.bias_selection_rates(groups, policy),
        "rates_chart": charts.bias_group_rates(groups, policy),
    }


@require_GET
@login_required
def bias_report(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """A bias report: progress until the worker is done, then per-group figures, the
    disparities with the pair that makes each, charts and the verdict by the policy."""
    context = project_page(request, slug, "models")
    report = selectors.report_of(context["project"], pk)
    context.update(report_context(report))
    if request.htmx:
        status = STOP_POLLING if report.finished else 200
        return render(request, "fairness/_report_body.html", context, status=status)
    return render(request, "fairness/report.html", context)


def _version(request: HttpRequest, slug: str, name: str, number: int) -> dict:
    context = project_page(request, slug, "models")
    context["version"] = registry.version_of(context["project"], name, number)
    return context


@require_http_methods(["GET", "POST"])
@login_required
def bias_report_new(request: HttpRequest, slug: str, name: str, number: int) -> HttpResponse:
    """Ask for a bias report of a version. GET with htmx answers the column fields of the
    table chosen; POST queues the report and goes to its page."""
    context = _version(request, slug, name, number)
    if Capability.MANAGE_MONITORING not in context["capabilities"]:
        raise NotAllowed("Your role may read bias reports, not ask for them.")
    data = request.POST if request.method == "POST" else request.GET
    context.update(selectors.request_choices(context["project"], data.get("dataset", "")))
    if request.method == "GET" and request.htmx:
        return render(request, "fairness/_request_columns.html", context)
    error, fields, status = "", {}, 200
    if request.method == "POST":
        try:
            report = services.request_bias_report(
                actor=request.user,
                version=context["version"],
                dataset=_dataset(data.get("dataset", "")),
                y_true=data.get("y_true", ""),
                y_pred=data.get("y_pred", ""),
                sensitive=data.getlist("sensitive"),
                pos_label=data.get("pos_label", "1"),
            )
        except DomainError as exc:
            error, fields, status = exc.message, exc.fields, exc.status
        else:
            messages.success(request, f"Bias report {report.pk} queued.")
            return redirect("bias_report", slug=slug, pk=report.pk)
    context.update({"error": error, "fields": fields})
    return render(request, "fairness/request.html", context, status=status)


def _dataset(text: str) -> DatasetVersion:
    found = DatasetVersion.objects.filter(pk=int(text)).first() if text.isdigit() else None
    if found is None:
        raise InvalidInput(fields={"dataset": ["Choose a table from the list."]})
    return found


@require_http_methods(["GET", "POST"])
@login_required
def fairness_policy(request: HttpRequest, slug: str) -> HttpResponse:
    """The limits the project's bias reports must keep: everyone in the project reads them,
    product owners and admins change them."""
    context = project_page(request, slug, "models")
    project = context["project"]
    may_edit = Capability.EDIT_POLICIES in context["capabilities"]
    error, fields, status = "", {}, 200
    if request.method == "POST":
        if not may_edit:
            raise NotAllowed("Product owners and admins set the fairness policy.")
        try:
            limits, size = _policy_form(request.POST)
            services.set_fairness_policy(
                actor=request.user, project=project, limits=limits, min_group_size=size
            )
        except DomainError as exc:
            error, fields, status = exc.message, exc.fields, exc.status
        else:
            messages.success(request, "Fairness policy saved.")
            return redirect("fairness_policy", slug=slug)
    policy, size, stored = selectors.policy_of(project)
    posted = request.POST if request.method == "POST" else None
    context.update(
        {
            "limits": [
                (key, label, hint,
                 posted.get(key, "") if posted else _shown(getattr(policy, key)),
                 fields.get(key, []))
                for key, label, hint in LIMITS
            ],
            "fail_on_small_groups": (
                bool(posted.get("fail_on_small_groups")) if posted
                else policy.fail_on_small_groups
            ),
            "min_group_size": posted.get("min_group_size", "") if posted else size,
            "size_errors": fields.get("min_group_size", []),
            "stored": stored,
            "may_edit": may_edit,
            "error": error,
            "reports": list(selectors.project_reports(project)[:20]),
        }
    )  # fmt: skip
    return render(request, "fairness/policy.html", context, status=status)


def _shown(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _policy_form(data: object) -> tuple[dict, int]:
    """The limits and minimum group size as posted; blank turns a limit off. Raises
    InvalidInput naming every field that is not a number."""
    limits: dict[str, object] = {}
    problems: dict[str, list[str]] = {}
    for key, _, _ in LIMITS:
        text = data.get(key, "").strip()
        if not text:
            limits[key] = None
            continue
        try:
            limits[key] = float(text)
        except ValueError:
            problems[key] = ["A number from 0 to 1, or blank for no limit."]
    limits["fail_on_small_groups"] = bool(data.get("fail_on_small_groups"))
    size_text = data.get("min_group_size", "").strip()
    size = int(size_text) if size_text.isdigit() else 0
    if not size_text.isdigit():
        problems["min_group_size"] = ["A whole number of people, 1 or more."]
    if problems:
        raise InvalidInput("Some values are not numbers.", fields=problems)
    metrics.Policy.from_mapping(limits)
    return limits, size
