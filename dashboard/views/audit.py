"""The audit trail for auditors and admins, and each project's activity feed for its members."""

import logging
import tempfile

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from dashboard.filters import AuditEventFilter
from dashboard.views.common import raise_refusal
from governance.access import selectors as access
from governance.access.errors import NotAllowed
from governance.audit import exports, selectors, services
from governance.audit.errors import ExportUnavailable
from governance.audit.models import AuditEvent, VerificationRun
from governance.errors import DomainError, InvalidInput

log = logging.getLogger(__name__)

# htmx stops polling when a response has this status.
STOP_POLLING = 286


def _trail_reader(request: HttpRequest) -> None:
    if not selectors.may_read_trail(request.user):
        raise NotAllowed("The audit trail is for auditors and admins.")


def _before(request: HttpRequest) -> int | None:
    value = request.GET.get("before", "")
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput("“before” is an event number.")
    return int(value)


def _filtered(request: HttpRequest, events: object) -> tuple[AuditEventFilter, object]:
    filters = AuditEventFilter(request.GET, queryset=events, request=request)
    if not filters.is_valid():
        return filters, None
    return filters, filters.qs


def _fields(filters: AuditEventFilter, *names: str) -> list:
    return [filters.form[name] for name in names]


def _query_without(request: HttpRequest, *names: str) -> str:
    kept = [(key, value) for key, value in request.GET.items() if key not in names and value]
    return urlencode(kept)


@require_GET
@login_required
def trail(request: HttpRequest) -> HttpResponse:
    _trail_reader(request)
    filters, events = _filtered(request, selectors.trail_for(request.user))
    projects = list(selectors.audited_projects(request.user).order_by("name"))
    filters.form.fields["project"].widget = forms.Select(
        choices=[("", "All"), *((project.slug, project.name) for project in projects)]
    )
    page, older = ([], None) if events is None else selectors.page_before(events, _before(request))
    context = {
        "filters": filters,
        "fields": _fields(filters, "actor", "action", "target_kind", "project", "since", "until"),
        "events": page,
        "older": older,
        "query": _query_without(request, "before"),
        "runs": selectors.recent_verifications(),
        "my_exports": selectors.exports_by(request.user),
        "may_export": selectors.may_export_trail(request.user),
        "formats": list(exports.FORMATS),
    }
    return render(request, "audit/trail.html", context, status=200 if events is not None else 400)


@require_GET
@login_required
def export(request: HttpRequest) -> HttpResponse:
    """The filtered trail as a file, with its digest in a header and a link to its manifest."""
    filters = AuditEventFilter(request.GET, queryset=AuditEvent.objects.none(), request=request)
    if not filters.is_valid():
        errors = "; ".join(message for field in filters.errors.values() for message in field)
        raise InvalidInput(errors)
    fmt = request.GET.get("format", "")
    return export_response(request, fmt, filters.criteria())


def export_response(
    request: HttpRequest, fmt: str, criteria: dict, manifest_url: str = "audit_manifest"
) -> FileResponse:
    """Write the export to a temporary file (constant memory), then stream it from disk."""
    if not selectors.may_export_trail(request.user):  # before touching the disk
        raise NotAllowed("Only auditors and admins export the audit trail.")
    directory = settings.EXPORT_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=directory, suffix=f".{fmt}")  # noqa: SIM115
    except OSError as error:
        log.error("audit export refused: %s cannot be written (%s)", directory, error)
        raise ExportUnavailable from error
    try:
        event = services.export_trail(
            actor=request.user, fmt=fmt, criteria=criteria, destination=handle
        )
    except OSError as error:  # the disk filled while writing: nothing recorded, nothing sent
        handle.close()
        log.error("audit export stopped: writing under %s failed (%s)", directory, error)
        raise ExportUnavailable from error
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    content_type, extension = exports.FORMATS[fmt]
    manifest = event.data
    name = f"quorum-audit-{manifest['through_seq']}-{event.seq}.{extension}"
    response = FileResponse(handle, as_attachment=True, filename=name, content_type=content_type)
    response["X-Quorum-Export-SHA256"] = manifest["sha256"]
    response["X-Quorum-Export-Rows"] = str(manifest["rows"])
    response["Link"] = f'<{reverse(manifest_url, args=[event.seq])}>; rel="describedby"'
    return response


@require_GET
@login_required
def manifest(request: HttpRequest, seq: int) -> JsonResponse:
    event = get_object_or_404(AuditEvent, seq=seq, action="audit.exported")
    if event.actor_id != request.user.pk and not request.user.is_superuser:
        raise Http404
    body = {"export_event": event.seq, "exported_at": event.at, "exported_by": event.actor_name}
    response = JsonResponse({**body, **event.data}, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="quorum-audit-{seq}.manifest.json"'
    return response


@require_POST
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    try:
        run = services.request_verification(
            actor=request.user, checkpoint=request.POST.get("checkpoint", "")
        )
    except DomainError as error:
        raise_refusal(error)
        if not request.htmx:
            messages.error(request, error.message)
            return redirect("audit_trail")
        context = {"error": error.message}
        return render(request, "audit/_verify_form.html", context, status=error.status)
    if not request.htmx:
        messages.success(request, "Verification queued; its progress shows below.")
        return redirect("audit_trail")
    return render(request, "audit/_verify_form.html", {"run": run})


@require_GET
@login_required
def verification(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run's progress, polled by the page until it is finished."""
    _trail_reader(request)
    run = get_object_or_404(VerificationRun, pk=run_id)
    status = STOP_POLLING if run.is_finished and request.htmx else 200
    return render(request, "audit/_verification.html", {"run": run}, status=status)


@require_GET
@login_required
def project_activity(request: HttpRequest, slug: str) -> HttpResponse:
    project, capabilities = access.project_for(request.user, slug)
    filters, events = _filtered(request, selectors.feed_of(project))
    page, older = ([], None) if events is None else selectors.page_before(events, _before(request))
    context = {
        "project": project,
        "capabilities": capabilities,
        "section": "project_activity",
        "filters": filters,
        "fields": _fields(filters, "actor", "action", "since", "until"),
        "events": page,
        "older": older,
        "query": _query_without(request, "before"),
    }
    status = 200 if events is not None else 400
    return render(request, "audit/activity.html", context, status=status)
