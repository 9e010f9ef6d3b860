import hashlib
import http.server
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.registry import tables
from governance.registry.models import DatasetVersion

CSV = b"age,income,sex\n31,42000,female\n45,51000,male\n"


def register(client, project, **data):
    return client.post(reverse("datasets", args=[project.slug]), data)


def test_an_upload_is_registered_by_the_sha256_of_its_whole_content(login, project, scientist):
    response = register(
        login(scientist), project, name="applicants", file=SimpleUploadedFile("a.csv", CSV)
    )
    assert response.status_code == 302
    dataset = DatasetVersion.objects.get()
    assert dataset.sha256 == hashlib.sha256(CSV).hexdigest()
    assert dataset.profile == {"bytes": len(CSV), "num_rows": 2}
    assert [c["name"] for c in dataset.schema["columns"]] == ["age", "income", "sex"]
    assert AuditEvent.objects.get(action="dataset.registered").project == project


def test_the_same_content_twice_is_one_version(login, project, scientist):
    client = login(scientist)
    for _ in range(2):
        register(client, project, name="applicants", file=SimpleUploadedFile("a.csv", CSV))
    assert DatasetVersion.objects.count() == 1


@pytest.fixture
def data_server():
    class Serve(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(CSV)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_http_uri_is_read_and_hashed(login, project, scientist, data_server):
    register(login(scientist), project, name="applicants", uri=f"{data_server}/applicants.csv")
    assert DatasetVersion.objects.get().sha256 == hashlib.sha256(CSV).hexdigest()


def test_a_file_uri_is_read_under_the_allowed_roots_only(
    login, project, scientist, tmp_path, settings
):
    path = tmp_path / "data" / "applicants.csv"
    path.parent.mkdir()
    path.write_bytes(CSV)
    settings.QUORUM_DATA_ROOTS = [str(tmp_path / "data")]
    client = login(scientist)
    assert register(client, project, name="ok", uri=f"file://{path}").status_code == 302
    outside = tmp_path / "secret.csv"
    outside.write_bytes(CSV)
    response = register(client, project, name="no", uri=f"file://{outside}")
    assert response.status_code == 400
    assert DatasetVersion.objects.count() == 1


@pytest.mark.parametrize(
    ("uri", "status"),
    [("ftp://example.com/a.csv", 400), ("gopher://x", 400), ("http://127.0.0.1:9/a.csv", 400)],
)
def test_unusable_uris_are_refused_clearly(login, project, scientist, uri, status):
    response = register(login(scientist), project, name="x", uri=uri)
    assert response.status_code == status
    assert not DatasetVersion.objects.exists()


def test_too_large_a_data_set_is_refused(login, project, scientist, settings):
    settings.QUORUM_MAX_DATASET_BYTES = 10
    response = register(
        login(scientist), project, name="big", file=SimpleUploadedFile("a.csv", CSV)
    )
    assert response.status_code == 413
    assert not DatasetVersion.objects.exists()


def test_an_empty_file_or_no_source_is_refused(login, project, scientist):
    client = login(scientist)
    assert (
        register(client, project, name="e", file=SimpleUploadedFile("a.csv", b"")).status_code
        == 400
    )
    assert register(client, project, name="none").status_code == 400
    both = register(client, project, name="b", uri="http://x/", file=SimpleUploadedFile("a", CSV))
    assert both.status_code == 400
    assert not DatasetVersion.objects.exists()


def test_viewers_may_not_register_data_sets(login, project, viewer):
    response = register(login(viewer), project, name="x", file=SimpleUploadedFile("a.csv", CSV))
    assert response.status_code == 403
    assert not DatasetVersion.objects.exists()


def test_the_data_page_lists_what_runs_used(login, viewer, mirrored):
    page = login(viewer).get(reverse("datasets", args=["credit-risk"])).content.decode()
    assert "applicants" in page


def test_the_api_registers_an_upload_and_refuses_viewers(project, scientist, viewer):
    from rest_framework.test import APIClient

    url = "/api/v1/projects/credit-risk/datasets/"
    client = APIClient()
    client.force_authenticate(scientist)
    response = client.post(
        url, {"name": "applicants", "file": SimpleUploadedFile("a.csv", CSV)}, format="multipart"
    )
    assert response.status_code == 201
    assert response.json()["sha256"] == hashlib.sha256(CSV).hexdigest()
    client.force_authenticate(viewer)
    refused = client.post(url, {"name": "x", "uri": "https://example.com/a.csv"}, format="json")
    assert refused.status_code == 403


def test_an_upload_kept_as_a_table_is_stored_and_listed(login, project, scientist, settings):
    client = login(scientist)
    response = register(
        client, project, name="reference", file=SimpleUploadedFile("a.csv", CSV), keep="on"
    )
    assert response.status_code == 302
    dataset = DatasetVersion.objects.get()
    assert dataset.stored
    assert tables.load(settings.DATA_DIR, dataset.sha256).num_rows == 2
    page = client.get(f"/projects/{project.slug}/data/").content.decode()
    assert "kept" in page


def test_a_malformed_table_to_keep_is_refused_and_nothing_is_stored(login, project, scientist):
    response = register(
        login(scientist), project, name="reference",
        file=SimpleUploadedFile("a.csv", b"a,b\n1,2,3\n"), keep="on",
    )  # fmt: skip
    assert response.status_code == 400
    assert "Expected 2 columns, got 3" in response.content.decode()
    assert not DatasetVersion.objects.exists()
