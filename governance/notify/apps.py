from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "governance.notify"
    label = "notify"
    verbose_name = "Notifications: in the app and by email"
    default_auto_field = "django.db.models.BigAutoField"
