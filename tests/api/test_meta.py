"""Goals, info, the OpenAPI document and the web UI's static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from onward.api.app import create_app
from tests.api.conftest import ALICE, api_settings
from tests.conftest import make_settings


def _client(tmp_path: Path, **overrides: Any) -> httpx.AsyncClient:
    app = create_app(make_settings(tmp_path, **overrides), api_settings=api_settings())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api")


async def test_goals_list_tools_with_their_approval_policies(tmp_path: Path) -> None:
    async with _client(tmp_path) as http:
        response = await http.get("/v1/goals", headers=ALICE)
    assert response.status_code == 200
    goals = {g["name"]: g for g in response.json()["goals"]}
    math = goals["test-math"]
    assert math["description"] == "Arithmetic help."
    policies = {t["name"]: t["approval"] for t in math["tools"]}
    assert policies["transfer"] == "confirm" and policies["delete_everything"] == "deny"
    assert policies["add"] == "auto"
    add = next(t for t in math["tools"] if t["name"] == "add")
    assert set(add["parameters"]["properties"]) == {"a", "b"}
    assert "travel" in goals and goals["travel"]["starter_prompt"]


async def test_info_names_the_model_and_links_to_the_temporal_ui(tmp_path: Path) -> None:
    async with _client(
        tmp_path, temporal_ui_url="http://temporal.example:8233/", temporal_namespace="team a"
    ) as http:
        info = (await http.get("/v1/info", headers=ALICE)).json()
    assert info["model"]["name"] == "offline" and info["model"]["offline"] is True
    assert "offline" in info["model"]["description"]
    assert info["temporal"] == {
        "namespace": "team a",
        "web_ui_url": "http://temporal.example:8233",
        "workflow_url_template": "http://temporal.example:8233/namespaces/team%20a/workflows/{id}",
    }
    assert info["limits"] == {"max_message_chars": 8000, "max_body_bytes": 64 * 1024}


async def test_info_never_shows_credentials_of_configured_urls(tmp_path: Path) -> None:
    async with _client(
        tmp_path,
        model="openai:gpt-4o-mini",
        openai_base_url="https://ann:S3CRET@llm.example/v1",
        temporal_ui_url="https://ops:UIPASS@temporal.example:8233",
        otlp_endpoint="https://k:OTLPPASS@otel.example/v1/traces",
        payload_s3_endpoint_url="http://minio:S3PASS@s3.example:9000",
    ) as http:
        response = await http.get("/v1/info", headers=ALICE)
    text = response.text
    for secret in ("S3CRET", "UIPASS", "OTLPPASS", "S3PASS", "ann:", "ops:"):
        assert secret not in text, secret
    info = response.json()
    assert "https://***@llm.example/v1" in info["model"]["description"]
    # Links are handed to every user: without credentials, still usable.
    assert info["temporal"]["web_ui_url"] == "https://temporal.example:8233"
    assert info["temporal"]["workflow_url_template"].startswith("https://temporal.example:8233/")


async def test_openapi_documents_responses_and_errors_of_every_route(tmp_path: Path) -> None:
    async with _client(tmp_path) as http:
        spec = (await http.get("/openapi.json")).json()
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
    ]
    assert len(operations) == 14  # fork and stop included
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, method, op in operations:
        ok = [code for code in op["responses"] if code.startswith("2")]
        assert ok, (path, method)
        if ok != ["204"]:
            content = op["responses"][ok[0]]["content"]
            schema = next(iter(content.values()))["schema"]
            assert "$ref" in schema or "oneOf" in schema, (path, method, schema)
        assert op["responses"]["401"]["content"]["application/json"]["schema"] == error_ref
        if "{conversation_id}" in path:
            assert op["responses"]["404"]["content"]["application/json"]["schema"] == error_ref
        if "requestBody" in op:
            assert "422" in op["responses"], (path, method)
    events = spec["paths"]["/v1/conversations/{conversation_id}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert {"ConversationEvent", "TokenDelta"} <= set(spec["components"]["schemas"])
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    # What the API refuses with a 422 is in the document, so valid means accepted.
    schemas = spec["components"]["schemas"]
    goal = schemas["CreateConversationRequest"]["properties"]["goal"]
    assert "test-math" in goal["enum"] and "trip-reviewer" not in goal["enum"]
    raise_budget = schemas["RaiseBudgetRequest"]
    assert raise_budget["minProperties"] == 1
    assert raise_budget["properties"]["max_tokens"] == {
        "type": "integer",
        "minimum": 1.0,
        "title": "Max Tokens",
        "description": "New token limit.",
    }
    text = schemas["SendMessageRequest"]["properties"]["text"]
    assert (text["minLength"], text["maxLength"], text["pattern"]) == (1, 8000, r"\S")


async def test_web_ui_is_served_with_a_strict_content_security_policy(tmp_path: Path) -> None:
    async with _client(tmp_path) as http:
        page = await http.get("/")
        scripts = {
            name: await http.get(f"/static/{name}")
            for name in ("app.js", "api.js", "conversation.js", "markdown.js")
        }
        style = await http.get("/static/style.css")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    for response in scripts.values():
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
    # The same page under /static/ has the same protection as `/`.
    async with _client(tmp_path) as http:
        copy = await http.get("/static/index.html")
    assert copy.status_code == 200 and copy.headers["content-type"].startswith("text/html")
    for response in (copy, style, *scripts.values()):
        for header in ("content-security-policy", "referrer-policy", "x-content-type-options"):
            assert response.headers[header] == page.headers[header], header
    assert "export function renderMarkdown" in scripts["markdown.js"].text
    assert style.status_code == 200


async def test_pay_page_shows_a_ledger_invoice(tmp_path: Path) -> None:
    from onward.examples.ledger import ledger_for

    settings = make_settings(tmp_path)
    invoice = ledger_for(settings).record_invoice(
        "conv-pay:c1",
        customer_email="ann@example.com",
        customer_name="Ann <b>",
        description="Flight <script>x</script>",
        amount_cents=35904,
        provider="local",
    )
    app = create_app(settings, api_settings=api_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as h:
        page = await h.get(f"/pay/{invoice.id}")
        missing = await h.get("/pay/inv_nope")
    assert page.status_code == 200
    assert "359.04 USD" in page.text and "ann@example.com" in page.text
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert missing.status_code == 404
