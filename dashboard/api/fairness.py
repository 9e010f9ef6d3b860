"""/api/v1/projects/{slug}/bias-reports, /api/v1/bias-reports/{id} and
/api/v1/projects/{slug}/fairness-policy.

Reports are made by a worker: asking for one answers 202 with its URL, to poll until its
state is done (with a verdict) or failed (with the reason).
"""

from dataclasses import asdict

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.auth import projects_of
from dashboard.api.pagination import CursorPagination
from governance.access import selectors as access
from governance.access.roles import Capability
from governance.errors import InvalidInput
from governance.fairness import selectors, services
from governance.fairness.models import BiasReport
from governance.registry import selectors as registry
from governance.registry.errors import VersionNotFound
from governance.registry.models import DatasetVersion


class BiasReportBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="version.model.name")
    version = serializers.IntegerField(source="version.version")
    dataset = serializers.IntegerField(source="dataset_id")
    dataset_name = serializers.CharField(source="dataset.name")
    sensitive = serializers.ListField(child=serializers.CharField())
    state = serializers.ChoiceField(choices=BiasReport.State.choices)
    passed = serializers.BooleanField(allow_null=True, help_text="Null until the report is done.")
    requested_by = serializers.CharField(source="created_by.username", allow_null=True)
    requested_at = serializers.DateTimeField(source="created_at")
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()

    def get_url(self, report: BiasReport) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("api-bias-report", args=[report.pk])
        )


class BiasReportOut(BiasReportBriefOut):
    project = serializers.CharField(source="project.slug")
    y_true = serializers.CharField()
    y_pred = serializers.CharField(help_text="Empty: the version's MLflow model predicted.")
    pos_label = serializers.CharField()
    error = serializers.CharField(help_text="Why a failed report could not be made.")
    started_at = serializers.DateTimeField(allow_null=True)
    min_group_size = serializers.IntegerField()
    policy = serializers.DictField(help_text="The project's limits the report was judged by.")
    result = serializers.DictField(help_text="overall, groups and disparities; {} until done.")
    judgement = serializers.DictField(help_text="passed, reasons, checks; {} until done.")
    page = serializers.SerializerMethodField()

    def get_page(self, report: BiasReport) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("bias_report", args=[report.project.slug, report.pk])
        )


class BiasReportIn(serializers.Serializer):
    model = serializers.CharField(max_length=500)
    version = serializers.IntegerField(min_value=1)
    dataset = serializers.IntegerField(help_text="The id of a table the project keeps.")
    y_true = serializers.CharField(max_length=250, help_text="The label column.")
    y_pred = serializers.CharField(
        max_length=250,
        required=False,
        allow_blank=True,
        default="",
        help_text="The prediction column; empty or absent: the version's model predicts.",
    )
    sensitive = serializers.ListField(
        child=serializers.CharField(max_length=250), help_text="One or two columns."
    )
    pos_label = serializers.CharField(max_length=100, required=False, default="1")


class BiasReportQueuedOut(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    url = serializers.URLField(help_text="Poll it until the state is done or failed.")


class NewestFirst(CursorPagination):
    ordering = "-pk"


class BiasReportListView(generics.GenericAPIView):
    pagination_class = NewestFirst

    @extend_schema(
        parameters=[
            OpenApiParameter("model", OpenApiTypes.STR, description="Only this model's."),
            OpenApiParameter("version", OpenApiTypes.INT, description="Only this version's."),
        ],
        responses=BiasReportBriefOut(many=True),
        summary="The project's bias reports, newest first",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        reports = selectors.project_reports(project)
        model, version = request.query_params.get("model"), request.query_params.get("version")
        if version is not None and not version.isdigit():
            raise InvalidInput(fields={"version": ["A version number."]})
        if model:
            reports = reports.filter(version__model__name=model)
        if version:
            reports = reports.filter(version__version=int(version))
        page = self.paginate_queryset(reports)
        body = BiasReportBriefOut(page, many=True, context={"request": request}).data
        return self.get_paginated_response(body)

    @extend_schema(
        request=BiasReportIn,
        responses={202: BiasReportQueuedOut},
        summary="Ask for a bias report of a model version, made by a worker",
        description="400 naming every field at fault: unknown columns, labels that are not "
        "binary, a sensitive column of one group, a table not kept in this project.",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug, Capability.MANAGE_MONITORING)
        serializer = BiasReportIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            version = registry.version_of(project, data["model"], data["version"])
        except VersionNotFound:
            raise InvalidInput(
                f"The project has no version {data['version']} of {data['model']!r}.",
                fields={"version": ["no such version of this model in the project"]},
            ) from None
        dataset = DatasetVersion.objects.filter(pk=data["dataset"]).first()
        if dataset is None:
            raise InvalidInput(fields={"dataset": ["No such table."]})
        report = services.request_bias_report(
            actor=request.user,
            version=version,
            dataset=dataset,
            y_true=data["y_true"],
            y_pred=data["y_pred"],
            sensitive=data["sensitive"],
            pos_label=data["pos_label"],
        )
        url = request.build_absolute_uri(reverse("api-bias-report", args=[report.pk]))
        body = BiasReportQueuedOut({"id": report.pk, "state": report.state, "url": url}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class BiasReportDetailView(APIView):
    @extend_schema(responses=BiasReportOut, summary="A bias report: its state, figures, verdict")
    def get(self, request: Request, pk: int) -> Response:
        report = selectors.report_for(projects_of(request), pk)
        return Response(BiasReportOut(report, context={"request": request}).data)


class FairnessPolicyOut(serializers.Serializer):
    limits = serializers.DictField(help_text="Every limit in force; null: no limit.")
    min_group_size = serializers.IntegerField()
    edited_by = serializers.CharField(allow_null=True)
    edited_at = serializers.DateTimeField(allow_null=True)


class FairnessPolicyIn(serializers.Serializer):
    limits = serializers.DictField(
        help_text='Limits to set, e.g. {"demographic_parity_ratio_min": 0.8}; absent ones '
        "keep their defaults, null turns one off."
    )
    min_group_size = serializers.IntegerField(required=False, default=30)


def _policy_body(project: object) -> dict:
    policy, size, stored = selectors.policy_of(project)
    edited = stored is not None and stored.edited_by_id is not None
    return FairnessPolicyOut(
        {
            "limits": asdict(policy),
            "min_group_size": size,
            "edited_by": stored.edited_by.username if edited else None,
            "edited_at": stored.edited_at if edited else None,
        }
    ).data


class FairnessPolicyView(APIView):
    @extend_schema(responses=FairnessPolicyOut, summary="The limits bias reports must keep")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        return Response(_policy_body(project))

    @extend_schema(
        request=FairnessPolicyIn,
        responses=FairnessPolicyOut,
        summary="Set the project's fairness policy (product owners and admins)",
    )
    def put(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        serializer = FairnessPolicyIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.set_fairness_policy(
            actor=request.user, project=project, **serializer.validated_data
        )
        return Response(_policy_body(project))
