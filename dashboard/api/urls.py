from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from dashboard.api import access, audit

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("me/", access.MeView.as_view(), name="api-me"),
    path("audit/events/", audit.EventListView.as_view(), name="api-audit-events"),
    path("audit/export", audit.ExportView.as_view(), name="api-audit-export"),
    path(
        "audit/exports/<int:seq>/manifest/",
        audit.ManifestView.as_view(),
        name="api-audit-manifest",
    ),
    path(
        "audit/verifications/",
        audit.VerificationListView.as_view(),
        name="api-audit-verifications",
    ),
    path(
        "audit/verifications/<int:run_id>/",
        audit.VerificationDetailView.as_view(),
        name="api-audit-verification",
    ),
    path("projects/", access.ProjectListView.as_view(), name="api-projects"),
    path("projects/<slug:slug>/", access.ProjectDetailView.as_view(), name="api-project"),
    path(
        "projects/<slug:slug>/archive/",
        access.ProjectArchiveView.as_view(),
        name="api-project-archive",
    ),
    path(
        "projects/<slug:slug>/restore/",
        access.ProjectRestoreView.as_view(),
        name="api-project-restore",
    ),
    path("projects/<slug:slug>/members/", access.MemberListView.as_view(), name="api-members"),
    path(
        "projects/<slug:slug>/members/<str:username>/",
        access.MemberDetailView.as_view(),
        name="api-member",
    ),
]
