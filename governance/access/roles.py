"""Who may do what: the one table that maps each project role to its capabilities.

Memberships turn a role into django-guardian object permissions on the project (one permission
per capability), and `governance.access.services.require` checks them everywhere. Site admins
(superusers) hold every capability on every project.
"""

from django.db import models


class Role(models.TextChoices):
    PRODUCT_OWNER = "product_owner", "Product owner"
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    ML_ENGINEER = "ml_engineer", "ML engineer"
    AUDITOR = "auditor", "Auditor"
    VIEWER = "viewer", "Viewer"


def role_words(role: object) -> str:
    """A role inside a sentence: "product owner", but "ML engineer". Anything that is not a
    role comes back as it is, for old trail entries."""
    try:
        label = Role(role).label
    except ValueError:
        return "" if role is None else str(role)
    return label if label[:2].isupper() else label[0].lower() + label[1:]


class Capability(models.TextChoices):
    VIEW_PROJECT = "view_project", "See the project, its models and its activity"
    MANAGE_MEMBERS = "manage_members", "Add and remove members and change their roles"
    MANAGE_PROJECT = "manage_project", "Rename and archive the project"
    EDIT_POLICIES = "edit_policies", "Edit the approval policies"
    REQUEST_RELEASE = "request_release", "Ask for a model version to be released"
    APPROVE_RELEASE = "approve_release", "Approve or reject releases"
    PUBLISH_MODEL = "publish_model", "Publish model versions"
    EDIT_MODEL_CARD = "edit_model_card", "Write and edit model cards"
    SYNC_MLFLOW = "sync_mlflow", "Sync experiments and models from MLflow"
    LINK_MLFLOW = "link_mlflow", "Link MLflow experiments and models to the project"
    RUN_PIPELINES = "run_pipelines", "Package, profile, deploy, retrain and roll back models"
    MANAGE_MONITORING = "manage_monitoring", "Set up drift checks and bias reports"
    HANDLE_ALERTS = "handle_alerts", "Acknowledge and resolve drift alerts"
    READ_AUDIT_TRAIL = "read_audit_trail", "Read and verify the full audit trail"
    EXPORT_AUDIT_TRAIL = "export_audit_trail", "Export the audit trail"


C = Capability

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.PRODUCT_OWNER: frozenset(
        {
            C.VIEW_PROJECT,
            C.MANAGE_MEMBERS,
            C.EDIT_POLICIES,
            C.APPROVE_RELEASE,
            C.EDIT_MODEL_CARD,
            C.LINK_MLFLOW,
            C.HANDLE_ALERTS,
        }
    ),
    Role.DATA_SCIENTIST: frozenset(
        {
            C.VIEW_PROJECT,
            C.REQUEST_RELEASE,
            C.APPROVE_RELEASE,
            C.PUBLISH_MODEL,
            C.EDIT_MODEL_CARD,
            C.SYNC_MLFLOW,
            C.MANAGE_MONITORING,
            C.HANDLE_ALERTS,
        }
    ),
    Role.ML_ENGINEER: frozenset(
        {
            C.VIEW_PROJECT,
            C.REQUEST_RELEASE,
            C.APPROVE_RELEASE,
            C.PUBLISH_MODEL,
            C.SYNC_MLFLOW,
            C.RUN_PIPELINES,
            C.MANAGE_MONITORING,
            C.HANDLE_ALERTS,
        }
    ),
    Role.AUDITOR: frozenset({C.VIEW_PROJECT, C.READ_AUDIT_TRAIL, C.EXPORT_AUDIT_TRAIL}),
    Role.VIEWER: frozenset({C.VIEW_PROJECT}),
}

# Capabilities no project role carries: only site admins hold them.
ADMIN_ONLY = frozenset(Capability) - frozenset().union(*ROLE_CAPABILITIES.values())
