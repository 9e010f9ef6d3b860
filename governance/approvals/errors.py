from governance import errors
from governance.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class InvalidPolicy(InvalidInput):
    code = "invalid_policy"
    default_message = "The policy is not valid."


class InvalidGate(InvalidPolicy):
    code = "invalid_gate"
    default_message = "A gate of the policy is not valid."


class NoPolicy(InvalidInput):
    """A release to a stage the project has no policy for: nobody would know who decides."""

    code = "no_policy"
    default_message = "This project has no release policy for that stage."


class PolicyNotFound(NotFound):
    code = "policy_not_found"
    default_message = "No such policy in this project."


class StalePolicy(Conflict):
    code = "stale_policy"
    default_message = "Someone changed the policy since you opened it; reload and edit again."


class RequestNotFound(NotFound):
    code = "request_not_found"
    default_message = "No such release request in this project."


class RequestAlreadyOpen(Conflict):
    code = "request_already_open"
    default_message = "A request for this version and stage is already open."


class RequestClosed(Conflict):
    """The request has an outcome (or just expired): decisions no longer change it."""

    code = "request_closed"
    default_message = "This request is closed."


class NotAnApprover(PermissionDenied):
    code = "not_an_approver"
    default_message = "Your role does not fill any approval this policy requires."


class SeparationOfDuties(Conflict):
    code = "separation_of_duties"
    default_message = "You may not approve a release you requested or built."


class AlreadyDecided(Conflict):
    code = "already_decided"
    default_message = "You have already decided on this request."


class CommentRequired(errors.CommentRequired):
    default_message = "Say why: a rejection needs a comment."


class GatesFailing(Conflict):
    code = "gates_failing"
    default_message = "The release cannot be approved while a gate does not pass."


class NothingToRetry(Conflict):
    code = "nothing_to_retry"
    default_message = "The alias of this release is not waiting to be moved."


class InvalidComment(InvalidInput):
    code = "invalid_comment"
    default_message = "The comment is not valid."


class CommentNotFound(NotFound):
    code = "comment_not_found"
    default_message = "No such comment here."


class UnreadableBundle(InvalidInput):
    """A file given to verify_bundle that is not a readable zip: nothing in it can be checked."""

    code = "unreadable_bundle"
    default_message = "This is not a readable release bundle."
