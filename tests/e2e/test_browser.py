"""The web chat in real headless Chromium (Debian's `chromium`, driven by Playwright):
a whole travel conversation with the offline model, an API restart mid-conversation,
and an XSS attempt that must render as text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Request, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from onward.api.app import create_app
from onward.api.auth import read_local_token
from onward.api.settings import ApiSettings
from onward.config import Settings
from tests.api.conftest import serve
from tests.conftest import make_settings
from tests.e2e.browser import ARTIFACTS, ASSISTANT, CHROMIUM_ARGS, browser_session, chromium, send

pytestmark = pytest.mark.e2e

XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=2</script>"
# Model calls, tool activities and an API restart sit behind some steps; a loaded CI
# machine needs more than Playwright's default 5 s for them.
expect.set_options(timeout=20_000)


async def test_travel_conversation_in_the_browser(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    settings = data_settings
    async with browser_session(dev_env, settings, height=900) as s:
        page, convs, local, port = s.page, s.convs, s.api, s.port
        streams: list[Request] = []
        requested: list[str] = []
        page.on("request", lambda r: streams.append(r) if "/events" in r.url else None)
        page.on("request", lambda r: requested.append(r.url))
        async with serve(create_app(settings, client=dev_env.client, api_settings=local), port):
            token = read_local_token(local.token_file(settings.data_dir))
            assert token is not None
            # The printed sign-in URL signs the browser in and leaves the address bar.
            await page.goto(f"http://127.0.0.1:{port}/?token={token}")
            await expect(page.locator("#user-name")).to_have_text("local")
            assert "token" not in page.url
            # The token became an HttpOnly, SameSite=Strict cookie: the page cannot read
            # it, keeps no copy, and no URL it requests after the sign-in link has it.
            stored = await page.evaluate(
                "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage),"
                " document.cookie])"
            )
            assert token not in stored
            (cookie,) = await page.context.cookies()
            assert (cookie.get("name"), cookie.get("httpOnly"), cookie.get("sameSite")) == (
                "onward_session",
                True,
                "Strict",
            )
            assert token not in str(cookie.get("value"))
            await expect(page.locator("#model-name")).to_have_text("offline")
            await expect(page.locator("#offline-badge")).to_be_visible()

            await page.select_option("#goal-select", "travel")
            await expect(page.locator("#goal-tools")).to_contain_text("create_invoice confirm")
            await page.click("#new-button")
            await expect(page.locator(".message.intro")).to_contain_text("Where and when")
            cid = (await page.evaluate("location.hash")).lstrip("#")
            href = f"{settings.web_ui_url}/namespaces/default/workflows/{cid}"
            await expect(page.locator("#workflow-link")).to_have_attribute("href", href)

            await send(page, "I'd like to see events in San Francisco in March")
            await expect(page.locator(".tool-card").first).to_have_attribute(
                "data-tool", "find_events"
            )
            await expect(page.locator(ASSISTANT).last).to_contain_text("Where will you fly from?")
            await expect(page.locator("#status")).to_have_text("waiting for you")

        # The API goes away and comes back: the page's stream resumes by itself.
        async with serve(create_app(settings, client=dev_env.client, api_settings=local), port):
            await send(page, "Chicago")
            await expect(page.locator(".tool-card").nth(1)).to_have_attribute(
                "data-tool", "search_flights"
            )
            await expect(page.locator(ASSISTANT).last).to_contain_text("email")

            await send(page, "ada@example.com")
            card = page.locator(".tool-card[data-tool=create_invoice]")
            await expect(card.locator("button.approve")).to_be_visible()
            await expect(page.locator("#approval-badge")).to_have_text("1 approval pending")
            await expect(page.locator("#status")).to_have_text("waiting for approval")
            await expect(card.locator(".args")).to_contain_text("ada@example.com")
            await card.locator("button.approve").click()

            await expect(page.locator("#status")).to_have_text("waiting for you")
            answer = page.locator(ASSISTANT).last
            await expect(answer).to_contain_text(re.compile(r"\binv[_-]\w+"))
            await expect(answer.locator("ul li").first).to_be_visible()  # safe markdown
            await expect(page.locator("#approval-badge")).to_be_hidden()
            await expect(page.locator("#usage")).to_contain_text("model calls")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "browser-travel.png", full_page=True)

            # No URL the page requested after the sign-in link carries the token.
            assert requested[0].startswith(f"http://127.0.0.1:{port}/?token=")
            assert [u for u in requested[1:] if token in u] == []
            # The page reconnected to the new server, resuming after its last offset.
            resumed = [r for r in streams if cid in r.url]
            assert len(resumed) >= 2
            last_ids = [(await r.all_headers()).get("last-event-id") for r in resumed[1:]]
            assert any(i is not None and int(i) > 0 for i in last_ids), last_ids
            # Every transcript message shows exactly once despite the restart.
            users = await page.locator(".message.user .text").all_inner_texts()
            assert users == [
                "I'd like to see events in San Francisco in March",
                "Chicago",
                "ada@example.com",
            ]
            snap = await convs.snapshot(cid)
            shown = await page.locator(ASSISTANT).count()
            assert shown == sum(m.kind == "assistant" for m in snap.messages)
            # The trip is done but the conversation stays open for a follow-up: the
            # invoice is read from its transcript, not from a result.
            invoice = next(
                m.content
                for m in snap.messages
                if m.kind == "tool_result" and m.ok and m.tool == "create_invoice"
            )
            await expect(answer).to_contain_text(str(invoice["invoice_id"]))

            # User text, tool arguments and model text are text, never markup: the
            # offline model quotes an unknown origin back in its answer.
            await page.click("#new-button")
            await expect(page).not_to_have_url(re.compile(re.escape(cid)))
            await expect(page.locator(".message.user")).to_have_count(0)
            await expect(page.locator(".message.intro")).to_be_visible()
            await send(page, XSS_SCRIPT)
            await expect(page.locator(".message.user .text")).to_have_text([XSS_SCRIPT])
            await expect(page.locator("#status")).to_have_text("waiting for you")
            first = page.locator(".conversations li.current .title")
            await expect(first).to_have_text(f"Travel: {XSS_SCRIPT}")  # goal and first message
            await send(page, "events in Chicago in May")
            await expect(page.locator(ASSISTANT).last).to_contain_text("Where will you fly from?")
            await send(page, XSS_IMG)
            await expect(page.locator("#status")).to_have_text("waiting for you")
            await expect(page.locator(".message.user .text")).to_have_text(
                [XSS_SCRIPT, "events in Chicago in May", XSS_IMG]
            )
            await expect(page.locator(ASSISTANT).last).to_contain_text(XSS_IMG)
            await expect(page.locator(".tool-card").last).to_contain_text(XSS_IMG)
            assert await page.locator("#messages img, #messages script").count() == 0
            assert await page.evaluate("typeof window.__xss") == "undefined"
            await page.screenshot(path=ARTIFACTS / "browser-xss.png", full_page=True)


MARKDOWN_PROBE = """async (inputs) => {
  const { renderMarkdown } = await import("/static/markdown.js");
  return inputs.map((text) => {
    const box = document.createElement("div");
    box.innerHTML = renderMarkdown(text);
    const nodes = [...box.querySelectorAll("*")];
    return {
      tags: nodes.map((n) => n.tagName.toLowerCase()),
      attributes: nodes.flatMap((n) => [...n.attributes].map((a) => [a.name, a.value])),
      text: box.textContent,
    };
  });
}"""


async def test_markdown_subset_escapes_first(tmp_path: Path) -> None:
    executable = chromium()
    settings = make_settings(tmp_path)
    local = ApiSettings(_env_file=None)  # type: ignore[call-arg]
    inputs = [
        '<img src=x onerror="window.__xss=3">',
        "[click](javascript:window.__xss=4)",
        '[docs](https://example.com/?a=1&b="x") and **bold** and *it*',
        "`<b>code</b>` then\n- one\n- **two**",
        "```\n<script>window.__xss=5</script>\n```",
        '**<svg onload="window.__xss=6">**',
        'Pay: http://127.0.0.1:8000/pay/inv_1. Or "https://x.example/a"onmouseover=1<b>',
    ]
    async with serve(create_app(settings, api_settings=local)) as url, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/static/style.css")  # same origin, no app running
            rendered = await page.evaluate(MARKDOWN_PROBE, inputs)
            xss = await page.evaluate("typeof window.__xss")
        finally:
            await browser.close()
    allowed_tags = {"p", "br", "ul", "li", "code", "pre", "strong", "em", "a"}
    for case in rendered:
        assert set(case["tags"]) <= allowed_tags, case
        assert {name for name, _ in case["attributes"]} <= {"href", "target", "rel"}, case
    img, js_link, link, mixed, fenced, svg, bare = rendered
    assert img["tags"] == ["p"] and img["text"] == inputs[0]
    assert "a" not in js_link["tags"] and js_link["text"] == inputs[1]
    assert ["href", 'https://example.com/?a=1&b="x"'] in link["attributes"]
    assert {"a", "strong", "em"} <= set(link["tags"])
    assert mixed["tags"] == ["p", "code", "ul", "li", "li", "strong"]
    assert mixed["text"].startswith("<b>code</b> then")
    assert fenced["tags"] == ["pre", "code"] and "<script>" in fenced["text"]
    assert svg["tags"] == ["p", "strong"] and svg["text"] == '<svg onload="window.__xss=6">'
    # Bare URLs are links; the escaped quote ends one, so nothing leaves the href.
    assert bare["tags"] == ["p", "a", "a"]
    hrefs = [value for name, value in bare["attributes"] if name == "href"]
    assert hrefs == ["http://127.0.0.1:8000/pay/inv_1", "https://x.example/a"]
    assert bare["text"] == inputs[-1]
    assert xss == "undefined"
