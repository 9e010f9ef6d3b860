"""A ModelAdmin base for models that change only through services."""

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from governance.errors import DomainError


def report(request: HttpRequest, error: DomainError) -> None:
    messages.error(request, f"{error.message} ({error.code})")


class ServiceModelAdmin(admin.ModelAdmin):
    """Turns a domain error raised by a service into a message on the same page.

    The admin wraps its views in a transaction, so the failed change leaves nothing behind.
    """

    def changeform_view(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as error:
            report(request, error)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return super().delete_view(request, *args, **kwargs)
        except DomainError as error:
            report(request, error)
            return HttpResponseRedirect(request.get_full_path())
