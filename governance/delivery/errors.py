"""Why a job cannot be made, cancelled or retried."""

from governance.errors import Conflict, InvalidInput, NotFound


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
