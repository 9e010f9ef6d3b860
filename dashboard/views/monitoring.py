"""Monitors of a project: their batches, drift checks and alerts."""

from dataclasses import asdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard import charts
from dashboard.views.common import project_page, raise_refusal
from governance.access.roles import Capability
from governance.errors import DomainError, InvalidInput
from governance.monitoring import quality, selectors, services, stats
from governance.monitoring.models import DriftCheck, Monitor
from governance.registry.models import ModelVersion


@require_http_methods(["GET", "POST"])
@login_required
def monitors(request: HttpRequest, slug: str) -> HttpResponse:
    """The project's monitors; those who manage monitoring set up more."""
    context = project_page(request, slug, "monitors")
    project = context["project"]
    error, status = "", 200
    if request.method == "POST":
        try:
            reference = (
                selectors.kept_tables(project)
                .filter(pk=_number(request.POST.get("reference", ""), "reference"))
                .first()
            )
            if reference is None:
                raise InvalidInput("Choose a table kept in this project as the reference.")
            version_id = request.POST.get("version", "")
            version = (
                ModelVersion.objects.filter(
                    pk=_number(version_id, "version"), model__project=project
                ).first()
                if version_id
                else None
            )
            categorical = [
                c.strip() for c in request.POST.get("categorical", "").split(",") if c.strip()
            ]
            monitor = services.create_monitor(
                actor=request.user,
                project=project,
                name=request.POST.get("name", ""),
                reference=reference,
                version=version,
                categorical=categorical,
                **{field: request.POST.get(field, "") for field in QUALITY_FIELDS},
            )
        except DomainError as exc:
            error, status = exc.message, exc.status
        else:
            messages.success(request, f"Monitor {monitor.name} set up.")
            return redirect("monitor", slug=slug, pk=monitor.pk)
    context.update(
        {
            "monitors": selectors.monitors_of(project),
            "tables": selectors.kept_tables(project),
            "versions": ModelVersion.objects.filter(model__project=project)
            .select_related("model")
            .order_by("model__name", "-version"),
            "may_manage": Capability.MANAGE_MONITORING in context["capabilities"],
            "tasks": Monitor.Task.choices,
            "error": error,
        }
    )
    return render(request, "monitoring/monitors.html", context, status=status)


QUALITY_FIELDS = ("task", "label_column", "prediction_column", "positive_label", "id_column")


def _number(text: str, field: str) -> int:
    if not text.isdigit():
        raise InvalidInput(fields={field: ["Choose one from the list."]})
    return int(text)


@require_http_methods(["GET", "POST"])
@login_required
def monitor(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """A monitor: send a batch, see its checks, the latest figures per feature, its alerts."""
    context = project_page(request, slug, "monitors")
    found = selectors.monitor_of(context["project"], pk)
    error, status = "", 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise InvalidInput("Choose a CSV or Parquet file to send.")
            batch = services.add_batch(
                actor=request.user, monitor=found, content=upload, filename=upload.name
            )
        except DomainError as exc:
            error, status = exc.message, exc.status
        else:
            messages.success(request, f"Batch of {batch.rows} rows received; checking it.")
            return redirect("monitor", slug=slug, pk=pk)
    checks = selectors.checks_of(found)
    latest = next((c for c in checks if c.state == "done"), None)
    features = selectors.features_of(latest)
    batches = selectors.batches_of(found)
    context.update(
        {
            "batches": batches,
            "quality_chart": charts.quality_over_time(
                batches, found.reference_quality.get("metrics") or {}
            ),
            "monitor": found,
            "checks": checks,
            "latest": latest,
            "features": features,
            **_feature_charts(found, latest, features, request.GET.get("feature", "")),
            "alerts": list(selectors.alerts_of(found)[:30]),
            "may_manage": Capability.MANAGE_MONITORING in context["capabilities"],
            "may_handle": Capability.HANDLE_ALERTS in context["capabilities"],
            "watching": found.subscribers.filter(pk=request.user.pk).exists(),
            "error": error,
        }
    )
    return render(request, "monitoring/monitor.html", context, status=status)


def _feature_charts(
    monitor: Monitor, latest: DriftCheck | None, features: list, wanted: str
) -> dict:
    """The chosen feature (or the first drifted one) of the latest check: its distributions
    against the reference, and each statistic over the checks with its threshold."""
    if latest is None or not features:
        return {}
    chosen = next((f for f in features if f.feature == wanted), features[0])
    thresholds = asdict(stats.Thresholds.from_mapping(monitor.thresholds or {}))
    return {
        "chosen": chosen,
        "distribution_chart": charts.feature_distribution(
            selectors.feature_result(latest, chosen.feature) or {}
        ),
        "history_chart": charts.feature_history(
            selectors.feature_history(monitor, chosen.feature), chosen.kind, thresholds
        ),
    }


@require_POST
@login_required
def monitor_watch(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Be told of the monitor's drift alerts, or no longer."""
    context = project_page(request, slug, "monitors")
    found = selectors.monitor_of(context["project"], pk)
    on = request.POST.get("on") == "1"
    services.watch_monitor(actor=request.user, monitor=found, on=on)
    if on:
        messages.success(request, "You will be told of this monitor's drift alerts.")
    else:
        messages.success(request, "You will no longer be told of this monitor's drift alerts.")
    return redirect("monitor", slug=slug, pk=pk)


@require_POST
@login_required
def alert_move(request: HttpRequest, slug: str, pk: int, alert_id: int, to: str) -> HttpResponse:
    context = project_page(request, slug, "monitors")
    found = selectors.monitor_of(context["project"], pk)
    alert = selectors.alerts_of(found).filter(pk=alert_id).first()
    if alert is None:
        raise Http404("No such alert on this monitor.")
    move = services.acknowledge_alert if to == "acknowledge" else services.resolve_alert
    try:
        move(actor=request.user, alert=alert, comment=request.POST.get("comment", ""))
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
    else:
        word = "acknowledged" if to == "acknowledge" else "resolved"
        messages.success(request, f"Alert on {alert.feature} {word}.")
    return redirect("monitor", slug=slug, pk=pk)


@require_POST
@login_required
def monitor_settings(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Where the monitor fetches batches from, and how often it checks its window."""
    context = project_page(request, slug, "monitors")
    found = selectors.monitor_of(context["project"], pk)
    form = request.POST
    try:
        changes = {
            "source_uri": form.get("source_uri", ""),
            "poll_minutes": _whole(form.get("poll_minutes", ""), "poll_minutes", optional=True),
            "check_minutes": _whole(form.get("check_minutes", ""), "check_minutes", optional=True),
            "window_hours": _whole(form.get("window_hours", ""), "window_hours"),
        }
        services.update_monitor(actor=request.user, monitor=found, changes=changes)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, _explained(exc))
    else:
        messages.success(request, "Source and schedule saved.")
    return redirect("monitor", slug=slug, pk=pk)


@require_POST
@login_required
def monitor_check(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Check now the batches of the monitor's window."""
    context = project_page(request, slug, "monitors")
    found = selectors.monitor_of(context["project"], pk)
    try:
        check = services.request_check(actor=request.user, monitor=found)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, _explained(exc))
    else:
        count = len(check.window_batches)
        messages.success(request, f"Checking {count} batch{'es' if count != 1 else ''} now.")
    return redirect("monitor", slug=slug, pk=pk)


def _whole(text: str, field: str, *, optional: bool = False) -> int | None:
    text = text.strip()
    if not text and optional:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(fields={field: ["A whole number."]}) from None


def _explained(error: DomainError) -> str:
    """The error's message with what it says of each field, for a flash message."""
    said = "; ".join(
        f"{field.replace('_', ' ')}: {' '.join(problems)}"
        for field, problems in error.fields.items()
    )
    return f"{error.message} {said}".strip() if said else error.message


@require_http_methods(["GET", "POST"])
@login_required
def batch(request: HttpRequest, slug: str, pk: int, batch_id: int) -> HttpResponse:
    """A batch: its data-quality report, its labels, and the model's quality on it against the
    reference; those who manage monitoring send the labels here."""
    context = project_page(request, slug, "monitors")
    found = selectors.monitor_of(context["project"], pk)
    chosen = selectors.batch_of(found, batch_id)
    error, status = "", 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise InvalidInput("Choose a CSV or Parquet file of labels to send.")
            services.add_labels(
                actor=request.user, batch=chosen, content=upload, filename=upload.name
            )
        except DomainError as exc:
            error, status = exc.message, exc.status
        else:
            messages.success(request, "Labels received; measuring the model on them.")
            return redirect("monitor_batch", slug=slug, pk=pk, batch_id=batch_id)
    report = chosen.quality or {}
    measured = chosen.model_quality or {}
    reference = found.reference_quality.get("metrics") or {}
    context.update(
        {
            "monitor": found,
            "batch": chosen,
            "report": report,
            "report_columns": list((report.get("columns") or {}).values()),
            "metrics": [
                {
                    "name": quality.METRIC_NAMES.get(name, name),
                    "value": value,
                    "reference": reference.get(name),
                    "degraded": (measured.get("degraded") or {}).get(name, ""),
                }
                for name, value in (measured.get("metrics") or {}).items()
            ],
            "measured": measured,
            "reference_error": found.reference_quality.get("error", ""),
            "may_manage": Capability.MANAGE_MONITORING in context["capabilities"],
            "error": error,
        }
    )
    return render(request, "monitoring/batch.html", context, status=status)
