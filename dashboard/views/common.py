"""What every page of a project needs: the project (404 for those who may not see it), what the
person may do in it, the section of the navigation, and when MLflow was last mirrored."""

from django.http import HttpRequest

from governance.access import selectors as access
from governance.errors import DomainError, PermissionDenied
from governance.registry import selectors as registry


def project_page(request: HttpRequest, slug: str, section: str) -> dict:
    project, capabilities = access.project_for(request.user, slug)
    return {
        "project": project,
        "capabilities": capabilities,
        "section": section,
        "last_sync": registry.last_sync(),
    }


def raise_refusal(error: DomainError) -> None:
    """Let a refused permission through to DomainErrorMiddleware, which answers the 403 page.

    Views that turn a failed change into a message on the page the person came from call this
    first: a message and a redirect would answer someone who may not act 302, as if it had
    worked, to clients and scripts that only read the status."""
    if isinstance(error, PermissionDenied):
        raise error
