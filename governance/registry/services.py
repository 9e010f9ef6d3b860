"""Keeping the mirror in step with MLflow.

MLflow has no "changed since" query, so the incremental sync reads: every experiment and
registered model (cheap), runs started after the last one seen, runs still running, runs that
ended since the last check, and model versions newest change first until the last one seen. A
full sync reads everything and marks what MLflow no longer has. Each page is applied in its
own transaction, so a failure leaves whole pages behind it and the next sync resumes.
"""

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import BinaryIO

import pyarrow as pa
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from governance.access.models import Project
from governance.access.permissions import require
from governance.access.roles import Capability
from governance.audit.services import SystemActor, Target, record
from governance.errors import DomainError, InvalidInput
from governance.registry import cards, hooks, mirror, tables
from governance.registry.errors import (
    BadSignature,
    CardChanged,
    DatasetTooLarge,
    DatasetUnreachable,
    ExperimentNotFound,
    LinkRefused,
    MalformedDelivery,
    MlflowUnavailable,
    ModelNotFound,
    ReplayedDelivery,
    StaleDelivery,
    SyncBusy,
    WebhooksDisabled,
)
from governance.registry.mlflow_client import Mlflow
from governance.registry.models import (
    DatasetVersion,
    Experiment,
    Lifecycle,
    MetricHistory,
    ModelCard,
    ModelCardRevision,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInput,
    SyncRun,
    SyncState,
    WebhookDelivery,
)

SYNC_ACTOR = SystemActor("mlflow-sync")
LEASE = timedelta(minutes=30)
# How far a webhook's timestamp may be from now, either way.
WEBHOOK_TOLERANCE = 300
# Runs that ended shortly before the last check may not have been visible yet.
END_MARGIN_MS = 5 * 60 * 1000

RUN_FIELDS = [
    "experiment",
    "name",
    "status",
    "user",
    "start_time",
    "end_time",
    "lifecycle",
    "params",
    "metrics",
    "tags",
    "code_version",
    "source_name",
    "artifact_uri",
    "synced_at",
]
VERSION_FIELDS = [
    "source",
    "run",
    "run_mlflow_id",
    "logged_model_id",
    "status",
    "stage",
    "tags",
    "description",
    "user",
    "lifecycle",
    "created_at",
    "updated_at",
    "synced_at",
]

Progress = Callable[[str, int], None]


def sync_mlflow(
    *,
    trigger: str,
    full: bool = False,
    mlflow: Mlflow | None = None,
    progress: Progress | None = None,
) -> SyncRun:
    """Bring the mirror up to date with MLflow and record what changed in the registry.

    Raises SyncBusy when another sync holds the lease, MlflowUnavailable when MLflow does not
    answer (the SyncRun is marked failed with the reason first).
    """
    return _leased(trigger, full, lambda sync: sync.run(), mlflow, progress)


def sync_model(*, name: str, trigger: str = "webhook", mlflow: Mlflow | None = None) -> SyncRun:
    """Mirror one registered model now (a webhook said it changed). Raises as sync_mlflow."""
    return _leased(trigger, False, lambda sync: sync.run_model(name), mlflow, None)


def _leased(
    trigger: str,
    full: bool,
    work: Callable[["_Sync"], None],
    mlflow: Mlflow | None,
    progress: Progress | None,
) -> SyncRun:
    owner = uuid.uuid4().hex
    if not _take_lease(owner):
        raise SyncBusy
    job = SyncRun.objects.create(full=full, trigger=trigger)
    try:
        work(_Sync(mlflow or Mlflow(), job, full, progress))
    except Exception as error:
        SyncRun.objects.filter(pk=job.pk).update(
            state=SyncRun.State.FAILED, error=_reason(error), finished_at=timezone.now()
        )
        raise
    finally:
        SyncState.objects.filter(pk=1, lease_owner=owner).update(lease_until=None, lease_owner="")
    job.refresh_from_db()
    return job


def version_target(model: str, number: int) -> Target:
    """Versions are named on the trail by model and number, which outlive mirror rows."""
    return Target("modelversion", f"{model}/{number}", f"{model} v{number}")


def request_sync(*, actor: object, project: Project, full: bool = False) -> None:
    """Ask a worker to sync MLflow now (data scientists, ML engineers, admins)."""
    require(actor, Capability.SYNC_MLFLOW, project)
    from governance.registry.tasks import sync_mlflow as task  # it imports this module

    with transaction.atomic():
        record(
            actor=actor,
            action="mlflow.sync_requested",
            target=project,
            project=project,
            payload={"full": full},
        )
        transaction.on_commit(lambda: task.delay(full=full, trigger="request"))


# Webhooks

WEBHOOK_EVENTS = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)


def accept_webhook(
    *, delivery_id: str, timestamp: str, signature: str, body: bytes
) -> WebhookDelivery:
    """Check an MLflow webhook delivery and queue a sync of the model it names.

    The signature is MLflow's HMAC-SHA256 over "delivery id.timestamp.body" with the shared
    secret. Raises WebhooksDisabled, BadSignature, StaleDelivery, ReplayedDelivery,
    MalformedDelivery; a refused delivery changes nothing.
    """
    secret = settings.MLFLOW_WEBHOOK_SECRET
    if not secret:
        raise WebhooksDisabled
    expected = mirror.webhook_signature(secret, delivery_id, timestamp, body)
    if not signature or not hmac.compare_digest(expected, signature):
        raise BadSignature
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > WEBHOOK_TOLERANCE:
        raise StaleDelivery
    event, name = _webhook_event(body)
    if not delivery_id or len(delivery_id) > 64:
        raise MalformedDelivery("The delivery id is missing or too long.")
    from governance.registry.tasks import sync_model as task  # it imports this module

    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                delivery_id=delivery_id, event=event, model_name=name
            )
            record(
                actor=SYNC_ACTOR,
                action="mlflow.webhook_received",
                target=Target("webhookdelivery", delivery_id, f"{event} of {name}"),
                payload={"event": event, "model": name},
            )
            transaction.on_commit(lambda: task.delay(name=name))
    except IntegrityError:
        raise ReplayedDelivery from None
    return delivery


def _webhook_event(body: bytes) -> tuple[str, str]:
    try:
        message = json.loads(body)
        event = f"{message['entity']}.{message['action']}"
        name = message["data"]["name"]
    except (ValueError, KeyError, TypeError):
        raise MalformedDelivery from None
    if event not in WEBHOOK_EVENTS or not isinstance(name, str) or not name:
        raise MalformedDelivery(f"Quorum does not listen to “{event}”.")
    return event, name


def _reason(error: Exception) -> str:
    if isinstance(error, MlflowUnavailable):
        return error.message
    return f"{type(error).__name__}: {error}"[:2000]


def _take_lease(owner: str) -> bool:
    now = timezone.now()
    SyncState.objects.get_or_create(pk=1)
    taken = SyncState.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=1
    ).update(lease_until=now + LEASE, lease_owner=owner)
    return taken == 1


class _Sync:
    def __init__(self, mlflow: Mlflow, job: SyncRun, full: bool, progress: Progress | None):
        self.mlflow, self.job, self.full, self.progress = mlflow, job, full, progress
        self.state = SyncState.objects.get(pk=1)
        self.counts: dict[str, int] = {}
        self.started_ms = int(time.time() * 1000)
        self.projects = dict(Project.objects.values_list("slug", "pk"))

    def run(self) -> None:
        experiments = self.experiments()
        cursors = self.runs(experiments)
        self.models()
        versions_cursor = self.versions()
        with transaction.atomic():
            SyncState.objects.filter(pk=1).update(
                runs_started_after=cursors, runs_checked_at=self.started_ms,
                versions_updated_after=versions_cursor,
            )  # fmt: skip
            self._finish()

    def run_model(self, name: str) -> None:
        """Just one registered model, its versions and their source runs."""
        self.models(only=[self.mlflow.registered_model(name)])
        rows = [mirror.version_row(version) for version in self.mlflow.versions_of(name)]
        wanted = {row["run_mlflow_id"] for row in rows if row["run_mlflow_id"]}
        missing = wanted - set(
            Run.objects.filter(mlflow_id__in=wanted).values_list("mlflow_id", flat=True)
        )
        if missing:
            self._apply_runs([self.mlflow.run(run_id) for run_id in missing], self.experiments())
        if rows:
            self._apply_versions(rows)
        with transaction.atomic():
            self._finish()

    def _finish(self) -> None:
        """Mark the job done and, when anything changed, say so on the trail."""
        SyncRun.objects.filter(pk=self.job.pk).update(
            state=SyncRun.State.SUCCEEDED,
            phase="done",
            counts=self.counts,
            finished_at=timezone.now(),
        )
        changed = {k: v for k, v in self.counts.items() if v and k != "runs_seen"}
        if changed:
            record(
                actor=SYNC_ACTOR,
                action="mlflow.synced",
                target=Target("syncrun", str(self.job.pk), f"sync {self.job.pk}"),
                payload={"full": self.full, "trigger": self.job.trigger, "counts": self.counts},
            )

    def _step(self, phase: str, done: int) -> None:
        SyncRun.objects.filter(pk=self.job.pk).update(phase=phase, done=done, counts=self.counts)
        if self.progress:
            self.progress(phase, done)

    def _count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def _project_of(self, tags: dict) -> int | None:
        return self.projects.get(tags.get(mirror.PROJECT_TAG, ""))

    # Experiments

    def experiments(self) -> dict[str, int]:
        rows = [mirror.experiment_row(e) for e in self.mlflow.experiments()]
        linked = dict(
            Experiment.objects.filter(linked_in_quorum=True).values_list("mlflow_id", "project")
        )
        now = timezone.now()
        objects = [
            Experiment(
                **row,
                project_id=linked[row["mlflow_id"]]
                if row["mlflow_id"] in linked
                else self._project_of(row["tags"]),
                synced_at=now,
            )
            for row in rows
        ]
        with transaction.atomic():
            known = set(Experiment.objects.values_list("mlflow_id", flat=True))
            Experiment.objects.bulk_create(
                objects,
                update_conflicts=True,
                unique_fields=["mlflow_id"],
                update_fields=[
                    "name", "artifact_location", "lifecycle", "tags", "project",
                    "created_at", "updated_at", "synced_at",
                ],
            )  # fmt: skip
            seen = {row["mlflow_id"] for row in rows}
            gone = Experiment.objects.exclude(mlflow_id__in=seen).exclude(
                lifecycle=Lifecycle.DELETED
            )
            self._count("experiments_gone", gone.update(lifecycle=Lifecycle.DELETED))
        self._count("experiments_new", len(seen - known))
        self._step("experiments", len(rows))
        return dict(Experiment.objects.values_list("mlflow_id", "pk"))

    # Runs

    def runs(self, experiments: dict[str, int]) -> int:
        """Apply runs page by page; return the new "started after" cursor."""
        ids = list(experiments)
        cursor = self.state.runs_started_after
        if self.full or not cursor:
            queries = [""]
        else:
            checked = max(0, self.state.runs_checked_at - END_MARGIN_MS)
            queries = [
                f"attributes.start_time > {cursor}",
                "attributes.status = 'RUNNING'",
                f"attributes.end_time > {checked}",
            ]
        seen: set[str] = set()
        for query in queries:
            page: list[object] = []
            for run in self.mlflow.runs(ids, query) if ids else []:
                if run.info.run_id in seen:
                    continue
                seen.add(run.info.run_id)
                page.append(run)
                cursor = max(cursor, run.info.start_time or 0)
                if len(page) == 1000:
                    self._apply_runs(page, experiments)
                    page = []
            if page:
                self._apply_runs(page, experiments)
        self._count("runs_seen", len(seen))
        if self.full:
            gone = Run.objects.exclude(mlflow_id__in=seen).exclude(lifecycle=Lifecycle.DELETED)
            self._count("runs_gone", gone.update(lifecycle=Lifecycle.DELETED))
        return cursor

    def _apply_runs(self, runs: list[object], experiments: dict[str, int]) -> None:
        now = timezone.now()
        rows = [mirror.run_row(run) for run in runs]
        used = [(run.info.run_id, mirror.run_datasets(run)) for run in runs]
        with transaction.atomic():
            known = set(
                Run.objects.filter(mlflow_id__in=[r["mlflow_id"] for r in rows]).values_list(
                    "mlflow_id", flat=True
                )
            )
            Run.objects.bulk_create(
                [
                    Run(
                        experiment_id=experiments[row.pop("experiment_mlflow_id")],
                        synced_at=now,
                        **row,
                    )
                    for row in rows
                ],
                update_conflicts=True,
                unique_fields=["mlflow_id"],
                update_fields=RUN_FIELDS,
            )
            self._apply_datasets(used)
        self._count("runs_new", len({r["mlflow_id"] for r in rows} - known))
        self._step("runs", self.counts.get("runs_new", 0))

    def _apply_datasets(self, used: Iterable[tuple[str, list[tuple[dict, str]]]]) -> None:
        datasets = {(row["name"], row["digest"]): row for _, found in used for row, _ in found}
        if not datasets:
            return
        DatasetVersion.objects.bulk_create(
            [DatasetVersion(**row) for row in datasets.values()],
            update_conflicts=True,
            unique_fields=["name", "digest"],
            update_fields=["source_type", "source", "schema", "profile"],
        )
        ids = {
            (name, digest): pk
            for name, digest, pk in DatasetVersion.objects.filter(
                name__in={name for name, _ in datasets}
            ).values_list("name", "digest", "pk")
        }
        runs = dict(
            Run.objects.filter(mlflow_id__in=[run_id for run_id, _ in used]).values_list(
                "mlflow_id", "pk"
            )
        )
        RunInput.objects.bulk_create(
            [
                RunInput(
                    run_id=runs[run_id],
                    dataset_id=ids[(row["name"], row["digest"])],
                    context=context,
                )
                for run_id, found in used
                for row, context in found
            ],
            ignore_conflicts=True,
        )

    # Registered models

    def models(self, only: list[object] | None = None) -> None:
        """Apply registered models: all of MLflow's, or `only` these (which marks none gone)."""
        found = only if only is not None else list(self.mlflow.registered_models())
        rows = [mirror.model_row(model) for model in found]
        now = timezone.now()
        with transaction.atomic():
            before = {
                name: (pk, aliases, project)
                for name, pk, aliases, project in RegisteredModel.objects.values_list(
                    "name", "pk", "aliases", "project"
                )
            }
            linked = set(
                RegisteredModel.objects.filter(linked_in_quorum=True).values_list("name", flat=True)
            )
            RegisteredModel.objects.bulk_create(
                [
                    RegisteredModel(
                        **row,
                        project_id=before[row["name"]][2]
                        if row["name"] in linked
                        else self._project_of(row["tags"]),
                        lifecycle=Lifecycle.ACTIVE,
                        synced_at=now,
                    )
                    for row in rows
                ],
                update_conflicts=True,
                unique_fields=["name"],
                update_fields=[
                    "description", "tags", "aliases", "project", "lifecycle",
                    "created_at", "updated_at", "synced_at",
                ],
            )  # fmt: skip
            seen = {row["name"] for row in rows}
            if only is None:
                gone = RegisteredModel.objects.exclude(name__in=seen).exclude(
                    lifecycle=Lifecycle.DELETED
                )
                self._count("models_gone", gone.update(lifecycle=Lifecycle.DELETED))
            models = {m.name: m for m in RegisteredModel.objects.filter(name__in=seen)}
            for row in rows:
                model = models[row["name"]]
                if row["name"] not in before:
                    self._count("models_new")
                    record(
                        actor=SYNC_ACTOR,
                        action="model.registered",
                        target=model,
                        project=model.project,
                        payload={"after": {"name": model.name}},
                    )
                    continue
                self._note_alias_moves(model, before[row["name"]][1], row["aliases"])
        self._step("models", len(rows))

    def _note_alias_moves(self, model: RegisteredModel, old: dict, new: dict) -> None:
        for alias in sorted(set(old) | set(new)):
            if old.get(alias) != new.get(alias):
                self._count("aliases_moved")
                record(
                    actor=SYNC_ACTOR,
                    action="model.alias_moved",
                    target=model,
                    project=model.project,
                    payload={
                        "alias": alias,
                        "before": {"version": old.get(alias)},
                        "after": {"version": new.get(alias)},
                    },
                )
                for callback in hooks.ALIAS_MOVED:
                    callback(model, alias, old.get(alias), new.get(alias))

    # Model versions

    def versions(self) -> int:
        cursor = self.state.versions_updated_after
        newest = cursor
        rows, seen = [], set()
        for version in self.mlflow.model_versions():
            updated = version.last_updated_timestamp or 0
            if not self.full and cursor and updated < cursor:
                break
            newest = max(newest, updated)
            rows.append(mirror.version_row(version))
            seen.add((version.name, int(version.version)))
            if len(rows) == 500:
                self._apply_versions(rows)
                rows = []
        if rows:
            self._apply_versions(rows)
        if self.full:
            self._mark_gone_versions(seen)
        return newest

    def _mark_gone_versions(self, seen: set[tuple[str, int]]) -> None:
        live = ModelVersion.objects.exclude(lifecycle=Lifecycle.DELETED).select_related(
            "model__project"
        )
        with transaction.atomic():
            for version in live:
                if (version.model.name, version.version) in seen:
                    continue
                version.lifecycle = Lifecycle.DELETED
                version.save(update_fields=["lifecycle"])
                self._count("versions_gone")
                record(
                    actor=SYNC_ACTOR,
                    action="model_version.deleted",
                    target=version_target(version.model.name, version.version),
                    project=version.model.project,
                    payload={"before": {"lifecycle": Lifecycle.ACTIVE}},
                )

    def _apply_versions(self, rows: list[dict]) -> None:
        models = {
            m.name: m
            for m in RegisteredModel.objects.filter(
                name__in={row["model_name"] for row in rows}
            ).select_related("project")
        }
        runs = dict(
            Run.objects.filter(mlflow_id__in={row["run_mlflow_id"] for row in rows}).values_list(
                "mlflow_id", "pk"
            )
        )
        now = timezone.now()
        with transaction.atomic():
            known = set(
                ModelVersion.objects.filter(model__in=models.values()).values_list(
                    "model__name", "version"
                )
            )
            fresh = [row for row in rows if (row["model_name"], row["version"]) not in known]
            signatures = {
                (row["model_name"], row["version"]): self._signature(row["source"]) for row in fresh
            }
            objects = []
            for row in rows:
                model = models.get(row["model_name"])
                if model is None:  # registered after the models were read: next sync
                    continue
                key = (row["model_name"], row["version"])
                fields = {k: v for k, v in row.items() if k not in {"model_name", "updated_ms"}}
                objects.append(
                    ModelVersion(
                        model=model,
                        run_id=runs.get(row["run_mlflow_id"]),
                        signature=signatures.get(key, {}),
                        lifecycle=Lifecycle.ACTIVE,
                        synced_at=now,
                        **fields,
                    )
                )
            ModelVersion.objects.bulk_create(
                objects,
                update_conflicts=True,
                unique_fields=["model", "version"],
                update_fields=VERSION_FIELDS,
            )
            for row in fresh:
                model = models.get(row["model_name"])
                if model is None:
                    continue
                self._count("versions_new")
                record(
                    actor=SYNC_ACTOR,
                    action="model_version.registered",
                    target=version_target(model.name, row["version"]),
                    project=model.project,
                    payload={"after": {"version": row["version"], "run": row["run_mlflow_id"],
                                       "source": row["source"]}},
                )  # fmt: skip
        self._step("versions", self.counts.get("versions_new", 0))

    def _signature(self, source: str) -> dict:
        if not source:
            return {}
        try:
            return self.mlflow.signature_of(source)
        except DomainError:  # a missing or unreadable MLmodel file leaves it empty
            return {}


# Metric histories, cached on first view


def metric_histories(*, run: Run, mlflow: Mlflow | None = None) -> dict[str, list]:
    """The run's metric histories, {key: [[step, timestamp ms, value], ...]}.

    Cached rows answer; what is missing (or everything, while the run is still running) is
    fetched from MLflow and cached. If MLflow is unreachable, the cache alone answers.
    """
    cached = {history.key: history.points for history in run.histories.all()}
    wanted = (
        list(run.metrics)
        if run.status == Run.Status.RUNNING
        else [key for key in run.metrics if key not in cached]
    )
    if not wanted:
        return cached
    try:
        client = mlflow or Mlflow()
        fetched = {
            key: [
                [point.step, point.timestamp, mirror.metric_value(point.value)]
                for point in client.metric_history(run.mlflow_id, key)
            ]
            for key in wanted
        }
    except MlflowUnavailable:
        return cached
    MetricHistory.objects.bulk_create(
        [MetricHistory(run=run, key=key, points=points) for key, points in fetched.items()],
        update_conflicts=True,
        unique_fields=["run", "key"],
        update_fields=["points", "fetched_at"],
    )
    return {**cached, **fetched}


# Model cards


def edit_model_card(
    *,
    actor: object,
    version: ModelVersion,
    sections: dict[str, str],
    note: str = "",
    based_on: int | None = None,
) -> ModelCardRevision:
    """Save a new revision of the version's card with the sections given (others are kept).

    `based_on` is the revision the editor started from: if someone saved since, the edit is
    refused rather than silently overwriting theirs. Raises NotAllowed, InvalidInput,
    Conflict (CardChanged); an edit that changes nothing returns the current revision.
    """
    project = version.model.project
    if project is None:
        raise ModelNotFound
    require(actor, Capability.EDIT_MODEL_CARD, project)
    unknown = sorted(set(sections) - set(cards.KEYS))
    if unknown:
        raise InvalidInput(
            f"Unknown card sections: {', '.join(unknown)}.",
            fields={"sections": [f"Sections are {', '.join(cards.KEYS)}."]},
        )
    too_long = [key for key, text in sections.items() if len(text) > cards.MAX_LENGTH]
    if too_long or not all(isinstance(text, str) for text in sections.values()):
        raise InvalidInput(
            f"Each section is text of at most {cards.MAX_LENGTH} characters.",
            fields={key: ["Too long."] for key in too_long},
        )
    with transaction.atomic():
        card, _ = ModelCard.objects.select_for_update().get_or_create(version=version)
        if based_on is not None and based_on != card.revision:
            raise CardChanged(
                f"{card.edited_by or 'Someone'} saved revision {card.revision} while you were "
                f"editing revision {based_on}; reload the card and redo your changes."
            )
        clean = {key: text.strip() for key, text in sections.items()}
        changed = [
            key for key in cards.KEYS if key in clean and clean[key] != card.sections.get(key, "")
        ]
        if not changed and card.revision:
            return card.revisions.first()
        before = {key: card.sections.get(key, "") for key in changed}
        card.sections = {**card.sections, **clean}
        card.revision += 1
        card.complete = not cards.missing(card.sections)
        card.edited_by, card.edited_at = actor, timezone.now()
        card.save()
        revision = ModelCardRevision.objects.create(
            card=card,
            number=card.revision,
            sections=card.sections,
            edited_by=actor,
            edited_by_name=actor.get_username(),
            edited_at=card.edited_at,
            note=note[:500],
        )
        record(
            actor=actor,
            action="model_card.edited",
            target=version_target(version.model.name, version.version),
            project=project,
            payload={
                "revision": card.revision,
                "note": note[:500],
                "complete": card.complete,
                "before": before,
                "after": {key: card.sections[key] for key in changed},
            },
        )
    return revision


# Which project owns what


LINKABLE = {"experiment": Experiment, "model": RegisteredModel}


def link_to_project(*, actor: object, kind: str, name: str, project: Project) -> models.Model:
    """Claim an MLflow experiment or registered model, by its exact name, for `project`.

    Product owners link what no project claims yet; admins may also move a link. An object
    claimed by its MLflow tag stays where the tag puts it. Raises NotAllowed, InvalidInput,
    LinkRefused, ExperimentNotFound or ModelNotFound.
    """
    require(actor, Capability.LINK_MLFLOW, project)
    model_class = _linkable(kind)
    with transaction.atomic():
        item = model_class.objects.select_for_update().filter(name=name).first()
        if item is None:
            raise ExperimentNotFound if kind == "experiment" else ModelNotFound
        if item.project_id == project.pk:
            return item
        if item.project_id is not None:
            owner = Project.objects.get(pk=item.project_id)
            if not item.linked_in_quorum:
                raise LinkRefused(f"“{name}” belongs to {owner.name} through its MLflow tag.")
            if not actor.is_superuser:
                raise LinkRefused(f"“{name}” is linked to {owner.name}; an admin may move it.")
        before = item.project.slug if item.project_id else None
        item.project, item.linked_in_quorum = project, True
        item.save(update_fields=["project", "linked_in_quorum"])
        record(
            actor=actor,
            action=f"{kind}.linked",
            target=Target(kind, name, name),
            project=project,
            payload={"before": {"project": before}, "after": {"project": project.slug}},
        )
    return item


def unlink_from_project(*, actor: object, kind: str, name: str, project: Project) -> None:
    """Undo a link made in Quorum: the object goes back to where its MLflow tag puts it."""
    require(actor, Capability.LINK_MLFLOW, project)
    model_class = _linkable(kind)
    with transaction.atomic():
        item = (
            model_class.objects.select_for_update()
            .filter(name=name, project=project, linked_in_quorum=True)
            .first()
        )
        if item is None:
            raise LinkRefused(f"“{name}” is not linked to {project.name} in Quorum.")
        projects = dict(Project.objects.values_list("slug", "pk"))
        item.project_id = projects.get(item.tags.get(mirror.PROJECT_TAG, ""))
        item.linked_in_quorum = False
        item.save(update_fields=["project", "linked_in_quorum"])
        record(
            actor=actor,
            action=f"{kind}.unlinked",
            target=Target(kind, name, name),
            project=project,
            payload={"before": {"project": project.slug}, "after": {"project_id": item.project_id}},
        )


def _linkable(kind: str) -> type[models.Model]:
    if kind not in LINKABLE:
        raise InvalidInput(fields={"kind": ["Link an experiment or a model."]})
    return LINKABLE[kind]


# Data sets registered in Quorum, hashed whole


DATASET_CHUNK = 1 << 20


def register_dataset(
    *, actor: object, project: Project, name: str, content: BinaryIO, source: str, kind: str
) -> DatasetVersion:
    """Register a data set version by the SHA-256 of its whole content, read as a stream.

    `kind` is "upload" or "uri"; CSV content also gets its columns and row count. The same
    content under the same name is the same version. Raises NotAllowed, InvalidInput,
    DatasetTooLarge.
    """
    require(actor, Capability.PUBLISH_MODEL, project)
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput(fields={"name": ["Give the data set a name of 1 to 200 characters."]})
    digest, size, head, lines = hashlib.sha256(), 0, b"", 0
    limit = settings.QUORUM_MAX_DATASET_BYTES
    while chunk := content.read(DATASET_CHUNK):
        size += len(chunk)
        if size > limit:
            raise DatasetTooLarge(f"Data sets are limited to {limit // 2**20} MB here.")
        digest.update(chunk)
        if len(head) < 65536:
            head += chunk[: 65536 - len(head)]
        lines += chunk.count(b"\n")
    if size == 0:
        raise InvalidInput(fields={"file": ["The data set is empty."]})
    sha256 = digest.hexdigest()
    schema, profile = _profile(source, head, lines, size)
    with transaction.atomic():
        dataset, created = DatasetVersion.objects.get_or_create(
            name=name,
            digest=sha256[:16],
            defaults={
                "source_type": kind,
                "source": source[:2000],
                "schema": schema,
                "profile": profile,
                "sha256": sha256,
                "project": project,
            },
        )
        if created:
            record(
                actor=actor,
                action="dataset.registered",
                target=Target("datasetversion", f"{name}@{sha256[:16]}", f"{name}@{sha256[:8]}"),
                project=project,
                payload={
                    "after": {"name": name, "sha256": sha256, "bytes": size, "source": source}
                },
            )
    return dataset


def keep_table(
    *, actor: object, project: Project, name: str, table: pa.Table, source: str
) -> DatasetVersion:
    """Keep a table as a data set version Quorum stores (Parquet, named by its SHA-256), for
    drift references, batches and evaluation data. The same table under the same name is one
    version. Data scientists and ML engineers may. Raises NotAllowed, InvalidInput."""
    capabilities = require(actor, Capability.VIEW_PROJECT, project)
    if not {Capability.PUBLISH_MODEL, Capability.MANAGE_MONITORING} & capabilities:
        require(actor, Capability.MANAGE_MONITORING, project)
    return _keep_table(actor=actor, project=project, name=name, table=table, source=source)


def _keep_table(
    *, actor: object, project: Project, name: str, table: pa.Table, source: str
) -> DatasetVersion:
    """keep_table without the permission check, for Quorum's own actors (a SystemActor holds
    no role): the caller checked what it needed. Raises InvalidInput."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput(fields={"name": ["Give the data set a name of 1 to 200 characters."]})
    # Written before the transaction: a file nobody points at is harmless and the next
    # identical table reuses it; a row pointing at no file would not be.
    sha256, size = tables.store(table, settings.DATA_DIR)
    with transaction.atomic():
        dataset, created = DatasetVersion.objects.get_or_create(
            name=name,
            digest=sha256[:16],
            defaults={
                "source_type": "quorum",
                "source": source[:2000],
                "schema": tables.schema_of(table),
                "profile": tables.profile_of(table),
                "sha256": sha256,
                "stored": True,
                "project": project,
            },
        )
        if created:
            record(
                actor=actor,
                action="dataset.stored",
                target=Target("datasetversion", f"{name}@{sha256[:16]}", f"{name}@{sha256[:8]}"),
                project=project,
                payload={
                    "after": {
                        "name": name,
                        "sha256": sha256,
                        "bytes": size,
                        "rows": table.num_rows,
                        "source": source,
                    }
                },
            )
    return dataset


def _profile(source: str, head: bytes, lines: int, size: int) -> tuple[dict, dict]:
    """Columns and rows of CSV content (from its first line), bytes of anything."""
    profile: dict[str, object] = {"bytes": size}
    if not source.lower().split("?")[0].endswith((".csv", ".tsv")) and b"," not in head[:4096]:
        return {}, profile
    try:
        first = head.split(b"\n", 1)[0].decode("utf-8").strip("\r")
    except UnicodeDecodeError:
        return {}, profile
    delimiter = "\t" if source.lower().endswith(".tsv") else ","
    columns = [column.strip() for column in first.split(delimiter)]
    profile["num_rows"] = max(0, lines - 1)
    return {"columns": [{"name": column} for column in columns]}, profile


def open_dataset_uri(uri: str) -> BinaryIO:
    """A readable stream for an http(s) URL, or a file:// path under QUORUM_DATA_ROOTS.

    Raises InvalidInput for other schemes or paths, DatasetUnreachable when it cannot be read.
    """
    import urllib.parse
    import urllib.request
    from pathlib import Path

    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme in {"http", "https"}:
        try:
            return urllib.request.urlopen(uri, timeout=30)  # noqa: S310 (scheme checked)
        except OSError as error:
            raise DatasetUnreachable(f"{uri} could not be read: {error}") from error
    if parsed.scheme == "file":
        path = Path(urllib.parse.unquote(parsed.path)).resolve()
        roots = [Path(root).resolve() for root in settings.QUORUM_DATA_ROOTS]
        if not any(path.is_relative_to(root) for root in roots):
            raise InvalidInput(
                "Quorum reads files only under QUORUM_DATA_ROOTS.",
                fields={"uri": ["This path is outside the allowed data folders."]},
            )
        try:
            return path.open("rb")
        except OSError as error:
            raise DatasetUnreachable(f"{path} could not be read: {error.strerror}") from error
    raise InvalidInput(fields={"uri": ["Give an http(s):// URL or a file:// path."]})
