"""The trail in the Django admin, and a read-only admin for auditors at /audit-admin/.

Auditors are not staff: their admin site lets them in on their project role, shows only the
projects they audit, and changes nothing. Both sites export the trail with its manifest.
"""

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from dashboard.views.audit import export_response
from governance.access.models import Membership, Project
from governance.audit import selectors
from governance.audit.models import AuditEvent, VerificationRun
from governance.errors import DomainError

# Exporting a selection passes its sequence numbers along; beyond this, the trail page's
# filtered export is the way.
MAX_SELECTED = 50_000


class AuditorAdminSite(admin.AdminSite):
    site_header = "Quorum audit records (read-only)"
    site_title = "Quorum audit"
    index_title = "Records of the projects you audit"
    site_url = "/audit/"

    def has_permission(self, request: HttpRequest) -> bool:
        return selectors.may_read_trail(request.user)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return redirect_to_login(request.get_full_path())


auditor_site = AuditorAdminSite(name="auditor_admin")


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AuditorView(ReadOnly):
    """Visible to whoever the auditor site lets in, limited to their audited projects."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return selectors.may_read_trail(request.user)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return selectors.may_read_trail(request.user)


def _export(fmt: str):
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet):
        seqs = list(queryset.values_list("seq", flat=True)[: MAX_SELECTED + 1])
        if len(seqs) > MAX_SELECTED:
            limit = f"Select at most {MAX_SELECTED} events"
            modeladmin.message_user(
                request, f"{limit}, or export with the trail page's filters.", messages.ERROR
            )
            return None
        try:
            return export_response(request, fmt, {"seqs": seqs})
        except DomainError as error:
            modeladmin.message_user(request, error.message, messages.ERROR)
            return None

    action.__name__ = f"export_{fmt}"
    action.short_description = f"Export the selected events as {fmt.upper()} (with manifest)"
    return action


class AuditEventAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["seq", "at", "actor_name", "action", "target_kind", "target_label", "project"]
    list_filter = ["action", "actor_kind"]
    list_select_related = ["project"]
    search_fields = ["=actor_name", "=action", "=request_id"]
    date_hierarchy = "at"
    show_full_result_count = False  # counting a million rows on every page costs seconds
    actions = [_export("csv"), _export("jsonl"), _export("xlsx")]


class AuditorEventAdmin(AuditorView, AuditEventAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        return selectors.trail_for(request.user)


class AuditorProjectAdmin(AuditorView, admin.ModelAdmin):
    list_display = ["name", "slug", "created_at", "archived_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return selectors.audited_projects(request.user)


class AuditorMembershipAdmin(AuditorView, admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "project"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        projects = selectors.audited_projects(request.user).values("pk")
        return Membership.objects.filter(project__in=projects)


class VerificationRunAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["pk", "created_at", "trigger", "state", "checked", "head_seq", "break_seq"]
    list_filter = ["state", "trigger"]


class AuditorVerificationRunAdmin(AuditorView, VerificationRunAdmin):
    pass


admin.site.register(AuditEvent, AuditEventAdmin)
admin.site.register(VerificationRun, VerificationRunAdmin)
auditor_site.register(AuditEvent, AuditorEventAdmin)
auditor_site.register(Project, AuditorProjectAdmin)
auditor_site.register(Membership, AuditorMembershipAdmin)
auditor_site.register(VerificationRun, AuditorVerificationRunAdmin)
