"""A conversation opened in a fresh tab, in real headless Chromium: the transcript is
shown once, the stream starts where the transcript ends (the detail's `stream_offset`)
instead of replaying the retained events over it, and new replies still stream in."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Page, Request, expect
from temporalio.testing import WorkflowEnvironment

from onward.agent.decisions import AskUser
from onward.api.app import create_app
from onward.config import Settings
from onward.testing import ScriptedModel
from tests.api.conftest import serve
from tests.e2e.browser import ARTIFACTS, ASSISTANT, browser_session, send, sign_in
from tests.workflows import toolbox

pytestmark = pytest.mark.e2e
expect.set_options(timeout=20_000)
assert toolbox.MATH.name == "test-math"  # importing registers the goal


async def _detail(page: Page, cid: str) -> dict[str, object]:
    found = await page.evaluate(
        "async (id) => JSON.stringify(await (await fetch(`/v1/conversations/${id}`)).json())",
        cid,
    )
    return json.loads(found)


async def test_a_fresh_tab_shows_each_message_once_and_streams_what_comes_next(
    dev_env: WorkflowEnvironment, data_settings: Settings
) -> None:
    settings = data_settings
    model = ScriptedModel(
        lambda request: AskUser(text=f"reply {len(request.messages)}"), word_delay_s=0.05
    )
    async with browser_session(dev_env, settings, height=900, model=model) as s:
        page = s.page
        async with serve(create_app(settings, client=dev_env.client, api_settings=s.api), s.port):
            await sign_in(page, s.port, s.api.token_file(settings.data_dir))
            await page.select_option("#goal-select", "test-math")
            await page.click("#new-button")
            await send(page, "hello")
            await expect(page.locator(ASSISTANT).last.locator(".text")).to_have_text("reply 1")
            await send(page, "and once more")
            await expect(page.locator(ASSISTANT).last.locator(".text")).to_have_text("reply 3")
            await expect(page.locator("#status")).to_have_text("waiting for you")
            cid = await page.locator("#conversation-list .current").get_attribute("data-id")
            assert cid is not None

            # A new tab (its own sessionStorage, so no stream offset of its own).
            fresh = await page.context.new_page()
            streams: list[str] = []

            def on_request(request: Request) -> None:
                if "/events" in request.url:
                    streams.append(request.url)

            fresh.on("request", on_request)
            await fresh.goto(f"http://127.0.0.1:{s.port}/#{cid}")
            texts = fresh.locator(".message.user .text, .message.assistant:not(.streaming) .text")
            await expect(texts).to_have_text(["hello", "reply 1", "and once more", "reply 3"])
            offset = (await _detail(fresh, cid))["stream_offset"]
            assert isinstance(offset, int) and offset > 0
            assert streams == [
                f"http://127.0.0.1:{s.port}/v1/conversations/{cid}/events?after={offset}"
            ]

            await send(fresh, "a third time")
            await expect(fresh.locator(ASSISTANT).last.locator(".text")).to_have_text("reply 5")
            await expect(texts).to_have_text(
                ["hello", "reply 1", "and once more", "reply 3", "a third time", "reply 5"]
            )
            ARTIFACTS.mkdir(exist_ok=True)
            await fresh.screenshot(path=ARTIFACTS / "chat-fresh-tab.png")
            # The first tab, streaming all along, shows the same conversation once too.
            await expect(page.locator(ASSISTANT).last.locator(".text")).to_have_text("reply 5")
            await expect(
                page.locator(".message.user .text, .message.assistant:not(.streaming) .text")
            ).to_have_text(
                ["hello", "reply 1", "and once more", "reply 3", "a third time", "reply 5"]
            )
