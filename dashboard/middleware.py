"""Turn domain errors that escape a page view into the right page.

Views handle the errors they expect (a form error, a refused change) themselves; what reaches
this middleware is a missing project (404) or a missing permission (403).
"""

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from governance.audit import context
from governance.errors import DomainError

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request: HttpRequest) -> str:
    """The caller's address; behind a trusted proxy, the first one it forwarded."""
    if settings.BEHIND_PROXY:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")


class AuditContextMiddleware:
    """Bind the request's address, user agent and id for the audit events it causes.

    A well-formed `X-Request-ID` from a proxy or CI system is kept, so events can be matched
    with its logs; otherwise one is made. The response carries it back.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        with context.bound(
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            request_id=request_id,
        ):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


TITLES = {400: "Not possible", 403: "Not allowed", 404: "Not found", 409: "Not possible"}


class DomainErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DomainError):
            return None
        template = "_error.html" if getattr(request, "htmx", False) else "error.html"
        context = {
            "status": exception.status,
            "title": TITLES.get(exception.status, "Error"),
            "message": exception.message,
            "code": exception.code,
        }
        return render(request, template, context, status=exception.status)
