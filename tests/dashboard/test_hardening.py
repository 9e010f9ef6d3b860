"""Every answer carries the security headers, and the Content Security Policy allows no inline
script: no template holds one, and the pages that need scripts (htmx, Plotly, the API docs)
load them from Quorum's own static files."""

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def test_pages_carry_a_policy_that_allows_scripts_only_from_quorum_itself(client, login, owner):
    response = login(owner).get("/")
    policy = policy_of(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_the_sign_in_page_and_the_api_carry_the_policy_too(client):
    assert "script-src 'self'" in client.get("/accounts/login/").headers["Content-Security-Policy"]
    answer = client.get("/api/v1/me/")
    assert answer.status_code in (401, 403)
    assert "Content-Security-Policy" in answer.headers


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda path: str(path.relative_to(TEMPLATES))
)
def test_no_template_holds_an_inline_script_or_event_handler(template):
    text = template.read_text()
    for attributes in SCRIPT_TAG.findall(text):
        assert "src=" in attributes or 'type="application/json"' in attributes, (
            f"{template.name}: an inline <script{attributes}> would be refused by the policy"
        )
    assert not INLINE_HANDLER.search(text), f"{template.name}: inline event handler"


def test_the_api_docs_load_their_script_from_a_file_of_their_own(client, login, owner):
    page = login(owner).get("/api/v1/docs/")
    assert page.status_code == 200
    sources = re.findall(r'<script[^>]*src="([^"]+)"', page.content.decode())
    inline = [a for a in SCRIPT_TAG.findall(page.content.decode()) if "src=" not in a]
    assert inline == []
    [own] = [source for source in sources if "script" in source and "docs" in source]
    script = client.get(own)
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
