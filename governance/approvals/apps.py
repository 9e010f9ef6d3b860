from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "governance.approvals"
    label = "approvals"
    verbose_name = "Approvals: release policies, requests, decisions and gates"
    default_auto_field = "django.db.models.BigAutoField"
