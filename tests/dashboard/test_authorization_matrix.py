"""Who gets what, on every URL of the site: one table, every role plus an outsider and anonymous.

Each row names a URL, the request to send (GET, or a POST a permitted person could
legitimately send), how its parameters come from the world below, and the status each person
gets, in the order of ROLES. A new URL without a row fails `test_every_url_has_a_row`; adding
one is a line in ROWS.

Pages answer anonymous people with a redirect to the sign-in page; the API answers them 401
with its one error body. An outsider never learns that a project or its objects exist: 404,
not 403. Members whose role lacks the capability get 403.

Every request runs in a savepoint that is rolled back, so one world serves every person of
every row.
"""

import functools
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.cookies import SimpleCookie

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, path, reverse

from dashboard import urls as dashboard_urls
from dashboard.admin import auditor_site
from governance.access import services as access
from governance.access.models import Project
from governance.notify.kinds import Kind
from tests.conftest import PASSWORD
from tests.dashboard.conftest import World

ROLES = ("admin", "owner", "scientist", "engineer", "auditor", "viewer", "outsider", "anonymous")


@dataclass(frozen=True)
class Try:
    """One request to send to a URL, and the status each of ROLES gets (space-separated)."""

    method: str
    expect: str
    data: dict | Callable[["World"], dict] | None = None
    params: dict[str, str] = field(default_factory=dict)
    api: bool = False
    # Run inside the savepoint before the request, for a change that needs a state first.
    setup: Callable[["World"], object] | None = None


def get(expect: str, **params: str) -> Try:
    return Try("GET", expect, params=params)


def post(expect: str, data: dict | Callable | None = None, **params: str) -> Try:
    return Try("POST", expect, data=data, params=params)


def api(method: str, expect: str, data: dict | Callable | None = None, **params: str) -> Try:
    return Try(method, expect, data=data, params=params, api=True)


def _csv(text: str, name: str = "batch.csv") -> io.BytesIO:
    upload = io.BytesIO(text.encode())
    upload.name = name
    return upload


def _archived(world: "World") -> None:
    project = Project.objects.get(slug=world.ids["slug"])
    access.archive_project(actor=world.users["admin"], project=project)


# URL parameters filled from the world's ids by name, unless a row says otherwise
# (`pk="job"` takes the world's `job`).
PARAMETERS = {
    "slug": "slug",
    "name": "model",
    "number": "number",
    "experiment_id": "experiment",
    "run_id": "run",
    "membership_id": "membership",
    "token_id": "token",
    "notification_id": "notification",
    "alert_id": "alert",
    "batch_id": "batch",
    "seq": "export",
    "stage": "stage",
    "fmt": "md",
    "username": "member",
    "key": "metric",
    "uidb64": "uidb64",
    "token": "reset_token",
}

# name -> the requests to try. Expected statuses in the order of ROLES.
ROWS: dict[str, tuple[Try, ...]] = {
    # Signing in and the person's own account
    "home": (get("200 200 200 200 200 200 200 302"),),
    "login": (
        get("302 302 302 302 302 302 302 200"),
        post("302 302 302 302 302 302 302 302", {"username": "val", "password": PASSWORD}),
    ),
    "logout": (post("302 302 302 302 302 302 302 302"),),
    "password_change": (
        get("200 200 200 200 200 200 200 302"),
        post(
            "302 302 302 302 302 302 302 302",
            {
                "old_password": PASSWORD,
                "new_password1": "another long passphrase",
                "new_password2": "another long passphrase",
            },
        ),
    ),
    "password_change_done": (get("200 200 200 200 200 200 200 302"),),
    "password_reset": (
        get("200 200 200 200 200 200 200 200"),
        post("302 302 302 302 302 302 302 302", {"email": "val@example.com"}),
    ),
    "password_reset_done": (get("200 200 200 200 200 200 200 200"),),
    "password_reset_confirm": (get("302 302 302 302 302 302 302 302"),),
    "password_reset_complete": (get("200 200 200 200 200 200 200 200"),),
    "profile": (get("200 200 200 200 200 200 200 302"),),
    "token_create": (post("201 201 201 201 201 201 201 302", {"name": "ci", "lifetime": "30"}),),
    # The token is olivia's (the owner's): nobody else finds it.
    "token_revoke": (post("404 302 404 404 404 404 404 302"),),
    "notification_preferences": (
        get("200 200 200 200 200 200 200 302"),
        post("302 302 302 302 302 302 302 302", {kind.value: "daily" for kind in Kind}),
    ),
    "notifications": (get("200 200 200 200 200 200 200 302"),),
    "notifications_read_all": (post("302 302 302 302 302 302 302 302"),),
    # The notification is olivia's.
    "notification_read": (post("404 302 404 404 404 404 404 302"),),
    "notification_open": (post("404 302 404 404 404 404 404 302"),),
    # Projects and members
    "project_new": (
        get("200 403 403 403 403 403 403 302"),
        post("302 403 403 403 403 403 403 302", {"slug": "fraud", "name": "Fraud"}),
    ),
    "project_overview": (get("200 200 200 200 200 200 404 302"),),
    "project_members": (
        get("200 200 200 200 200 200 404 302"),
        post("302 302 403 403 403 403 404 302", {"username": "oscar", "role": "viewer"}),
    ),
    "member_role": (post("302 302 403 403 403 403 404 302", {"role": "auditor"}),),
    "member_remove": (post("302 302 403 403 403 403 404 302"),),
    "project_settings": (
        get("200 403 403 403 403 403 404 302"),
        post("302 403 403 403 403 403 404 302", {"name": "Credit risk 2", "description": ""}),
    ),
    "project_archive": (post("302 403 403 403 403 403 404 302"),),
    "project_activity": (get("200 200 200 200 200 200 404 302"),),
    # The MLflow mirror
    "experiments": (get("200 200 200 200 200 200 404 302"),),
    "experiment": (get("200 200 200 200 200 200 404 302"),),
    "run": (get("200 200 200 200 200 200 404 302"),),
    "compare_runs": (get("200 200 200 200 200 200 404 302", run="runs"),),
    "models": (get("200 200 200 200 200 200 404 302"),),
    "model": (get("200 200 200 200 200 200 404 302"),),
    "model_version": (get("200 200 200 200 200 200 404 302"),),
    # The page where experiments and models are linked to the project: for those who link.
    "mlflow_links": (
        get("200 200 403 403 403 403 404 302"),
        post(
            "302 302 403 403 403 403 404 302",
            {"action": "link", "kind": "experiment", "name": "untagged"},
        ),
    ),
    "mlflow_inbox": (
        get("200 403 403 403 403 403 403 302"),
        post(
            "302 403 403 403 403 403 403 302",
            {"project": "credit-risk", "kind": "experiment", "name": "untagged"},
        ),
    ),
    "search": (get("200 200 200 200 200 200 200 302"),),
    "datasets": (
        get("200 200 200 200 200 200 404 302"),
        post(
            "302 403 302 302 403 403 404 302",
            lambda w: {"name": "applicants", "file": _csv("age\n34\n51\n", "applicants.csv")},
        ),
    ),
    "card_edit": (
        get("200 200 200 403 403 403 404 302"),
        post("302 302 302 403 403 403 404 302", {"intended_use": "Scoring credit applications."}),
    ),
    "card_export": (get("200 200 200 200 200 200 404 302"),),
    "package_version": (post("302 403 403 302 403 403 404 302"),),
    "approval_open": (post("302 403 302 302 403 403 404 302", {"stage": "staging"}),),
    "version_comment": (post("302 302 302 302 302 302 404 302", {"body": "Looks right."}),),
    "bias_report_new": (
        get("200 403 200 200 403 403 404 302"),
        post(
            "302 403 302 302 403 403 404 302",
            lambda w: {
                "dataset": w.ids["holdout"],
                "y_true": "y",
                "y_pred": "p",
                "sensitive": "sex",
            },
        ),
    ),
    # Approvals
    "waiting": (get("200 200 200 200 200 200 200 302"),),
    "approvals": (get("200 200 200 200 200 200 404 302"),),
    "approval": (get("200 200 200 200 200 200 404 302", pk="approval"),),
    "approval_bundle": (get("200 200 200 200 200 200 404 302", pk="approval"),),
    # Approvals count by project role and this policy asks a product owner's only: an admin
    # who is no product owner here, and the scientist who asked, are not approvers (403).
    "decide": (post("403 302 403 403 403 403 404 302", {"verdict": "approve"}, pk="approval"),),
    "approval_withdraw": (post("302 302 302 403 403 403 404 302", pk="approval"),),
    "approval_recheck": (post("302 302 302 302 302 302 404 302", pk="approval"),),
    "approval_retry_alias": (post("302 302 302 302 403 403 404 302", pk="failed_approval"),),
    "approval_comment": (
        post("302 302 302 302 302 302 404 302", {"body": "Why now?"}, pk="approval"),
    ),
    "policies": (get("200 200 200 200 200 200 404 302"),),
    "policy_new": (
        get("200 200 403 403 403 403 404 302"),
        post("302 302 403 403 403 403 404 302", {"stage": "canary", "required_product_owner": "1"}),
    ),
    "policy_edit": (
        get("200 200 403 403 403 403 404 302"),
        post("302 302 403 403 403 403 404 302", {"required_product_owner": "2"}),
    ),
    # Delivery
    "jobs": (get("200 200 200 200 200 200 404 302"),),
    "job": (get("200 200 200 200 200 200 404 302", pk="job"),),
    "job_cancel": (post("302 403 403 302 403 403 404 302", pk="job"),),
    "job_retry": (post("302 403 403 302 403 403 404 302", pk="cancelled_job"),),
    "job_package": (get("200 200 200 200 200 200 404 302", pk="package_job"),),
    "secrets": (
        get("200 200 200 200 200 200 404 302"),
        post("302 403 403 302 403 403 404 302", {"name": "REGISTRY_TOKEN", "value": "s3cret"}),
    ),
    "secret_delete": (post("302 403 403 302 403 403 404 302", name="secret"),),
    # Profiling, deployment targets and retraining
    "profile_version": (
        post(
            "302 403 403 302 403 403 404 302",
            lambda w: {"data": f"monitor:{w.ids['scored_monitor']}"},
        ),
    ),
    "deployments": (get("200 200 200 200 200 200 404 302"),),
    "target_new": (
        get("200 403 403 200 403 403 404 302"),
        post(
            "302 403 403 302 403 403 404 302", {"name": "edge", "kind": "local", "stage": "staging"}
        ),
    ),
    "target": (get("200 200 200 200 200 200 404 302", pk="target"),),
    "target_edit": (get("200 403 403 200 403 403 404 302", pk="target"),),
    "target_deploy": (
        post("302 403 403 302 403 403 404 302", {"version": "credit-scoring:2"}, pk="target"),
    ),
    "target_rollback": (post("302 403 403 302 403 403 404 302", pk="target"),),
    "target_check": (post("302 403 403 302 403 403 404 302", pk="target"),),
    "target_delete": (post("302 403 403 302 403 403 404 302", pk="target"),),
    "deployment_stop": (
        post("302 403 403 302 403 403 404 302", pk="cluster", deployment="manifests"),
    ),
    "deployment_manifests": (
        get("200 200 200 200 200 200 404 302", pk="cluster", deployment="manifests"),
    ),
    "retraining_save": (
        post(
            "302 403 403 302 403 403 404 302",
            {
                "entry_point": "governance.delivery.demo_pipeline:CREDIT_SCORING",
                "cooldown_minutes": "60",
            },
        ),
    ),
    "retraining_run_now": (post("302 403 403 302 403 403 404 302"),),
    "retraining_rerun": (post("302 403 403 302 403 403 404 302", pk="retraining_run"),),
    # Monitoring and fairness
    "monitors": (
        get("200 200 200 200 200 200 404 302"),
        post(
            "302 403 302 302 403 403 404 302",
            lambda w: {"name": "inputs-2", "reference": w.ids["reference"]},
        ),
    ),
    "monitor": (
        get("200 200 200 200 200 200 404 302", pk="monitor"),
        post(
            "302 403 302 302 403 403 404 302",
            lambda w: {"file": _csv("age\n" + "".join(f"{n % 50}\n" for n in range(50)))},
            pk="monitor",
        ),
    ),
    "monitor_watch": (post("302 302 302 302 302 302 404 302", {"on": "1"}, pk="monitor"),),
    "monitor_settings": (
        post("302 403 302 302 403 403 404 302", {"window_hours": "6"}, pk="monitor"),
    ),
    "monitor_check": (post("302 403 302 302 403 403 404 302", pk="monitor"),),
    "alert_acknowledge": (
        post("302 302 302 302 403 403 404 302", {"comment": "Seen."}, pk="monitor"),
    ),
    "alert_resolve": (
        post("302 302 302 302 403 403 404 302", {"comment": "Fixed."}, pk="monitor"),
    ),
    "monitor_batch": (
        get("200 200 200 200 200 200 404 302", pk="scored_monitor", batch_id="scored_batch"),
        post(
            "302 403 302 302 403 403 404 302",
            lambda w: {"file": _csv("y\n0\n0\n", "labels.csv")},
            pk="scored_monitor",
            batch_id="scored_batch",
        ),
    ),
    "bias_report": (get("200 200 200 200 200 200 404 302", pk="bias_report"),),
    "fairness_policy": (
        get("200 200 200 200 200 200 404 302"),
        post(
            "302 302 403 403 403 403 404 302",
            {"demographic_parity_ratio_min": "0.8", "min_group_size": "30"},
        ),
    ),
    # The audit trail
    "audit_trail": (get("200 403 403 403 200 403 403 302"),),
    "audit_export": (get("200 403 403 403 200 403 403 302", format="jsonl"),),
    "audit_manifest": (get("200 404 404 404 200 404 404 302"),),
    "audit_verify": (post("302 403 403 403 302 403 403 302"),),
    "audit_verification": (get("200 403 403 403 200 403 403 302", run_id="verification"),),
    # Other systems
    "healthz": (get("200 200 200 200 200 200 200 200"),),
    # Signed by MLflow, not by a person: an unsigned delivery is refused whoever sends it.
    "mlflow_webhook": (post("401 401 401 401 401 401 401 401"),),
    # The API, with each person's token
    "api-schema": (api("GET", "200 200 200 200 200 200 200 200"),),
    "api-docs": (get("200 200 200 200 200 200 200 302"),),
    "api-me": (api("GET", "200 200 200 200 200 200 200 401"),),
    "api-gate": (
        api(
            "GET", "200 200 200 200 200 200 404 401", model="model", version="1", stage="production"
        ),
    ),
    "api-approval-requests": (
        api(
            "POST",
            "201 403 201 201 403 403 404 401",
            lambda w: {
                "project": w.ids["slug"],
                "model": w.ids["model"],
                "version": 2,
                "stage": "staging",
            },
        ),
    ),
    "api-approval-request": (api("GET", "200 200 200 200 200 200 404 401", pk="approval"),),
    "api-approval-bundle": (api("GET", "200 200 200 200 200 200 404 401", pk="approval"),),
    "api-approval-decisions": (
        api("POST", "403 201 403 403 403 403 404 401", {"verdict": "approve"}, pk="approval"),
    ),
    "api-batch": (api("GET", "200 200 200 200 200 200 404 401", pk="batch"),),
    "api-batch-labels": (
        api("POST", "202 403 202 202 403 403 404 401", {"file": "y\n0\n0\n"}, pk="scored_batch"),
    ),
    "api-notifications": (api("GET", "200 200 200 200 200 200 200 401"),),
    "api-notifications-read-all": (api("POST", "200 200 200 200 200 200 200 401"),),
    "api-notification-preferences": (
        api("GET", "200 200 200 200 200 200 200 401"),
        api("PUT", "200 200 200 200 200 200 200 401", {"preferences": {"mention": "daily"}}),
    ),
    "api-notification-read": (api("POST", "404 200 404 404 404 404 404 401"),),
    "api-audit-events": (api("GET", "200 403 403 403 200 403 403 401"),),
    "api-audit-export": (api("GET", "200 403 403 403 200 403 403 401", format="jsonl"),),
    "api-audit-manifest": (api("GET", "200 404 404 404 200 404 404 401"),),
    "api-audit-verifications": (api("POST", "202 403 403 403 202 403 403 401", {}),),
    "api-audit-verification": (
        api("GET", "200 403 403 403 200 403 403 401", run_id="verification"),
    ),
    "api-projects": (
        api("GET", "200 200 200 200 200 200 200 401"),
        api("POST", "201 403 403 403 403 403 403 401", {"slug": "fraud", "name": "Fraud"}),
    ),
    "api-project": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api("PATCH", "200 403 403 403 403 403 404 401", {"name": "Credit risk 2"}),
    ),
    "api-project-archive": (api("POST", "200 403 403 403 403 403 404 401"),),
    "api-project-restore": (
        replace(api("POST", "200 403 403 403 403 403 404 401"), setup=_archived),
    ),
    "api-members": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api("POST", "201 201 403 403 403 403 404 401", {"username": "oscar", "role": "viewer"}),
    ),
    "api-member": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api("PATCH", "200 200 403 403 403 403 404 401", {"role": "auditor"}),
        api("DELETE", "204 204 403 403 403 403 404 401"),
    ),
    "api-secrets": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api("POST", "201 403 403 201 403 403 404 401", {"name": "REGISTRY_TOKEN", "value": "x"}),
    ),
    "api-secret": (api("DELETE", "204 403 403 204 403 403 404 401", name="secret"),),
    "api-targets": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api(
            "POST",
            "201 403 403 201 403 403 404 401",
            {"name": "edge", "kind": "local", "stage": "staging"},
        ),
    ),
    "api-target": (
        api("GET", "200 200 200 200 200 200 404 401", pk="target"),
        api("PATCH", "200 403 403 200 403 403 404 401", {"stage": "staging"}, pk="target"),
        api("DELETE", "204 403 403 204 403 403 404 401", pk="target"),
    ),
    # Deploying v2, approved for production but never packaged: refused with the reason.
    "api-target-deployments": (
        api("GET", "200 200 200 200 200 200 404 401", pk="target"),
        api(
            "POST",
            "409 403 403 409 403 403 404 401",
            {"model": "credit-scoring", "version": 2},
            pk="target",
        ),
    ),
    "api-target-rollback": (api("POST", "409 403 403 409 403 403 404 401", pk="target"),),
    # Only a webhook target's deployment takes callbacks; the world's cluster deployment is
    # unknown to them, whoever asks (the signature, not a session, is the authentication).
    "api-deployment-callback": (
        api("POST", "404 404 404 404 404 404 404 404", {"state": "live"}, pk="manifests"),
    ),
    "api-retraining": (
        api("GET", "200 200 200 200 200 200 404 401", key="model"),
        api(
            "PUT",
            "200 403 403 200 403 403 404 401",
            {"entry_point": "governance.delivery.demo_pipeline:CREDIT_SCORING"},
            key="model",
        ),
    ),
    "api-retraining-runs": (
        api("GET", "200 200 200 200 200 200 404 401", key="model"),
        api("POST", "409 403 403 409 403 403 404 401", key="model"),
    ),
    "api-experiments": (api("GET", "200 200 200 200 200 200 404 401"),),
    "api-runs": (api("GET", "200 200 200 200 200 200 404 401"),),
    "api-run": (api("GET", "200 200 200 200 200 200 404 401"),),
    "api-metric-history": (api("GET", "200 200 200 200 200 200 404 401"),),
    "api-models": (api("GET", "200 200 200 200 200 200 404 401"),),
    "api-model": (api("GET", "200 200 200 200 200 200 404 401"),),
    "api-card": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api(
            "PUT",
            "200 200 200 403 403 403 404 401",
            {"sections": {"intended_use": "Scoring credit applications."}},
        ),
    ),
    "api-lineage": (api("GET", "200 200 200 200 200 200 404 401"),),
    "api-datasets": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api(
            "POST",
            "201 403 201 201 403 403 404 401",
            lambda w: {"name": "applicants", "file": _csv("age\n34\n", "applicants.csv")},
        ),
    ),
    "api-sync": (api("POST", "202 403 202 202 403 403 404 401", {}),),
    "api-bias-reports": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api(
            "POST",
            "202 403 202 202 403 403 404 401",
            lambda w: {
                "model": w.ids["model"],
                "version": 1,
                "dataset": w.ids["holdout"],
                "y_true": "y",
                "y_pred": "p",
                "sensitive": ["sex"],
            },
        ),
    ),
    "api-bias-report": (api("GET", "200 200 200 200 200 200 404 401", pk="bias_report"),),
    "api-fairness-policy": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api(
            "PUT",
            "200 200 403 403 403 403 404 401",
            {"limits": {"demographic_parity_ratio_min": 0.8}, "min_group_size": 30},
        ),
    ),
    "api-monitors": (
        api("GET", "200 200 200 200 200 200 404 401"),
        api(
            "POST",
            "201 403 201 201 403 403 404 401",
            lambda w: {"name": "inputs-2", "reference": w.ids["reference"]},
        ),
    ),
    "api-monitor": (
        api("GET", "200 200 200 200 200 200 404 401", pk="monitor"),
        api("PATCH", "200 403 200 200 403 403 404 401", {"window_hours": 6}, pk="monitor"),
    ),
    "api-monitor-batches": (
        api("GET", "200 200 200 200 200 200 404 401", pk="monitor"),
        api(
            "POST",
            "201 403 201 201 403 403 404 401",
            {"file": "age\n1\n2\n"},
            pk="monitor",
        ),
    ),
    "api-monitor-checks": (api("GET", "200 200 200 200 200 200 404 401", pk="monitor"),),
    "api-monitor-alerts": (api("GET", "200 200 200 200 200 200 404 401", pk="monitor"),),
    "api-drift-check": (api("GET", "200 200 200 200 200 200 404 401", pk="check"),),
    "api-drift-alert-acknowledge": (
        api("POST", "200 200 200 200 403 403 404 401", {"comment": "Seen."}, pk="alert"),
    ),
    "api-drift-alert-resolve": (
        api("POST", "200 200 200 200 403 403 404 401", {"comment": "Fixed."}, pk="alert"),
    ),
}


# Django's admin sites: their URLs without an object are generated from each site's registry
# (see _admin_rows). The pages of one object (change, delete, history, a user's password, view
# on site) are excused here, by their parameters: Django's admin checks the same site
# permission on them as on the changelist rows, and the auditor site's objects are read-only
# (tests/audit/test_auditor_admin.py).
ADMIN_OBJECT_PARAMETERS = {"object_id", "id", "content_type_id"}


def url_patterns() -> Iterator[tuple[str, str, list[str]]]:
    """Every named URL as (full name with namespaces, route, parameter names)."""

    def walk(patterns, namespace: str, prefix: str):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                yield from walk(entry.url_patterns, inner, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                route = prefix + str(entry.pattern)
                names = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route)
                params = [a or b for a, b in names]
                yield f"{namespace}{entry.name or ''}", route, params

    yield from walk(get_resolver().url_patterns, "", "")


def _admin_rows() -> dict[str, tuple[Try, ...]]:
    """Index and changelists of both admin sites, and add pages of the staff site."""
    superuser = get_user_model()(is_superuser=True, is_staff=True, is_active=True)
    probe = RequestFactory().get("/")
    probe.user = superuser
    rows: dict[str, tuple[Try, ...]] = {
        # Staff only: everyone else is sent to the admin's sign-in page.
        "admin:index": (get("200 302 302 302 302 302 302 302"),),
        "admin:login": (get("302 200 200 200 200 200 200 200"),),
        "admin:logout": (post("302 302 302 302 302 302 302 302"),),  # to LOGOUT_REDIRECT_URL
        "admin:password_change": (get("200 302 302 302 302 302 302 302"),),
        "admin:password_change_done": (get("200 302 302 302 302 302 302 302"),),
        "admin:jsi18n": (get("200 302 302 302 302 302 302 302"),),
        # Without the field it completes, Django's autocomplete refuses even an admin.
        "admin:autocomplete": (get("403 302 302 302 302 302 302 302"),),
        "admin:app_list": (get("200 302 302 302 302 302 302 302", app_label="audit"),),
        # Auditors (and admins) read; everyone else goes to sign in.
        "auditor_admin:index": (get("200 302 302 302 200 302 302 302"),),
        "auditor_admin:login": (get("302 302 302 302 302 302 302 302"),),
        "auditor_admin:logout": (post("302 302 302 302 302 302 302 302"),),
        "auditor_admin:password_change": (get("200 302 302 302 200 302 302 302"),),
        "auditor_admin:password_change_done": (get("200 302 302 302 200 302 302 302"),),
        "auditor_admin:jsi18n": (get("200 302 302 302 200 302 302 302"),),
        "auditor_admin:autocomplete": (get("403 302 302 302 403 302 302 302"),),
        "auditor_admin:app_list": (get("200 302 302 302 200 302 302 302", app_label="audit"),),
    }
    for site, readers in ((admin.site, "200 302 302 302 302 302 302 302"),
                          (auditor_site, "200 302 302 302 200 302 302 302")):  # fmt: skip
        for model, model_admin in site._registry.items():
            base = f"{site.name}:{model._meta.app_label}_{model._meta.model_name}"
            rows[f"{base}_changelist"] = (get(readers),)
            may_add = model_admin.has_add_permission(probe)
            adder = readers if may_add else readers.replace("200", "403")
            rows[f"{base}_add"] = (get(adder),)
    return rows


ALL_ROWS = {**ROWS, **_admin_rows()}


def _excused(name: str, params: list[str]) -> bool:
    return name.split(":")[0] in {"admin", "auditor_admin"} and bool(
        ADMIN_OBJECT_PARAMETERS & set(params)
    )


def urls_without_a_row() -> tuple[list[str], list[str]]:
    """Named URLs with no row (nor an excuse), and routes with no name at all."""
    missing, unnamed = [], []
    for name, route, params in url_patterns():
        if name.endswith(":") or not name:
            # The admin's catch-all answers unknown admin URLs; it has no name to row.
            if name.split(":")[0] not in {"admin", "auditor_admin"}:
                unnamed.append(route)
            continue
        if name not in ALL_ROWS and not _excused(name, params):
            missing.append(f"{name} ({route})")
    return missing, unnamed


def test_every_url_has_a_row():
    missing, unnamed = urls_without_a_row()
    assert not unnamed, f"URLs without a name: {unnamed}"
    assert not missing, "URLs without a row in the authorization matrix:\n" + "\n".join(missing)


def test_a_new_url_without_a_row_is_named(settings):
    settings.ROOT_URLCONF = "tests.dashboard.test_authorization_matrix"
    assert urls_without_a_row() == (["fleet (projects/<slug:slug>/fleet/)"], [])


# The site's URLs and one more, for the test above.
urlpatterns = [
    *dashboard_urls.urlpatterns,
    path("projects/<slug:slug>/fleet/", lambda request, slug: None, name="fleet"),
]


def test_every_row_names_a_url():
    names = {name for name, _, _ in url_patterns()}
    assert set(ALL_ROWS) - names == set()


@functools.cache
def _routes() -> dict[str, list[str]]:
    return {name: params for name, _, params in url_patterns()}


def _url(world: World, name: str, attempt: Try) -> tuple[str, dict]:
    """The URL of `name` with its parameters filled, and the query string the row adds."""
    route_params = _routes()[name]
    kwargs, query = {}, {}
    for param in route_params:
        key = attempt.params.get(param, PARAMETERS.get(param, param))
        kwargs[param] = world.ids.get(key, key)
    for key, value in attempt.params.items():
        if key not in route_params:
            query[key] = world.ids.get(value, value)
    return reverse(name, kwargs=kwargs), query


def _send(world: World, role: str, name: str, attempt: Try, cookies: dict) -> object:
    client = Client()
    if role in cookies:
        client.cookies = SimpleCookie(cookies[role])
    url, query = _url(world, name, attempt)
    data = attempt.data(world) if callable(attempt.data) else attempt.data
    headers = {}
    if attempt.api and role != "anonymous":
        client.cookies = SimpleCookie()
        headers["Authorization"] = f"Bearer {world.tokens[role]}"
    if attempt.method == "GET":
        return client.get(url, query, headers=headers)
    if attempt.api:
        if any(isinstance(value, io.BytesIO) for value in (data or {}).values()):
            return client.post(url, data, headers=headers)
        if name in {"api-batch-labels", "api-monitor-batches"}:
            body = data["file"].encode()
            return client.post(url, body, content_type="text/csv", headers=headers)
        method = getattr(client, attempt.method.lower())
        return method(url, data or {}, content_type="application/json", headers=headers)
    if query:
        url = f"{url}?{'&'.join(f'{k}={v}' for k, v in query.items())}"
    return client.post(url, data or {}, headers=headers)


# Pages that send even anonymous people somewhere other than the sign-in page.
NOT_TO_SIGN_IN = {
    "login",
    "logout",
    "password_reset",
    "password_reset_confirm",
    "admin:logout",
    "auditor_admin:logout",
    "auditor_admin:login",  # on to the site's sign-in page
}


def _answer_problem(name: str, attempt: Try, role: str, response: object) -> str:
    """What is wrong with the answer beyond its status: the API's 4xx carry the one error
    body; pages send anonymous people to sign in."""
    if attempt.api and 400 <= response.status_code < 500:
        body = response.json()
        if set(body) != {"error"} or set(body["error"]) != {"code", "message", "fields"}:
            return f"not the error body: {body}"
    if role == "anonymous" and response.status_code == 302 and name not in NOT_TO_SIGN_IN:
        # Each admin site has its sign-in page; the auditors' one sends on to the site's.
        sign_in = reverse(f"{name.split(':')[0]}:login" if ":" in name else "login")
        if not response.url.startswith(sign_in):
            return f"sent to {response.url}, not to sign in"
    return ""


def test_every_person_gets_the_expected_status_on_every_url(world, client, settings):
    settings.MLFLOW_WEBHOOK_SECRET = "matrix"
    cookies = {}
    for role, user in world.users.items():
        client.cookies = SimpleCookie()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        cookies[role] = client.cookies.output(header="", sep=";").strip()
    cookies = {role: SimpleCookie(text) for role, text in cookies.items()}

    failures = []
    for name, attempts in ALL_ROWS.items():
        for attempt in attempts:
            statuses = []
            for role in ROLES:
                with transaction.atomic():
                    if attempt.setup:
                        attempt.setup(world)
                    response = _send(world, role, name, attempt, cookies)
                    transaction.set_rollback(True)
                statuses.append(str(response.status_code))
                problem = _answer_problem(name, attempt, role, response)
                if problem:
                    failures.append(f"{name} {attempt.method} as {role}: {problem}")
            got = " ".join(statuses)
            if got != attempt.expect:
                failures.append(f"{name:40} {attempt.method:6} {got}   expected {attempt.expect}")
    assert not failures, "\n".join(["", " " * 48 + "  ".join(r[:5] for r in ROLES), *failures])
