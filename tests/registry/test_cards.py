import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from governance.access.errors import NotAllowed
from governance.audit.models import AuditEvent
from governance.errors import InvalidInput
from governance.registry import cards, services
from governance.registry.errors import CardChanged
from governance.registry.models import ModelCard, ModelVersion

WRITTEN = {key: f"{key} explained well enough for a reviewer." for key in cards.KEYS}


@pytest.fixture
def version(mirrored):
    return ModelVersion.objects.select_related("model__project").get(model__name="credit-scoring")


def test_a_data_scientist_writes_the_card_and_it_becomes_complete(version, scientist):
    first = services.edit_model_card(
        actor=scientist, version=version, sections={"intended_use": WRITTEN["intended_use"]}
    )
    card = ModelCard.objects.get(version=version)
    assert (first.number, card.complete) == (1, False)
    services.edit_model_card(actor=scientist, version=version, sections=WRITTEN, note="all")
    card.refresh_from_db()
    assert (card.revision, card.complete, card.edited_by) == (2, True, scientist)


def test_each_edit_is_a_revision_and_an_audit_event_with_before_and_after(version, owner):
    services.edit_model_card(actor=owner, version=version, sections={"caveats": "A" * 30})
    services.edit_model_card(actor=owner, version=version, sections={"caveats": "B" * 30})
    event = AuditEvent.objects.filter(action="model_card.edited").latest("seq")
    assert event.data["before"] == {"caveats": "A" * 30}
    assert event.data["after"] == {"caveats": "B" * 30}
    assert event.target_id == "credit-scoring/1"
    assert list(ModelCard.objects.get().revisions.values_list("number", flat=True)) == [2, 1]


def test_an_edit_that_changes_nothing_makes_no_revision(version, scientist):
    services.edit_model_card(actor=scientist, version=version, sections=WRITTEN)
    services.edit_model_card(actor=scientist, version=version, sections=WRITTEN)
    assert ModelCard.objects.get().revision == 1


def test_a_card_is_not_complete_with_placeholder_text(version, scientist):
    services.edit_model_card(
        actor=scientist, version=version, sections={**WRITTEN, "caveats": "TBD"}
    )
    assert not ModelCard.objects.get().complete


def test_an_edit_based_on_an_old_revision_is_refused(version, scientist, owner):
    services.edit_model_card(actor=scientist, version=version, sections=WRITTEN)
    with pytest.raises(CardChanged):
        services.edit_model_card(
            actor=owner, version=version, sections={"caveats": "C" * 30}, based_on=0
        )
    assert ModelCard.objects.get().revision == 1


@pytest.mark.parametrize("who", ["viewer", "auditor", "engineer"])
def test_other_roles_may_not_edit_the_card(version, request, who):
    with pytest.raises(NotAllowed):
        services.edit_model_card(
            actor=request.getfixturevalue(who), version=version, sections=WRITTEN
        )
    assert not ModelCard.objects.exists()


def test_unknown_sections_are_refused(version, scientist):
    with pytest.raises(InvalidInput):
        services.edit_model_card(actor=scientist, version=version, sections={"vibes": "great"})
    assert not ModelCard.objects.exists()


# Pages


def page_url(name: str, *extra: str) -> str:
    return reverse(name, args=["credit-risk", "credit-scoring", 1, *extra])


def test_version_page_shows_lineage_card_and_facts(login, viewer, version, mirrored):
    response = login(viewer).get(page_url("model_version"))
    assert response.status_code == 200
    nodes = {node["kind"] for node in response.context["lineage"]["nodes"]}
    assert nodes == {"dataset", "run", "version"}
    content = response.content.decode()
    assert "card incomplete" in content
    assert "applicants" in content
    assert "Edit the card" not in content


def test_a_data_scientist_edits_the_card_in_the_page(login, scientist, version):
    client = login(scientist)
    form = {**WRITTEN, "based_on": "0", "note": "first draft"}
    response = client.post(page_url("card_edit"), form)
    assert response.status_code == 302
    assert ModelCard.objects.get().complete


def test_a_viewer_editing_the_card_gets_403(login, viewer, version):
    response = login(viewer).post(page_url("card_edit"), WRITTEN)
    assert response.status_code == 403
    assert not ModelCard.objects.exists()


def test_a_stale_page_edit_shows_why_and_keeps_the_text(login, scientist, owner, version):
    services.edit_model_card(actor=owner, version=version, sections={"caveats": "X" * 30})
    response = login(scientist).post(page_url("card_edit"), {**WRITTEN, "based_on": "0"})
    assert response.status_code == 409
    assert b"reload the card" in response.content
    assert WRITTEN["training_data"].encode() in response.content


@pytest.mark.parametrize(
    ("fmt", "marker"), [("md", "# Model card"), ("html", "<h1>"), ("json", '"sections"')]
)
def test_the_card_exports_as_markdown_html_and_json(login, viewer, scientist, version, fmt, marker):
    services.edit_model_card(actor=scientist, version=version, sections=WRITTEN)
    response = login(viewer).get(page_url("card_export", fmt))
    assert response.status_code == 200
    assert marker in response.content.decode()
    assert "attachment" in response["Content-Disposition"]


def test_an_unknown_export_format_is_not_found(login, viewer, version):
    assert login(viewer).get(page_url("card_export", "pdf")).status_code == 404


def test_card_json_carries_the_facts(login, viewer, version, mirrored):
    body = json.loads(login(viewer).get(page_url("card_export", "json")).content)
    assert body["facts"]["run"] == mirrored["runs"][4]
    assert body["facts"]["owners"] == ["olivia"]
    assert body["missing"] == cards.REQUIRED


# API


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_reads_and_writes_the_card(scientist, version):
    url = "/api/v1/projects/credit-risk/models/credit-scoring/versions/1/card/"
    client = api(scientist)
    assert client.get(url).json()["revision"] == 0
    body = client.put(url, {"sections": WRITTEN, "based_on": 0}, format="json").json()
    assert (body["revision"], body["complete"]) == (1, True)
    stale = client.put(url, {"sections": {"caveats": "Z" * 30}, "based_on": 0}, format="json")
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "card_changed"


def test_api_card_edit_by_a_viewer_is_403(viewer, version):
    url = "/api/v1/projects/credit-risk/models/credit-scoring/versions/1/card/"
    response = api(viewer).put(url, {"sections": WRITTEN}, format="json")
    assert response.status_code == 403


def test_api_gives_the_lineage_graph(viewer, version, mirrored):
    url = "/api/v1/projects/credit-risk/models/credit-scoring/versions/1/lineage/"
    graph = api(viewer).get(url).json()
    assert {(edge["from"].split(":")[0], edge["to"].split(":")[0]) for edge in graph["edges"]} == {
        ("dataset", "run"),
        ("run", "version"),
    }


def test_a_version_of_another_project_is_not_found(outsider, version):
    url = "/api/v1/projects/credit-risk/models/credit-scoring/versions/1/lineage/"
    assert api(outsider).get(url).status_code == 404
