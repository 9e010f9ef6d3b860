"""The mirror in the admin, read-only: MLflow owns these rows and the sync rewrites them."""

from django.contrib import admin
from django.http import HttpRequest

from governance.registry.models import (
    DatasetVersion,
    Experiment,
    ModelVersion,
    RegisteredModel,
    Run,
    SyncRun,
)


class Mirrored(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Experiment)
class ExperimentAdmin(Mirrored):
    list_display = ["name", "mlflow_id", "project", "lifecycle", "synced_at"]
    list_filter = ["lifecycle", "project"]
    search_fields = ["name", "mlflow_id"]


@admin.register(Run)
class RunAdmin(Mirrored):
    list_display = ["name", "mlflow_id", "experiment", "status", "user", "start_time"]
    list_filter = ["status", "lifecycle"]
    list_select_related = ["experiment"]
    search_fields = ["=mlflow_id", "name"]
    show_full_result_count = False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(Mirrored):
    list_display = ["name", "project", "aliases", "lifecycle", "updated_at"]
    search_fields = ["name"]


@admin.register(ModelVersion)
class ModelVersionAdmin(Mirrored):
    list_display = ["model", "version", "status", "run_mlflow_id", "lifecycle", "created_at"]
    list_select_related = ["model"]
    search_fields = ["model__name"]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(Mirrored):
    list_display = ["name", "digest", "source_type", "sha256", "created_at"]
    search_fields = ["name", "digest"]


@admin.register(SyncRun)
class SyncRunAdmin(Mirrored):
    list_display = ["pk", "started_at", "trigger", "full", "state", "phase", "error"]
    list_filter = ["state", "trigger"]
