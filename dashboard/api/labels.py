"""/api/v1/batches/{id}/: a monitor's batch with its data quality and the model's quality, and
the labels of its rows, sent when they are known."""

from typing import BinaryIO

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.auth import projects_of
from governance.errors import InvalidInput
from governance.monitoring import selectors, services
from governance.monitoring.models import Batch

PARQUET = "application/vnd.apache.parquet"


class _RawTableParser(BaseParser):
    """A body that is the table itself: handed on as a stream, for the service to read within
    its size limit and check."""

    filename = "labels"

    def parse(
        self, stream: BinaryIO, media_type: str | None = None, parser_context: dict | None = None
    ) -> dict:
        return {"body": stream, "filename": self.filename}


class CsvBodyParser(_RawTableParser):
    media_type = "text/csv"
    filename = "labels.csv"


class ParquetBodyParser(_RawTableParser):
    media_type = PARQUET
    filename = "labels.parquet"


class LabelsIn(serializers.Serializer):
    file = serializers.FileField(
        help_text="CSV or Parquet: the monitor's label column, and its id column when it has one."
    )


class LabelsQueuedOut(serializers.Serializer):
    batch = serializers.URLField(help_text="Where the batch's model quality appears.")
    state = serializers.CharField(help_text="`queued`: the model is measured in the background.")


class DataQualityOut(serializers.Serializer):
    passed = serializers.BooleanField(
        source="quality_passed", allow_null=True, help_text="Null until the report is made."
    )
    report = serializers.DictField(
        source="quality",
        help_text="Per column: missing rate and its rise, type errors, values out of the "
        "reference's range or unseen categories; repeated rows; problems. `error` when the data "
        "could not be assessed.",
    )


class LabelsOut(serializers.Serializer):
    received_at = serializers.DateTimeField(source="labels_received_at")
    sha256 = serializers.CharField(source="labels.sha256")
    rows = serializers.IntegerField(source="labels.profile.rows")


class ModelQualityOut(serializers.Serializer):
    state = serializers.CharField(
        source="model_quality_state", help_text="Empty until labels arrive; queued, running, "
        "done or failed."
    )  # fmt: skip
    error = serializers.CharField(source="model_quality_error")
    measured_at = serializers.DateTimeField(source="model_quality_at", allow_null=True)
    result = serializers.DictField(
        source="model_quality",
        help_text="task, rows, left_out, metrics, the reference's metrics, degraded (metric: "
        "why), notes.",
    )
    reference = serializers.DictField(
        source="monitor.reference_quality", help_text="The model's quality on the reference."
    )


class BatchDetailOut(serializers.Serializer):
    id = serializers.IntegerField()
    monitor = serializers.IntegerField(source="monitor_id")
    monitor_name = serializers.CharField(source="monitor.name")
    project = serializers.CharField(source="monitor.project.slug")
    rows = serializers.IntegerField()
    source = serializers.CharField()
    received_at = serializers.DateTimeField()
    data_quality = DataQualityOut(source="*")
    labels = serializers.SerializerMethodField()
    model_quality = ModelQualityOut(source="*")
    page = serializers.SerializerMethodField()

    @extend_schema_field(LabelsOut(allow_null=True))
    def get_labels(self, batch: Batch) -> dict | None:
        return LabelsOut(batch).data if batch.labels_id else None

    @extend_schema_field(OpenApiTypes.URI)
    def get_page(self, batch: Batch) -> str:
        monitor = batch.monitor
        path = reverse("monitor_batch", args=[monitor.project.slug, monitor.pk, batch.pk])
        return self.context["request"].build_absolute_uri(path)


def _batch(request: Request, pk: int) -> Batch:
    return selectors.batch_in(projects_of(request), pk)


class BatchView(APIView):
    @extend_schema(responses=BatchDetailOut, summary="A batch: its data quality and model quality")
    def get(self, request: Request, pk: int) -> Response:
        batch = _batch(request, pk)
        return Response(BatchDetailOut(batch, context={"request": request}).data)


class LabelsView(APIView):
    parser_classes = [MultiPartParser, CsvBodyParser, ParquetBodyParser]

    @extend_schema(
        request={
            "multipart/form-data": LabelsIn,
            "text/csv": OpenApiTypes.BINARY,
            PARQUET: OpenApiTypes.BINARY,
        },
        responses={202: LabelsQueuedOut},
        summary="Send the true labels of a batch's rows; the model is measured on them",
        description="Without an id column on the monitor, one label per row in the batch's "
        "order. Labels sent again replace the earlier ones. 400 names the column or counts "
        "that do not match.",
    )
    def post(self, request: Request, pk: int) -> Response:
        batch = _batch(request, pk)
        data = request.data
        if "body" in data:
            content, filename = data["body"], data["filename"]
        else:
            upload = request.FILES.get("file")
            if upload is None:
                raise InvalidInput(
                    "Send the labels as the `file` part of a form, or as a text/csv or "
                    "Parquet body.",
                    fields={"file": ["missing"]},
                )
            content, filename = upload, upload.name
        services.add_labels(actor=request.user, batch=batch, content=content, filename=filename)
        url = request.build_absolute_uri(reverse("api-batch", args=[batch.pk]))
        return Response(
            {"batch": url, "state": "queued"},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": url},
        )
