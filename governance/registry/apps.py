from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "governance.registry"
    label = "registry"
    verbose_name = "Registry: experiments, runs and models mirrored from MLflow"
    default_auto_field = "django.db.models.BigAutoField"
