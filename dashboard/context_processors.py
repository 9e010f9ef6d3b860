from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, cached_property

from governance.access.selectors import projects_for
from governance.audit.selectors import may_read_trail
from governance.notify.selectors import unread_count_for


class Bell:
    """The header's bell: its unread count is read once, when a template first shows it."""

    def __init__(self, user: AbstractBaseUser):
        self.user = user

    @cached_property
    def unread(self) -> int:
        return unread_count_for(self.user)


def navigation(request: HttpRequest) -> dict[str, object]:
    """The projects for the switcher, read only when a page shows it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_projects": SimpleLazyObject(lambda: list(projects_for(user))),
        "nav_trail": SimpleLazyObject(lambda: may_read_trail(user)),
        "nav_bell": Bell(user),
    }
