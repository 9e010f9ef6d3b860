from django.core.management import call_command


def test_openapi_schema_builds_without_warnings(tmp_path):
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(path))
    schema = path.read_text()
    assert "/api/v1/audit/export:" in schema
    assert "/api/v1/projects/{slug}/members/:" in schema
    assert "/api/v1/models/{key}/retraining/:" in schema
    assert "/api/v1/models/{key}/retraining/runs/:" in schema
    assert "RetrainingRunOut:" in schema
    labels = schema.split("/api/v1/batches/{id}/labels/:", 1)[1].split("\n  /", 1)[0]
    assert "text/csv:" in labels
    bundle = schema.split("/api/v1/approval-requests/{id}/bundle/:", 1)[1].split("\n  /", 1)[0]
    assert "application/zip:" in bundle
    assert "format: binary" in bundle
