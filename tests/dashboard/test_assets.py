import json
from pathlib import Path

import plotly
from django.contrib.staticfiles import finders
from django.test import RequestFactory

from dashboard.views.errors import server_error


def test_plotly_is_served_from_the_installed_package(client, db, settings):
    settings.WHITENOISE_USE_FINDERS = True  # as collectstatic would have put it in STATIC_ROOT
    found = finders.find("vendor/plotly.min.js")
    assert Path(found) == Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert client.get("/static/vendor/plotly.min.js").status_code == 200


def test_pages_load_htmx_from_our_static_files(login, owner):
    page = login(owner).get("/").content
    assert b'src="/static/django_htmx/htmx-2.min.js"' in page
    assert b"unpkg" not in page


def test_server_errors_on_the_api_carry_the_error_body():
    response = server_error(RequestFactory().get("/api/v1/projects/"))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "server_error"


def test_server_errors_on_pages_are_a_plain_page():
    response = server_error(RequestFactory().get("/projects/"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
