"""Experiments, runs and models of a project, as mirrored from MLflow."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard import charts
from governance.access import selectors as access
from governance.registry import selectors, services
from governance.registry.selectors import Column

DEFAULT_COLUMNS = 4  # metric columns shown before the person chooses


def _common(request: HttpRequest, slug: str, section: str) -> dict:
    project, capabilities = access.project_for(request.user, slug)
    return {
        "project": project,
        "capabilities": capabilities,
        "section": section,
        "last_sync": selectors.last_sync(),
    }


@require_GET
@login_required
def experiments(request: HttpRequest, slug: str) -> HttpResponse:
    context = _common(request, slug, "experiments")
    context["experiments"] = selectors.experiments_of(context["project"])
    return render(request, "registry/experiments.html", context)


@require_GET
@login_required
def experiment(request: HttpRequest, slug: str, experiment_id: str) -> HttpResponse:
    """The runs table: chosen columns, server-side sort and filter, keyset pages."""
    context = _common(request, slug, "experiments")
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
    context = _common(request, slug, "experiments")
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
    context = _common(request, slug, "experiments")
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
    context = _common(request, slug, "models")
    context["models"] = selectors.models_of(context["project"])
    return render(request, "registry/models.html", context)


@require_GET
@login_required
def model(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    context = _common(request, slug, "models")
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
        }
    )
    return render(request, "registry/model.html", context)
