import json

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


def _schema(tmp_path) -> dict:
    path = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(path))
    return json.loads(path.read_text())


def test_every_operation_documents_the_one_error_body_for_4xx(tmp_path):
    schema = _schema(tmp_path)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "fields"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            content = operation["responses"]["4XX"]["content"]
            assert content["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, (method, path)


def test_the_trail_export_documents_the_media_type_of_each_format(tmp_path):
    operation = _schema(tmp_path)["paths"]["/api/v1/audit/export"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {
        "text/csv",
        "application/x-ndjson",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
