"""Error pages, and the API's error body for errors that happen outside DRF."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.api.errors import error_json


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    context = {"status": status, "title": title, "message": message}
    return render(request, "error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return error_json(400, "bad_request", "The request could not be understood.")
    return _page(request, 400, "Bad request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return error_json(403, "permission_denied", "You do not have permission to do this.")
    return _page(request, 403, "Not allowed", "You do not have permission to see this page.")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return error_json(404, "not_found", "Not found.")
    return _page(request, 404, "Not found", "There is nothing here, or you may not see it.")


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return error_json(500, "server_error", "Something went wrong on our side; it is logged.")
    # No template context processors here: the error may come from them.
    return HttpResponse(
        "<!doctype html><title>Server error</title><h1>Something went wrong</h1>"
        "<p>The error is logged. Try again in a moment.</p>",
        status=500,
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if _is_api(request):
        return error_json(403, "csrf_failed", "The CSRF token is missing or wrong.")
    message = "The form expired or came from another site. Go back, reload the page and retry."
    return _page(request, 403, "Form expired", message)
