"""/api/v1/projects/{slug}/monitors, /api/v1/monitors, drift checks and drift alerts.

A serving system sends its batches to `POST /api/v1/monitors/{id}/batches/`: a multipart
`file`, or the table itself as the body (`text/csv` or `application/vnd.apache.parquet`).
"""

import io
from pathlib import PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.auth import projects_of
from dashboard.api.pagination import CursorPagination
from governance.access import selectors as access
from governance.access.roles import Capability
from governance.errors import InvalidInput
from governance.monitoring import selectors, services
from governance.monitoring.errors import AlertNotFound, CheckNotFound, MonitorNotFound
from governance.monitoring.models import Batch, DriftAlert, DriftCheck, Monitor
from governance.registry.models import ModelVersion

CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"


# What goes out


class CheckBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    monitor = serializers.IntegerField(source="monitor_id")
    trigger = serializers.CharField(help_text="batch, schedule or manual")
    state = serializers.CharField()
    drifted = serializers.BooleanField(allow_null=True)
    drifted_share = serializers.FloatField(allow_null=True)
    drifted_features = serializers.SerializerMethodField()
    batch = serializers.IntegerField(source="batch_id", allow_null=True)
    window_batches = serializers.ListField(
        child=serializers.IntegerField(), help_text="The batches a window check compares."
    )
    window_start = serializers.DateTimeField(allow_null=True)
    window_end = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_drifted_features(self, check: DriftCheck) -> list[str]:
        features = check.decision.get("features", {})
        return sorted(name for name, f in features.items() if f.get("drifted"))

    def get_url(self, check: DriftCheck) -> str:
        return reverse("api-drift-check", args=[check.pk])


class FeatureOut(serializers.Serializer):
    feature = serializers.CharField()
    kind = serializers.CharField()
    psi = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    statistic = serializers.FloatField(allow_null=True, help_text="KS statistic or Cramér's V.")
    js_distance = serializers.FloatField(allow_null=True)
    drifted = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())


class CheckOut(CheckBriefOut):
    result = serializers.JSONField(help_text="Every statistic per feature.")
    decision = serializers.JSONField(help_text="What drifted and why.")
    features = FeatureOut(many=True, source="feature_list")


class MonitorOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    name = serializers.CharField()
    reference = serializers.IntegerField(source="reference_id")
    reference_name = serializers.CharField(source="reference")
    version = serializers.IntegerField(source="version_id", allow_null=True)
    categorical = serializers.ListField(child=serializers.CharField())
    thresholds = serializers.DictField()
    bins = serializers.IntegerField()
    active = serializers.BooleanField()
    source_uri = serializers.CharField()
    poll_minutes = serializers.IntegerField(allow_null=True)
    last_polled_at = serializers.DateTimeField(allow_null=True)
    last_poll_error = serializers.CharField()
    check_minutes = serializers.IntegerField(allow_null=True)
    window_hours = serializers.IntegerField()
    open_alerts = serializers.IntegerField()
    batch_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    url = serializers.SerializerMethodField()

    def get_url(self, monitor: Monitor) -> str:
        return reverse("monitor", args=[monitor.project.slug, monitor.pk])


class MonitorDetailOut(MonitorOut):
    latest_check = CheckBriefOut(allow_null=True, help_text="The newest check, in any state.")


class BatchOut(serializers.Serializer):
    id = serializers.IntegerField()
    monitor = serializers.IntegerField(source="monitor_id")
    source = serializers.CharField(help_text="upload, api or poll")
    filename = serializers.CharField(source="dataset.source")
    rows = serializers.IntegerField()
    sha256 = serializers.CharField(source="dataset.sha256")
    received_by = serializers.CharField(
        source="received_by.username", allow_null=True, default=None
    )
    received_at = serializers.DateTimeField()
    check = serializers.IntegerField(
        source="check_id", allow_null=True, help_text="The check its arrival queued."
    )
    check_url = serializers.SerializerMethodField()
    monitor_url = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_check_url(self, batch: Batch) -> str | None:
        return reverse("api-drift-check", args=[batch.check_id]) if batch.check_id else None

    def get_monitor_url(self, batch: Batch) -> str:
        return reverse("monitor", args=[batch.monitor.project.slug, batch.monitor_id])


class AlertOut(serializers.Serializer):
    id = serializers.IntegerField()
    monitor = serializers.IntegerField(source="monitor_id")
    feature = serializers.CharField()
    state = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    opened_by = serializers.IntegerField(source="opened_by_id", help_text="The check.")
    last_seen = serializers.IntegerField(source="last_seen_id", help_text="The check.")
    opened_at = serializers.DateTimeField()
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", allow_null=True, default=None
    )
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledge_comment = serializers.CharField()
    resolved_by = serializers.CharField(
        source="resolved_by.username", allow_null=True, default=None
    )
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolve_comment = serializers.CharField()


# What comes in


class MonitorIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    reference = serializers.IntegerField(help_text="A table kept in the project (its id).")
    version = serializers.IntegerField(required=False, allow_null=True, default=None)
    categorical = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    thresholds = serializers.DictField(required=False, default=dict)
    bins = serializers.IntegerField(required=False, default=10)


class MonitorPatchIn(serializers.Serializer):
    """Only the settings sent change."""

    name = serializers.CharField(required=False)
    categorical = serializers.ListField(child=serializers.CharField(), required=False)
    thresholds = serializers.DictField(required=False)
    bins = serializers.IntegerField(required=False)
    active = serializers.BooleanField(required=False)
    source_uri = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="http(s):// URL or file:// path under QUORUM_DATA_ROOTS; empty for none.",
    )
    poll_minutes = serializers.IntegerField(
        required=False, allow_null=True, help_text="Poll the source this often; null: off."
    )
    check_minutes = serializers.IntegerField(
        required=False, allow_null=True, help_text="Check the window this often; null: off."
    )
    window_hours = serializers.IntegerField(required=False)

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Not a setting of a monitor."] for name in unknown}
            )
        return attrs


class BatchFileIn(serializers.Serializer):
    file = serializers.FileField(help_text="CSV or Parquet with the reference's columns.")


class AlertMoveIn(serializers.Serializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="What was found or done."
    )


# Access, one helper per kind


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _monitor(request: Request, pk: int, capability: str = Capability.VIEW_PROJECT) -> Monitor:
    """The monitor, with its counts. Raises MonitorNotFound for one the caller cannot see,
    NotAllowed when the caller's role lacks `capability`."""
    slug = (
        Monitor.objects.filter(pk=pk, project__in=projects_of(request))
        .values_list("project__slug", flat=True)
        .first()
    )
    if slug is None:
        raise MonitorNotFound
    project, _ = access.project_for(request.user, slug, capability)
    return selectors.monitor_of(project, pk)


def _detail(monitor: Monitor) -> dict:
    monitor.latest_check = next(iter(selectors.checks_of(monitor, limit=1)), None)
    return MonitorDetailOut(monitor).data


# Monitors


class NameOrdering(CursorPagination):
    ordering = "name"


class MonitorListView(generics.GenericAPIView):
    pagination_class = NameOrdering

    @extend_schema(
        responses=MonitorOut(many=True), summary="The project's monitors, with open alerts"
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        monitors = selectors.monitors_of(project).select_related("project")
        page = self.paginate_queryset(monitors)
        return self.get_paginated_response(MonitorOut(page, many=True).data)

    @extend_schema(request=MonitorIn, responses={201: MonitorDetailOut}, summary="Set up a monitor")
    def post(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug, Capability.MANAGE_MONITORING)
        data = _valid(MonitorIn, request)
        reference = selectors.kept_tables(project).filter(pk=data.pop("reference")).first()
        if reference is None:
            raise InvalidInput(fields={"reference": ["Not a table kept in this project."]})
        version = None
        if (version_id := data.pop("version")) is not None:
            version = ModelVersion.objects.filter(pk=version_id, model__project=project).first()
            if version is None:
                raise InvalidInput(fields={"version": ["Not a model version of this project."]})
        monitor = services.create_monitor(
            actor=request.user, project=project, reference=reference, version=version, **data
        )
        found = selectors.monitor_of(project, monitor.pk)
        return Response(_detail(found), status=status.HTTP_201_CREATED)


class MonitorDetailView(APIView):
    @extend_schema(responses=MonitorDetailOut, summary="A monitor and its latest check")
    def get(self, request: Request, pk: int) -> Response:
        return Response(_detail(_monitor(request, pk)))

    @extend_schema(
        request=MonitorPatchIn,
        responses=MonitorDetailOut,
        summary="Change a monitor's settings, its source and schedule",
    )
    def patch(self, request: Request, pk: int) -> Response:
        monitor = _monitor(request, pk, Capability.MANAGE_MONITORING)
        changes = _valid(MonitorPatchIn, request)
        services.update_monitor(actor=request.user, monitor=monitor, changes=changes)
        return Response(_detail(_monitor(request, pk)))


# Batches


class RawTable:
    """A table sent as the request's body."""

    def __init__(self, content: bytes, media_type: str):
        self.content, self.media_type = content, media_type


class _RawTableParser(BaseParser):
    def parse(
        self, stream: object, media_type: str | None = None, parser_context: dict | None = None
    ) -> RawTable:
        # One byte over the limit is enough for the reader to refuse it as too large.
        content = stream.read(settings.QUORUM_MAX_DATASET_BYTES + 1) if stream else b""
        return RawTable(content, self.media_type)


class CsvParser(_RawTableParser):
    media_type = CSV


class ParquetParser(_RawTableParser):
    media_type = PARQUET


class BatchOrdering(CursorPagination):
    ordering = "-pk"


class BatchListView(generics.GenericAPIView):
    pagination_class = BatchOrdering
    parser_classes = [MultiPartParser, CsvParser, ParquetParser]

    @extend_schema(responses=BatchOut(many=True), summary="The batches a monitor received")
    def get(self, request: Request, pk: int) -> Response:
        page = self.paginate_queryset(selectors.batches_with_checks(_monitor(request, pk)))
        return self.get_paginated_response(BatchOut(page, many=True).data)

    @extend_schema(
        request={
            "multipart/form-data": BatchFileIn,
            CSV: OpenApiTypes.BINARY,
            PARQUET: OpenApiTypes.BINARY,
        },
        parameters=[
            OpenApiParameter(
                "filename",
                OpenApiTypes.STR,
                description="The batch's file name when the body is the table "
                "(default batch.csv or batch.parquet).",
            )
        ],
        responses={201: BatchOut, 200: BatchOut},
        summary="Send a batch of current data; its drift check is queued",
        description="201 with the new batch and its check; 200 with the existing batch when "
        "the same data was sent before. 413 over the size limit, 415 for another content "
        "type, 400 for a table that cannot be read or whose columns differ from the "
        "reference (naming the line or column).",
    )
    def post(self, request: Request, pk: int) -> Response:
        # Before the body is read: only those who may send batches get that far.
        monitor = _monitor(request, pk, Capability.MANAGE_MONITORING)
        content, filename = _batch_of(request)
        batch = services.add_batch(
            actor=request.user,
            monitor=monitor,
            content=content,
            filename=filename,
            source=Batch.Source.API,
        )
        found = selectors.batches_with_checks(monitor).get(pk=batch.pk)
        answer = status.HTTP_201_CREATED if batch.is_new else status.HTTP_200_OK
        return Response(BatchOut(found).data, status=answer)


def _batch_of(request: Request) -> tuple[BinaryIO, str]:
    data = request.data
    name = PurePosixPath(request.query_params.get("filename", "").strip()).name[:200]
    if isinstance(data, RawTable):
        default = "batch.parquet" if data.media_type == PARQUET else "batch.csv"
        return io.BytesIO(data.content), name or default
    upload = request.FILES.get("file")
    if upload is None:
        raise InvalidInput(
            f"Send the table as a multipart `file`, or as the body with Content-Type {CSV} "
            f"or {PARQUET}.",
            fields={"file": ["No file was sent."]},
        )
    return upload, name or upload.name


# Checks


class CheckOrdering(CursorPagination):
    ordering = "-pk"


class CheckListView(generics.GenericAPIView):
    pagination_class = CheckOrdering

    @extend_schema(responses=CheckBriefOut(many=True), summary="A monitor's drift checks")
    def get(self, request: Request, pk: int) -> Response:
        page = self.paginate_queryset(selectors.check_history_of(_monitor(request, pk)))
        return self.get_paginated_response(CheckBriefOut(page, many=True).data)


class CheckDetailView(APIView):
    @extend_schema(responses=CheckOut, summary="A drift check: every statistic and the decision")
    def get(self, request: Request, pk: int) -> Response:
        check = (
            DriftCheck.objects.filter(pk=pk, monitor__project__in=projects_of(request))
            .select_related("monitor__project")
            .first()
        )
        if check is None:
            raise CheckNotFound
        check.feature_list = selectors.features_of(check)
        return Response(CheckOut(check).data)


# Alerts

ALERT_STATES = DriftAlert.State.values


class AlertOrdering(CursorPagination):
    ordering = "-pk"


class AlertListView(generics.GenericAPIView):
    pagination_class = AlertOrdering

    @extend_schema(
        parameters=[OpenApiParameter("state", OpenApiTypes.STR, enum=ALERT_STATES)],
        responses=AlertOut(many=True),
        summary="A monitor's drift alerts",
    )
    def get(self, request: Request, pk: int) -> Response:
        alerts = selectors.alerts_of(_monitor(request, pk))
        state = request.query_params.get("state", "")
        if state:
            if state not in ALERT_STATES:
                raise InvalidInput(fields={"state": [f"One of {', '.join(ALERT_STATES)}."]})
            alerts = alerts.filter(state=state)
        page = self.paginate_queryset(alerts)
        return self.get_paginated_response(AlertOut(page, many=True).data)


def _alert(request: Request, pk: int) -> DriftAlert:
    alert = (
        DriftAlert.objects.filter(pk=pk, monitor__project__in=projects_of(request))
        .select_related("monitor__project")
        .first()
    )
    if alert is None:
        raise AlertNotFound
    return alert


class AlertAcknowledgeView(APIView):
    @extend_schema(
        request=AlertMoveIn,
        responses=AlertOut,
        summary="Acknowledge an open drift alert",
        description="409 when the alert is no longer open.",
    )
    def post(self, request: Request, pk: int) -> Response:
        alert = _alert(request, pk)
        comment = _valid(AlertMoveIn, request)["comment"]
        alert = services.acknowledge_alert(actor=request.user, alert=alert, comment=comment)
        return Response(AlertOut(alert).data)


class AlertResolveView(APIView):
    @extend_schema(
        request=AlertMoveIn,
        responses=AlertOut,
        summary="Resolve a drift alert with what was found or done",
        description="409 when the alert is resolved already.",
    )
    def post(self, request: Request, pk: int) -> Response:
        alert = _alert(request, pk)
        comment = _valid(AlertMoveIn, request)["comment"]
        alert = services.resolve_alert(actor=request.user, alert=alert, comment=comment)
        return Response(AlertOut(alert).data)
