"""/api/v1/projects/{slug}/targets: the endpoint registry, deployments, rollbacks; and the
callback a CD system answers a webhook target's request with."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard import limits
from dashboard.middleware import client_ip
from governance.access import selectors as access
from governance.delivery import deploying, selectors, services
from governance.delivery.models import Deployment, Target
from governance.registry import selectors as registry


class TargetOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Target.Kind.choices)
    stage = serializers.CharField()
    settings = serializers.JSONField()
    secrets = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class TargetIn(serializers.Serializer):
    name = serializers.CharField(max_length=60)
    kind = serializers.ChoiceField(choices=Target.Kind.choices)
    stage = serializers.CharField(max_length=32)
    settings = serializers.JSONField(required=False, default=dict)
    secrets = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class TargetChangeIn(serializers.Serializer):
    name = serializers.CharField(max_length=60, required=False)
    stage = serializers.CharField(max_length=32, required=False)
    settings = serializers.JSONField(required=False)
    secrets = serializers.ListField(child=serializers.CharField(), required=False)


class DeploymentOut(serializers.Serializer):
    id = serializers.IntegerField()
    target = serializers.IntegerField(source="target_id")
    model = serializers.CharField(source="version.model.name")
    version = serializers.IntegerField(source="version.version")
    state = serializers.ChoiceField(choices=Deployment.State.choices)
    health = serializers.ChoiceField(choices=Deployment.Health.choices)
    probed_at = serializers.DateTimeField(allow_null=True)
    probe_detail = serializers.CharField()
    endpoint = serializers.CharField()
    detail = serializers.CharField()
    deployed_by = serializers.CharField(source="deployed_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    job = serializers.IntegerField(source="job_id", allow_null=True)
    package_job = serializers.IntegerField(source="package_job_id", allow_null=True)
    replaced = serializers.IntegerField(source="replaced_id", allow_null=True)
    rollback_of = serializers.IntegerField(source="rollback_of_id", allow_null=True)


class TargetDetailOut(TargetOut):
    current = DeploymentOut(allow_null=True)


class DeployIn(serializers.Serializer):
    model = serializers.CharField(max_length=250)
    version = serializers.IntegerField(min_value=1)


class CallbackIn(serializers.Serializer):
    """What a CD system sends back, signed: `X-Quorum-Timestamp` and `X-Quorum-Signature:
    sha256=<hex HMAC-SHA256 of "timestamp.body" with the target's key>`."""

    state = serializers.ChoiceField(choices=["live", "failed"])
    endpoint = serializers.URLField(required=False)
    detail = serializers.CharField(required=False)


class CallbackOut(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()


def _target(request: Request, slug: str, pk: int) -> Target:
    project, _ = access.project_for(request.user, slug)
    return selectors.target_of(project, pk)


class TargetListView(APIView):
    @extend_schema(responses=TargetOut(many=True), summary="The project's deployment targets")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        return Response(TargetOut(selectors.targets_of(project), many=True).data)

    @extend_schema(request=TargetIn, responses={201: TargetOut}, summary="Add a target")
    def post(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        given = TargetIn(data=request.data)
        given.is_valid(raise_exception=True)
        target = services.create_target(actor=request.user, project=project, **given.validated_data)
        return Response(TargetOut(target).data, status=status.HTTP_201_CREATED)


class TargetDetailView(APIView):
    @extend_schema(responses=TargetDetailOut, summary="A target and what serves on it")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        target = _target(request, slug, pk)
        target.current = selectors.current_of(target)
        return Response(TargetDetailOut(target).data)

    @extend_schema(request=TargetChangeIn, responses=TargetOut, summary="Change a target")
    def patch(self, request: Request, slug: str, pk: int) -> Response:
        target = _target(request, slug, pk)
        given = TargetChangeIn(data=request.data)
        given.is_valid(raise_exception=True)
        target = services.update_target(
            actor=request.user, target=target, changes=given.validated_data
        )
        return Response(TargetOut(target).data)

    @extend_schema(responses={204: None}, summary="Remove a target and its history")
    def delete(self, request: Request, slug: str, pk: int) -> Response:
        services.delete_target(actor=request.user, target=_target(request, slug, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeploymentListView(APIView):
    @extend_schema(responses=DeploymentOut(many=True), summary="The target's history, newest first")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        target = _target(request, slug, pk)
        return Response(DeploymentOut(selectors.history_of(target), many=True).data)

    @extend_schema(
        request=DeployIn,
        responses={202: DeploymentOut},
        summary="Deploy an approved version (a deploy job does the work)",
    )
    def post(self, request: Request, slug: str, pk: int) -> Response:
        target = _target(request, slug, pk)
        given = DeployIn(data=request.data)
        given.is_valid(raise_exception=True)
        version = registry.version_of(
            target.project, given.validated_data["model"], given.validated_data["version"]
        )
        deployment = services.deploy(actor=request.user, target=target, version=version)
        return Response(DeploymentOut(deployment).data, status=status.HTTP_202_ACCEPTED)


class RollbackView(APIView):
    @extend_schema(
        request=None,
        responses={202: DeploymentOut},
        summary="Deploy again the previous version that was healthy on the target",
    )
    def post(self, request: Request, slug: str, pk: int) -> Response:
        deployment = services.rollback(actor=request.user, target=_target(request, slug, pk))
        return Response(DeploymentOut(deployment).data, status=status.HTTP_202_ACCEPTED)


class CallbackView(APIView):
    # The HMAC with the target's key authenticates the CD system: it has no session or token.
    authentication_classes = ()
    permission_classes = ()

    @extend_schema(
        request=CallbackIn,
        responses={200: CallbackOut},
        auth=[],
        parameters=[
            OpenApiParameter(deploying.TIMESTAMP_HEADER, location="header", required=True),
            OpenApiParameter(deploying.SIGNATURE_HEADER, location="header", required=True),
        ],
        summary="A CD system reports how a deployment went (signed with the target's key)",
    )
    def post(self, request: Request, pk: int) -> Response:
        address = client_ip(request)
        if (wait := limits.over("webhooks", address)) is not None:
            raise Throttled(wait, "Too many webhook deliveries; try again later.")
        limits.spend("webhooks", address)
        deployment = services.accept_deployment_callback(
            deployment_id=pk,
            timestamp=request.headers.get(deploying.TIMESTAMP_HEADER, ""),
            signature=request.headers.get(deploying.SIGNATURE_HEADER, ""),
            body=request.body,
        )
        return Response({"id": deployment.pk, "state": deployment.state})
