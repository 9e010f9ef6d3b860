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
        from governance.delivery.retraining import RETRAIN, on_alert_opened, on_batch_received
        from governance.monitoring import hooks

        kinds.register(INSPECT)
        kinds.register(PACKAGE)
        kinds.register(PROFILE)
        kinds.register(DEPLOY)
        kinds.register(RETRAIN)
        gates.register(PACKAGED)
        gates.register(PROFILED)
        for hook, listener in (
            (hooks.ALERT_OPENED, on_alert_opened),
            (hooks.BATCH_RECEIVED, on_batch_received),
        ):
            if listener not in hook:  # ready() may run more than once in tests
                hook.append(listener)
