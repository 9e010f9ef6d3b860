"""Turn domain errors that escape a page view into the right page.

Views handle the errors they expect (a form error, a refused change) themselves; what reaches
this middleware is a missing project (404) or a missing permission (403).
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from governance.errors import DomainError

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
