from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "governance.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring: drift of the data models see"
    default_auto_field = "django.db.models.BigAutoField"
