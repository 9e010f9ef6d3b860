"""The admin lists projects, memberships and tokens; every change goes through the services."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from governance.access import services
from governance.access.models import ApiToken, Membership, Project
from governance.admin import ServiceModelAdmin, report
from governance.errors import DomainError


@admin.register(Project)
class ProjectAdmin(ServiceModelAdmin):
    list_display = ["name", "slug", "created_at", "archived_at"]
    list_filter = [("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "slug"]
    actions = ["archive", "restore"]

    def get_fields(self, request: HttpRequest, obj: Project | None = None) -> list[str]:
        return ["slug", "name", "description"] if obj is None else ["name", "description"]

    def save_model(self, request: HttpRequest, obj: Project, form, change: bool) -> None:
        if change:
            services.rename_project(
                actor=request.user, project=obj, name=obj.name, description=obj.description
            )
        else:
            created = services.create_project(
                actor=request.user, slug=obj.slug, name=obj.name, description=obj.description
            )
            obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        return False  # projects are archived, never deleted: their history must stay

    @admin.action(description="Archive the selected projects")
    def archive(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        for project in queryset:
            try:
                services.archive_project(actor=request.user, project=project)
            except DomainError as error:
                report(request, error)

    @admin.action(description="Restore the selected projects")
    def restore(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        for project in queryset:
            try:
                services.restore_project(actor=request.user, project=project)
            except DomainError as error:
                report(request, error)


@admin.register(Membership)
class MembershipAdmin(ServiceModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    list_select_related = ["user", "project"]
    search_fields = ["user__username", "project__slug"]
    autocomplete_fields = ["user", "project"]

    def get_fields(self, request: HttpRequest, obj: Membership | None = None) -> list[str]:
        return ["project", "user", "role"] if obj is None else ["role"]

    def save_model(self, request: HttpRequest, obj: Membership, form, change: bool) -> None:
        if change:
            services.change_role(actor=request.user, membership=obj, role=obj.role)
        else:
            created = services.add_member(
                actor=request.user, project=obj.project, user=obj.user, role=obj.role
            )
            obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.remove_member(actor=request.user, membership=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("project"):
            try:
                services.remove_member(actor=request.user, membership=membership)
            except DomainError as error:
                report(request, error)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "state"]
    list_select_related = ["user"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = list_display
    fields = list_display
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token's secret is shown once, to its owner, on their profile page

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            services.revoke_api_token(actor=request.user, token=token)
