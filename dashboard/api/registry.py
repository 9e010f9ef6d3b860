"""/api/v1/projects/{slug}/experiments, runs, models, versions and data sets."""

from django.urls import reverse
from django.utils.http import urlencode
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.pagination import CursorPagination
from governance.access import selectors as access
from governance.access.roles import Capability
from governance.delivery import selectors as delivery
from governance.errors import InvalidInput
from governance.registry import cards, selectors, services
from governance.registry.errors import ModelNotFound
from governance.registry.models import DatasetVersion, ModelVersion


class ExperimentOut(serializers.Serializer):
    id = serializers.CharField(source="mlflow_id")
    name = serializers.CharField()
    lifecycle = serializers.CharField()
    tags = serializers.DictField()
    run_count = serializers.IntegerField()
    last_run_at = serializers.DateTimeField(allow_null=True)


class RunBriefOut(serializers.Serializer):
    id = serializers.CharField(source="mlflow_id")
    name = serializers.CharField()
    status = serializers.CharField()
    user = serializers.CharField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    lifecycle = serializers.CharField()
    metrics = serializers.DictField(help_text="Latest values; NaN and infinities by name.")
    params = serializers.DictField()


class DatasetOut(serializers.Serializer):
    name = serializers.CharField()
    digest = serializers.CharField()
    source_type = serializers.CharField()
    source = serializers.CharField()
    schema = serializers.DictField()
    profile = serializers.DictField()
    sha256 = serializers.CharField()


class RunInputOut(serializers.Serializer):
    context = serializers.CharField()
    dataset = DatasetOut()


class RunOut(RunBriefOut):
    experiment = serializers.CharField(source="experiment.mlflow_id")
    tags = serializers.DictField()
    code_version = serializers.CharField()
    source_name = serializers.CharField()
    artifact_uri = serializers.CharField()
    inputs = RunInputOut(many=True, source="inputs.all")


class RunsPageOut(serializers.Serializer):
    results = RunBriefOut(many=True)
    next = serializers.CharField(allow_null=True)


class MetricHistoryOut(serializers.Serializer):
    key = serializers.CharField()
    points = serializers.ListField(
        child=serializers.ListField(), help_text="[step, timestamp ms, value]"
    )


class VersionOut(serializers.Serializer):
    version = serializers.IntegerField()
    aliases = serializers.SerializerMethodField()
    run = serializers.CharField(source="run_mlflow_id")
    logged_model_id = serializers.CharField()
    source = serializers.CharField()
    status = serializers.CharField()
    signature = serializers.DictField()
    tags = serializers.DictField()
    description = serializers.CharField()
    user = serializers.CharField()
    lifecycle = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)

    def get_aliases(self, version: ModelVersion) -> list[str]:
        return sorted(a for a, v in version.model.aliases.items() if v == version.version)


class ModelOut(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    aliases = serializers.DictField(child=serializers.IntegerField())
    tags = serializers.DictField()
    lifecycle = serializers.CharField()
    version_count = serializers.IntegerField()
    latest_version = serializers.IntegerField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class ModelDetailOut(ModelOut):
    versions = VersionOut(many=True, source="version_list")


class SyncOut(serializers.Serializer):
    queued = serializers.BooleanField()
    full = serializers.BooleanField()


class SyncIn(serializers.Serializer):
    full = serializers.BooleanField(default=False)


class NameOrdering(CursorPagination):
    ordering = "name"


class ExperimentListView(generics.GenericAPIView):
    pagination_class = NameOrdering

    @extend_schema(responses=ExperimentOut(many=True), summary="The project's experiments")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        page = self.paginate_queryset(selectors.experiments_of(project).order_by("name"))
        return self.get_paginated_response(ExperimentOut(page, many=True).data)


class RunListView(APIView):
    @extend_schema(
        responses=RunsPageOut,
        summary="An experiment's runs, sorted and filtered, by keyset pages",
        parameters=[
            OpenApiParameter(
                "sort", OpenApiTypes.STR, description="start_time, metric:KEY or param:KEY; "
                "a leading - sorts descending. Default -start_time."
            ),
            OpenApiParameter("status", OpenApiTypes.STR),
            OpenApiParameter("q", OpenApiTypes.STR, description="Part of a run's name, or its id."),
            OpenApiParameter("after", OpenApiTypes.STR, description="The `next` cursor."),
        ],
    )  # fmt: skip
    def get(self, request: Request, slug: str, experiment_id: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        experiment = selectors.experiment_of(project, experiment_id)
        query = request.query_params
        page = selectors.runs_page(
            experiment,
            sort=query.get("sort") or "-start_time",
            status=query.get("status", ""),
            search=query.get("q", "").strip(),
            after=query.get("after") or None,
        )
        following = None
        if page.next_cursor:
            kept = {k: v for k, v in query.items() if k != "after"}
            path = reverse("api-runs", args=[slug, experiment_id])
            following = request.build_absolute_uri(
                f"{path}?{urlencode({**kept, 'after': page.next_cursor})}"
            )
        body = {"results": RunBriefOut(page.runs, many=True).data, "next": following}
        return Response(body)


class RunDetailView(APIView):
    @extend_schema(responses=RunOut, summary="One run with its data sets")
    def get(self, request: Request, slug: str, run_id: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        return Response(RunOut(selectors.run_of(project, run_id)).data)


class MetricHistoryView(APIView):
    @extend_schema(responses=MetricHistoryOut, summary="A metric's values over steps")
    def get(self, request: Request, slug: str, run_id: str, key: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        run = selectors.run_of(project, run_id)
        if key not in run.metrics:
            raise InvalidInput(f"The run has no metric “{key}”.")
        histories = services.metric_histories(run=run)
        return Response({"key": key, "points": histories.get(key, [])})


class ModelListView(generics.GenericAPIView):
    pagination_class = NameOrdering

    @extend_schema(responses=ModelOut(many=True), summary="The project's registered models")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        page = self.paginate_queryset(selectors.models_of(project).order_by("name"))
        return self.get_paginated_response(ModelOut(page, many=True).data)


class ModelDetailView(APIView):
    @extend_schema(responses=ModelDetailOut, summary="A model with its versions")
    def get(self, request: Request, slug: str, name: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        model = selectors.models_of(project).filter(name=name).first()
        if model is None:
            raise ModelNotFound
        model.version_list = list(selectors.versions_of(model).select_related("model"))
        return Response(ModelDetailOut(model).data)


class DatasetIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    uri = serializers.CharField(required=False, allow_blank=True, default="")
    file = serializers.FileField(required=False, allow_null=True, default=None)


class DatasetListView(generics.GenericAPIView):
    pagination_class = NameOrdering
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(responses=DatasetOut(many=True), summary="Data sets the project's runs used")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        datasets = DatasetVersion.objects.filter(uses__run__experiment__project=project).distinct()
        page = self.paginate_queryset(datasets.order_by("name"))
        return self.get_paginated_response(DatasetOut(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": DatasetIn, "application/json": DatasetIn},
        responses={201: DatasetOut},
        summary="Register a data set version by upload or URI (hashed whole)",
    )
    def post(self, request: Request, slug: str) -> Response:
        # Before anything is fetched: a URI is only read for those who may register.
        project, _ = access.project_for(request.user, slug, Capability.PUBLISH_MODEL)
        serializer = DatasetIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if bool(data["file"]) == bool(data["uri"]):
            raise InvalidInput("Send a file or a URI, one of the two.")
        content = data["file"] or services.open_dataset_uri(data["uri"])
        with content:
            dataset = services.register_dataset(
                actor=request.user,
                project=project,
                name=data["name"],
                content=content,
                source=data["file"].name if data["file"] else data["uri"],
                kind="upload" if data["file"] else "uri",
            )
        return Response(DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class SyncView(APIView):
    @extend_schema(request=SyncIn, responses={202: SyncOut}, summary="Sync MLflow now")
    def post(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        serializer = SyncIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        full = serializer.validated_data["full"]
        services.request_sync(actor=request.user, project=project, full=full)
        return Response({"queued": True, "full": full}, status=status.HTTP_202_ACCEPTED)


class CardIn(serializers.Serializer):
    sections = serializers.DictField(child=serializers.CharField(allow_blank=True))
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    based_on = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text="The revision you edited; refused with 409 if someone saved since.",
    )


class CardOut(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField()
    revision = serializers.IntegerField()
    complete = serializers.BooleanField()
    missing = serializers.ListField(child=serializers.CharField())
    sections = serializers.DictField(child=serializers.CharField(allow_blank=True))
    facts = serializers.DictField()


def _card_body(version: ModelVersion) -> dict:
    card = selectors.card_of(version)
    return cards.to_json(
        card.sections if card else {},
        selectors.facts_of(version),
        card.revision if card else 0,
        delivery.recommendation_of(version),
    )


class CardView(APIView):
    @extend_schema(responses=CardOut, summary="A version's model card and its facts")
    def get(self, request: Request, slug: str, name: str, number: int) -> Response:
        project, _ = access.project_for(request.user, slug)
        return Response(_card_body(selectors.version_of(project, name, number)))

    @extend_schema(request=CardIn, responses=CardOut, summary="Save a new revision of the card")
    def put(self, request: Request, slug: str, name: str, number: int) -> Response:
        project, _ = access.project_for(request.user, slug)
        version = selectors.version_of(project, name, number)
        serializer = CardIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.edit_model_card(actor=request.user, version=version, **serializer.validated_data)
        return Response(_card_body(version))


class LineageOut(serializers.Serializer):
    nodes = serializers.ListField(child=serializers.DictField())
    edges = serializers.ListField(child=serializers.DictField())


class LineageView(APIView):
    @extend_schema(responses=LineageOut, summary="Data sets → run → version, as a graph")
    def get(self, request: Request, slug: str, name: str, number: int) -> Response:
        project, _ = access.project_for(request.user, slug)
        return Response(selectors.lineage_of(selectors.version_of(project, name, number)))
