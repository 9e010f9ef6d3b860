"""Why a job cannot be made, cancelled or retried."""

from governance.errors import Conflict, DomainError, InvalidInput, NotFound


class UnknownJobKind(InvalidInput):
    code = "unknown_job_kind"
    default_message = "Quorum has no job of that kind."


class JobNotFound(NotFound):
    code = "job_not_found"
    default_message = "No such job in this project."


class JobFinished(Conflict):
    code = "job_finished"
    default_message = "The job has finished already."


class JobNotRetryable(Conflict):
    code = "job_not_retryable"
    default_message = "Only a failed or cancelled job can be tried again."


class JobCancelled(Exception):
    """Raised inside a running job at its next step once someone asked to cancel it."""


class TransientJobError(Exception):
    """A job's work met something a later try may cure (a service down, a network error)."""


class SecretNotFound(NotFound):
    code = "secret_not_found"
    default_message = "The project has no secret of that name."


class InvalidSecret(InvalidInput):
    code = "invalid_secret"
    default_message = "A secret needs a name like DB_PASSWORD and a value."


class SecretUnreadable(Conflict):
    """No configured key opens the stored value: a key was removed before rotating."""

    code = "secret_unreadable"
    default_message = (
        "The secret cannot be decrypted with the configured keys: restore the old key in "
        "QUORUM_SECRET_KEYS (after the new one) and run `manage.py rotate_secrets`."
    )


class TargetNotFound(NotFound):
    code = "target_not_found"
    default_message = "No such deployment target in this project."


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"
    default_message = "No such deployment."


class InvalidTarget(InvalidInput):
    code = "invalid_target"
    default_message = "The target's settings are not valid."


class NotApproved(Conflict):
    """The version lacks a passed approval for the target's stage."""

    code = "not_approved"
    default_message = "The version is not approved for the target's stage."


class NotPackaged(Conflict):
    code = "not_packaged"
    default_message = "The version has no succeeded package job: package it first."


class NothingToRollBackTo(Conflict):
    code = "nothing_to_roll_back_to"
    default_message = "The target has no earlier deployment that was healthy."


class DeploymentBusy(Conflict):
    code = "deployment_busy"
    default_message = "A deployment to this target is under way: wait for it to finish."


class DeploymentFinished(Conflict):
    code = "deployment_finished"
    default_message = "The deployment is not in service."


class BadCallbackSignature(DomainError):
    code = "bad_signature"
    status = 401
    default_message = "The callback's signature does not match."


class StaleCallback(DomainError):
    code = "stale_callback"
    status = 401
    default_message = "The callback's timestamp is too far from now."


class MalformedCallback(InvalidInput):
    code = "malformed_callback"
    default_message = 'Send {"state": "live" or "failed", "endpoint": url, "detail": text}.'


class InvalidPipeline(InvalidInput):
    code = "invalid_pipeline"
    default_message = "The entry point does not name a training pipeline."


class InvalidCron(InvalidInput):
    code = "invalid_cron"
    default_message = "The schedule is not a cron expression of five fields."


class RetrainingBusy(Conflict):
    code = "retraining_busy"
    default_message = "A retraining run of this model is queued or running already."


class RetrainingDataGone(Conflict):
    code = "retraining_data_gone"
    default_message = "The data this run trained on is no longer kept: it cannot be rerun."


class NoRetrainingPolicy(NotFound):
    code = "no_retraining_policy"
    default_message = "This model has no retraining policy yet."


class RetrainingRunNotFound(NotFound):
    code = "retraining_run_not_found"
    default_message = "No such retraining run of this model."
