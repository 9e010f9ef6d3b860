from django.apps import AppConfig


class FairnessConfig(AppConfig):
    name = "governance.fairness"
    label = "fairness"
    verbose_name = "Fairness: bias reports and the project's fairness policy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.approvals import bundle, gates
        from governance.fairness.bundle import bias_part
        from governance.fairness.gates import BIAS_REPORT_PASSED

        gates.register(BIAS_REPORT_PASSED)
        bundle.register_part("bias_report", bias_part)
