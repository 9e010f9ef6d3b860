from governance.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class ProjectNotFound(NotFound):
    """Also raised when the project exists but the actor may not see it: never hint it exists."""

    code = "project_not_found"
    default_message = "No such project."


class NotAllowed(PermissionDenied):
    code = "permission_denied"


class InvalidSlug(InvalidInput):
    code = "invalid_slug"
    default_message = (
        "A slug is 2 to 50 lower-case letters, digits and single hyphens, starting with a letter."
    )


class SlugTaken(Conflict):
    code = "slug_taken"
    default_message = "Another project already uses this slug."


class ProjectArchived(Conflict):
    code = "project_archived"
    default_message = "This project is archived; restore it before changing it."


class UnknownRole(InvalidInput):
    code = "unknown_role"


class UnknownUser(InvalidInput):
    code = "unknown_user"
    default_message = "No active person has this username."


class AlreadyMember(Conflict):
    code = "already_member"


class MemberNotFound(NotFound):
    code = "member_not_found"
    default_message = "This person is not a member of the project."


class LastProductOwner(Conflict):
    code = "last_product_owner"
    default_message = (
        "A project needs at least one product owner: make someone else product owner first."
    )


class InvalidToken(InvalidInput):
    code = "invalid_token"


class TokenNameTaken(Conflict):
    code = "token_name_taken"
    default_message = "You already have an active token with this name."
