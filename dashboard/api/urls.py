from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from dashboard.api import (
    access,
    approvals,
    audit,
    deployments,
    fairness,
    labels,
    monitoring,
    notify,
    registry,
    retraining,
    secrets,
)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("me/", access.MeView.as_view(), name="api-me"),
    path("gate", approvals.GateView.as_view(), name="api-gate"),
    path("approval-requests/", approvals.ApprovalListView.as_view(), name="api-approval-requests"),
    path(
        "approval-requests/<int:pk>/",
        approvals.ApprovalDetailView.as_view(),
        name="api-approval-request",
    ),
    path(
        "approval-requests/<int:pk>/bundle/",
        approvals.ApprovalBundleView.as_view(),
        name="api-approval-bundle",
    ),
    path(
        "approval-requests/<int:pk>/decisions/",
        approvals.DecisionView.as_view(),
        name="api-approval-decisions",
    ),
    path("batches/<int:pk>/", labels.BatchView.as_view(), name="api-batch"),
    path("batches/<int:pk>/labels/", labels.LabelsView.as_view(), name="api-batch-labels"),
    path("notifications/", notify.NotificationListView.as_view(), name="api-notifications"),
    path(
        "notifications/read-all/",
        notify.NotificationReadAllView.as_view(),
        name="api-notifications-read-all",
    ),
    path(
        "notifications/preferences/",
        notify.PreferencesView.as_view(),
        name="api-notification-preferences",
    ),
    path(
        "notifications/<int:notification_id>/read/",
        notify.NotificationReadView.as_view(),
        name="api-notification-read",
    ),
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
    path("projects/<slug:slug>/secrets/", secrets.SecretListView.as_view(), name="api-secrets"),
    path(
        "projects/<slug:slug>/targets/",
        deployments.TargetListView.as_view(),
        name="api-targets",
    ),
    path(
        "projects/<slug:slug>/targets/<int:pk>/",
        deployments.TargetDetailView.as_view(),
        name="api-target",
    ),
    path(
        "projects/<slug:slug>/targets/<int:pk>/deployments/",
        deployments.DeploymentListView.as_view(),
        name="api-target-deployments",
    ),
    path(
        "projects/<slug:slug>/targets/<int:pk>/rollback/",
        deployments.RollbackView.as_view(),
        name="api-target-rollback",
    ),
    path(
        "deployments/<int:pk>/callback/",
        deployments.CallbackView.as_view(),
        name="api-deployment-callback",
    ),
    path(
        "projects/<slug:slug>/secrets/<str:name>/",
        secrets.SecretDetailView.as_view(),
        name="api-secret",
    ),
    path(
        "projects/<slug:slug>/experiments/",
        registry.ExperimentListView.as_view(),
        name="api-experiments",
    ),
    path(
        "projects/<slug:slug>/experiments/<str:experiment_id>/runs/",
        registry.RunListView.as_view(),
        name="api-runs",
    ),
    path(
        "projects/<slug:slug>/runs/<str:run_id>/", registry.RunDetailView.as_view(), name="api-run"
    ),
    path(
        "projects/<slug:slug>/runs/<str:run_id>/metrics/<str:key>/history/",
        registry.MetricHistoryView.as_view(),
        name="api-metric-history",
    ),
    path("projects/<slug:slug>/models/", registry.ModelListView.as_view(), name="api-models"),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/card/",
        registry.CardView.as_view(),
        name="api-card",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/lineage/",
        registry.LineageView.as_view(),
        name="api-lineage",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/",
        registry.ModelDetailView.as_view(),
        name="api-model",
    ),
    path(
        "models/<path:key>/retraining/runs/",
        retraining.RetrainingRunListView.as_view(),
        name="api-retraining-runs",
    ),
    path(
        "models/<path:key>/retraining/",
        retraining.RetrainingPolicyView.as_view(),
        name="api-retraining",
    ),
    path("projects/<slug:slug>/datasets/", registry.DatasetListView.as_view(), name="api-datasets"),
    path("projects/<slug:slug>/sync/", registry.SyncView.as_view(), name="api-sync"),
    path(
        "projects/<slug:slug>/bias-reports/",
        fairness.BiasReportListView.as_view(),
        name="api-bias-reports",
    ),
    path("bias-reports/<int:pk>/", fairness.BiasReportDetailView.as_view(), name="api-bias-report"),
    path(
        "projects/<slug:slug>/fairness-policy/",
        fairness.FairnessPolicyView.as_view(),
        name="api-fairness-policy",
    ),
    path(
        "projects/<slug:slug>/monitors/",
        monitoring.MonitorListView.as_view(),
        name="api-monitors",
    ),
    path("monitors/<int:pk>/", monitoring.MonitorDetailView.as_view(), name="api-monitor"),
    path(
        "monitors/<int:pk>/batches/",
        monitoring.BatchListView.as_view(),
        name="api-monitor-batches",
    ),
    path(
        "monitors/<int:pk>/checks/", monitoring.CheckListView.as_view(), name="api-monitor-checks"
    ),
    path(
        "monitors/<int:pk>/alerts/", monitoring.AlertListView.as_view(), name="api-monitor-alerts"
    ),
    path("drift-checks/<int:pk>/", monitoring.CheckDetailView.as_view(), name="api-drift-check"),
    path(
        "drift-alerts/<int:pk>/acknowledge/",
        monitoring.AlertAcknowledgeView.as_view(),
        name="api-drift-alert-acknowledge",
    ),
    path(
        "drift-alerts/<int:pk>/resolve/",
        monitoring.AlertResolveView.as_view(),
        name="api-drift-alert-resolve",
    ),
    path(
        "projects/<slug:slug>/members/<str:username>/",
        access.MemberDetailView.as_view(),
        name="api-member",
    ),
]
