"""The base of every domain error. Each area subclasses it in its own `errors.py`.

An error carries a stable `code` that clients may branch on, the HTTP status the edge answers
with, a message for people, and per-field messages for forms and API bodies.
"""


class DomainError(Exception):
    code = "domain_error"
    status = 400
    default_message = "The request could not be carried out."

    def __init__(self, message: str | None = None, *, fields: dict[str, list[str]] | None = None):
        self.message = message or self.default_message
        self.fields = fields or {}
        super().__init__(self.message)


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403
    default_message = "You do not have permission to do this."


class InvalidInput(DomainError):
    code = "invalid"
    status = 400
    default_message = "The input is not valid."


class CommentRequired(InvalidInput):
    """A step that must say why (a rejection, an alert handled); each area says it its way."""

    code = "comment_required"
    default_message = "A comment is needed."


class Conflict(DomainError):
    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state."
