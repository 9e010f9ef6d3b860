"""The person's notifications (the bell's page) and their email preferences.

Opening a notification marks it read, so it is a POST (a small form per item): a GET that
changes state could be fired by link prefetchers or by another site's image tag. Emails link
straight to the notification's page instead, which changes nothing.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.forms import add_domain_error
from governance.errors import DomainError
from governance.notify import selectors, services
from governance.notify.kinds import Kind
from governance.notify.models import Delivery

PAGE_SIZE = 25


class PreferencesForm(forms.Form):
    """One choice of delivery per kind, each field named after its kind."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for kind in Kind:
            self.fields[kind.value] = forms.ChoiceField(
                label=kind.label, choices=Delivery.choices, widget=forms.RadioSelect
            )


def _page(request: HttpRequest) -> Page:
    number = request.POST.get("page") if request.method == "POST" else request.GET.get("page")
    paginator = Paginator(selectors.notifications_for(request.user), PAGE_SIZE)
    return paginator.get_page(number)


def _list_url(request: HttpRequest) -> str:
    number = request.POST.get("page", "")
    url = reverse("notifications")
    return f"{url}?page={number}" if number.isdigit() and number != "1" else url


@require_GET
@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    return render(request, "notify/list.html", {"page": _page(request)})


@require_POST
@login_required
def notification_open(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark it read and go to its page."""
    notification = selectors.notification_of(request.user, notification_id)
    services.mark_read(actor=request.user, notification=notification)
    # The service only stores site paths; checked again because this is a redirect.
    safe = url_has_allowed_host_and_scheme(
        notification.url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(notification.url if safe else reverse("notifications"))


@require_POST
@login_required
def notification_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    notification = selectors.notification_of(request.user, notification_id)
    notification = services.mark_read(actor=request.user, notification=notification)
    if request.htmx:
        context = {"notification": notification, "oob_bell": True}
        return render(request, "notify/_item.html", context)
    return redirect(_list_url(request))


@require_POST
@login_required
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    services.mark_all_read(actor=request.user)
    if request.htmx:
        return render(request, "notify/_list.html", {"page": _page(request), "oob_bell": True})
    return redirect(_list_url(request))


@require_http_methods(["GET", "POST"])
@login_required
def notification_preferences(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST or None, initial=selectors.preferences_of(request.user))
    status, saved = 200, False
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.set_preferences(actor=request.user, choices=form.cleaned_data)
            except DomainError as error:
                add_domain_error(form, error)
                status = error.status
            else:
                if not request.htmx:
                    messages.success(request, "Saved your notification preferences.")
                    return redirect("notification_preferences")
                form = PreferencesForm(initial=selectors.preferences_of(request.user))
                status, saved = 200, True
    context = {"form": form, "deliveries": Delivery.choices, "saved": saved}
    template = "notify/_preferences.html" if request.htmx else "notify/preferences.html"
    return render(request, template, context, status=status)
