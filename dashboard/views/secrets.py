"""A project's secrets: names listed to its members, values written by those who run
pipelines and never shown again."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.views.common import project_page, raise_refusal
from governance.access.roles import Capability
from governance.delivery import selectors, services
from governance.errors import DomainError


@require_http_methods(["GET", "POST"])
@login_required
def secrets(request: HttpRequest, slug: str) -> HttpResponse:
    context = project_page(request, slug, "secrets")
    project = context["project"]
    error, fields, status = "", {}, 200
    if request.method == "POST":
        name = request.POST.get("name", "")
        try:
            services.set_secret(
                actor=request.user, project=project, name=name, value=request.POST.get("value", "")
            )
        except DomainError as exc:
            error, fields, status = exc.message, exc.fields, exc.status
        else:
            messages.success(request, f"Secret {name.strip()} kept, encrypted.")
            return redirect("secrets", slug=slug)
    context.update(
        {
            "secrets": selectors.secrets_of(project),
            "may_write": Capability.RUN_PIPELINES in context["capabilities"],
            "error": error,
            "fields": fields,
            "name": request.POST.get("name", ""),
        }
    )
    return render(request, "delivery/secrets.html", context, status=status)


@require_POST
@login_required
def secret_delete(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    context = project_page(request, slug, "secrets")
    try:
        services.delete_secret(actor=request.user, project=context["project"], name=name)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Secret {name} deleted.")
    return redirect("secrets", slug=slug)
