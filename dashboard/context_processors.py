from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from governance.access.selectors import projects_for
from governance.audit.selectors import may_read_trail


def navigation(request: HttpRequest) -> dict[str, object]:
    """The projects for the switcher, read only when a page shows it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_projects": SimpleLazyObject(lambda: list(projects_for(user))),
        "nav_trail": SimpleLazyObject(lambda: may_read_trail(user)),
    }
