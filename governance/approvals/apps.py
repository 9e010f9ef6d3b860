from django.apps import AppConfig
from django.db import transaction


class ApprovalsConfig(AppConfig):
    name = "governance.approvals"
    label = "approvals"
    verbose_name = "Approvals: release policies, requests, decisions and gates"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.approvals import gates  # noqa: F401 (registers this area's gate kinds)
        from governance.registry import hooks

        hooks.ALIAS_MOVED.append(_guard_alias)


def _guard_alias(model: object, alias: str, before: int | None, after: int | None) -> None:
    """The sync saw an alias moved outside Quorum: if a policy guards that stage, queue the
    move back (the task re-reads everything, so a move Quorum made meanwhile is left alone)."""
    from governance.approvals.models import ApprovalPolicy
    from governance.approvals.tasks import enforce_guard

    guarded = ApprovalPolicy.objects.filter(
        project_id=model.project_id, stage=alias, current__guard=True
    ).exists()
    if guarded:
        model_id = model.pk
        transaction.on_commit(lambda: enforce_guard.delay(model_id=model_id, stage=alias))
