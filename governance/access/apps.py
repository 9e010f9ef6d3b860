from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "governance.access"
    label = "access"
    verbose_name = "Access: projects, members and roles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.access import signals  # noqa: F401 (connects the receivers)
