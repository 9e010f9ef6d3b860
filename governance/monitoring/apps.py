from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "governance.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring: drift of the data models see"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.approvals import bundle, gates
        from governance.monitoring.bundle import drift_part
        from governance.monitoring.gates import NO_DRIFT_ALERT

        gates.register(NO_DRIFT_ALERT)
        bundle.register_part("drift", drift_part)
