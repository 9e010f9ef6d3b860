"""Reads of the mirror for the pages and the API, always within one project."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from governance.access.models import Membership, Project
from governance.access.roles import Role
from governance.errors import InvalidInput
from governance.registry import cards
from governance.registry.errors import (
    ExperimentNotFound,
    ModelNotFound,
    RunNotFound,
    VersionNotFound,
)
from governance.registry.models import (
    EPOCH,
    DatasetVersion,
    Experiment,
    ModelCard,
    ModelCardRevision,
    ModelVersion,
    RegisteredModel,
    Run,
    SyncRun,
)

PAGE_SIZE = 50
# Where missing values sort: after everything, whichever the direction.
LOWEST = -1.7976931348623157e308


def experiments_of(project: Project) -> QuerySet[Experiment]:
    """The project's experiments with their run count and last run's start, by name."""
    # Per experiment by subqueries on the run indexes: a join grouped by experiment reads
    # every run of the site (100,000 runs: 90 ms; this way 1 ms).
    runs = Run.objects.filter(experiment=OuterRef("pk")).order_by()
    counted = runs.values("experiment").annotate(n=Count("pk")).values("n")
    newest = runs.filter(start_time__isnull=False).order_by("-start_time").values("start_time")
    return (
        Experiment.objects.filter(project=project)
        .annotate(
            run_count=Coalesce(Subquery(counted), 0),
            last_run_at=Subquery(newest[:1]),
        )
        .order_by("lifecycle", "name")
    )


def experiment_of(project: Project, mlflow_id: str) -> Experiment:
    experiment = Experiment.objects.filter(project=project, mlflow_id=mlflow_id).first()
    if experiment is None:
        raise ExperimentNotFound
    return experiment


@dataclass(frozen=True)
class Column:
    """A run column chosen by the person: `metric:roc_auc` or `param:C`."""

    kind: str
    key: str

    @classmethod
    def parse(cls, text: str) -> "Column":
        kind, _, key = text.partition(":")
        if kind not in {"metric", "param"} or not key or len(key) > 250:
            raise InvalidInput(
                f"“{text}” is not a column: write metric:NAME or param:NAME.",
                fields={"columns": ["Write metric:NAME or param:NAME."]},
            )
        return cls(kind, key)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_cursor: str | None


def run_keys(experiment: Experiment, limit: int = 500) -> tuple[list[str], list[str]]:
    """The metric and param names used in the experiment's latest runs, for the column menu."""
    metrics: set[str] = set()
    params: set[str] = set()
    newest = Coalesce(F("start_time"), Value(EPOCH)).desc()  # the order the index keeps
    recent = experiment.runs.order_by(newest, "-id").values_list("metrics", "params")[:limit]
    for run_metrics, run_params in recent:
        metrics.update(run_metrics)
        params.update(run_params)
    return sorted(metrics), sorted(params)


def runs_page(
    experiment: Experiment,
    *,
    sort: str = "-start_time",
    status: str = "",
    search: str = "",
    include_deleted: bool = False,
    after: str | None = None,
    size: int = PAGE_SIZE,
) -> RunPage:
    """One page of the experiment's runs, sorted by start time or by any metric or param,
    with keyset pagination: the cost of a page does not grow with how far one reads.

    Raises InvalidInput for an unknown sort or a cursor that does not fit it.
    """
    descending = sort.startswith("-")
    field = sort.removeprefix("-")
    runs = experiment.runs.all()
    if not include_deleted:
        runs = runs.filter(lifecycle="active")
    if status:
        if status not in Run.Status.values:
            raise InvalidInput(fields={"status": [f"One of {', '.join(Run.Status.values)}."]})
        runs = runs.filter(status=status)
    if search:
        runs = runs.filter(Q(name__icontains=search) | Q(mlflow_id=search))
    if field == "start_time":
        # Scheduled runs have no start yet: they sort as the oldest.
        runs = runs.annotate(sort_value=Coalesce(F("start_time"), Value(EPOCH)))
    else:
        column = Column.parse(field)
        text = KeyTextTransform(column.key, "metrics" if column.kind == "metric" else "params")
        value = (
            Coalesce(Cast(text, FloatField()), Value(LOWEST))
            if column.kind == "metric"
            else Coalesce(text, Value(""), output_field=TextField())
        )
        runs = runs.annotate(sort_value=value)
    order = ("-sort_value", "-id") if descending else ("sort_value", "id")
    runs = runs.order_by(*order)
    if after:
        runs = _after(runs, after, field, descending)
    page = list(runs.select_related("experiment")[: size + 1])
    more = len(page) > size
    page = page[:size]
    cursor = _cursor(page[-1], field) if more else None
    return RunPage(page, cursor)


def _cursor(run: Run, field: str) -> str:
    value = run.sort_value
    return f"{value.isoformat() if field == 'start_time' else value}|{run.pk}"


def _after(runs: QuerySet[Run], cursor: str, field: str, descending: bool) -> QuerySet[Run]:
    value, _, pk = cursor.rpartition("|")
    if not pk.isdigit():
        raise InvalidInput("This page link is broken; start from the first page.")
    try:
        if field.startswith("metric:"):
            value = float(value)
        elif field == "start_time":
            value = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("This page link is broken; start from the first page.") from None
    beyond = "lt" if descending else "gt"
    return runs.filter(
        Q(**{f"sort_value__{beyond}": value}) | Q(sort_value=value, **{f"id__{beyond}": int(pk)})
    )


def run_of(project: Project, mlflow_id: str) -> Run:
    run = (
        Run.objects.filter(experiment__project=project, mlflow_id=mlflow_id)
        .select_related("experiment")
        .first()
    )
    if run is None:
        raise RunNotFound
    return run


def runs_to_compare(project: Project, mlflow_ids: list[str]) -> list[Run]:
    """2 to 20 runs of the project, in the order asked. Raises InvalidInput, RunNotFound."""
    unique = list(dict.fromkeys(mlflow_ids))
    if not 2 <= len(unique) <= 20:
        raise InvalidInput(
            "Compare 2 to 20 runs.", fields={"runs": [f"{len(unique)} given; pick 2 to 20."]}
        )
    found = {
        run.mlflow_id: run
        for run in Run.objects.filter(
            experiment__project=project, mlflow_id__in=unique
        ).select_related("experiment")
    }
    if len(found) != len(unique):
        raise RunNotFound
    return [found[mlflow_id] for mlflow_id in unique]


def models_of(project: Project) -> QuerySet[RegisteredModel]:
    """The project's registered models with their version count and latest version."""
    latest = (
        ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-version").values("version")[:1]
    )
    return (
        RegisteredModel.objects.filter(project=project)
        .annotate(version_count=Count("versions"), latest_version=Subquery(latest))
        .order_by("lifecycle", "name")
    )


def model_of(project: Project, name: str) -> RegisteredModel:
    model = RegisteredModel.objects.filter(project=project, name=name).first()
    if model is None:
        raise ModelNotFound
    return model


def versions_of(model: RegisteredModel) -> QuerySet[ModelVersion]:
    return model.versions.select_related("run").order_by("-version")


def last_sync() -> SyncRun | None:
    """The latest sync that finished, and whether the one after it failed."""
    return SyncRun.objects.exclude(state=SyncRun.State.RUNNING).order_by("-started_at").first()


def version_of(project: Project, model_name: str, number: int) -> ModelVersion:
    version = (
        ModelVersion.objects.filter(model__project=project, model__name=model_name, version=number)
        .select_related("model__project", "run__experiment")
        .first()
    )
    if version is None:
        raise VersionNotFound
    return version


def card_of(version: ModelVersion) -> ModelCard | None:
    return ModelCard.objects.filter(version=version).select_related("edited_by").first()


def card_revisions(card: ModelCard | None) -> list[ModelCardRevision]:
    return list(card.revisions.all()[:20]) if card else []


def facts_of(version: ModelVersion) -> cards.Facts:
    """What Quorum knows of a version: its run's metrics, params and data, its signature,
    and the project's product owners. Reads the run's inputs and the owners: two queries."""
    run = version.run
    data = []
    if run is not None:
        data = [
            {"name": used.dataset.name, "digest": used.dataset.digest, "context": used.context}
            for used in run.inputs.select_related("dataset").order_by("context", "dataset__name")
        ]
    owners = []
    if version.model.project_id:
        owners = sorted(
            Membership.objects.filter(
                project_id=version.model.project_id, role=Role.PRODUCT_OWNER
            ).values_list("user__username", flat=True)
        )
    return cards.Facts(
        model=version.model.name,
        version=version.version,
        run=version.run_mlflow_id,
        code_version=run.code_version if run else "",
        metrics=run.metrics if run else {},
        params=run.params if run else {},
        data=data,
        signature=version.signature,
        owners=owners,
    )


def lineage_of(version: ModelVersion) -> dict:
    """The version's ancestry as a graph: data sets → run → version.

    Nodes carry a kind, an id, a label and details; edges go from source to result.
    """
    nodes, edges = [], []
    version_id = f"version:{version.model.name}/{version.version}"
    nodes.append(
        {
            "kind": "version",
            "id": version_id,
            "label": f"{version.model.name} v{version.version}",
            "details": {"status": version.status, "source": version.source},
        }
    )
    run = version.run
    if run is None:
        if version.run_mlflow_id:
            nodes.append(
                {
                    "kind": "run",
                    "id": f"run:{version.run_mlflow_id}",
                    "label": version.run_mlflow_id,
                    "details": {"mirrored": False},
                }
            )
            edges.append({"from": f"run:{version.run_mlflow_id}", "to": version_id, "label": ""})
        return {"nodes": nodes, "edges": edges}
    run_id = f"run:{run.mlflow_id}"
    nodes.append(
        {
            "kind": "run",
            "id": run_id,
            "label": run.name or run.mlflow_id,
            "details": {
                "experiment": run.experiment.name,
                "code_version": run.code_version,
                "source": run.source_name,
                "params": run.params,
                "user": run.user,
            },
        }
    )
    edges.append({"from": run_id, "to": version_id, "label": "registered as"})
    for used in run.inputs.select_related("dataset").order_by("context", "dataset__name"):
        dataset = used.dataset
        dataset_id = f"dataset:{dataset.name}@{dataset.digest}"
        nodes.append(
            {
                "kind": "dataset",
                "id": dataset_id,
                "label": dataset.name,
                "details": {
                    "digest": dataset.digest,
                    "source": dataset.source,
                    "sha256": dataset.sha256,
                    "rows": dataset.profile.get("num_rows"),
                },
            }
        )
        edges.append({"from": dataset_id, "to": run_id, "label": used.context or "used"})
    return {"nodes": nodes, "edges": edges}


def unclaimed() -> tuple[list[Experiment], list[RegisteredModel]]:
    """The inbox: live experiments and models that no project owns yet (admins see it)."""
    return (
        list(Experiment.objects.filter(project=None, lifecycle="active").order_by("name")),
        list(RegisteredModel.objects.filter(project=None, lifecycle="active").order_by("name")),
    )


def owned_by(project: Project) -> tuple[list[Experiment], list[RegisteredModel]]:
    """What the project owns, each saying whether by its MLflow tag or by a link in Quorum."""
    return (
        list(Experiment.objects.filter(project=project).order_by("name")),
        list(RegisteredModel.objects.filter(project=project).order_by("name")),
    )


@dataclass(frozen=True)
class SearchResults:
    experiments: list[Experiment]
    runs: list[Run]
    models: list[RegisteredModel]

    def __bool__(self) -> bool:
        return bool(self.experiments or self.runs or self.models)


def search(projects: QuerySet[Project], text: str, limit: int = 10) -> SearchResults:
    """Experiments, runs and models of `projects` whose name contains `text` (a run also by
    its exact id). Raises InvalidInput for fewer than 2 characters. Three queries."""
    text = text.strip()
    if len(text) < 2:
        raise InvalidInput("Search for at least 2 characters.", fields={"q": ["Too short."]})
    if len(text) > 200:
        raise InvalidInput("Search for at most 200 characters.", fields={"q": ["Too long."]})
    experiments = Experiment.objects.filter(project__in=projects, name__icontains=text)
    runs = Run.objects.filter(experiment__project__in=projects).filter(
        Q(name__icontains=text) | Q(mlflow_id=text)
    )
    models = RegisteredModel.objects.filter(project__in=projects, name__icontains=text)
    return SearchResults(
        list(experiments.select_related("project").order_by("name")[:limit]),
        list(runs.select_related("experiment__project").order_by("-start_time")[:limit]),
        list(models.select_related("project").order_by("name")[:limit]),
    )


def datasets_of(project: Project) -> QuerySet[DatasetVersion]:
    """Data set versions the project's runs used or that were registered to it, with how
    many of its runs used each."""
    return (
        DatasetVersion.objects.filter(
            Q(project=project) | Q(uses__run__experiment__project=project)
        )
        .annotate(
            run_count=Count("uses", filter=Q(uses__run__experiment__project=project), distinct=True)
        )
        .order_by("name", "-created_at")
    )


# For the people's home pages: across the projects a person works in.


class AliasCount(Func):
    """How many keys a JSON object column holds (a model's aliases), in SQL."""

    template = "(SELECT COUNT(*) FROM json_each(%(expressions)s))"
    output_field = IntegerField()

    def as_postgresql(
        self, compiler: object, connection: object, **extra_context: object
    ) -> tuple[str, list]:
        return self.as_sql(
            compiler,
            connection,
            template="(SELECT COUNT(*) FROM jsonb_object_keys(%(expressions)s))",
            **extra_context,
        )


# How a stage alias ranks in lists of live models: production first, then staging, then the
# rest by name.
STAGE_RANKS = {"production": 0, "staging": 1}


def _stage_rank(alias: str) -> int:
    return STAGE_RANKS.get(alias, len(STAGE_RANKS))


@dataclass(frozen=True)
class LiveModels:
    """The first aliases of the projects' models, and how many aliases each project holds."""

    rows: list[tuple[RegisteredModel, str, int]]
    # (project slug, project name, aliases in the project), by project name.
    per_project: list[tuple[str, str, int]]

    @property
    def total(self) -> int:
        return sum(count for _, _, count in self.per_project)


def live_models_in(
    project_ids: list[int], *, limit: int = 8, first: QuerySet | None = None
) -> LiveModels:
    """(model, stage alias, version number) for the first `limit` aliases of the projects'
    models, and the count of all of them per project: two queries, however many models.

    Aliases sort by the models whose id `first` (a query of model ids, e.g. the models with
    open alerts) yields, then production before staging before other aliases, then by model
    name. Reads each row's model with its project.
    """
    models = RegisteredModel.objects.filter(project_id__in=project_ids).exclude(aliases={})
    # A model sorts by its best alias, so the first `limit` models hold the first `limit`
    # aliases: each model before them holds an alias that sorts before any of theirs.
    ahead = Value(1) if first is None else Case(When(pk__in=first, then=0), default=1)
    best_stage = Case(
        *(When(aliases__has_key=alias, then=rank) for alias, rank in STAGE_RANKS.items()),
        default=len(STAGE_RANKS),
    )
    chosen = (
        models.annotate(ahead=ahead, best_stage=best_stage)
        .select_related("project")
        .only("name", "aliases", "project__slug", "project__name")
        .order_by("ahead", "best_stage", "name")[:limit]
    )
    rows = sorted(
        (
            (model.ahead, _stage_rank(alias), model.name, alias, model, int(number))
            for model in chosen
            for alias, number in model.aliases.items()
        ),
        key=lambda row: row[:4],
    )
    per_project = (
        models.order_by("project__name")
        .values_list("project__slug", "project__name")
        .annotate(count=Sum(AliasCount("aliases")))
    )
    return LiveModels(
        rows=[(model, alias, number) for *_, alias, model, number in rows[:limit]],
        per_project=list(per_project),
    )


def recent_runs_by(username: str, project_ids: list[int], limit: int = 5) -> list[Run]:
    """The person's newest MLflow runs (by MLflow's user) in the projects."""
    return list(
        Run.objects.filter(user=username, experiment__project_id__in=project_ids)
        .select_related("experiment__project")
        .order_by("-start_time", "-pk")[:limit]
    )


def versions_of_person(username: str, project_ids: list[int]) -> QuerySet[ModelVersion]:
    """The model versions the person registered or whose run they made, in the projects."""
    # The runs by a subquery on their user index, not a join: a join with the OR reads every
    # run of the projects.
    theirs = Run.objects.filter(user=username).values("pk")
    return ModelVersion.objects.filter(model__project_id__in=project_ids).filter(
        Q(user=username) | Q(run__in=theirs)
    )


def versions_by(username: str, project_ids: list[int], limit: int = 5) -> list[ModelVersion]:
    """The newest model versions the person registered or whose run they made."""
    return list(
        versions_of_person(username, project_ids)
        .select_related("model__project")
        .order_by("-created_at", "-pk")[:limit]
    )


def versions_in_stages(pairs: list[tuple[int, int]]) -> list[ModelVersion]:
    """The versions named by (model id, version number) pairs, in one query."""
    if not pairs:
        return []
    # The models' versions with any of the numbers, the unwanted pairs dropped here: one OR
    # per pair costs Django and PostgreSQL more than the few extra rows (a model's aliases
    # mostly name its newest versions).
    wanted = set(pairs)
    found = ModelVersion.objects.filter(
        model_id__in={m for m, _ in wanted}, version__in={n for _, n in wanted}
    ).select_related("model__project")
    return [v for v in found if (v.model_id, v.version) in wanted]
