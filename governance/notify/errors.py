from governance.errors import InvalidInput, NotFound


class UnknownKind(InvalidInput):
    code = "unknown_kind"
    default_message = "Not a kind of notification."


class InvalidLink(InvalidInput):
    code = "invalid_url"
    default_message = "A notification links to a path of this site, starting with “/”."


class InvalidNotification(InvalidInput):
    code = "invalid_notification"


class InvalidPreferences(InvalidInput):
    code = "invalid_preferences"
    default_message = "Choose immediately, daily or off for each kind of notification."


class NotificationNotFound(NotFound):
    """Also raised for someone else's notification: ids never reveal that it exists."""

    code = "notification_not_found"
    default_message = "No such notification."
