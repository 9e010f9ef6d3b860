"""`Authorization: Bearer <token>` with the personal tokens of governance.access."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from governance.access.errors import InvalidToken
from governance.access.models import ApiToken
from governance.access.services import authenticate_api_token
from governance.audit import context


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[object, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None  # not ours: the session may still authenticate the request
        if len(header) != 2:
            raise AuthenticationFailed("Send the token as `Authorization: Bearer <token>`.")
        try:
            token = authenticate_api_token(secret=header[1].decode("ascii"))
        except UnicodeDecodeError:
            raise AuthenticationFailed("Unknown API token.", code="invalid_token") from None
        except InvalidToken as error:
            raise AuthenticationFailed(error.message, code="invalid_token") from None
        context.note_token(token.prefix)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="quorum"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A personal API token."}
