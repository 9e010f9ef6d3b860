"""Experiments, runs and models of a project, as mirrored from MLflow."""

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from dashboard import charts
from dashboard.views.common import project_page
from governance.access import selectors as access
from governance.access.errors import NotAllowed
from governance.access.models import Project
from governance.access.permissions import require_admin
from governance.access.roles import Capability
from governance.approvals import selectors as approvals
from governance.audit.selectors import history_of
from governance.delivery import profiling
from governance.delivery import selectors as delivery
from governance.errors import DomainError, InvalidInput
from governance.fairness import selectors as fairness
from governance.registry import cards, selectors, services, tables
from governance.registry.models import ModelVersion
from governance.registry.selectors import Column

DEFAULT_COLUMNS = 4  # metric columns shown before the person chooses


@require_GET
@login_required
def experiments(request: HttpRequest, slug: str) -> HttpResponse:
    context = project_page(request, slug, "experiments")
    context["experiments"] = selectors.experiments_of(context["project"])
    return render(request, "registry/experiments.html", context)


@require_GET
@login_required
def experiment(request: HttpRequest, slug: str, experiment_id: str) -> HttpResponse:
    """The runs table: chosen columns, server-side sort and filter, keyset pages."""
    context = project_page(request, slug, "experiments")
    experiment = selectors.experiment_of(context["project"], experiment_id)
    metric_keys, param_keys = selectors.run_keys(experiment)
    chosen = request.GET.getlist("column") or [f"metric:{k}" for k in metric_keys[:DEFAULT_COLUMNS]]
    columns = [Column.parse(text) for text in chosen]
    sort = request.GET.get("sort") or "-start_time"
    page = selectors.runs_page(
        experiment,
        sort=sort,
        status=request.GET.get("status", ""),
        search=request.GET.get("q", "").strip(),
        after=request.GET.get("after") or None,
    )
    kept = request.GET.copy()
    kept.pop("after", None)
    context.update(
        {
            "experiment": experiment,
            "columns": columns,
            "metric_keys": metric_keys,
            "param_keys": param_keys,
            "page": page,
            "sort": sort,
            "query": kept.urlencode(),
            "statuses": selectors.Run.Status.choices,
        }
    )
    template = "registry/_runs.html" if request.htmx else "registry/experiment.html"
    return render(request, template, context)


@require_GET
@login_required
def run(request: HttpRequest, slug: str, run_id: str) -> HttpResponse:
    context = project_page(request, slug, "experiments")
    run = selectors.run_of(context["project"], run_id)
    histories = services.metric_histories(run=run)
    context.update(
        {
            "run": run,
            "inputs": run.inputs.select_related("dataset"),
            "versions": run.model_versions.select_related("model"),
            "chart": charts.metric_histories(histories),
            "params": sorted(run.params.items()),
            "metrics": sorted(run.metrics.items()),
            "tags": sorted((k, v) for k, v in run.tags.items() if not k.startswith("mlflow.")),
        }
    )
    return render(request, "registry/run.html", context)


@require_GET
@login_required
def compare(request: HttpRequest, slug: str) -> HttpResponse:
    """2 to 20 runs side by side: params with differences marked, metrics overlaid."""
    context = project_page(request, slug, "experiments")
    ids = [i for value in request.GET.getlist("run") for i in value.split(",") if i]
    runs = selectors.runs_to_compare(context["project"], ids)
    metric_keys = sorted({key for run in runs for key in run.metrics})
    param_keys = sorted({key for run in runs for key in run.params})
    target = request.GET.get("metric") or (metric_keys[0] if metric_keys else "")
    context.update(
        {
            "runs": runs,
            "param_rows": [
                (key, [run.params.get(key, "") for run in runs],
                 len({run.params.get(key) for run in runs}) > 1)
                for key in param_keys
            ],
            "metric_rows": [(key, [run.metrics.get(key) for run in runs]) for key in metric_keys],
            "metric_keys": metric_keys,
            "target": target,
            "bars": charts.metric_bars(runs, metric_keys),
            "parallel": charts.parallel_coordinates(runs, param_keys, target),
        }
    )  # fmt: skip
    return render(request, "registry/compare.html", context)


@require_GET
@login_required
def models(request: HttpRequest, slug: str) -> HttpResponse:
    context = project_page(request, slug, "models")
    context["models"] = selectors.models_of(context["project"])
    return render(request, "registry/models.html", context)


@require_GET
@login_required
def model(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    return render(request, "registry/model.html", model_context(request, slug, name))


def model_context(request: HttpRequest, slug: str, name: str) -> dict:
    """What the model page shows, also for the retraining form sent back with its errors."""
    context = project_page(request, slug, "models")
    model = selectors.model_of(context["project"], name)
    versions = list(selectors.versions_of(model))
    aliases_of = {}
    for alias, version in model.aliases.items():
        aliases_of.setdefault(version, []).append(alias)
    context.update(
        {
            "model": model,
            "versions": [(v, sorted(aliases_of.get(v.version, []))) for v in versions],
            "timeline": charts.version_timeline(versions),
            "holders": approvals.stage_holders(model),
            "retraining": (policy := delivery.retraining_of(model)),
            "retraining_form": _retraining_form(policy),
            "retraining_fields": {},
            "retraining_runs": delivery.retraining_runs_of(model),
            "may_retrain": Capability.RUN_PIPELINES in context["capabilities"],
        }
    )
    return context


def _retraining_form(policy: object) -> dict:
    """The retraining form's values: the policy's, or those of a new one."""
    if policy is None:
        return {"params": "{}", "seed": 0, "cooldown_minutes": 60, "enabled": True}
    return {
        "entry_point": policy.entry_point,
        "params": json.dumps(policy.params, sort_keys=True),
        "seed": policy.seed,
        "cron": policy.cron,
        "cooldown_minutes": policy.cooldown_minutes,
        "open_approval_for_stage": policy.open_approval_for_stage,
        "on_drift": policy.on_drift,
        "on_new_data": policy.on_new_data,
        "enabled": policy.enabled,
        "auto_deploy": policy.auto_deploy,
    }


def _version(request: HttpRequest, slug: str, name: str, number: int) -> dict:
    context = project_page(request, slug, "models")
    version = selectors.version_of(context["project"], name, number)
    card = selectors.card_of(version)
    sections = card.sections if card else {}
    context.update(
        {
            "version": version,
            "card": card,
            "sections": [
                (key, title, required, hint, sections.get(key, ""))
                for key, title, required, hint in cards.SECTIONS
            ],
            "missing": [cards.TITLES[key] for key in cards.missing(sections)],
            "facts": selectors.facts_of(version),
            "can_edit": Capability.EDIT_MODEL_CARD in context["capabilities"],
            "bias_verdict": fairness.latest_verdict_of(version),
        }
    )
    return context


@require_GET
@login_required
def version(request: HttpRequest, slug: str, name: str, number: int) -> HttpResponse:
    """A version: its card, its lineage, and its history."""
    context = _version(request, slug, name, number)
    version = context["version"]
    context.update(
        {
            "lineage": selectors.lineage_of(version),
            "revisions": selectors.card_revisions(context["card"]),
            "events": list(history_of("modelversion", f"{name}/{number}")[:15]),
            "releases": approvals.approvals_of_version(version),
            "stages": [p.stage for p in approvals.policies_of(context["project"])],
            "may_request": Capability.REQUEST_RELEASE in context["capabilities"],
            "comments": approvals.comments_on(version=version),
            "bias_reports": list(fairness.reports_of(version)[:10]),
            "may_assess": Capability.MANAGE_MONITORING in context["capabilities"],
            "comment_action": reverse("version_comment", args=[slug, name, number]),
            "package_job": delivery.latest_package_job_of(version),
            "may_package": Capability.RUN_PIPELINES in context["capabilities"],
            "deploy_targets": delivery.deploy_targets_for(version)
            if Capability.RUN_PIPELINES in context["capabilities"]
            else [],
        }
    )
    context.update(_profile(version, context["may_package"]))
    if context["may_assess"]:
        context.update(fairness.request_choices(context["project"]))
    return render(request, "registry/version.html", context)


def _profile(version: ModelVersion, may_profile: bool) -> dict:
    """The version's newest profile job, the newest that succeeded with its figures as rows
    and its recommended resources, and what a new one may validate on: one query without
    profiles, at most four whatever the number of jobs."""
    job = delivery.latest_profile_job_of(version)
    profile = job if job is not None and job.state == "succeeded" else None
    if job is not None and profile is None:
        profile = delivery.latest_profile_of(version)
    return {
        "profile_job": job,
        "profile": profile,
        "recommendation": (profile.result or {}).get("recommendation") if profile else None,
        "profile_rows": profiling.table_of(profile.result) if profile else [],
        "profile_choices": delivery.profile_data_choices(version) if may_profile else [],
        "batch_sizes": profiling.BATCH_SIZES,
    }


@require_http_methods(["GET", "POST"])
@login_required
def card_edit(request: HttpRequest, slug: str, name: str, number: int) -> HttpResponse:
    context = _version(request, slug, name, number)
    if not context["can_edit"]:
        raise NotAllowed("Your role may read this card, not edit it.")
    error, status = "", 200
    if request.method == "POST":
        sections = {key: request.POST.get(key, "") for key in cards.KEYS}
        based_on = request.POST.get("based_on", "")
        try:
            services.edit_model_card(
                actor=request.user,
                version=context["version"],
                sections=sections,
                note=request.POST.get("note", ""),
                based_on=int(based_on) if based_on.isdigit() else None,
            )
        except DomainError as exc:
            error, status = exc.message, exc.status
            context["sections"] = [
                (key, title, required, hint, sections[key])
                for key, title, required, hint, _ in context["sections"]
            ]
        else:
            messages.success(request, "Card saved.")
            return redirect("model_version", slug=slug, name=name, number=number)
    context["error"] = error
    return render(request, "registry/card_edit.html", context, status=status)


@require_GET
@login_required
def card_export(request: HttpRequest, slug: str, name: str, number: int, fmt: str) -> HttpResponse:
    """The card as Markdown, HTML or JSON, to attach to a review or keep."""
    if fmt not in {"md", "html", "json"}:
        raise Http404
    context = _version(request, slug, name, number)
    context["recommendation"] = delivery.recommendation_of(context["version"])
    card = context["card"]
    sections = card.sections if card else {}
    revision = card.revision if card else 0
    filename = f"{name}-v{number}-card"
    verdict = context["bias_verdict"]
    if verdict is not None:
        url = reverse("bias_report", args=[slug, verdict.pk])
        context["bias_url"] = request.build_absolute_uri(url)
    if fmt == "md":
        bias = None
        if verdict is not None:
            bias = {"id": verdict.pk, "passed": verdict.passed, "url": context["bias_url"],
                    "on": f"{verdict.dataset.name}, by {' and '.join(verdict.sensitive)}",
                    "reasons": verdict.judgement.get("reasons", [])}  # fmt: skip
        body = cards.to_markdown(
            sections, context["facts"], revision, bias, context["recommendation"]
        )
        response = HttpResponse(body, content_type="text/markdown; charset=utf-8")
    elif fmt == "json":
        response = JsonResponse(
            cards.to_json(sections, context["facts"], revision, context["recommendation"]),
            json_dumps_params={"indent": 2},
        )
    else:
        response = render(request, "registry/card_export.html", context)
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


@require_http_methods(["GET", "POST"])
@login_required
def links(request: HttpRequest, slug: str) -> HttpResponse:
    """Which MLflow experiments and models the project owns; product owners link more."""
    context = project_page(request, slug, "models")
    project = context["project"]
    access.project_for(request.user, slug, Capability.LINK_MLFLOW)
    error, status = "", 200
    if request.method == "POST":
        action = request.POST.get("action", "link")
        change = services.unlink_from_project if action == "unlink" else services.link_to_project
        try:
            change(
                actor=request.user,
                kind=request.POST.get("kind", ""),
                name=request.POST.get("name", "").strip(),
                project=project,
            )
        except DomainError as exc:
            error, status = exc.message, exc.status
        else:
            messages.success(request, "Linked." if action == "link" else "Unlinked.")
            return redirect("mlflow_links", slug=slug)
    experiments, models = selectors.owned_by(project)
    context.update({"experiments": experiments, "models": models, "error": error})
    return render(request, "registry/links.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """Admins: MLflow objects no project owns yet, each linkable to a project."""
    require_admin(request.user)
    if request.method == "POST":
        slug = request.POST.get("project", "")
        project = Project.objects.filter(slug=slug).first()
        try:
            if project is None:
                raise InvalidInput("Choose a project.")
            services.link_to_project(
                actor=request.user,
                kind=request.POST.get("kind", ""),
                name=request.POST.get("name", ""),
                project=project,
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Linked to {project.name}.")
        return redirect("mlflow_inbox")
    experiments, models = selectors.unclaimed()
    context = {
        "experiments": experiments,
        "models": models,
        "projects": Project.objects.filter(archived_at=None).order_by("name"),
    }
    return render(request, "registry/inbox.html", context)


@require_GET
@login_required
def search(request: HttpRequest) -> HttpResponse:
    """Experiments, runs and models by name, across the person's projects."""
    text = request.GET.get("q", "")
    results, error, status = None, "", 200
    if text:
        try:
            results = selectors.search(access.projects_for(request.user), text)
        except DomainError as exc:
            error, status = exc.message, exc.status
    context = {"q": text, "results": results, "error": error}
    return render(request, "registry/search.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def datasets(request: HttpRequest, slug: str) -> HttpResponse:
    """The project's data set versions; data scientists register more, hashed whole."""
    context = project_page(request, slug, "datasets")
    project = context["project"]
    error, status = "", 200
    if request.method == "POST":
        access.project_for(request.user, slug, Capability.PUBLISH_MODEL)
        name, uri = request.POST.get("name", ""), request.POST.get("uri", "").strip()
        upload = request.FILES.get("file")
        try:
            if upload is not None and uri:
                raise InvalidInput("Upload a file or give a URI, not both.")
            if upload is None and not uri:
                raise InvalidInput("Upload a file or give a URI.")
            content = upload or services.open_dataset_uri(uri)
            source = upload.name if upload else uri
            with content:
                if request.POST.get("keep"):
                    limit = settings.QUORUM_MAX_DATASET_BYTES
                    dataset = services.keep_table(
                        actor=request.user,
                        project=project,
                        name=name,
                        table=tables.read(content, source.split("?")[0], limit=limit),
                        source=source,
                    )
                else:
                    dataset = services.register_dataset(
                        actor=request.user,
                        project=project,
                        name=name,
                        content=content,
                        source=source,
                        kind="upload" if upload else "uri",
                    )
        except DomainError as exc:
            error, status = exc.message, exc.status
        else:
            kept = "kept as a table, " if dataset.stored else ""
            messages.success(
                request, f"{dataset.name} registered, {kept}SHA-256 {dataset.sha256[:12]}…"
            )
            return redirect("datasets", slug=slug)
    context.update(
        {
            "datasets": selectors.datasets_of(project),
            "error": error,
            "can_register": Capability.PUBLISH_MODEL in context["capabilities"],
        }
    )
    return render(request, "registry/datasets.html", context, status=status)
