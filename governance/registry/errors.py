from governance.errors import Conflict, DomainError, InvalidInput, NotFound


class MlflowUnavailable(DomainError):
    """MLflow did not answer, or answered with a server error, after the retries."""

    code = "mlflow_unavailable"
    status = 503
    default_message = "MLflow is unreachable."


class MlflowRefused(DomainError):
    """MLflow understood and refused (a bad filter, a name it does not accept)."""

    code = "mlflow_refused"
    status = 502
    default_message = "MLflow refused the request."


class MlflowNotFound(NotFound):
    code = "mlflow_not_found"
    default_message = "MLflow has no such object."


class SyncBusy(DomainError):
    code = "sync_busy"
    status = 409
    default_message = "Another sync is running; this one was skipped."


class RunNotFound(NotFound):
    code = "run_not_found"
    default_message = "No such run in this project."


class ExperimentNotFound(NotFound):
    code = "experiment_not_found"
    default_message = "No such experiment in this project."


class ModelNotFound(NotFound):
    code = "model_not_found"
    default_message = "No such model in this project."


class WebhooksDisabled(DomainError):
    code = "webhooks_disabled"
    status = 503
    default_message = "MLflow webhooks are not configured here: set MLFLOW_WEBHOOK_SECRET."


class BadSignature(DomainError):
    code = "bad_signature"
    status = 401
    default_message = "The webhook's signature does not match."


class StaleDelivery(DomainError):
    code = "stale_delivery"
    status = 401
    default_message = "The webhook's timestamp is too far from now."


class ReplayedDelivery(DomainError):
    code = "replayed_delivery"
    status = 400
    default_message = "This delivery was received already."


class MalformedDelivery(DomainError):
    code = "malformed_delivery"
    status = 400
    default_message = "The webhook's body is not an MLflow event."


class CardChanged(Conflict):
    code = "card_changed"
    default_message = "The card changed since you opened it; reload it and redo your changes."


class VersionNotFound(NotFound):
    code = "version_not_found"
    default_message = "No such model version in this project."


class LinkRefused(Conflict):
    code = "link_refused"


class DatasetTooLarge(InvalidInput):
    code = "dataset_too_large"
    status = 413


class DatasetUnreachable(InvalidInput):
    code = "dataset_unreachable"


class UnreadableTable(InvalidInput):
    """A file Quorum cannot read as a table: not CSV or Parquet, malformed, not UTF-8, empty."""

    code = "unreadable_table"
    default_message = "The file could not be read as a table."


class SchemaMismatch(InvalidInput):
    """A table whose columns or types differ from the data it is compared with."""

    code = "schema_mismatch"
    default_message = "The table's columns do not match."
