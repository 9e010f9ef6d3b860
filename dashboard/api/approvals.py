"""/api/v1/gate, /api/v1/approval-requests and /api/v1/projects/{slug}/policies.

The gate is what CI/CD asks before it ships; CI tokens (tokens tied to a project) reach the
gate, release requests and their evidence bundles only.
"""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.audit import RawFileNegotiation
from dashboard.api.auth import projects_of
from dashboard.views.approvals import bundle_response
from governance.access import selectors as access
from governance.approvals import selectors, services
from governance.approvals.errors import RequestNotFound
from governance.approvals.models import ApprovalRequest
from governance.errors import InvalidInput
from governance.registry.errors import VersionNotFound
from governance.registry.models import ModelVersion


class GateOut(serializers.Serializer):
    allowed = serializers.BooleanField()
    request = serializers.IntegerField(allow_null=True, help_text="The request that decides.")
    state = serializers.CharField(help_text="That request's state; empty when there is none.")
    reasons = serializers.ListField(child=serializers.CharField())
    checked_at = serializers.DateTimeField()


class GateView(APIView):
    ci_token_allowed = True

    @extend_schema(
        parameters=[
            OpenApiParameter("model", OpenApiTypes.STR, required=True),
            OpenApiParameter("version", OpenApiTypes.INT, required=True),
            OpenApiParameter("stage", OpenApiTypes.STR, required=True),
        ],
        responses=GateOut,
        summary="May this model version ship to this stage?",
        description="200 whether allowed or not; 404 for a model the caller cannot see.",
    )
    def get(self, request: Request) -> Response:
        model = request.query_params.get("model", "")
        version = request.query_params.get("version", "")
        stage = request.query_params.get("stage", "")
        fields = {}
        if not model:
            fields["model"] = ["Name the registered model."]
        if not version.isdigit():
            fields["version"] = ["A version number."]
        if not stage:
            fields["stage"] = ["Name the stage, e.g. production."]
        if fields:
            raise InvalidInput(fields=fields)
        # The visible projects' ids first: a list in the request's query plans faster than
        # the permission subquery, and the gate is asked often.
        projects = list(projects_of(request).values_list("pk", flat=True))
        answer = selectors.gate(projects, model=model, version=int(version), stage=stage)
        return Response(GateOut(answer).data)


class SlotOut(serializers.Serializer):
    role = serializers.CharField()
    needed = serializers.IntegerField()
    approvers = serializers.ListField(child=serializers.CharField())


class DecisionOut(serializers.Serializer):
    approver = serializers.CharField(source="approver.username")
    role = serializers.CharField()
    verdict = serializers.CharField()
    comment = serializers.CharField()
    at = serializers.DateTimeField()


class ApprovalOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    model = serializers.CharField(source="version.model.name")
    version = serializers.IntegerField(source="version.version")
    stage = serializers.CharField()
    state = serializers.CharField()
    alias_state = serializers.CharField()
    requested_by = serializers.CharField(source="requested_by.username")
    note = serializers.CharField()
    policy_version = serializers.IntegerField(source="policy_version.number")
    evidence_sha256 = serializers.CharField(source="evidence_hash")
    gates = serializers.ListField(source="gate_results", child=serializers.DictField())
    opened_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    decisions = DecisionOut(many=True, source="decisions.all")
    slots = serializers.SerializerMethodField()
    waiting_for = serializers.SerializerMethodField()

    @extend_schema_field(SlotOut(many=True))
    def get_slots(self, approval: ApprovalRequest) -> list[dict]:
        return [
            {"role": s.role.value, "needed": s.needed, "approvers": s.approvers}
            for s in selectors.progress_of(approval).slots
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_waiting_for(self, approval: ApprovalRequest) -> list[str]:
        return selectors.progress_of(approval).waiting_for() if approval.is_open else []


class ApprovalIn(serializers.Serializer):
    model = serializers.CharField(max_length=500)
    version = serializers.IntegerField(min_value=1)
    stage = serializers.CharField(max_length=32)
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


def _approval(request: Request, pk: int) -> ApprovalRequest:
    approval = (
        ApprovalRequest.objects.filter(pk=pk, project__in=projects_of(request))
        .values_list("project__slug", flat=True)
        .first()
    )
    if approval is None:
        raise RequestNotFound
    project, _ = access.project_for(request.user, approval)
    return selectors.approval_of(project, pk)


class ApprovalListView(APIView):
    ci_token_allowed = True

    @extend_schema(
        request=ApprovalIn,
        responses={201: ApprovalOut},
        summary="Ask for a model version to be released to a stage",
    )
    def post(self, request: Request) -> Response:
        data = ApprovalIn(data=request.data)
        data.is_valid(raise_exception=True)
        version = (
            ModelVersion.objects.filter(
                model__name=data.validated_data["model"],
                version=data.validated_data["version"],
                model__project__in=projects_of(request),
            )
            .select_related("model__project")
            .first()
        )
        if version is None:
            raise VersionNotFound
        approval = services.open_request(
            actor=request.user,
            version=version,
            stage=data.validated_data["stage"],
            note=data.validated_data["note"],
        )
        found = _approval(request, approval.pk)
        return Response(ApprovalOut(found).data, status=status.HTTP_201_CREATED)


class ApprovalDetailView(APIView):
    ci_token_allowed = True

    @extend_schema(responses=ApprovalOut, summary="A release request, where it stands")
    def get(self, request: Request, pk: int) -> Response:
        return Response(ApprovalOut(_approval(request, pk)).data)


class ApprovalBundleView(APIView):
    ci_token_allowed = True
    # The answer is a zip whatever the client accepts; errors are still JSON.
    content_negotiation_class = RawFileNegotiation

    @extend_schema(
        summary="A release request's evidence bundle, as a zip",
        description="The request and its frozen evidence, the policy, gates, decisions, "
        "comments, the model card, the audit events about the request and its version, the "
        "latest checkpoint, and `manifest.json` with every file's SHA-256. Check it offline "
        "with `manage.py verify_bundle FILE`. The download is recorded on the audit trail; "
        "`X-Quorum-Manifest-SHA256` carries the manifest's digest.",
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        approval = _approval(request, pk)
        return bundle_response(services.export_bundle(actor=request.user, approval=approval))


class DecisionIn(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=["approve", "reject"])
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class DecisionView(APIView):
    @extend_schema(
        request=DecisionIn,
        responses={201: ApprovalOut},
        summary="Approve or reject a release request",
    )
    def post(self, request: Request, pk: int) -> Response:
        approval = _approval(request, pk)
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.decide(actor=request.user, approval=approval, **data.validated_data)
        return Response(ApprovalOut(_approval(request, pk)).data, status=status.HTTP_201_CREATED)
