"""The one door to MLflow: paging, timeouts, retries and clear errors.

MLflow's REST client retries 5xx answers and dropped connections with exponential backoff;
its defaults would wait minutes, so Quorum sets shorter ones unless the environment does.
Whatever still fails becomes `MlflowUnavailable` (with the reason) or `MlflowNotFound`.
"""

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings

from governance.registry.errors import MlflowNotFound, MlflowRefused, MlflowUnavailable

os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")

T = TypeVar("T")
# How MLflow's REST client words a connection it could not make, after its retries.
CONNECTION_FAILURES = ("Max retries exceeded", "Connection refused", "NewConnectionError")
PAGE = 1000  # MLflow's SQL store pages runs and models by up to this many
LOGGED_MODEL_PREFIX = "models:/m-"


@dataclass
class Mlflow:
    """A tracking server (or local store) to read from and write aliases and tags to."""

    tracking_uri: str = ""

    def __post_init__(self) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = self.tracking_uri or settings.MLFLOW_TRACKING_URI
        self.client = MlflowClient(tracking_uri=self.tracking_uri)

    # Reads

    def experiments(self) -> Iterator[object]:
        from mlflow.entities import ViewType

        yield from self._pages(
            self.client.search_experiments, view_type=ViewType.ALL, max_results=PAGE
        )

    def runs(self, experiment_ids: list[str], filter_string: str = "") -> Iterator[object]:
        from mlflow.entities import ViewType

        # The SQL store takes at most 100 experiments a query.
        for start in range(0, len(experiment_ids), 100):
            yield from self._pages(
                self.client.search_runs,
                experiment_ids=experiment_ids[start : start + 100],
                filter_string=filter_string,
                run_view_type=ViewType.ALL,
                max_results=PAGE,
                order_by=["attributes.start_time ASC"],
            )

    def registered_models(self) -> Iterator[object]:
        yield from self._pages(self.client.search_registered_models, max_results=PAGE)

    def model_versions(self, filter_string: str = "") -> Iterator[object]:
        """Newest change first, so an incremental sync stops at what it has seen."""
        yield from self._pages(
            self.client.search_model_versions,
            filter_string=filter_string,
            max_results=PAGE,
            order_by=["last_updated_timestamp DESC"],
        )

    def registered_model(self, name: str) -> object:
        return self._call(self.client.get_registered_model, name)

    def versions_of(self, name: str) -> Iterator[object]:
        """Every version of one model."""
        if "'" not in name:
            query = f"name='{name}'"
        elif '"' not in name:
            query = f'name="{name}"'
        else:  # no quoting fits: read them all and keep this model's
            yield from (v for v in self.model_versions() if v.name == name)
            return
        yield from self._pages(
            self.client.search_model_versions, filter_string=query, max_results=PAGE
        )

    def run(self, run_id: str) -> object:
        return self._call(self.client.get_run, run_id)

    def metric_history(self, run_id: str, key: str) -> list[object]:
        return self._call(self.client.get_metric_history, run_id, key)

    def signature_of(self, source: str) -> dict:
        """A model's input and output schema from its MLmodel file; {} when it has none."""
        from mlflow.artifacts import download_artifacts
        from mlflow.models import Model

        def read() -> dict:
            location = source
            if source.startswith(LOGGED_MODEL_PREFIX):  # MLflow 3: a logged model's id
                logged = self.client.get_logged_model(source.removeprefix("models:/"))
                location = logged.artifact_location
            path = download_artifacts(
                artifact_uri=f"{location.rstrip('/')}/MLmodel", tracking_uri=self.tracking_uri
            )
            signature = Model.load(path).signature
            if signature is None:
                return {}
            # MLflow writes each part as JSON text; keep them as structures.
            return {
                part: json.loads(value) if isinstance(value, str) else value
                for part, value in signature.to_dict().items()
            }

        return self._call(read)

    def download_model(self, name: str, version: int, folder: str) -> str:
        """A registered version's model files (MLmodel, the model, its environment),
        downloaded into `folder`; returns their path.

        Resolved with this client's tracking URI, not MLflow's process-wide one. Raises
        MlflowUnavailable when MLflow cannot be reached, MlflowNotFound when the version or its
        files are not there (a version registered from a run that logged no model).
        """
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        source = self._call(self.client.get_model_version_download_uri, name, str(version))
        try:
            location = source
            if source.startswith(LOGGED_MODEL_PREFIX):  # MLflow 3: a logged model's id
                logged = self.client.get_logged_model(source.removeprefix("models:/"))
                location = logged.artifact_location
            return download_artifacts(
                artifact_uri=location, tracking_uri=self.tracking_uri, dst_path=folder
            )
        except MlflowException as error:
            if any(sign in str(error.message) for sign in CONNECTION_FAILURES):
                raise MlflowUnavailable(
                    f"MLflow at {self.tracking_uri} is unreachable: {error.message}"
                ) from error
            raise MlflowNotFound(f"No model files at {source}: {error.message}") from error
        except OSError as error:
            raise MlflowNotFound(f"No model files at {source}: {error}") from error

    # Writes, used when an approval moves an alias

    def set_alias(self, model: str, alias: str, version: int) -> None:
        self._call(self.client.set_registered_model_alias, model, alias, str(version))

    def delete_alias(self, model: str, alias: str) -> None:
        self._call(self.client.delete_registered_model_alias, model, alias)

    def set_version_tag(self, model: str, version: int, key: str, value: str) -> None:
        self._call(self.client.set_model_version_tag, model, str(version), key, value)

    def source_run_of(self, model: str, version: int) -> str:
        """The id of the run a version was registered from; "" when it has none."""
        return self._call(self.client.get_model_version, model, str(version)).run_id or ""

    def log_artifact(self, run_id: str, path: str, folder: str) -> None:
        """Add a local file to a run's artifacts, under `folder`."""
        self._call(self.client.log_artifact, run_id, path, folder)

    def register_webhook(self, *, name: str, url: str, secret: str, events: list[str]) -> str:
        """Create the webhook, or point the one of that name at `url`. Returns its id."""
        for webhook in self._pages(self.client.list_webhooks, max_results=100):
            if webhook.name == name:
                self._call(
                    self.client.update_webhook,
                    webhook.webhook_id,
                    url=url,
                    events=events,
                    secret=secret,
                    status="ACTIVE",
                )
                return webhook.webhook_id
        webhook = self._call(
            self.client.create_webhook, name=name, url=url, events=events, secret=secret
        )
        return webhook.webhook_id

    # Plumbing

    def _pages(self, search: Callable[..., object], **options: object) -> Iterator[object]:
        token = None
        while True:
            page = self._call(search, page_token=token, **options)
            yield from page
            token = page.token
            if not token:
                return

    def _call(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
        from mlflow.exceptions import MlflowException
        from requests.exceptions import RequestException
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return function(*args, **kwargs)
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise MlflowNotFound(str(error.message)) from error
            if any(sign in str(error.message) for sign in CONNECTION_FAILURES):
                raise MlflowUnavailable(
                    f"MLflow at {self.tracking_uri} is unreachable: {error.message}"
                ) from error
            if error.get_http_status_code() >= 500:
                raise MlflowUnavailable(
                    f"MLflow at {self.tracking_uri} failed: {error.message}"
                ) from error
            raise MlflowRefused(f"MLflow refused: {error.message}") from error
        except (RequestException, SQLAlchemyError, OSError) as error:
            raise MlflowUnavailable(
                f"MLflow at {self.tracking_uri} is unreachable: {type(error).__name__}: {error}"
            ) from error
