"""Query-string filters, checked at the edge; the selectors apply them."""

from datetime import UTC, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import QuerySet

from governance.access.errors import ProjectNotFound
from governance.audit import selectors
from governance.audit.models import AuditEvent


class TrailFilterForm(forms.Form):
    def clean(self) -> dict:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise forms.ValidationError("The date range is reversed: “since” is after “until”.")
        return cleaned


class AuditEventFilter(django_filters.FilterSet):
    """Filters of the trail, the feeds and the exports. `project` is a slug the caller must
    be able to audit; dates are whole UTC days, both ends included."""

    actor = django_filters.CharFilter(label="Actor", help_text="Username of the actor.")
    action = django_filters.CharFilter(
        label="Action",
        help_text="An action, e.g. membership.role_changed, or a family: membership.*",
    )
    target_kind = django_filters.CharFilter(
        label="Target kind", help_text="e.g. project, membership, apitoken"
    )
    target_id = django_filters.CharFilter(label="Target id")
    project = django_filters.CharFilter(label="Project", help_text="Project slug.")
    since = django_filters.DateFilter(
        label="Since",
        help_text="First day, YYYY-MM-DD (UTC).",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        label="Until",
        help_text="Last day, YYYY-MM-DD (UTC).",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []
        form = TrailFilterForm

    def filter_queryset(self, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        return selectors.filter_trail(queryset, **self.criteria())

    def criteria(self) -> dict[str, object]:
        """The cleaned filters as the selectors take them. Raises ProjectNotFound."""
        data = self.form.cleaned_data
        project = None
        if data.get("project"):
            project = (
                selectors.audited_projects(self.request.user).filter(slug=data["project"]).first()
            )
            if project is None:
                raise ProjectNotFound
        return {
            "actor": data.get("actor") or "",
            "action": data.get("action") or "",
            "target_kind": data.get("target_kind") or "",
            "target_id": data.get("target_id") or "",
            "project": project,
            "since": _start_of(data.get("since")),
            "until": _start_of(data.get("until"), days=1),
        }


def _start_of(day: object, days: int = 0) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day, time.min, tzinfo=UTC) + timedelta(days=days)
