from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "governance.delivery"
    label = "delivery"
    verbose_name = "Delivery: jobs that package, profile, deploy and retrain models"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.approvals import gates
        from governance.delivery import kinds
        from governance.delivery.deploying import DEPLOY
        from governance.delivery.gates import PACKAGED, PROFILED
        from governance.delivery.model_files import INSPECT
        from governance.delivery.packaging import PACKAGE
        from governance.delivery.profiling import PROFILE

        kinds.register(INSPECT)
        kinds.register(PACKAGE)
        kinds.register(PROFILE)
        kinds.register(DEPLOY)
        gates.register(PACKAGED)
        gates.register(PROFILED)
