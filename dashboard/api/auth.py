"""`Authorization: Bearer <token>` with the personal tokens of governance.access."""

from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from dashboard import limits
from dashboard.middleware import client_ip
from governance.access.errors import InvalidToken
from governance.access.models import ApiToken, Project
from governance.access.selectors import visible_projects
from governance.access.services import authenticate_api_token
from governance.audit import context


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[object, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None  # not ours: the session may still authenticate the request
        address = client_ip(request)
        if (wait := limits.over("token_failures", address)) is not None:
            raise Throttled(wait, "Too many failed token attempts from this address.")
        if len(header) != 2:
            limits.spend("token_failures", address)
            raise AuthenticationFailed("Send the token as `Authorization: Bearer <token>`.")
        try:
            token = authenticate_api_token(secret=header[1].decode("ascii"))
        except (UnicodeDecodeError, InvalidToken) as error:
            limits.spend("token_failures", address)
            message = getattr(error, "message", "Unknown API token.")
            raise AuthenticationFailed(message, code="invalid_token") from None
        context.note_token(token.prefix)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="quorum"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A personal API token."}


class CiTokenScope(BasePermission):
    """A CI token (a token tied to a project) reaches only the views that say
    `ci_token_allowed = True`: the release gate, release requests and their evidence bundles.
    Those views keep it to its project themselves, through `projects_of`."""

    message = (
        "This CI token may only ask the release gate, open release requests and download "
        "their evidence bundles."
    )

    def has_permission(self, request: Request, view: object) -> bool:
        token = request.auth
        if isinstance(token, ApiToken) and token.project_id is not None:
            return bool(getattr(view, "ci_token_allowed", False))
        return True


def projects_of(request: Request) -> QuerySet[Project]:
    """The projects this request may act in: the person's, narrowed to the token's project
    for a CI token."""
    projects = visible_projects(request.user)
    token = request.auth
    if isinstance(token, ApiToken) and token.project_id is not None:
        projects = projects.filter(pk=token.project_id)
    return projects
