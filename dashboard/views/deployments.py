"""Deployments of a project: its targets (the endpoint registry), a page per target with its
history, and the forms that deploy, roll back, probe and stop."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.views.common import project_page, raise_refusal
from governance.access.permissions import require
from governance.access.roles import Capability
from governance.delivery import selectors, services
from governance.delivery.models import Target
from governance.errors import DomainError
from governance.registry import selectors as registry

SECTION = "deployments"


@require_GET
@login_required
def deployments(request: HttpRequest, slug: str) -> HttpResponse:
    context = project_page(request, slug, SECTION)
    context.update(
        {
            "targets": selectors.targets_of(context["project"]),
            "may_manage": Capability.RUN_PIPELINES in context["capabilities"],
        }
    )
    return render(request, "delivery/deployments.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def target_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    """Add a target, or change one (its kind stays): for those who run pipelines."""
    context = project_page(request, slug, SECTION)
    project = context["project"]
    require(request.user, Capability.RUN_PIPELINES, project)
    target = selectors.target_of(project, pk) if pk else None
    form = _form_of(target)
    fields: dict = {}
    error = ""
    if request.method == "POST":
        form = {key: request.POST.get(key, "").strip() for key in FORM_KEYS}
        chosen = {key: form[key] for key in SETTING_KEYS if form.get(key)}
        try:
            if target is None:
                target = services.create_target(
                    actor=request.user, project=project, name=form["name"], kind=form["kind"],
                    stage=form["stage"], settings=chosen, secrets=form["secrets"],
                )  # fmt: skip
            else:
                target = services.update_target(
                    actor=request.user,
                    target=target,
                    changes={"name": form["name"], "stage": form["stage"], "settings": chosen,
                             "secrets": form["secrets"]},
                )  # fmt: skip
        except DomainError as exc:
            error, fields = exc.message, exc.fields
        else:
            messages.success(request, f"Saved the target {target.name}.")
            return redirect("target", slug=slug, pk=target.pk)
    context.update(
        {"target": target, "form": form, "fields": fields, "error": error,
         "kinds": Target.Kind.choices}
    )  # fmt: skip
    return render(request, "delivery/target_form.html", context, status=400 if error else 200)


FORM_KEYS = ("name", "kind", "stage", "secrets", "port", "url", "hmac_secret", "namespace",
             "replicas", "image_prefix", "kubeconfig_secret")  # fmt: skip
SETTING_KEYS = FORM_KEYS[4:]


def _form_of(target: Target | None) -> dict:
    if target is None:
        return {"kind": "local", "stage": "production"}
    return {"name": target.name, "kind": target.kind, "stage": target.stage,
            "secrets": " ".join(target.secrets),
            **{key: str(value) for key, value in target.settings.items()}}  # fmt: skip


@require_GET
@login_required
def target(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    context = project_page(request, slug, SECTION)
    found = selectors.target_of(context["project"], pk)
    history = selectors.history_of(found)
    context.update(
        {
            "target": found,
            "current": next((d for d in history if d.state in ("live", "manifests_ready")), None),
            "history": history,
            "versions": selectors.deployable_versions(found),
            "may_manage": Capability.RUN_PIPELINES in context["capabilities"],
            "settings_json": json.dumps(found.settings, indent=1),
        }
    )
    return render(request, "delivery/target.html", context)


@require_POST
@login_required
def target_deploy(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Deploy the chosen version ("model:number"), then follow its job."""
    context = project_page(request, slug, SECTION)
    found = selectors.target_of(context["project"], pk)
    name, _, number = request.POST.get("version", "").rpartition(":")
    try:
        if not number.isdigit():
            raise Http404("Choose a model version.")
        version = registry.version_of(context["project"], name, int(number))
        deployment = services.deploy(actor=request.user, target=found, version=version)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
        back = request.POST.get("back")
        if back == "version" and number.isdigit():
            return redirect("model_version", slug=slug, name=name, number=int(number))
        return redirect("target", slug=slug, pk=pk)
    messages.success(request, f"Deploying {deployment.version} to {found.name}.")
    return redirect("job", slug=slug, pk=deployment.job_id)


@require_POST
@login_required
def target_rollback(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    context = project_page(request, slug, SECTION)
    found = selectors.target_of(context["project"], pk)
    try:
        deployment = services.rollback(actor=request.user, target=found)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
        return redirect("target", slug=slug, pk=pk)
    messages.success(request, f"Rolling back to {deployment.version}.")
    return redirect("job", slug=slug, pk=deployment.job_id)


@require_POST
@login_required
def target_check(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    context = project_page(request, slug, SECTION)
    found = selectors.target_of(context["project"], pk)
    try:
        live = services.check_target_health(actor=request.user, target=found)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
    else:
        if live is None:
            messages.info(request, "Nothing is live on this target.")
        else:
            messages.success(request, f"{live.get_health_display()}: {live.probe_detail}")
    return redirect("target", slug=slug, pk=pk)


@require_POST
@login_required
def target_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    context = project_page(request, slug, SECTION)
    found = selectors.target_of(context["project"], pk)
    try:
        services.delete_target(actor=request.user, target=found)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
        return redirect("target", slug=slug, pk=pk)
    messages.success(request, f"Removed the target {found.name}.")
    return redirect("deployments", slug=slug)


@require_POST
@login_required
def deployment_stop(request: HttpRequest, slug: str, pk: int, deployment: int) -> HttpResponse:
    context = project_page(request, slug, SECTION)
    found = selectors.deployment_of(selectors.target_of(context["project"], pk), deployment)
    try:
        services.stop_deployment(actor=request.user, deployment=found)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, "Stopped.")
    return redirect("target", slug=slug, pk=pk)


@require_GET
@login_required
def deployment_manifests(request: HttpRequest, slug: str, pk: int, deployment: int) -> HttpResponse:
    """The Kubernetes manifests rendered for a deployment, as YAML to `kubectl apply -f`."""
    context = project_page(request, slug, SECTION)
    found = selectors.deployment_of(selectors.target_of(context["project"], pk), deployment)
    manifests = found.runtime.get("manifests")
    if not manifests:
        raise Http404("No manifests were rendered for this deployment.")
    response = HttpResponse(manifests, content_type="application/yaml")
    response["Content-Disposition"] = f'attachment; filename="quorum-deployment-{found.pk}.yaml"'
    return response
