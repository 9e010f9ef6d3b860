"""What every page of a project needs: the project (404 for those who may not see it), what the
person may do in it, the section of the navigation, and when MLflow was last mirrored."""

from django.http import HttpRequest

from governance.access import selectors as access
from governance.registry import selectors as registry


def project_page(request: HttpRequest, slug: str, section: str) -> dict:
    project, capabilities = access.project_for(request.user, slug)
    return {
        "project": project,
        "capabilities": capabilities,
        "section": section,
        "last_sync": registry.last_sync(),
    }
