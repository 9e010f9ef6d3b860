"""Jobs of a project: the list with what they cost, and a page per job that follows it live."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard.views.common import project_page, raise_refusal
from governance.access.roles import Capability
from governance.delivery import kinds, packaging, selectors, services
from governance.errors import DomainError
from governance.registry import selectors as registry

PAGE = 50


@require_GET
@login_required
def jobs(request: HttpRequest, slug: str) -> HttpResponse:
    context = project_page(request, slug, "jobs")
    project = context["project"]
    context.update(
        {
            "jobs": list(selectors.jobs_of(project)[:PAGE]),
            "costs": selectors.costs_of(project),
            "labels": {kind.name: kind.label for kind in kinds.known()},
        }
    )
    return render(request, "delivery/jobs.html", context)


@require_GET
@login_required
def job(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """A job: its progress and the tail of its log, refreshed while it runs."""
    context = project_page(request, slug, "jobs")
    found = selectors.job_of(context["project"], pk)
    context.update(
        {
            "job": found,
            "lines": selectors.tail_of(found),
            "label": _label(found.kind),
            "may_run": Capability.RUN_PIPELINES in context["capabilities"],
            "has_package": packaging.archive_of(found) is not None,
        }
    )
    template = "delivery/_job_live.html" if request.htmx else "delivery/job.html"
    return render(request, template, context)


@require_POST
@login_required
def job_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _act(
        request, slug, pk, services.cancel_job, "Cancelled: a running job stops at its next step."
    )


@require_POST
@login_required
def job_retry(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _act(request, slug, pk, services.retry_job, "Queued again.")


@require_POST
@login_required
def package_version(request: HttpRequest, slug: str, name: str, number: int) -> HttpResponse:
    """Queue a package job for the version and follow it on its page."""
    context = project_page(request, slug, "models")
    version = registry.version_of(context["project"], name, number)
    try:
        started = services.start_job(
            actor=request.user, project=context["project"], kind="package", version=version
        )
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
        return redirect("model_version", slug=slug, name=name, number=number)
    return redirect("job", slug=slug, pk=started.pk)


@require_GET
@login_required
def job_package(request: HttpRequest, slug: str, pk: int) -> FileResponse:
    """The build context a succeeded package job made, for anyone who may see the project."""
    context = project_page(request, slug, "jobs")
    archive = packaging.archive_of(selectors.job_of(context["project"], pk))
    if archive is None:
        raise Http404("This job made no package, or it is gone.")
    return FileResponse(
        archive.open("rb"), as_attachment=True, filename=f"quorum-package-{pk}.tar.gz"
    )


def _act(request: HttpRequest, slug: str, pk: int, action, done: str) -> HttpResponse:
    context = project_page(request, slug, "jobs")
    found = selectors.job_of(context["project"], pk)
    try:
        action(actor=request.user, job=found)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("job", slug=slug, pk=pk)


def _label(kind: str) -> str:
    try:
        return kinds.get(kind).label
    except DomainError:
        return kind  # a kind no longer installed: its jobs stay readable
