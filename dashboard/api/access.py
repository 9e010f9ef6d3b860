"""/api/v1/me/, /api/v1/projects/ and their members."""

from django.db.models import F, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.pagination import CursorPagination
from governance.access import selectors, services
from governance.access.models import Membership, Project
from governance.access.roles import Capability, Role

# Serializers: one per purpose, never both ways.


class ProjectBriefOut(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    role = serializers.CharField(source="my_role", allow_null=True)


class MeOut(serializers.Serializer):
    username = serializers.CharField()
    full_name = serializers.CharField()
    email = serializers.EmailField()
    is_admin = serializers.BooleanField()
    projects = ProjectBriefOut(many=True)


class ProjectOut(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    archived_at = serializers.DateTimeField(allow_null=True)
    my_role = serializers.CharField(allow_null=True, help_text="Your role; null for admins.")
    member_count = serializers.IntegerField()


class ProjectIn(serializers.Serializer):
    slug = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    owner = serializers.CharField(
        required=False, help_text="Username of the first product owner; you, when omitted."
    )


class ProjectRenameIn(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class MemberOut(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    full_name = serializers.CharField(source="user.get_full_name")
    email = serializers.EmailField(source="user.email")
    role = serializers.ChoiceField(choices=Role.choices)
    joined_at = serializers.DateTimeField(source="created_at")


class MemberIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class RoleIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _project_out(user: object, project: Project) -> dict:
    # Re-read through the selector so the body carries the same annotations as the list.
    annotated = selectors.projects_for(user, include_archived=True).get(pk=project.pk)
    return ProjectOut(annotated).data


# Views


class MeView(APIView):
    @extend_schema(responses=MeOut, summary="Who you are and your projects")
    def get(self, request: Request) -> Response:
        user = request.user
        me = {
            "username": user.get_username(),
            "full_name": user.get_full_name(),
            "email": user.email,
            "is_admin": user.is_superuser,
            "projects": selectors.projects_for(user),
        }
        return Response(MeOut(me).data)


class ProjectOrdering(CursorPagination):
    ordering = "slug"


class ProjectListView(generics.GenericAPIView):
    pagination_class = ProjectOrdering

    def get_queryset(self) -> QuerySet[Project]:
        include = self.request.query_params.get("include_archived") in {"1", "true"}
        return selectors.projects_for(self.request.user, include_archived=include)

    @extend_schema(
        responses=ProjectOut(many=True),
        summary="The projects you can see",
        parameters=[
            OpenApiParameter("include_archived", OpenApiTypes.BOOL, description="Also archived.")
        ],
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ProjectOut(page, many=True).data)

    @extend_schema(request=ProjectIn, responses={201: ProjectOut}, summary="Create (admins)")
    def post(self, request: Request) -> Response:
        data = _valid(ProjectIn, request)
        owner = services.find_user(data.pop("owner")) if data.get("owner") else None
        project = services.create_project(actor=request.user, owner=owner, **data)
        return Response(_project_out(request.user, project), status=status.HTTP_201_CREATED)


class ProjectDetailView(APIView):
    @extend_schema(responses=ProjectOut, summary="One project")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = selectors.project_for(request.user, slug)
        return Response(_project_out(request.user, project))

    @extend_schema(request=ProjectRenameIn, responses=ProjectOut, summary="Rename (admins)")
    def patch(self, request: Request, slug: str) -> Response:
        project, _ = selectors.project_for(request.user, slug, Capability.MANAGE_PROJECT)
        data = _valid(ProjectRenameIn, request)
        project = services.rename_project(
            actor=request.user,
            project=project,
            name=data.get("name", project.name),
            description=data.get("description"),
        )
        return Response(_project_out(request.user, project))


class ProjectArchiveView(APIView):
    @extend_schema(request=None, responses=ProjectOut, summary="Archive (admins)")
    def post(self, request: Request, slug: str) -> Response:
        project, _ = selectors.project_for(request.user, slug, Capability.MANAGE_PROJECT)
        project = services.archive_project(actor=request.user, project=project)
        return Response(_project_out(request.user, project))


class ProjectRestoreView(APIView):
    @extend_schema(request=None, responses=ProjectOut, summary="Restore an archived project")
    def post(self, request: Request, slug: str) -> Response:
        project, _ = selectors.project_for(request.user, slug, Capability.MANAGE_PROJECT)
        project = services.restore_project(actor=request.user, project=project)
        return Response(_project_out(request.user, project))


class MemberOrdering(CursorPagination):
    ordering = "username"


class MemberListView(generics.GenericAPIView):
    pagination_class = MemberOrdering

    @extend_schema(responses=MemberOut(many=True), summary="The project's members")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = selectors.project_for(request.user, slug)
        members = selectors.members_of(project).annotate(username=F("user__username"))
        page = self.paginate_queryset(members)
        return self.get_paginated_response(MemberOut(page, many=True).data)

    @extend_schema(request=MemberIn, responses={201: MemberOut}, summary="Add a member")
    def post(self, request: Request, slug: str) -> Response:
        project, _ = selectors.project_for(request.user, slug, Capability.MANAGE_MEMBERS)
        data = _valid(MemberIn, request)
        user = services.find_user(data["username"])
        membership = services.add_member(
            actor=request.user, project=project, user=user, role=data["role"]
        )
        return Response(MemberOut(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    def _membership(
        self, request: Request, slug: str, username: str, capability: str
    ) -> Membership:
        project, _ = selectors.project_for(request.user, slug, capability)
        return selectors.membership_of(project, username)

    @extend_schema(responses=MemberOut, summary="One member")
    def get(self, request: Request, slug: str, username: str) -> Response:
        membership = self._membership(request, slug, username, Capability.VIEW_PROJECT)
        return Response(MemberOut(membership).data)

    @extend_schema(request=RoleIn, responses=MemberOut, summary="Change a member's role")
    def patch(self, request: Request, slug: str, username: str) -> Response:
        membership = self._membership(request, slug, username, Capability.MANAGE_MEMBERS)
        data = _valid(RoleIn, request)
        membership = services.change_role(
            actor=request.user, membership=membership, role=data["role"]
        )
        return Response(MemberOut(membership).data)

    @extend_schema(request=None, responses={204: None}, summary="Remove a member")
    def delete(self, request: Request, slug: str, username: str) -> Response:
        membership = self._membership(request, slug, username, Capability.MANAGE_MEMBERS)
        services.remove_member(actor=request.user, membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)
