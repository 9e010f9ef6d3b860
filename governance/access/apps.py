from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "governance.access"
    label = "access"
    verbose_name = "Access: projects, members and roles"
    default_auto_field = "django.db.models.BigAutoField"
