"""/api/v1/audit/: the trail, its exports and its verifications."""

from django.db.models import QuerySet
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.pagination import CursorPagination
from dashboard.filters import AuditEventFilter
from dashboard.views.audit import export_response
from governance.access.errors import NotAllowed
from governance.audit import exports, selectors, services
from governance.audit.models import AuditEvent, VerificationRun


class AuditEventOut(serializers.Serializer):
    seq = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor_kind = serializers.CharField()
    actor_id = serializers.IntegerField(allow_null=True)
    actor_name = serializers.CharField()
    actor_token = serializers.CharField()
    action = serializers.CharField()
    target_kind = serializers.CharField()
    target_id = serializers.CharField()
    target_label = serializers.CharField()
    project = serializers.CharField(source="project.slug", allow_null=True, default=None)
    payload = serializers.JSONField(source="data")
    ip = serializers.CharField()
    user_agent = serializers.CharField()
    request_id = serializers.CharField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class VerificationIn(serializers.Serializer):
    checkpoint = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="SEQ:HASH to compare with."
    )


class VerificationOut(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    trigger = serializers.CharField()
    percent = serializers.IntegerField()
    checked = serializers.IntegerField()
    checkpoint = serializers.CharField(help_text="The head as SEQ:HASH, once finished.")
    break_seq = serializers.IntegerField(allow_null=True)
    break_kind = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class TrailOrdering(CursorPagination):
    ordering = "-seq"


def _reader(request: Request) -> None:
    if not selectors.may_read_trail(request.user):
        raise NotAllowed("The audit trail is for auditors and admins.")


class EventListView(generics.GenericAPIView):
    pagination_class = TrailOrdering
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if getattr(self, "swagger_fake_view", False):  # the schema is being generated
            return AuditEvent.objects.none()
        return selectors.trail_for(self.request.user)

    @extend_schema(responses=AuditEventOut(many=True), summary="The trail you may read")
    def get(self, request: Request) -> Response:
        _reader(request)
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEventOut(page, many=True).data)


class RawFileNegotiation(DefaultContentNegotiation):
    """`format` names the export's file format here, not a DRF renderer."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str = "") -> tuple:
        return renderers[0], renderers[0].media_type


class ExportView(APIView):
    content_negotiation_class = RawFileNegotiation

    @extend_schema(
        summary="Export the filtered trail as a file",
        description="The response carries `X-Quorum-Export-SHA256` and a `Link` to the "
        "manifest: filters, row count, first and last sequence and hash, the file's SHA-256.",
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(exports.FORMATS), required=True),
            *[OpenApiParameter(name, OpenApiTypes.STR) for name in AuditEventFilter.base_filters],
        ],
        # One media type per format, as the file is sent.
        responses={
            (200, content_type.split(";")[0]): OpenApiTypes.BINARY
            for content_type, _ in exports.FORMATS.values()
        },
    )
    def get(self, request: Request) -> FileResponse:
        filters = AuditEventFilter(
            request.query_params, queryset=AuditEvent.objects.none(), request=request
        )
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        fmt = request.query_params.get("format", "")
        return export_response(request, fmt, filters.criteria(), "api-audit-manifest")


class ManifestView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="An export's manifest")
    def get(self, request: Request, seq: int) -> Response:
        event = get_object_or_404(AuditEvent, seq=seq, action="audit.exported")
        if event.actor_id != request.user.pk and not request.user.is_superuser:
            raise Http404
        return Response({"export_event": event.seq, "exported_at": event.at, **event.data})


class VerificationListView(APIView):
    @extend_schema(
        request=VerificationIn,
        responses={202: VerificationOut},
        summary="Queue a verification of the whole trail",
    )
    def post(self, request: Request) -> Response:
        serializer = VerificationIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.request_verification(
            actor=request.user,
            checkpoint=serializer.validated_data["checkpoint"],
            trigger=VerificationRun.Trigger.API,
        )
        return Response(VerificationOut(run).data, status=status.HTTP_202_ACCEPTED)


class VerificationDetailView(APIView):
    @extend_schema(responses=VerificationOut, summary="A verification's progress and verdict")
    def get(self, request: Request, run_id: int) -> Response:
        _reader(request)
        return Response(VerificationOut(get_object_or_404(VerificationRun, pk=run_id)).data)
