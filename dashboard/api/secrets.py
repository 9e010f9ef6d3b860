"""/api/v1/projects/{slug}/secrets: names to read, values to write, and never to read back."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.access import selectors as access
from governance.delivery import selectors, services


class SecretOut(serializers.Serializer):
    name = serializers.CharField()
    set_by = serializers.CharField(source="set_by.username", allow_null=True)
    set_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class SecretIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    value = serializers.CharField(write_only=True, trim_whitespace=False)


class SecretListView(APIView):
    @extend_schema(responses=SecretOut(many=True), summary="The project's secrets, by name")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        return Response(SecretOut(selectors.secrets_of(project), many=True).data)

    @extend_schema(
        request=SecretIn,
        responses={201: SecretOut},
        summary="Keep a secret, encrypted (a name already kept gets the new value)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        given = SecretIn(data=request.data)
        given.is_valid(raise_exception=True)
        secret = services.set_secret(actor=request.user, project=project, **given.validated_data)
        return Response(SecretOut(secret).data, status=status.HTTP_201_CREATED)


class SecretDetailView(APIView):
    @extend_schema(responses={204: None}, summary="Forget a secret")
    def delete(self, request: Request, slug: str, name: str) -> Response:
        project, _ = access.project_for(request.user, slug)
        services.delete_secret(actor=request.user, project=project, name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)
