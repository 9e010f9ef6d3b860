"""Jobs of a project: the list with what they cost, and a page per job that follows it live."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dashboard.views.common import project_page, raise_refusal
from governance.access.roles import Capability
from governance.delivery import kinds, packaging, selectors, services
from governance.delivery.errors import NoRetrainingPolicy
from governance.errors import DomainError, InvalidInput
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


@require_POST
@login_required
def profile_version(request: HttpRequest, slug: str, name: str, number: int) -> HttpResponse:
    """Queue a profile job for the version on the chosen validation data, and follow it."""
    context = project_page(request, slug, "models")
    version = registry.version_of(context["project"], name, number)
    try:
        started = services.start_job(
            actor=request.user, project=context["project"], kind="profile", version=version,
            params=_profile_params(request.POST),
        )  # fmt: skip
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
        return redirect("model_version", slug=slug, name=name, number=number)
    return redirect("job", slug=slug, pk=started.pk)


def _profile_params(form: QueryDict) -> dict:
    """The form's fields as the job's parameters: `data` is `batch:<id>` or `monitor:<id>`,
    headroom is given in percent. What does not parse is passed on as typed, for the job's
    check to name."""
    params: dict = {}
    source, _, key = form.get("data", "").partition(":")
    if source in ("batch", "monitor"):
        params[source] = int(key) if key.isdigit() else key
    for field, scale in (("target_rows_per_second", 1), ("headroom", 100)):
        text = form.get(field, "").strip()
        if text:
            try:
                params[field] = float(text) / scale
            except ValueError:
                params[field] = text
    size = form.get("batch_size", "").strip()
    if size:
        params["batch_size"] = int(size) if size.isdigit() else size
    return params


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


TEXT_FIELDS = (
    "entry_point", "params", "seed", "cron", "cooldown_minutes", "open_approval_for_stage"
)  # fmt: skip
SWITCHES = ("on_new_data", "on_drift", "enabled", "auto_deploy")


@require_POST
@login_required
def retraining_save(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    """Save the model's retraining policy; a refused one comes back with its errors."""
    from dashboard.views.registry import model_context  # that page hosts the form

    context = project_page(request, slug, "models")
    model = registry.model_of(context["project"], name)
    posted = request.POST
    try:
        policy = services.save_retraining_policy(
            actor=request.user,
            model=model,
            entry_point=posted.get("entry_point", ""),
            params=_json_field(posted.get("params", ""), "params"),
            seed=_int_field(posted.get("seed", "0"), "seed"),
            cron=posted.get("cron", ""),
            on_new_data="on_new_data" in posted,
            on_drift="on_drift" in posted,
            cooldown_minutes=_int_field(posted.get("cooldown_minutes", "0"), "cooldown_minutes"),
            enabled="enabled" in posted,
            open_approval_for_stage=posted.get("open_approval_for_stage", ""),
            auto_deploy="auto_deploy" in posted,
        )
    except DomainError as exc:
        context = model_context(request, slug, name)
        form = {name: posted.get(name, "") for name in TEXT_FIELDS}
        form.update({name: name in posted for name in SWITCHES})
        context.update(
            {"retraining_error": exc.message, "retraining_fields": exc.fields,
             "retraining_form": form}
        )  # fmt: skip
        return render(request, "registry/model.html", context, status=exc.status)
    messages.success(request, f"Retraining policy of {policy.model.name} saved.")
    return redirect(reverse("model", args=[slug, name]) + "#retraining")


@require_POST
@login_required
def retraining_run_now(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    """Start a retraining run now and follow its job."""
    context = project_page(request, slug, "models")
    model = registry.model_of(context["project"], name)
    try:
        policy = selectors.retraining_of(model)
        if policy is None:
            raise NoRetrainingPolicy
        run = services.trigger_retraining(policy=policy, trigger="manual", actor=request.user)
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
        return redirect(reverse("model", args=[slug, name]) + "#retraining")
    return redirect("job", slug=slug, pk=run.job_id)


@require_POST
@login_required
def retraining_rerun(request: HttpRequest, slug: str, name: str, pk: int) -> HttpResponse:
    """Run a recorded run again on the same inputs and follow its job."""
    context = project_page(request, slug, "models")
    model = registry.model_of(context["project"], name)
    try:
        again = services.rerun(actor=request.user, run=selectors.retraining_run_of(model, pk))
    except DomainError as exc:
        raise_refusal(exc)
        messages.error(request, exc.message)
        return redirect(reverse("model", args=[slug, name]) + "#retraining")
    return redirect("job", slug=slug, pk=again.job_id)


def _json_field(text: str, field: str) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError as error:
        raise InvalidInput(fields={field: [f"Not JSON: {error}."]}) from None
    if not isinstance(value, dict):
        raise InvalidInput(fields={field: ['An object, such as {"C": 1.0}.']})
    return value


def _int_field(text: str, field: str) -> int:
    try:
        return int((text or "0").strip())
    except ValueError:
        raise InvalidInput(fields={field: ["A whole number."]}) from None


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
