"""/api/v1/models/{id or name}/retraining/: a registered model's retraining policy, its runs,
and "run now"."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.pagination import CursorPagination
from governance.delivery import selectors, services
from governance.delivery.errors import NoRetrainingPolicy
from governance.delivery.models import RetrainingPolicy

KEY = OpenApiParameter(
    "key", str, OpenApiParameter.PATH, description="The registered model's id or its name."
)


class RetrainingPolicyOut(serializers.Serializer):
    model = serializers.CharField(source="model.name")
    entry_point = serializers.CharField()
    params = serializers.JSONField()
    seed = serializers.IntegerField()
    cron = serializers.CharField()
    on_new_data = serializers.BooleanField()
    on_drift = serializers.BooleanField()
    cooldown_minutes = serializers.IntegerField()
    enabled = serializers.BooleanField()
    open_approval_for_stage = serializers.CharField()
    auto_deploy = serializers.BooleanField()
    updated_by = serializers.CharField(source="updated_by.username", allow_null=True)
    updated_at = serializers.DateTimeField()


class RetrainingPolicyIn(serializers.Serializer):
    entry_point = serializers.CharField(max_length=300)
    params = serializers.JSONField(required=False, default=dict)
    seed = serializers.IntegerField(required=False, default=0)
    cron = serializers.CharField(required=False, default="", allow_blank=True, max_length=120)
    on_new_data = serializers.BooleanField(required=False, default=False)
    on_drift = serializers.BooleanField(required=False, default=False)
    cooldown_minutes = serializers.IntegerField(required=False, default=60)
    enabled = serializers.BooleanField(required=False, default=True)
    open_approval_for_stage = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=64
    )
    auto_deploy = serializers.BooleanField(required=False, default=False)


class RetrainingRunOut(serializers.Serializer):
    id = serializers.IntegerField()
    trigger = serializers.CharField()
    cause = serializers.JSONField()
    state = serializers.CharField(source="job.state")
    job = serializers.IntegerField(source="job_id")
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True)
    entry_point = serializers.CharField()
    params = serializers.JSONField()
    seed = serializers.IntegerField()
    data_digests = serializers.JSONField()
    code_version = serializers.CharField()
    env_hash = serializers.CharField()
    mlflow_run_id = serializers.CharField()
    registered_version = serializers.IntegerField(source="registered_number", allow_null=True)
    approval_request = serializers.IntegerField(source="approval_id", allow_null=True)
    approval_note = serializers.CharField()
    metrics = serializers.JSONField()
    rerun_of = serializers.IntegerField(source="rerun_of_id", allow_null=True)
    metrics_match = serializers.BooleanField(allow_null=True)
    differences = serializers.JSONField()
    created_at = serializers.DateTimeField()


class RunOrdering(CursorPagination):
    ordering = ("-created_at", "-id")


def _policy(model: object) -> RetrainingPolicy:
    policy = selectors.retraining_of(model)
    if policy is None:
        raise NoRetrainingPolicy
    return policy


class RetrainingPolicyView(APIView):
    @extend_schema(
        parameters=[KEY], responses=RetrainingPolicyOut, summary="A model's retraining policy"
    )
    def get(self, request: Request, key: str) -> Response:
        model, _ = selectors.model_for(request.user, key)
        return Response(RetrainingPolicyOut(_policy(model)).data)

    @extend_schema(
        parameters=[KEY],
        request=RetrainingPolicyIn,
        responses=RetrainingPolicyOut,
        summary="Set a model's retraining policy (ML engineers and admins)",
    )
    def put(self, request: Request, key: str) -> Response:
        model, _ = selectors.model_for(request.user, key)
        given = RetrainingPolicyIn(data=request.data)
        given.is_valid(raise_exception=True)
        policy = services.save_retraining_policy(
            actor=request.user, model=model, **given.validated_data
        )
        return Response(RetrainingPolicyOut(policy).data)


class RetrainingRunListView(generics.GenericAPIView):
    pagination_class = RunOrdering

    @extend_schema(
        parameters=[KEY],
        responses=RetrainingRunOut(many=True),
        summary="A model's retraining runs, newest first",
    )
    def get(self, request: Request, key: str) -> Response:
        model, _ = selectors.model_for(request.user, key)
        page = self.paginate_queryset(selectors.retraining_runs_query(model))
        return self.get_paginated_response(RetrainingRunOut(page, many=True).data)

    @extend_schema(
        parameters=[KEY],
        request=None,
        responses={201: RetrainingRunOut},
        summary="Start a retraining run now (one at a time per model)",
    )
    def post(self, request: Request, key: str) -> Response:
        model, _ = selectors.model_for(request.user, key)
        run = services.trigger_retraining(
            policy=_policy(model), trigger="manual", actor=request.user
        )
        return Response(RetrainingRunOut(run).data, status=status.HTTP_201_CREATED)
