from django.contrib import admin
from django.http import HttpRequest

from governance.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The trail, read-only: the database would refuse any change anyway."""

    list_display = ["seq", "at", "actor_name", "action", "target_kind", "target_label", "project"]
    list_filter = ["action", "actor_kind"]
    list_select_related = ["project"]
    search_fields = ["action", "actor_name", "target_label", "request_id"]
    date_hierarchy = "at"
    show_full_result_count = False  # counting a million rows on every page costs seconds

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
