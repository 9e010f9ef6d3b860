from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.admin import auditor_site
from dashboard.forms import (
    AuditedPasswordChangeForm,
    AuditedSetPasswordForm,
    QueuedPasswordResetForm,
)
from dashboard.views import (
    access,
    approvals,
    audit,
    delivery,
    deployments,
    errors,
    fairness,
    health,
    hooks,
    monitoring,
    notify,
    registry,
    secrets,
)

auth_patterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(
            form_class=AuditedPasswordChangeForm, success_url="/account/password/done/"
        ),
        name="password_change",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(form_class=QueuedPasswordResetForm),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(form_class=AuditedSetPasswordForm),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]

urlpatterns = [
    path("", access.home, name="home"),
    *auth_patterns,
    path("account/", access.profile, name="profile"),
    path("account/tokens/", access.token_create, name="token_create"),
    path("account/tokens/<int:token_id>/revoke/", access.token_revoke, name="token_revoke"),
    path(
        "account/notifications/",
        notify.notification_preferences,
        name="notification_preferences",
    ),
    path("notifications/", notify.notification_list, name="notifications"),
    path(
        "notifications/read-all/",
        notify.notifications_read_all,
        name="notifications_read_all",
    ),
    path(
        "notifications/<int:notification_id>/read/",
        notify.notification_read,
        name="notification_read",
    ),
    path(
        "notifications/<int:notification_id>/open/",
        notify.notification_open,
        name="notification_open",
    ),
    path("projects/new/", access.project_new, name="project_new"),
    path("projects/<slug:slug>/", access.project_overview, name="project_overview"),
    path("projects/<slug:slug>/members/", access.project_members, name="project_members"),
    path(
        "projects/<slug:slug>/members/<int:membership_id>/role/",
        access.member_role,
        name="member_role",
    ),
    path(
        "projects/<slug:slug>/members/<int:membership_id>/remove/",
        access.member_remove,
        name="member_remove",
    ),
    path("projects/<slug:slug>/settings/", access.project_settings, name="project_settings"),
    path("projects/<slug:slug>/activity/", audit.project_activity, name="project_activity"),
    path("projects/<slug:slug>/experiments/", registry.experiments, name="experiments"),
    path(
        "projects/<slug:slug>/experiments/<str:experiment_id>/",
        registry.experiment,
        name="experiment",
    ),
    path("projects/<slug:slug>/runs/<str:run_id>/", registry.run, name="run"),
    path("projects/<slug:slug>/compare/", registry.compare, name="compare_runs"),
    path("projects/<slug:slug>/models/", registry.models, name="models"),
    path("projects/<slug:slug>/mlflow/", registry.links, name="mlflow_links"),
    path("projects/<slug:slug>/data/", registry.datasets, name="datasets"),
    path("mlflow/inbox/", registry.inbox, name="mlflow_inbox"),
    path("search/", registry.search, name="search"),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/",
        registry.version,
        name="model_version",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/package/",
        delivery.package_version,
        name="package_version",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/profile/",
        delivery.profile_version,
        name="profile_version",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/card/edit/",
        registry.card_edit,
        name="card_edit",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/card.<str:fmt>",
        registry.card_export,
        name="card_export",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/release/",
        approvals.open_request,
        name="approval_open",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/comments/",
        approvals.version_comment,
        name="version_comment",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/versions/<int:number>/bias-reports/new/",
        fairness.bias_report_new,
        name="bias_report_new",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/retraining/",
        delivery.retraining_save,
        name="retraining_save",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/retraining/run/",
        delivery.retraining_run_now,
        name="retraining_run_now",
    ),
    path(
        "projects/<slug:slug>/models/<path:name>/retraining/runs/<int:pk>/rerun/",
        delivery.retraining_rerun,
        name="retraining_rerun",
    ),
    path("projects/<slug:slug>/models/<path:name>/", registry.model, name="model"),
    path("approvals/waiting/", approvals.waiting, name="waiting"),
    path("projects/<slug:slug>/approvals/", approvals.approvals, name="approvals"),
    path("projects/<slug:slug>/approvals/<int:pk>/", approvals.approval, name="approval"),
    path("projects/<slug:slug>/approvals/<int:pk>/decide/", approvals.decide, name="decide"),
    path(
        "projects/<slug:slug>/approvals/<int:pk>/bundle.zip",
        approvals.bundle,
        name="approval_bundle",
    ),
    path(
        "projects/<slug:slug>/approvals/<int:pk>/withdraw/",
        approvals.withdraw,
        name="approval_withdraw",
    ),
    path(
        "projects/<slug:slug>/approvals/<int:pk>/gates/",
        approvals.recheck,
        name="approval_recheck",
    ),
    path(
        "projects/<slug:slug>/approvals/<int:pk>/retry-alias/",
        approvals.retry_alias,
        name="approval_retry_alias",
    ),
    path(
        "projects/<slug:slug>/approvals/<int:pk>/comments/",
        approvals.comment,
        name="approval_comment",
    ),
    path("projects/<slug:slug>/policies/", approvals.policies, name="policies"),
    path("projects/<slug:slug>/policies/new/", approvals.policy_edit, name="policy_new"),
    path("projects/<slug:slug>/policies/<slug:stage>/", approvals.policy_edit, name="policy_edit"),
    path("projects/<slug:slug>/jobs/", delivery.jobs, name="jobs"),
    path("projects/<slug:slug>/deployments/", deployments.deployments, name="deployments"),
    path("projects/<slug:slug>/targets/new/", deployments.target_edit, name="target_new"),
    path("projects/<slug:slug>/targets/<int:pk>/", deployments.target, name="target"),
    path(
        "projects/<slug:slug>/targets/<int:pk>/edit/", deployments.target_edit, name="target_edit"
    ),
    path(
        "projects/<slug:slug>/targets/<int:pk>/deploy/",
        deployments.target_deploy,
        name="target_deploy",
    ),
    path(
        "projects/<slug:slug>/targets/<int:pk>/rollback/",
        deployments.target_rollback,
        name="target_rollback",
    ),
    path(
        "projects/<slug:slug>/targets/<int:pk>/check/",
        deployments.target_check,
        name="target_check",
    ),
    path(
        "projects/<slug:slug>/targets/<int:pk>/delete/",
        deployments.target_delete,
        name="target_delete",
    ),
    path(
        "projects/<slug:slug>/targets/<int:pk>/deployments/<int:deployment>/stop/",
        deployments.deployment_stop,
        name="deployment_stop",
    ),
    path(
        "projects/<slug:slug>/targets/<int:pk>/deployments/<int:deployment>/manifests.yaml",
        deployments.deployment_manifests,
        name="deployment_manifests",
    ),
    path("projects/<slug:slug>/secrets/", secrets.secrets, name="secrets"),
    path(
        "projects/<slug:slug>/secrets/<str:name>/delete/",
        secrets.secret_delete,
        name="secret_delete",
    ),
    path("projects/<slug:slug>/jobs/<int:pk>/", delivery.job, name="job"),
    path("projects/<slug:slug>/jobs/<int:pk>/cancel/", delivery.job_cancel, name="job_cancel"),
    path("projects/<slug:slug>/jobs/<int:pk>/retry/", delivery.job_retry, name="job_retry"),
    path(
        "projects/<slug:slug>/jobs/<int:pk>/package.tar.gz",
        delivery.job_package,
        name="job_package",
    ),
    path("projects/<slug:slug>/monitors/", monitoring.monitors, name="monitors"),
    path("projects/<slug:slug>/bias-reports/<int:pk>/", fairness.bias_report, name="bias_report"),
    path("projects/<slug:slug>/fairness/", fairness.fairness_policy, name="fairness_policy"),
    path("projects/<slug:slug>/monitors/<int:pk>/", monitoring.monitor, name="monitor"),
    path(
        "projects/<slug:slug>/monitors/<int:pk>/watch/",
        monitoring.monitor_watch,
        name="monitor_watch",
    ),
    path(
        "projects/<slug:slug>/monitors/<int:pk>/settings/",
        monitoring.monitor_settings,
        name="monitor_settings",
    ),
    path(
        "projects/<slug:slug>/monitors/<int:pk>/check/",
        monitoring.monitor_check,
        name="monitor_check",
    ),
    path(
        "projects/<slug:slug>/monitors/<int:pk>/alerts/<int:alert_id>/acknowledge/",
        monitoring.alert_move,
        {"to": "acknowledge"},
        name="alert_acknowledge",
    ),
    path(
        "projects/<slug:slug>/monitors/<int:pk>/alerts/<int:alert_id>/resolve/",
        monitoring.alert_move,
        {"to": "resolve"},
        name="alert_resolve",
    ),
    path(
        "projects/<slug:slug>/monitors/<int:pk>/batches/<int:batch_id>/",
        monitoring.batch,
        name="monitor_batch",
    ),
    path("audit/", audit.trail, name="audit_trail"),
    path("audit/export/", audit.export, name="audit_export"),
    path("audit/exports/<int:seq>/manifest.json", audit.manifest, name="audit_manifest"),
    path("audit/verifications/", audit.verify, name="audit_verify"),
    path("audit/verifications/<int:run_id>/", audit.verification, name="audit_verification"),
    path("projects/<slug:slug>/archive/", access.project_archive, name="project_archive"),
    path("api/v1/", include("dashboard.api.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("hooks/mlflow/", hooks.mlflow_webhook, name="mlflow_webhook"),
    path("admin/", admin.site.urls),
    path("audit-admin/", auditor_site.urls),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
